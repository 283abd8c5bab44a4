"""Turn a request body (NDJSON wire lines) into documents. Pure: no I/O.

A line that is not valid JSON, or off-schema, or refers to an unknown source, becomes a
:class:`~collector.wire.LineError` and a dead-letter document holding the raw line, so
the good lines of the same batch are never lost and the bad ones never vanish.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from collector.enrich import Context, Doc, doc_id, event_document, gap_document, log_document
from collector.parse import parse
from collector.templates import DEADLETTER_STREAM
from collector.wire import LINE, Event, Gap, LineError, Log, Source


@dataclass(slots=True)
class Decoded:
    """Documents and per-line errors of one batch."""

    docs: list[Doc] = field(default_factory=list)
    dead_letters: list[Doc] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    received: int = 0


def describe(exc: ValidationError) -> str:
    """The first problem of a validation error, naming the field."""
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "json_invalid":
        return f"not valid JSON: {err['msg']}"
    return f"field '{where}': {err['msg']}" if where else err["msg"]


def _validate(raw: bytes) -> tuple[Source | Log | Event | Gap, bool]:
    """Validate one line; invalid UTF-8 is replaced (and reported) instead of refused."""
    try:
        return LINE.validate_json(raw), False
    except ValidationError:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            fixed = raw.decode("utf-8", "replace").encode("utf-8")
            return LINE.validate_json(fixed), True
        raise


def bad_line_document(raw: bytes, number: int, reason: str, ingested: str) -> Doc:
    """A dead-letter document for a line the collector could not read."""
    text = raw.decode("utf-8", "replace")
    body = {
        "@timestamp": ingested,
        "message": text[:32768],
        "error": {"type": "invalid_wire_line", "message": f"line {number}: {reason}"},
        "event": {"dataset": "logpipe.deadletter", "ingested": ingested},
        "data_stream": {"type": "logs", "dataset": "logpipe.deadletter", "namespace": "default"},
        "tags": ["dead_letter"],
    }
    return Doc(doc_id("invalid_wire_line", text), DEADLETTER_STREAM, body)


def decode(body: bytes, ctx: Context, ingested: str, keep_original: bool = False) -> Decoded:
    """Validate, parse and enrich every line of `body`."""
    out = Decoded()
    sources: dict[int, Source] = {}
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        out.received += 1
        try:
            line, bad_utf8 = _validate(raw)
        except ValidationError as exc:
            _reject(out, raw, number, describe(exc), ingested)
            continue
        if isinstance(line, Source):
            sources[line.src] = line
            continue
        source = sources.get(line.src)
        if source is None:
            _reject(out, raw, number, f"src {line.src} not declared by an earlier line", ingested)
            continue
        out.docs.append(_document(source, line, ctx, ingested, keep_original, bad_utf8))
    return out


def _reject(out: Decoded, raw: bytes, number: int, reason: str, ingested: str) -> None:
    out.errors.append(LineError(line=number, error=reason))
    out.dead_letters.append(bad_line_document(raw, number, reason, ingested))


def _document(
    source: Source,
    line: Log | Event | Gap,
    ctx: Context,
    ingested: str,
    keep_original: bool,
    bad_utf8: bool,
) -> Doc:
    if isinstance(line, Log):
        parsed = parse(line.message, source.hints.parser, keep_original)
        if bad_utf8:
            parsed.flags.append("invalid_utf8")
        return log_document(source, line, parsed, ctx, ingested)
    if isinstance(line, Event):
        return event_document(source, line, ctx, ingested)
    return gap_document(source, line, ctx, ingested)
