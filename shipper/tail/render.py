"""Lines as a ``/logs`` client reads them. Pure.

``plain``: ``name | line``, one a line, the line's bytes as the container wrote them
(as logspout's ``/logs``). ``ndjson``: one JSON object a line with ``time`` (Docker's
timestamp, RFC 3339 UTC with nanoseconds), ``id``, ``name``, ``image``, ``stream`` and
``line`` (invalid UTF-8 replaced), plus ``truncated: true`` for a line cut at
``LOGPIPE_MAX_LINE_BYTES``. Lines a client missed are said in the stream, after the
lines that came before them: ``logpipe: N lines missed`` or ``{"missed": N}``.
"""

from __future__ import annotations

import time

import orjson

from shipper.record import LogRecord
from shipper.tail.query import Format

CONTENT_TYPES: dict[Format, str] = {
    "plain": "text/plain; charset=utf-8",
    "ndjson": "application/x-ndjson",
}


def rfc3339(ns: int) -> str:
    """A timestamp in nanoseconds as RFC 3339 UTC with nine fractional digits."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def plain(lines: list[LogRecord], missed: int) -> bytes:
    """``name | line`` a line, then the missed notice if any."""
    out = [b"%s | %s\n" % (r.meta.name.encode(), r.data) for r in lines]
    if missed:
        out.append(b"logpipe: %d lines missed\n" % missed)
    return b"".join(out)


def ndjson(lines: list[LogRecord], missed: int) -> bytes:
    """One JSON object a line, then ``{"missed": N}`` if any."""
    out = []
    for r in lines:
        meta = r.meta
        doc: dict[str, object] = {
            "time": rfc3339(r.ts),
            "id": meta.id,
            "name": meta.name,
            "image": meta.image,
            "stream": r.stream,
            "line": r.data.decode("utf-8", "replace"),
        }
        if r.truncated:
            doc["truncated"] = True
        out.append(orjson.dumps(doc))
    if missed:
        out.append(orjson.dumps({"missed": missed}))
    out.append(b"")
    return b"\n".join(out) if len(out) > 1 else b""


RENDER = {"plain": plain, "ndjson": ndjson}
