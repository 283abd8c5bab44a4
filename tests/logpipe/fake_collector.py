"""A scripted stand-in for the collector's read API, for edge cases a real one won't show
on demand: a connection dropped in the middle of an event, exact error answers.

Each request is answered by the next `Reply` of the script (the last one repeats), over
real HTTP/1.1 with chunked bodies, as aiohttp sends them (or the chunks as they are,
where a reply sets its own Content-Length); what each request asked for is kept in
`requests`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    """One scripted answer: status, headers, body pieces; `drop` cuts it off unfinished."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[str] = field(default_factory=list)
    drop: bool = False
    hold: float = 0.0  # seconds to keep the connection open after the chunks


@dataclass
class Request:
    """What the command line sent."""

    path: str
    params: list[tuple[str, str]]
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        """A query parameter's value, if sent."""
        return dict(self.params).get(name)


@dataclass
class Script:
    """The replies to give, in order, and the requests received."""

    replies: list[Reply]
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def next_reply(self) -> Reply:
        """The reply for the next request."""
        index = min(len(self.requests) - 1, len(self.replies) - 1)
        return self.replies[index]


def line_event(doc: dict[str, Any], event_id: str) -> str:
    """A `line` event as the collector sends it."""
    return f"id: {event_id}\nevent: line\ndata: {json.dumps(doc)}\n\n"


def doc(message: str, service: str = "api", host: str = "h1", **more: Any) -> dict[str, Any]:
    """A document shaped like the indexed ones."""
    body: dict[str, Any] = {
        "@timestamp": "2026-12-02T10:00:00.000000001Z",
        "message": message,
        "host": {"name": host},
        "service": {"name": service},
        "stream": "stdout",
    }
    return body | more


def error(status: int, message: str, **headers: str) -> Reply:
    """An error answer with the collector's JSON body."""
    body = json.dumps({"error": message})
    return Reply(status, {"Content-Type": "application/json", **headers}, [body])


class Handler(BaseHTTPRequestHandler):
    """Answers each GET with the script's next reply."""

    protocol_version = "HTTP/1.1"
    script: Script

    def do_GET(self) -> None:
        """Record the request, then send the scripted reply."""
        parts = urlsplit(self.path)
        self.script.requests.append(
            Request(parts.path, parse_qsl(parts.query), dict(self.headers.items()))
        )
        reply = self.script.next_reply()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        chunked = "Content-Length" not in reply.headers  # else the chunks as they are
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in reply.chunks:
            data = chunk.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
            self.wfile.flush()
        time.sleep(reply.hold)
        if reply.drop:
            self.close_connection = True
            return
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def fake_collector(*replies: Reply) -> Iterator[Script]:
    """A running fake collector answering with `replies`; its URL is `script.url`."""
    script = Script(list(replies))
    handler = type("ScriptedHandler", (Handler,), {"script": script})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
