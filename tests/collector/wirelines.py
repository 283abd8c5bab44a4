"""Wire lines for collector tests, written as the shipper writes them (one JSON object each)."""

from __future__ import annotations

from typing import Any

import orjson

from collector.ids import log_id

HOST = "unit-host"
CONTAINER = "c" * 64


def source(src: int = 0, **extra: Any) -> bytes:
    """A `source` line for container CONTAINER on HOST."""
    line = {
        "kind": "source",
        "src": src,
        "host": HOST,
        "container_id": CONTAINER,
        "container_name": "web-1",
        "image": "busybox:latest",
        "labels": {"com.docker.compose.service": "web"},
    }
    return orjson.dumps(line | extra)


def log(message: str, ts: int, seq: int = 0, src: int = 0, **extra: Any) -> bytes:
    """A `log` line of stdout."""
    line = {"kind": "log", "src": src, "stream": "stdout", "ts": ts, "seq": seq, "message": message}
    return orjson.dumps(line | extra)


def log_doc_id(ts: int, seq: int = 0, stream: str = "stdout") -> str:
    """The `_id` the collector gives the log line (HOST, CONTAINER, stream, ts, seq)."""
    return log_id(HOST, CONTAINER, stream, ts, seq)


def body(*lines: bytes) -> bytes:
    """An NDJSON body."""
    return b"\n".join(lines) + b"\n"
