"""`logpipe-collector rules test` and `rules check`: try the parsing rules on sample
lines, or check them, running nothing.

The lines of the files given (or stdin) become the records the shipper would send for a
container of the given labels (joined by its multiline labels, :mod:`samples`), each
goes through exactly what ``serve`` does to it (:mod:`trial`), and the command prints
which rule applied and the document that would be indexed, or the rule that dropped it,
then how often each rule applied (:mod:`tally`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, get_args

import orjson

from collector.config import load_config
from collector.routing import COMPOSE_SERVICE_LABEL
from collector.rules.check import rule_warnings
from collector.rules.samples import samples
from collector.rules.tally import Tally
from collector.rules.trial import context, make, report
from collector.wire import NAME_PART_PATTERN, Hints, ParserName, Source
from shipper.multiline import shaping_from

EXAMPLE = """\
example:
  $ cat rules.yaml
  rules:
    - name: shop_access
      match: {service: shop}
      dissect: '%{client} %{} %{} [%{time}] "%{request}" %{status} %{bytes} %{request_time}'
      fields: {status: long, bytes: long, request_time: double, client: ip}
      timestamp: {field: time, format: '%d/%b/%Y:%H:%M:%S %z'}
  $ echo '10.0.0.7 - - [01/May/2025:12:00:00 +0000] "GET /cart HTTP/1.1" 200 512 0.042' \\
      | logpipe-collector rules test --config rules.yaml --service shop \\
          --docker-time 2025-05-01T12:00:01Z
  line 1: rule shop_access -> logs-docker.keep_14d-default
  {
    "@timestamp": "2025-05-01T12:00:00.000000000Z",
    ...
    "fields": {
      "status": 200,
    ...
  summary: 1 line in 1 record
    rule shop_access: applied to 1
    no rule: 0

--json prints each record's outcome as one JSON object: line, rule (or dropped_by),
data_stream and document (and lines, for lines joined into one), then one object
{"summary": ...}: lines, records, applied and dropped per rule, no_rule, and per rule
the keys no document of it held (never_captured).

The collector joins nothing: each line is one document, as the shipper sends it, unless
a --label asks the shipper to join lines (logpipe.multiline=java, ...) or filter them
(logpipe.include_lines, logpipe.exclude_lines): then they are joined and filtered as the
shipper does, the lines taken as read at once (no multiline timeout).

Lines no rule fits print "no rule" with the document as logpipe's own parsers make it;
lines a drop rule takes print "dropped by rule NAME". A value that is not of its field's
type shows in logpipe.rule_failure, as it would in Elasticsearch. A line's own time is
checked against Docker's time as serve checks it (timestamp_max_skew): to try saved
lines, give --docker-time the time they were logged."""


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rules test` and `rules check` to the collector's command line."""
    rules = subparsers.add_parser(
        "rules",
        help="try the parsing rules on sample lines, or check them",
        description="Try the parsing rules of the config file on sample lines\n"
        "(rules test --help shows an example), or check them (rules check).",
    )
    actions = rules.add_subparsers(dest="rules_action", required=True, metavar="ACTION")
    test = actions.add_parser(
        "test",
        help="print, for each line of the files (or stdin), the rule that applies and the "
        "document made, then a summary",
        description="Read log lines from the files (or stdin) and print, for each, the parsing "
        "rule that applies\nand the document that would be indexed, as if a container with "
        "the given service, name,\nimage and labels had printed them; then how many each "
        "rule took, and which of its keys\nit never captured. Nothing is sent anywhere.\n\n"
        + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # SUPPRESS: `logpipe-collector --config F rules test` works too.
    test.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="YAML config file (default: $LOGPIPE_CONFIG)",
    )
    test.add_argument("--service", help="the compose service of the container")
    test.add_argument("--container", default="sample", help="container name (default sample)")
    test.add_argument("--image", default="sample:latest", help="image name (default sample:latest)")
    test.add_argument(
        "--label",
        action="append",
        default=[],
        type=_label,
        metavar="KEY=VALUE",
        help="a container label (logpipe.namespace and logpipe.dataset set those, as "
        "the shipper does)",
    )
    test.add_argument(
        "--parser",
        default="auto",
        choices=get_args(ParserName),
        help="the logpipe.parser hint (default auto)",
    )
    test.add_argument(
        "--docker-time",
        type=_docker_time,
        metavar="TIME",
        help="the time Docker read each line, in RFC 3339 (default: now); a rule's "
        "timestamp further than timestamp_max_skew from it is not taken",
    )
    test.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per record, then one holding the summary",
    )
    test.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="files of log lines, read in turn (default, or -: stdin)",
    )
    test.set_defaults(handler=run_test)
    check = actions.add_parser(
        "check",
        help="load the rules as serve does, and warn of rules that partly never work",
        description="Load the parsing rules of the config file as serve does (a rule that "
        "cannot work is refused:\nexit status 2, one line naming it), then warn of rules "
        "that load but partly never work:\na rule identical to an earlier one, a rule an "
        "earlier one always takes the lines of,\na typed or timestamp field its pattern "
        "never captures. Warnings do not change the exit status (0).",
    )
    check.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="YAML config file (default: $LOGPIPE_CONFIG)",
    )
    check.set_defaults(handler=run_check)


