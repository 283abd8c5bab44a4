"""What a tail sends: Server-Sent Events, as bytes. Pure.

A line is ``id: <cursor>`` + ``event: line`` + ``data: <document JSON>``; the JSON of a
document holds no raw newline (orjson escapes it), so one ``data:`` field carries it.
"""

from __future__ import annotations

import orjson

KEEPALIVE = b": keepalive\n\n"


def line_event(event_id: str, document: bytes) -> bytes:
    """One document, with the cursor that resumes just after it."""
    return b"id: " + event_id.encode("ascii") + b"\nevent: line\ndata: " + document + b"\n\n"


def missed_event(count: int) -> bytes:
    """`count` lines were skipped because the reader was too slow."""
    return b"event: missed\ndata: " + orjson.dumps({"missed": count}) + b"\n\n"


def closed_event(count: int, names: tuple[str, ...]) -> bytes:
    """`count` closed indices of the streams read, the first of them `names`, may hide
    lines: Elasticsearch skips a closed index."""
    return b"event: closed\ndata: " + orjson.dumps({"closed": count, "indices": names}) + b"\n\n"


def closed_unchecked_event(reason: str) -> bytes:
    """The closed indices could not be listed (`reason`, in a few words): the lines the
    tail starts with may lack those of a closed index, and nothing else would say so."""
    return b"event: closed_unchecked\ndata: " + orjson.dumps({"reason": reason}) + b"\n\n"


def position_event(event_id: str) -> bytes:
    """An event with only an id: where the tail stands once its starting lines are sent.
    A reader that got no line yet resumes from it (an SSE client keeps the id of an
    event without data too) and misses no line that arrives while it is away."""
    return b"id: " + event_id.encode("ascii") + b"\n\n"
