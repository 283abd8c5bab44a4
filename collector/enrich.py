"""Turn wire lines plus parse results into Elasticsearch documents. Pure: no I/O.

Every document gets ECS container/host/service fields, its data stream (as
collector/routing.py decides), and the deterministic, time-ordered ``_id`` of
collector/ids.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from collector.attributes import (
    EVERY_ATTRIBUTE,
    UNINDEXED,
    AttributeFilter,
    indexable,
    within_depth,
)
from collector.ids import LogIds, ordered_id
from collector.labels import EVERY_LABEL, LabelFilter
from collector.parse import Http, Parsed
from collector.retention.rules import RulesHolder
from collector.routing import Route, route, service_name
from collector.rules.engine import ParsingRules
from collector.shape import nested
from collector.wire import MAX_LINE_BYTES, Event, Gap, Log, LogFields, Source


@dataclass(frozen=True, slots=True)
class Context:
    """Static enrichment settings from the collector's config."""

    dataset: str = "docker"
    namespace: str = "default"
    environment: str | None = None
    # The container labels documents carry (LOGPIPE_DOCUMENT_LABELS).
    labels: LabelFilter = EVERY_LABEL
    # The parsed keys `attributes` indexes (LOGPIPE_INDEXED_ATTRIBUTES).
    attributes: AttributeFilter = EVERY_ATTRIBUTE
    # Read per record, so a reload of the retention rules changes routing at once.
    retention: RulesHolder = field(default_factory=RulesHolder)
    # Read once per batch, so a reload of the parsing rules applies from the next batch.
    parsing: ParsingRules = field(default_factory=ParsingRules)
    # A log line's message longer than this (UTF-8 bytes) is cut (LOGPIPE_MAX_LINE_BYTES).
    max_line_bytes: int = MAX_LINE_BYTES


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 1 µs more per document
class Doc:
    """One document ready for _bulk (never mutated once made)."""

    id: str
    stream: str
    body: dict[str, Any]
    # The line as received, for the dead-letter stream should Elasticsearch refuse it.
    original: str | None = None
    # Its `create` action and source as sent to _bulk, when made already (EncodedDoc).
    encoded: bytes | None = None


_BODY: Any = vars(Doc)["body"]  # the slot of Doc's body (a member descriptor)
_ORIGINAL: Any = vars(Doc)["original"]
# The compiled hot path's module (collector/native.py, MODULE_NAME), which makes EncodedDocs.
NATIVE_MODULE = "logpipe_collector_native"


class EncodedDoc(Doc):
    """A document the compiled hot path made (collector/native.py) as its `_bulk` lines.

    Its body is read back from them (flat, shape.py) the first time it is asked for (a
    dead letter, a test): the usual document is sent as it came and never needs it.
    Its original text likewise, from its line in the batch's body (`wire` at `at`): made
    a string for every document, it cost about 0.3 µs a line.
    """

    __slots__ = ("_at", "_wire")

    def __init__(self, id: str, stream: str, wire: bytes, at: int, encoded: bytes) -> None:
        self.id = id
        self.stream = stream
        self._wire = wire
        self._at = at
        self.encoded = encoded

    @property
    def original(self) -> str | None:
        """The line's text, as the document was made of it."""
        try:
            found: str | None = _ORIGINAL.__get__(self, Doc)
        except AttributeError:
            # Only the compiled module makes these documents: it is imported already.
            found = importlib.import_module(NATIVE_MODULE).wire_message(self._wire, self._at)
            _ORIGINAL.__set__(self, found)
        return found

    @original.setter
    def original(self, value: str | None) -> None:
        _ORIGINAL.__set__(self, value)

    @property
    def body(self) -> dict[str, Any]:
        """The document's fields."""
        try:
            found: dict[str, Any] = _BODY.__get__(self, Doc)
        except AttributeError:
            encoded = self.encoded or b"\n{}"
            found = nested(orjson.loads(encoded[encoded.index(b"\n") + 1 :]))
            _BODY.__set__(self, found)
        return found

    @body.setter
    def body(self, value: dict[str, Any]) -> None:
        _BODY.__set__(self, value)


@lru_cache(maxsize=4096)
def _second(secs: int) -> str:
    # Lines of a batch share a few seconds; strftime is the costliest step per record.
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def format_ns(ns: int) -> str:
    """RFC 3339 UTC with nine fractional digits, as Docker writes it."""
    secs, frac = divmod(ns, 1_000_000_000)
    # str.zfill: 0.41 against 0.65 µs for the format spec :09d (timeit, best of 5).
    return f"{_second(secs)}.{str(frac).zfill(9)}Z"