def _label(text: str) -> tuple[str, str]:
    """KEY=VALUE as (key, value) (argparse's type); a hint label's value is checked as
    the shipper checks it."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KEY=VALUE: write e.g. --label logpipe.rule=nginx_timed"
        )
    if key in _HINT_LABELS and re.fullmatch(NAME_PART_PATTERN, value) is None:
        raise argparse.ArgumentTypeError(
            f"{key}={value!r} is not a valid data stream name part "
            "(lower case letters, digits, '_' and '.', at most 100, no '-')"
        )
    return key, value


# The labels the shipper turns into hints (besides logpipe.parser: --parser).
_HINT_LABELS = {"logpipe.dataset": "dataset", "logpipe.namespace": "namespace"}


def _docker_time(text: str) -> int:
    """RFC 3339 text as ns since the epoch (argparse's type: a ValueError is its error)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time such as 2025-05-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.year < 1970:
        raise argparse.ArgumentTypeError(f"{text!r} is before 1970")
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def _source(args: argparse.Namespace) -> Source:
    labels = dict(args.label)
    if args.service:
        labels[COMPOSE_SERVICE_LABEL] = args.service
    return Source(
        kind="source",
        src=0,
        host="rules-test",
        container_id="rules-test",
        container_name=args.container,
        image=args.image,
        labels=labels,
        # The shipper sends these labels' values as the container's hints.
        hints=Hints.model_validate(
            {"parser": args.parser, **{hint: labels.get(key) for key, hint in _HINT_LABELS.items()}}
        ),
    )


def _text(row: dict[str, Any]) -> str:
    where = f"line {row['line']}"
    if "lines" in row:
        where = f"lines {row['line']}-{row['line'] + row['lines'] - 1} (joined)"
    if row.get("left_out"):
        return f"{where}: left out by the container's include_lines/exclude_lines\n"
    if "dropped_by" in row:
        return f"{where}: dropped by rule {row['dropped_by']}\n"
    rule = f"rule {row['rule']}" if row["rule"] else "no rule"
    body = orjson.dumps(row["document"], option=orjson.OPT_INDENT_2).decode()
    return f"{where}: {rule} -> {row['data_stream']}\n{body}\n"


def test_lines(
    args: argparse.Namespace, lines: Iterable[bytes | str], out: TextIO, err: TextIO
) -> int:
    """Run every record the lines make through the rules of the config; print what each
    became, then how often each rule applied."""
    config = load_config(getattr(args, "config", None))
    ctx, source = context(config), _source(args)
    docker_ns = getattr(args, "docker_time", None)
    shaping, warnings = shaping_from(source.labels)
    for warning in warnings:
        err.write(f"logpipe-collector: label ignored, as the shipper ignores it: {warning}\n")
    tally = Tally(config.rules)
    for sample in samples((_bytes(line) for line in lines), shaping):
        kept = sample.kept
        decoded = make(source, sample, ctx, config.keep_original, docker_ns) if kept else None
        row = report(sample, decoded)
        tally.add(row, sample.lines)
        out.write(orjson.dumps(row).decode() + "\n" if args.json else _text(row))
    if args.json:
        out.write(orjson.dumps({"summary": tally.as_json()}).decode() + "\n")
    else:
        out.write(tally.text())
    return 0


def _bytes(line: bytes | str) -> bytes:
    raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
    return raw.rstrip(b"\r\n")


def run_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`rules check`: the rules load (or the command exits 2), then each warning, a line."""
    config = load_config(getattr(args, "config", None))
    out = out or sys.stdout
    warnings = rule_warnings(config.rules)
    for warning in warnings:
        out.write(f"warning: {warning}\n")
    out.write(f"{len(config.rules)} rules load; {len(warnings)} warnings\n")
    return 0


def run_test(args: argparse.Namespace) -> int:
    """`rules test`: the files (or stdin) to stdout, the lines read as bytes (not all logs
    are UTF-8)."""
    paths: list[Path] = args.files or [Path("-")]
    for path in paths:
        if str(path) != "-" and not path.is_file():
            why = "no such file" if not path.exists() else "not a file"
            print(f"logpipe-collector: rules test: {path}: {why}", file=sys.stderr)
            return 2
    return test_lines(args, _read(paths), sys.stdout, sys.stderr)


def _read(paths: list[Path]) -> Iterator[bytes]:
    """The lines of each file in turn (`-`: stdin)."""
    for path in paths:
        if str(path) == "-":
            yield from sys.stdin.buffer
            continue
        with path.open("rb") as lines:
            yield from lines
