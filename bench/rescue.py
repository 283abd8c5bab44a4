"""What the ``--rm`` rescue costs: a removed container's whole log read from its held file.

A ``--rm`` container's follow stream ends as dockerd removes it; the rest of its log is
read from the file the shipper holds open (shipper/follow/rescue.py). Here a follower of
such a container, whose dockerd already answers "gone", reads `--lines` corpus lines from
a ``json-file`` or ``local`` log written as dockerd writes them (bench/fileread.py), every
line through the rescue: numbered and queued, the queue counted. Each commit runs in a
process of its own (this checkout's HEAD, and ``--before`` to compare), `--tries` times
per round, rounds alternating the commits' order: wall seconds of the follower's run,
best and median. ``LOGPIPE_NATIVE=0`` in the environment runs the Python path. Usage:

    python -m bench.rescue [--lines 100000] [--tries 5] [--rounds 2] [--before REV]
        [--append]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import at_least, report, services, summary

DRIVERS = ("json-file", "local")
# What each commit's process runs, by its path: that process imports `shipper` (and
# `bench`) from the commit's exported code, which need not have this file.
CHILD = Path(__file__).with_name("rescue_child.py")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rescue", description=summary(__doc__))
    parser.add_argument("--lines", type=at_least(1), default=100_000, help="lines in the log")
    parser.add_argument("--tries", type=at_least(1), default=5, help="runs per commit and round")
    parser.add_argument("--rounds", type=at_least(1), default=2, help="rounds of every commit")
    parser.add_argument("--before", metavar="REV", help="a commit to run beside HEAD")
    parser.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    return parser.parse_args(argv)


def _run(code: Path, driver: str, args: argparse.Namespace) -> dict[str, Any]:
    """One commit's runs, in a process whose `shipper` is that commit's."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(code), str(services.ROOT), *services.SITE]),
    }
    child = [str(driver), str(args.lines), str(args.tries)]
    out = subprocess.run(
        [sys.executable, str(CHILD), *child],
        env=env, cwd=code, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found: dict[str, Any] = json.loads(out.splitlines()[-1])
    return found


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    codes = {services.measured_commit()[:7]: services.code_dir()}
    if args.before:
        codes = {services.sha_of(args.before)[:7]: services.exported(args.before), **codes}
    seconds: dict[tuple[str, str], list[float]] = {}
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for round_ in range(args.rounds):
        order = list(codes.items())
        for name, code in order if round_ % 2 == 0 else order[::-1]:
            for driver in DRIVERS:
                got = _run(code, driver, args)
                seconds.setdefault((driver, name), []).extend(got["seconds"])
                seen[(driver, name)] = got
    rows = [
        [
            driver,
            f"`{name}`",
            seen[(driver, name)]["path"],
            f"{seen[(driver, name)]['lines']:,}",
            f"{min(seconds[(driver, name)]):.3f}",
            f"{statistics.median(seconds[(driver, name)]):.3f}",
        ]
        for driver in DRIVERS
        for name in codes
    ]
    report.publish(
        "The --rm rescue: a removed container's log read from its held file",
        ["driver", "code", "extension", "lines queued", "best s", "median s"],
        rows,
        [
            f"{args.lines:,} corpus lines, {args.tries} runs per commit, driver and round, "
            f"{args.rounds} rounds; wall seconds of the follower's run (bench/rescue.py)",
            "extension: whether the commit's shipper loaded its compiled module; which "
            "reader its rescue used with it is the commit's own",
        ],
        args.append,
    )


if __name__ == "__main__":
    main()
