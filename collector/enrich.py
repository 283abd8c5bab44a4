"""Turn wire lines plus parse results into Elasticsearch documents. Pure: no I/O.

Every document gets ECS container/host/service fields, its data stream, and a
deterministic ``_id`` so that a replayed line overwrites nothing and duplicates nothing.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collector.parse import Http, Parsed
from collector.wire import Event, Gap, Log, Source

COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True, slots=True)
class Context:
    """Static enrichment settings from the collector's config."""

    dataset: str = "docker"
    namespace: str = "default"
    environment: str | None = None


@dataclass(frozen=True, slots=True)
class Doc:
    """One document ready for _bulk."""

    id: str
    stream: str
    body: dict[str, Any]


def format_ns(ns: int) -> str:
    """RFC 3339 UTC with nine fractional digits, as Docker writes it."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def doc_id(*parts: str | int) -> str:
    """A short, stable id from the parts that make a record unique."""
    raw = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(raw, digest_size=16).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def service_name(source: Source) -> str:
    """The compose service if the container has one, else the container name."""
    return source.labels.get(COMPOSE_SERVICE_LABEL) or source.container_name


def route(source: Source, ctx: Context) -> tuple[str, str]:
    """(dataset, namespace) of the data stream this source's records go to."""
    return (source.hints.dataset or ctx.dataset, source.hints.namespace or ctx.namespace)


def data_stream_name(dataset: str, namespace: str) -> str:
    """Elastic's data stream naming scheme for logs."""
    return f"logs-{dataset}-{namespace}"


def _base(source: Source, ts: int, ctx: Context, ingested: str) -> dict[str, Any]:
    dataset, namespace = route(source, ctx)
    service: dict[str, Any] = {"name": service_name(source)}
    if ctx.environment:
        service["environment"] = ctx.environment
    return {
        "@timestamp": format_ns(ts),
        "container": {
            "id": source.container_id,
            "name": source.container_name,
            "image": {"name": source.image},
            "labels": source.labels,
        },
        "host": {"name": source.host},
        "service": service,
        "event": {"dataset": dataset, "ingested": ingested},
        "data_stream": {"type": "logs", "dataset": dataset, "namespace": namespace},
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
        body["event"]["duration"] = http.duration_ns


def log_document(source: Source, log: Log, parsed: Parsed, ctx: Context, ingested: str) -> Doc:
    """The document for one log line."""
    body = _base(source, log.ts, ctx, ingested)
    body["message"] = parsed.message
    body["stream"] = log.stream
    body["logpipe"] = {"parser": parsed.parser}
    if log.lines > 1:
        body["logpipe"]["lines"] = log.lines
    log_section: dict[str, Any] = {}
    if parsed.level is not None:
        log_section["level"] = parsed.level
    if parsed.logger is not None:
        log_section["logger"] = parsed.logger
    if log_section:
        body["log"] = log_section
    if parsed.attributes:
        body["attributes"] = parsed.attributes
    if parsed.http is not None:
        _http_fields(body, parsed.http)
    if parsed.trace_id is not None:
        body["trace"] = {"id": parsed.trace_id}
    if parsed.span_id is not None:
        body["span"] = {"id": parsed.span_id}
    if parsed.original is not None:
        body["event"]["original"] = parsed.original
    tags = list(parsed.flags)
    if log.truncated:
        tags.append("truncated")
    if log.lines > 1:
        tags.append("multiline")
    if tags:
        body["tags"] = tags
    dataset, namespace = route(source, ctx)
    _id = doc_id(source.host, source.container_id, log.stream, log.ts, log.seq)
    return Doc(_id, data_stream_name(dataset, namespace), body)


def event_document(source: Source, event: Event, ctx: Context, ingested: str) -> Doc:
    """The document for a container lifecycle event."""
    body = _base(source, event.ts, ctx, ingested)
    body["event"].update(kind="event", action=event.action)
    text = f"container {source.container_name} {event.action}"
    if event.exit_code is not None:
        body["process"] = {"exit_code": event.exit_code}
        text += f" (exit code {event.exit_code})"
    if event.detail:
        body["event"]["reason"] = event.detail
        text += f": {event.detail}"
    body["message"] = text
    dataset, namespace = route(source, ctx)
    _id = doc_id(source.host, source.container_id, "event", event.ts, event.action)
    return Doc(_id, data_stream_name(dataset, namespace), body)


def gap_document(source: Source, gap: Gap, ctx: Context, ingested: str) -> Doc:
    """The document that says lines were lost, and which."""
    body = _base(source, gap.to_ts, ctx, ingested)
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
    body["tags"] = ["gap"]
    dataset, namespace = route(source, ctx)
    _id = doc_id(source.host, source.container_id, gap.stream, "gap", gap.from_ts, gap.to_ts)
    return Doc(_id, data_stream_name(dataset, namespace), body)
