"""One log document as the collector sends it: the JSON text, and the fields a line shows.

The collector sends each document's indexed ``_source`` (ECS fields, nested objects as
indexed: ``{"host": {"name": ...}}``) plus ``_id`` and ``_index``. Only the fields a
printed line needs are read; ``--json`` prints the text as it came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from logpipe.errors import CollectorError


@dataclass(frozen=True, slots=True)
class Document:
    """A log line's document: its JSON text and what a printed line shows of it."""

    text: str
    timestamp: str
    host: str
    service: str
    level: str
    message: str
    event: bool  # a container lifecycle event or a gap, not a log line


def parse_document(text: str) -> Document:
    """The document in one NDJSON line or SSE data field; a CollectorError if it is not one."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CollectorError(f"the collector sent a line that is not JSON: {exc}", 200) from exc
    if not isinstance(body, dict):
        raise CollectorError("the collector sent a JSON value that is not a document", 200)
    return Document(
        text=text,
        timestamp=field(body, "@timestamp"),
        host=field(body, "host.name"),
        service=field(body, "service.name") or field(body, "container.name"),
        level=field(body, "log.level").lower(),
        message=field(body, "message"),
        event=field(body, "event.kind") == "event",
    )


def field(body: dict[str, Any], path: str) -> str:
    """The text at a dotted path, nested (``host: {name}``) or flat (``"host.name"``)."""
    if path in body:
        return text_of(body[path])
    head, dot, rest = path.partition(".")
    inner = body.get(head)
    if dot and isinstance(inner, dict):
        return field(inner, rest)
    return ""


def text_of(value: object) -> str:
    """A field's value as text ('' for none); a list shows its items joined by commas."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(text_of(v) for v in value)
    return value if isinstance(value, str) else str(value)
