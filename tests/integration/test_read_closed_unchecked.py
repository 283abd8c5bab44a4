"""A collector whose Elasticsearch user may not list the closed indices (a role without
`view_index_metadata`): searches and tails are answered all the same, and `logpipe
search` and `logpipe tail` warn that they could not check for closed indices, and why.

The test node has no security to take a privilege away, so the collector reaches it
through a forwarding proxy that answers `_resolve/index` as Elasticsearch answers a
user without the privilege (403, security_exception); every other request goes to the
node as it is."""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from elasticsearch import Elasticsearch

from tests.conftest import ES_URL
from tests.integration.readers import READ, Collector, Source, collectors, indexed, post
from tests.integration.test_cli_tail import TailProcess
from tests.programs import ROOT, clean_env

# The read API searches every logpipe stream on the node: a stream another test creates
# meanwhile, its shard not yet started, fails part of the read (no_shard_available).
pytestmark = [pytest.mark.integration, pytest.mark.alone]
__all__ = ["collectors"]  # the fixture

HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}
DENIED = {
    "error": {
        "type": "security_exception",
        "reason": "action [indices:admin/resolve/index] is unauthorized for user [logpipe]",
    },
    "status": 403,
}
REASON = (
    "Elasticsearch refused to list them (HTTP 403): the collector's Elasticsearch user lacks "
    "the view_index_metadata privilege on logpipe's streams"
)


class Forward(BaseHTTPRequestHandler):
    """Sends each request on to the node, but refuses `_resolve/index`."""

    protocol_version = "HTTP/1.1"

    def forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.path.startswith("/_resolve/index/"):
            self.answer(403, {"Content-Type": "application/json"}, orjson.dumps(DENIED))
            return
        node = urlsplit(ES_URL)
        conn = http.client.HTTPConnection(node.hostname or "", node.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        kept = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP}
        self.answer(resp.status, kept, data)

    def answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "X-Elastic-Product" not in headers:
            self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            # The collector may stop while Elasticsearch answers one of its long reads.
            with contextlib.suppress(ConnectionError):
                self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def proxy() -> Iterator[str]:
    """The URL of a proxy to the test node that refuses to list indices."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_search_and_tail_say_they_could_not_check_for_closed_indices(
    collectors: Any, proxy: str, es: Elasticsearch, tmp_path: Path
) -> None:
    """The lines on stdout and the exit status as ever; one warning on stderr each."""
    collector: Collector = collectors(es_url=proxy)
    src = Source()
    t = time.time_ns() - 10 * 10**9
    assert post(collector, src.batch(("first", t), ("second", t + 1))) == 200
    indexed(es, src.host, 2)
    env = clean_env(
        LOGPIPE_URL=collector.url, LOGPIPE_READ_TOKEN=READ, XDG_CONFIG_HOME=str(tmp_path)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "logpipe", "search", "--host", src.host, "--since", "1h"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [line.split(" | ", 1)[1] for line in proc.stdout.splitlines()] == ["first", "second"]
    assert proc.stderr == (
        "logpipe: warning: lines may be missing: the search could not check for closed "
        f"indices, which Elasticsearch skips: {REASON}\n"
    )
    tail = TailProcess(tmp_path, collector.url, "--host", src.host, "-n", "5")
    try:
        assert tail.wait_lines(2) == ["first", "second"]
        assert tail.interrupt() == 130
    finally:
        tail.kill()
    assert tail.stderr() == (
        "logpipe: warning: lines may be missing: the tail could not check for closed "
        f"indices, which Elasticsearch skips: {REASON}\n"
    )
