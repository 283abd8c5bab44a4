"""Dead-letter documents: what stands in for a record that cannot be indexed as it is.

Three kinds reach ``logs-logpipe.deadletter-default``: wire lines the collector could not
read (malformed JSON, off-schema), documents Elasticsearch refused (a mapping error and
other non-retryable 4xx), and lines whose ``_id`` an earlier line of their batch has with
another text (a sender that numbers the lines of one timestamp alike). Each keeps the
reason (``error.message``) and the original line (``event.original``), so nothing is
ever dropped silently; a dead-lettered record counts as delivered. Each says who sent
it, as far as the collector knows: the container's ``container.*``, ``service.*`` and
``host.name`` as its documents hold them, and for a wire line the address the request
came from (``source.ip``). Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import orjson

from collector.enrich import Doc
from collector.ids import doc_id
from collector.templates import DEADLETTER_STREAM

DATASET = "logpipe.deadletter"
_DATA_STREAM = {"type": "logs", "dataset": DATASET, "namespace": "default"}
# Fields copied from a refused document: ours, so they fit the mappings.
_IDENTITY = ("container", "host", "service", "stream")
# A dead letter must never be the next thing refused: big texts are cut (and tagged so).
MESSAGE_CHARS = 32 * 1024
ORIGINAL_CHARS = 1024 * 1024


def _cut(text: str, limit: int, tags: list[str]) -> str:
    if len(text) <= limit:
        return text
    if "truncated" not in tags:
        tags.append("truncated")
    return text[:limit]


def lenient_json(value: object) -> str:
    """JSON text of `value`, even where orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=str, ensure_ascii=False)


class Sender(NamedTuple):
    """Who sent a wire line, as far as the collector knows."""

    host: str | None = None  # the shipper's Docker host
    # The container the line names and its service, as the container's documents hold them.
    container: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    address: str | None = None  # where the request came from (a load balancer, behind one)


NOBODY = Sender()


def unreadable_line(
    raw: bytes, number: int, reason: str, ingested: str, sender: Sender = NOBODY
) -> Doc:
    """The dead-letter document for wire line `number`, which could not be read.

    Its `_id` comes from the line and the host and container that sent it: the same
    batch sent again stores it once, the same bad line from another sender is its own.
    """
    text = raw.decode("utf-8", "replace")
    tags = ["dead_letter"]
    original = _cut(text, ORIGINAL_CHARS, tags)
    body: dict[str, Any] = {
        "@timestamp": ingested,
        "message": _cut(text, MESSAGE_CHARS, tags),
        "error": {"type": "invalid_wire_line", "message": f"line {number}: {reason}"},
        "event": {"dataset": DATASET, "ingested": ingested, "original": original},
        "data_stream": _DATA_STREAM,
        "tags": tags,
    }
    parts = ["invalid_wire_line"]
    if sender.host is not None:
        body["host"] = {"name": sender.host}
        parts.append(sender.host)
    if sender.container is not None:
        body["container"] = sender.container
        parts.append(str(sender.container.get("id")))
    if sender.service is not None:
        body["service"] = sender.service
    if sender.address is not None:
        body["source"] = {"ip": sender.address}
    return Doc(doc_id(*parts, text), DEADLETTER_STREAM, body, original)


def refused(doc: Doc, reason: str) -> Doc:
    """The dead-letter document for `doc`, which Elasticsearch refused for `reason`."""
    body = _refused_body(doc, reason, doc.body.get("@timestamp") or _ingested(doc))
    for key in _IDENTITY:
        if key in doc.body:
            body[key] = doc.body[key]
    return Doc(doc.id, DEADLETTER_STREAM, body, doc.original)


def same_id(doc: Doc) -> Doc:
    """The dead-letter document for `doc`, whose `_id` an earlier line of its batch has
    with another text: indexed, it would be taken for that line sent again."""
    reason = (
        "another line of the batch has the same host, container, stream, ts and seq (and "
        "so the same _id) with another text: seq must number the lines of a stream that "
        "share a ts"
    )
    letter = refused(doc, reason)
    letter.body["error"]["type"] = "duplicate_id"
    letter.body["event"]["reason"] = f"_id of another line of the batch (for {doc.stream})"
    return Doc(doc_id("duplicate_id", doc.id, doc.original or ""), DEADLETTER_STREAM, letter.body)


def bare(doc: Doc, reason: str) -> Doc:
    """A plainer stand-in for `doc`, for when even :func:`refused`'s was refused.

    Only fields the collector makes itself, stamped with the time it received the record.
    """
    return Doc(doc.id, DEADLETTER_STREAM, _refused_body(doc, reason, _ingested(doc)))


def _refused_body(doc: Doc, reason: str, timestamp: object) -> dict[str, Any]:
    tags = ["dead_letter"]
    document = _cut(lenient_json(doc.body), ORIGINAL_CHARS, tags)
    # The line as the container printed it; the document we built, if there is none.
    original = _cut(doc.original, ORIGINAL_CHARS, tags) if doc.original is not None else document
    return {
        "@timestamp": timestamp,
        "message": _cut(str(doc.body.get("message", "")), ORIGINAL_CHARS, tags),
        "error": {"type": "rejected_by_elasticsearch", "message": reason[:4096]},
        "event": {
            "dataset": DATASET,
            "ingested": _ingested(doc),
            "original": original,
            "reason": f"refused by {doc.stream}",
        },
        # Mapped as nothing searchable (templates._UNMAPPED): in _source for a person to read.
        "logpipe": {"refused": {"index": doc.stream, "document": document}},
        "data_stream": _DATA_STREAM,
        "tags": tags,
    }


def _ingested(doc: Doc) -> str:
    """When the collector received the record (every document it builds says so)."""
    event = doc.body.get("event")
    ingested = event.get("ingested") if isinstance(event, dict) else None
    # Only a document built elsewhere lacks it; the epoch still sorts and still indexes.
    return ingested if isinstance(ingested, str) else "1970-01-01T00:00:00Z"