class _Place:
    """A route with what every document routed there shares (never mutated)."""

    __slots__ = ("data_stream", "dataset", "event", "ingested", "stream")

    def __init__(self, where: Route) -> None:
        self.dataset = where.dataset
        self.stream = where.stream
        self.data_stream = {
            "type": "logs",
            "dataset": where.stream_dataset,
            "namespace": where.namespace,
        }
        self.ingested = ""
        self.event: dict[str, Any] = {}

    def shared_event(self, ingested: str) -> dict[str, Any]:
        """The `event` of a line that adds nothing to it (a batch has one `ingested`)."""
        if ingested != self.ingested:
            self.event = {"dataset": self.dataset, "ingested": ingested}
            self.ingested = ingested
        return self.event


class _SourceFields:
    """What every line of a source shares: its ECS fields, its routes, its id prefixes."""

    __slots__ = ("container", "ctx", "host", "log_id", "places", "rules", "service", "source")

    def __init__(self, source: Source, ctx: Context) -> None:
        self.source = source
        self.ctx = ctx
        service: dict[str, Any] = {"name": service_name(source)}
        if ctx.environment:
            service["environment"] = ctx.environment
        self.service = service
        container: dict[str, Any] = {
            "id": source.container_id,
            "name": source.container_name,
            "image": {"name": source.image},
        }
        labels = ctx.labels(source.labels)
        if labels:  # an empty object would only cost Elasticsearch a field to parse
            container["labels"] = labels
        self.container = container
        self.host = {"name": source.host}
        # Routes per level, valid while `rules` is the holder's: a reload applies at once.
        self.rules = ctx.retention.rules
        self.places: dict[str | None, _Place] = {}
        self.log_id = LogIds(source.host, source.container_id).log_id

    def place(self, level: str | None) -> _Place:
        """Where a record of this source at `level` goes."""
        if self.rules is not self.ctx.retention.rules:
            self.rules = self.ctx.retention.rules
            self.places = {}
        found = self.places.get(level)
        if found is None:
            found = self.places[level] = _Place(route(self.source, self.ctx, level))
        return found


# Every line of a source shares these (never mutated) objects; keyed by id() and checked
# by identity, so a recycled id never hands out another source's fields.
_SOURCE_FIELDS: dict[int, _SourceFields] = {}


def _source_fields(source: Source, ctx: Context) -> _SourceFields:
    cached = _SOURCE_FIELDS.get(id(source))
    if cached is not None and cached.source is source and cached.ctx is ctx:
        return cached
    fields = _SourceFields(source, ctx)
    if len(_SOURCE_FIELDS) >= 4096:
        _SOURCE_FIELDS.clear()
    _SOURCE_FIELDS[id(source)] = fields
    return fields


def _base(fields: _SourceFields, ts: int, ingested: str, where: _Place) -> dict[str, Any]:
    return {
        "@timestamp": format_ns(ts),
        "container": fields.container,
        "host": fields.host,
        "service": fields.service,
        "event": {"dataset": where.dataset, "ingested": ingested},
        "data_stream": where.data_stream,
    }


def _http_fields(body: dict[str, Any], http: Http) -> None:
    request: dict[str, Any] = {}
    response: dict[str, Any] = {}
    if http.method is not None:
        request["method"] = http.method
    if http.referrer is not None:
        request["referrer"] = http.referrer
    if http.status_code is not None:
        response["status_code"] = http.status_code
    if http.body_bytes is not None:
        response["body"] = {"bytes": http.body_bytes}
    section: dict[str, Any] = {}
    if request:
        section["request"] = request
    if response:
        section["response"] = response
    if http.version is not None:
        section["version"] = http.version
    if section:
        body["http"] = section
    url = {k: v for k, v in (("original", http.url), ("path", http.path)) if v is not None}
    if url:
        body["url"] = url
    if http.user_agent is not None:
        body["user_agent"] = {"original": http.user_agent}
    if http.client_ip is not None:
        body["source"] = {"ip": http.client_ip}
    if http.duration_ns is not None:
        body["event"] = {**body["event"], "duration": http.duration_ns}  # never the shared one


# Sub-dicts many documents share (orjson writes a shared dict like any other).
_LOGPIPE: dict[str, dict[str, Any]] = {}
_LEVEL: dict[str, dict[str, Any]] = {}


