"""`logpipe-collector retention plan|apply`: show, or enforce once, what retention does."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from collector.config import CollectorConfig, load_config
from collector.es_client import elasticsearch_client
from collector.retention.facts import ALL_STREAMS
from collector.retention.lifecycle import Applied, IndexPlan, StreamPlan, apply, plan
from collector.retention.rules import RetentionRules, is_duration, not_a_duration, seconds

# What --ahead foresees and what not (docs/retention.md).
AHEAD_NOTE = (
    "as {ahead} from now: rollovers by max_age foreseen, a write index taken to get lines "
    "until it rolls over; rollovers by size or documents, and the indices made after, not\n"
)
PLAN = """\
Print every backing index of logpipe's data streams with its stream's retention rule, its
age (of its newest document), size and documents, and what apply would do to it. Changes
nothing: rollovers are asked as dry runs.

examples:
  logpipe-collector retention plan --config collector.yaml
  logpipe-collector retention plan --ahead 7d        as it will stand in a week
  logpipe-collector retention plan --json --streams 'logs-*-staging'"""
APPLY = """\
Roll logpipe's data streams over by the rollover conditions, then delete every backing
index, never a write index, whose newest document is older than its stream's retention.
Once; serve does the same every retention.interval. Prints what it changed.

example:
  logpipe-collector retention apply --config collector.yaml"""
COLUMNS = ("STREAM", "RULE", "KEEP", "INDEX", "AGE", "SIZE", "DOCS", "ACTION")


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `retention plan` and `retention apply` to the collector's command line."""
    retention = subparsers.add_parser(
        "retention",
        help="show (plan) or enforce once (apply) the retention rules",
        description="Show what the retention rules of the config file do to logpipe's data "
        "streams (plan),\nor do it once (apply), as serve does every retention.interval.",
    )
    actions = retention.add_subparsers(dest="retention_action", required=True, metavar="ACTION")
    plan_cmd = actions.add_parser(
        "plan",
        help="print what apply would do, changing nothing",
        description=PLAN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan_cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plan_cmd.add_argument(
        "--ahead",
        type=_duration,
        default="0s",
        help="plan as if this much time had passed, e.g. 7d (default: now)",
    )
    apply_cmd = actions.add_parser(
        "apply",
        help="roll data streams over and delete backing indices past retention, once",
        description=APPLY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for cmd in (plan_cmd, apply_cmd):
        cmd.add_argument(
            "--streams",
            default=ALL_STREAMS,
            type=_streams,
            help=f"data streams to look at (default {ALL_STREAMS})",
        )
    plan_cmd.set_defaults(handler=run_plan)
    apply_cmd.set_defaults(handler=run_apply)


def _duration(text: str) -> str:
    """A duration such as 7d, or a zero one (0s, 0d...: now) as "0s"."""
    if re.fullmatch(r"0+[smhdw]", text):
        return "0s"
    if not is_duration(text):
        why = not_a_duration(text)
        raise argparse.ArgumentTypeError(why if "e.g." in why else f"{why}, e.g. 7d")
    return text


def _streams(text: str) -> str:
    """Names or patterns of data streams, comma-separated, none of them empty."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"{text!r} has an empty name: write names or patterns separated by commas, "
            "e.g. 'logs-*-staging'"
        )
    return ",".join(names)


def _config(args: argparse.Namespace) -> CollectorConfig:
    path: Path | None = getattr(args, "config", None)
    return load_config(path)


def run_plan(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`retention plan`: print each stream, rule, backing index and what apply would do."""
    config = _config(args)
    ahead = 0 if args.ahead == "0s" else seconds(args.ahead)
    plans = asyncio.run(_plan(config, args.streams, lambda: time.time() + ahead))
    out = out or sys.stdout
    if args.json:
        out.write(json.dumps([plan_json(p) for p in plans], indent=2) + "\n")
    else:
        out.write(render_table(plans))
        if ahead:
            out.write(AHEAD_NOTE.format(ahead=args.ahead))
    return 0


async def _plan(
    config: CollectorConfig, pattern: str, clock: Callable[[], float]
) -> list[StreamPlan]:
    async with elasticsearch_client(config) as es:
        return await plan(es, RetentionRules(config.retention), clock, pattern)


def run_apply(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`retention apply`: roll over and delete once, then say what changed."""
    config = _config(args)
    done = asyncio.run(_apply(config, args.streams))
    (out or sys.stdout).write(render_applied(done))
    for refusal in done.refused:
        print(f"logpipe-collector: {refusal}", file=sys.stderr)
    return 1 if done.refused else 0


async def _apply(config: CollectorConfig, pattern: str) -> Applied:
    async with elasticsearch_client(config) as es:
        return await apply(es, RetentionRules(config.retention), time.time, pattern)


def plan_json(stream: StreamPlan) -> dict[str, object]:
    """A stream's plan as plain JSON values."""
    return {**asdict(stream), "managed": stream.managed}


def action(stream: StreamPlan, index: IndexPlan) -> str:
    """What apply does to the index, in words."""
    if not stream.managed:
        return "keep (no retention rule)"
    if index.rolls_over:
        return "roll over, delete" if index.delete else "roll over"
    if index.delete:
        return "delete"
    if index.write_index:
        return "keep (write index)"
    if index.age_seconds is None:
        return "keep (newest document unknown)"
    return "keep"


def render_table(plans: list[StreamPlan]) -> str:
    """The plan as aligned columns, one row per backing index, and a summary."""
    rows = [
        (
            s.stream,
            s.rule or "-",
            human_age(s.keep_seconds),
            i.index,
            age_text(i.age_seconds),
            human_size(i.size_bytes),
            "?" if i.docs is None else str(i.docs),
            action(s, i),
        )
        for s in plans
        for i in s.indices
    ]
    widths = [max(len(r[c]) for r in [COLUMNS, *rows]) for c in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    header = "  ".join(v.ljust(w) for v, w in zip(COLUMNS, widths, strict=True)).rstrip()
    doomed = [i for s in plans for i in s.indices if i.delete]
    rolled = sum(1 for s in plans for i in s.indices if i.rolls_over)
    summary = (
        f"apply would delete {len(doomed)} backing indices "
        f"({human_size(sum(i.size_bytes for i in doomed))}) and roll over {rolled} data streams"
    )
    notes = [
        f"{i.index}: its newest document is dated {human_age(i.future_seconds)} in the future "
        "(a clock running ahead): aged from the last moment it took lines instead"
        for s in plans
        for i in s.indices
        if i.future_seconds is not None
    ]
    return "\n".join([header, *lines, *notes, summary]) + "\n"


def render_applied(done: Applied) -> str:
    """What one apply run changed, in words."""
    lines = [f"rolled over {s}" for s in done.rolled_over]
    lines += [f"deleted {i}" for i in done.deleted]
    lines += [f"already deleted by another collector: {i}" for i in done.already_gone]
    lines.append(
        f"{len(done.deleted)} backing indices deleted, {len(done.rolled_over)} data streams "
        "rolled over"
    )
    return "\n".join(lines) + "\n"


def age_text(age: float | None) -> str:
    """An index's age as the AGE column shows it; a time past now said in words."""
    return "in the future" if age is not None and age < 0 else human_age(age)


def human_age(age: float | None) -> str:
    """Seconds as the two largest units, e.g. 20d3h; '-' when unknown."""
    if age is None:
        return "-"
    sign, left = ("-" if age < 0 else ""), int(abs(age))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return sign + "".join(parts[:2])


def human_size(size: int) -> str:
    """Bytes in the largest binary unit that keeps a number of at least 1."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, i = float(size), 0
    while value >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    return f"{size}B" if i == 0 else f"{value:.1f}{units[i]}"
