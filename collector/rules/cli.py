"""`logpipe-collector rules test`: try the parsing rules on sample lines, running nothing.

Each line read from stdin goes through exactly what ``serve`` does to a line of a
container (the same parsing, rules, enrichment and routing), and the command prints
which rule applied and the document that would be indexed, or the rule that dropped it.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, get_args

import orjson

from collector.attributes import AttributeFilter
from collector.batch import Decoded, decode
from collector.config import CollectorConfig, load_config
from collector.enrich import Context
from collector.labels import LabelFilter
from collector.retention.rules import RulesHolder
from collector.routing import COMPOSE_SERVICE_LABEL
from collector.rules.check import rule_warnings
from collector.rules.engine import ParsingRules, engine_of
from collector.wire import NAME_PART_PATTERN, Hints, ParserName, Source

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

--json prints each line's outcome as one JSON object: line, rule (or dropped_by),
data_stream and document.

Lines no rule fits print "no rule" with the document as logpipe's own parsers make it;
lines a drop rule takes print "dropped by rule NAME". A value that is not of its field's
type shows in logpipe.rule_failure, as it would in Elasticsearch. A line's own time is
checked against Docker's time as serve checks it (timestamp_max_skew): to try saved
lines, give --docker-time the time they were logged."""


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rules test` to the collector's command line."""
    rules = subparsers.add_parser(
        "rules",
        help="try the parsing rules on sample lines, or check them",
        description="Try the parsing rules of the config file on sample lines\n"
        "(rules test --help shows an example), or check them (rules check).",
    )
    actions = rules.add_subparsers(dest="rules_action", required=True, metavar="ACTION")
    test = actions.add_parser(
        "test",
        help="print, for each line on stdin, the rule that applies and the document made",
        description="Read log lines on stdin and print, for each, the parsing rule that "
        "applies and the document\nthat would be indexed, as if a container with the given "
        "service, name, image and labels\nhad printed it. Nothing is sent anywhere.\n\n" + EXAMPLE,
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
    test.add_argument("--json", action="store_true", help="one JSON object per line")
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


def _context(config: CollectorConfig) -> Context:
    return Context(
        dataset=config.routing.dataset,
        namespace=config.routing.namespace,
        environment=config.environment,
        labels=LabelFilter(config.document_labels),
        attributes=AttributeFilter(config.indexed_attributes),
        retention=RulesHolder(config.retention),
        parsing=ParsingRules(engine_of(config)),
        max_line_bytes=config.max_line_bytes,
    )


# Bytes that are not UTF-8, as decoding with surrogateescape keeps them.
_ESCAPED = re.compile("[\udc80-\udcff]+")


def _json_text(raw: bytes) -> bytes:
    """`raw` as the content of a JSON string, its bytes that are not UTF-8 left as they
    are: the shipper sends a container's bytes so, and the collector replaces them."""
    text = raw.decode("utf-8", "surrogateescape")
    out, at = [], 0
    for bad in _ESCAPED.finditer(text):
        out.append(orjson.dumps(text[at : bad.start()])[1:-1])
        out.append(bytes(ord(c) - 0xDC00 for c in bad.group()))
        at = bad.end()
    out.append(orjson.dumps(text[at:])[1:-1])
    return b"".join(out)


def _one(
    source: Source, raw: bytes, ctx: Context, keep_original: bool, docker_ns: int | None
) -> Decoded:
    ts = time.time_ns() if docker_ns is None else docker_ns
    log = b'{"kind":"log","src":0,"stream":"stdout","ts":%d,"message":"%s"}' % (
        ts,
        _json_text(raw),
    )
    body = orjson.dumps(source.model_dump()) + b"\n" + log
    ingested = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return decode(body, ctx, ingested, keep_original)


def report(number: int, decoded: Decoded) -> dict[str, Any]:
    """What happened to one sample line, as printed by --json."""
    if decoded.rules.dropped:
        return {"line": number, "dropped_by": next(iter(decoded.rules.dropped))}
    docs = decoded.docs or decoded.dead_letters
    doc = docs[0]
    rule = doc.body.get("logpipe", {}).get("rule")
    return {"line": number, "rule": rule, "data_stream": doc.stream, "document": doc.body}


def _text(row: dict[str, Any]) -> str:
    if "dropped_by" in row:
        return f"line {row['line']}: dropped by rule {row['dropped_by']}\n"
    rule = f"rule {row['rule']}" if row["rule"] else "no rule"
    body = orjson.dumps(row["document"], option=orjson.OPT_INDENT_2).decode()
    return f"line {row['line']}: {rule} -> {row['data_stream']}\n{body}\n"


def test_lines(args: argparse.Namespace, lines: Iterable[bytes | str], out: TextIO) -> int:
    """Run every line through the rules of the config; print what each became."""
    config = load_config(getattr(args, "config", None))
    ctx, source = _context(config), _source(args)
    docker_ns = getattr(args, "docker_time", None)
    for number, line in enumerate(lines, 1):
        raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
        decoded = _one(source, raw.rstrip(b"\r\n"), ctx, config.keep_original, docker_ns)
        row = report(number, decoded)
        out.write(orjson.dumps(row).decode() + "\n" if args.json else _text(row))
    return 0


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
    """`rules test`: stdin to stdout, the lines read as bytes (not all logs are UTF-8)."""
    return test_lines(args, sys.stdin.buffer, sys.stdout)