def log_document(
    source: Source, log: Log | LogFields, parsed: Parsed, ctx: Context, ingested: str
) -> Doc:
    """The document for one log line."""
    fields = _source_fields(source, ctx)
    level = parsed.level
    where = fields.place(level)
    lines = log.lines
    if lines == 1:
        logpipe = _LOGPIPE.get(parsed.parser)
        if logpipe is None:
            logpipe = _LOGPIPE.setdefault(parsed.parser, {"parser": parsed.parser})
    else:
        logpipe = {"parser": parsed.parser, "lines": lines}
    body: dict[str, Any] = {
        "@timestamp": format_ns(log.ts),
        "container": fields.container,
        "host": fields.host,
        "service": fields.service,
        "event": where.shared_event(ingested),
        "data_stream": where.data_stream,
        "message": parsed.message,
        "stream": log.stream,
        "logpipe": logpipe,
    }
    if parsed.logger is not None:
        body["log"] = (
            {"logger": parsed.logger}
            if level is None
            else {
                "level": level,
                "logger": parsed.logger,
            }
        )
    elif level is not None:
        section = _LEVEL.get(level)
        if section is None:
            section = _LEVEL.setdefault(level, {"level": level})
        body["log"] = section
    if parsed.attributes:
        if ctx.attributes.every and indexable(parsed.attributes):
            body["attributes"] = within_depth(parsed.attributes)
        else:
            indexed, unindexed = ctx.attributes.split(parsed.attributes)
            if indexed:
                body["attributes"] = within_depth(indexed)
            if unindexed:
                body[UNINDEXED] = unindexed
    if parsed.http is not None:
        _http_fields(body, parsed.http)
    if parsed.trace_id is not None:
        body["trace"] = {"id": parsed.trace_id}
    if parsed.span_id is not None:
        body["span"] = {"id": parsed.span_id}
    if parsed.original is not None:
        body["event"] = {**body["event"], "original": parsed.original}
    if parsed.flags or log.truncated or lines > 1:
        body["tags"] = _tags(parsed.flags, log.truncated, lines > 1)
    _id = fields.log_id(log.stream, log.ts, log.seq)
    return Doc(_id, where.stream, body, log.message)


def _tags(flags: list[str], truncated: bool, multiline: bool) -> list[str]:
    tags = list(flags)
    if truncated:
        tags.append("truncated")
    if multiline:
        tags.append("multiline")
    return tags


def event_document(source: Source, event: Event, ctx: Context, ingested: str) -> Doc:
    """The document for a container lifecycle event."""
    fields = _source_fields(source, ctx)
    where = fields.place(None)
    body = _base(fields, event.ts, ingested, where)
    body["event"].update(kind="event", action=event.action)
    text = f"container {source.container_name} {event.action}"
    if event.exit_code is not None:
        body["process"] = {"exit_code": event.exit_code}
        text += f" (exit code {event.exit_code})"
    if event.detail:
        body["event"]["reason"] = event.detail
        text += f": {event.detail}"
    body["message"] = text
    if event.truncated:
        body["tags"] = ["truncated"]
    _id = ordered_id(event.ts, source.host, source.container_id, "event", event.action)
    return Doc(_id, where.stream, body)


def gap_document(source: Source, gap: Gap, ctx: Context, ingested: str) -> Doc:
    """The document that says lines were lost, and which."""
    fields = _source_fields(source, ctx)
    where = fields.place(None)
    body = _base(fields, gap.to_ts, ingested, where)
    body["event"].update(kind="event", action="gap", reason=gap.reason)
    body["stream"] = gap.stream
    gap_fields: dict[str, Any] = {"from": format_ns(gap.from_ts), "to": format_ns(gap.to_ts)}
    count = "an unknown number of"
    if gap.estimated_lines is not None:
        gap_fields["estimated_lines"] = gap.estimated_lines
        count = f"about {gap.estimated_lines}"
    body["logpipe"] = {"gap": gap_fields}
    body["message"] = (
        f"logpipe could not read {count} {gap.stream} lines of {source.container_name} "
        f"between {gap_fields['from']} and {gap_fields['to']}: {gap.reason}"
    )
    body["tags"] = ["gap", "truncated"] if gap.truncated else ["gap"]
    _id = ordered_id(gap.to_ts, source.host, source.container_id, gap.stream, "gap", gap.from_ts)
    return Doc(_id, where.stream, body)
