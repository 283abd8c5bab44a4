"""`logpipe-collector rules test`: try the parsing rules on sample lines, running nothing.

Each line read from stdin goes through exactly what ``serve`` does to a line of a
container (the same parsing, rules, enrichment and routing), and the command prints
which rule applied and the document that would be indexed, or the rule that dropped it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from collector.attributes import AttributeFilter
from collector.batch import Decoded, decode
from collector.config import CollectorConfig, load_config
from collector.enrich import Context
from collector.labels import LabelFilter
from collector.retention.rules import RulesHolder
from collector.routing import COMPOSE_SERVICE_LABEL
from collector.rules.engine import ParsingRules, engine_of
from collector.wire import Hints, Log, Source

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
      | logpipe-collector rules test --config rules.yaml --service shop
  line 1: rule shop_access -> logs-docker.keep_14d-default
  {"@timestamp": "2025-05-01T12:00:00.000000000Z", ..., "fields": {"status": 200, ...}}

Lines no rule fits print "no rule" with the document as logpipe's own parsers make it;
lines a drop rule takes print "dropped by rule NAME". A value that is not of its field's
type shows in logpipe.rule_failure, as it would in Elasticsearch."""


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rules test` to the collector's command line."""
    rules = subparsers.add_parser("rules", help="try the parsing rules on sample lines")
    actions = rules.add_subparsers(dest="rules_action", required=True, metavar="ACTION")
    test = actions.add_parser(
        "test",
        help="print, for each line on stdin, the rule that applies and the document made",
        description="Read log lines on stdin and print, for each, the parsing rule that "
        "applies and the document that would be indexed, as if a container with the "
        "given service, name, image and labels had printed it. Nothing is sent anywhere.\n\n"
        + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # SUPPRESS: `logpipe-collector --config F rules test` works too.
    test.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="YAML config file")
    test.add_argument("--service", help="the compose service of the container")
    test.add_argument("--container", default="sample", help="container name (default sample)")
    test.add_argument("--image", default="sample:latest", help="image name")
    test.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="a container label"
    )
    test.add_argument("--parser", default="auto", help="the logpipe.parser hint (default auto)")
    test.add_argument("--json", action="store_true", help="one JSON object per line")
    test.set_defaults(handler=run_test)


def _source(args: argparse.Namespace) -> Source:
    labels = dict(label.partition("=")[::2] for label in args.label)
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
        hints=Hints.model_validate({"parser": args.parser}),
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
    )


def _one(source: Source, text: str, ctx: Context, keep_original: bool) -> Decoded:
    now = time.time_ns()
    log = Log(kind="log", src=0, stream="stdout", ts=now, message=text)
    body = orjson.dumps(source.model_dump()) + b"\n" + orjson.dumps(log.model_dump())
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


def test_lines(args: argparse.Namespace, lines: Iterable[str], out: TextIO) -> int:
    """Run every line through the rules of the config; print what each became."""
    config = load_config(getattr(args, "config", None))
    ctx, source = _context(config), _source(args)
    for number, line in enumerate(lines, 1):
        row = report(number, _one(source, line.rstrip("\r\n"), ctx, config.keep_original))
        out.write(orjson.dumps(row).decode() + "\n" if args.json else _text(row))
    return 0


def run_test(args: argparse.Namespace) -> int:
    """`rules test`: stdin to stdout."""
    return test_lines(args, sys.stdin, sys.stdout)
