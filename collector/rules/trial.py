"""One sample record of `rules test` made into its document, exactly as serve makes it.

The record is written as the shipper writes it on the wire (its bytes that are not UTF-8
left as they are, its count of joined lines) and decoded by the collector's own
:func:`collector.batch.decode`, with the parsers, rules, enrichment and routing of the
config: what the command prints is what serve would index.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from collector.attributes import AttributeFilter
from collector.batch import Decoded, decode
from collector.config import CollectorConfig
from collector.enrich import Context
from collector.labels import LabelFilter
from collector.retention.rules import RulesHolder
from collector.rules.engine import ParsingRules, engine_of
from collector.rules.samples import Sample
from collector.wire import Source


def context(config: CollectorConfig) -> Context:
    """The enrichment context serve builds from `config`."""
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


def make(
    source: Source, sample: Sample, ctx: Context, keep_original: bool, docker_ns: int | None
) -> Decoded:
    """What serve makes of `sample` from `source`, read by Docker at `docker_ns` (None: now)."""
    ts = time.time_ns() if docker_ns is None else docker_ns
    log = b'{"kind":"log","src":0,"stream":"stdout","ts":%d,"lines":%d,"message":"%s"}' % (
        ts,
        sample.lines,
        _json_text(sample.data),
    )
    body = orjson.dumps(source.model_dump()) + b"\n" + log
    ingested = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return decode(body, ctx, ingested, keep_original)


def report(sample: Sample, decoded: Decoded | None) -> dict[str, Any]:
    """What happened to one sample record, as printed by --json (None: left out by the
    labels' include/exclude_lines, never sent)."""
    row: dict[str, Any] = {"line": sample.first}
    if sample.lines > 1:
        row["lines"] = sample.lines
    if decoded is None:
        return {**row, "left_out": True}
    if decoded.rules.dropped:
        return {**row, "dropped_by": next(iter(decoded.rules.dropped))}
    docs = decoded.docs or decoded.dead_letters
    doc = docs[0]
    rule = doc.body.get("logpipe", {}).get("rule")
    return {**row, "rule": rule, "data_stream": doc.stream, "document": doc.body}
