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


def plain(lines: list[LogRecord], missed: int) -> bytes:
    """``name | line`` a line, then the missed notice if any."""
    prefixes: dict[int, bytes] = {}  # id(meta): b"name | ", the metas live through the call
    out: list[bytes] = []
    for r in lines:
        prefix = prefixes.get(id(r.meta))
        if prefix is None:
            prefix = prefixes[id(r.meta)] = r.meta.name.encode() + b" | "
        out += (prefix, r.data, b"\n")
    if missed:
        out.append(b"logpipe: %d lines missed\n" % missed)
    return b"".join(out)


def ndjson(lines: list[LogRecord], missed: int) -> bytes:
    """One JSON object a line, then ``{"missed": N}`` if any.

    The container's part of an object is encoded once per container and call, the
    timestamp's date and time once per second: per line only the line itself is."""
    heads: dict[int, bytes] = {}  # id(meta): b'"id":...,"name":...,"image":...'
    second, stamp = -1, b""
    out: list[bytes] = []
    for r in lines:
        head = heads.get(id(r.meta))
        if head is None:
            meta = r.meta
            head = orjson.dumps({"id": meta.id, "name": meta.name, "image": meta.image})[1:-1]
            heads[id(meta)] = head
        secs, frac = divmod(r.ts, 1_000_000_000)
        if secs != second:
            second, stamp = secs, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)).encode()
        line = orjson.dumps(r.data.decode("utf-8", "replace"))
        tail = b',"truncated":true}\n' if r.truncated else b"}\n"
        out.append(
            b'{"time":"%s.%09dZ",%s,"stream":"%s","line":%s%s'
            % (stamp, frac, head, r.stream.encode(), line, tail)
        )
    if missed:
        out.append(b'{"missed":%d}\n' % missed)
    return b"".join(out)


RENDER = {"plain": plain, "ndjson": ndjson}
