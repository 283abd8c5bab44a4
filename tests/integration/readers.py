"""Real collector processes with the read API on, and wire batches written to them.

Each test gets its own host name (and so its own documents): every read filters on it,
so tests run beside each other on the same node.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from elasticsearch import Elasticsearch

from tests.conftest import ES_URL, Process, free_port, wait_until

INGEST = "ingest-" + uuid.uuid4().hex
READ = "read-" + uuid.uuid4().hex


@dataclass
class Collector:
    """A collector process and where it listens."""

    process: Process
    port: int

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Source:
    """One container of one test host, writing wire batches."""

    host: str = field(default_factory=lambda: "rh-" + uuid.uuid4().hex[:10])
    name: str = "api-1"
    service: str = "api"
    container_id: str = field(default_factory=lambda: uuid.uuid4().hex * 2)

    def line(self) -> bytes:
        """The `source` line introducing this container."""
        labels = {"com.docker.compose.service": self.service}
        return orjson.dumps(
            {
                "kind": "source",
                "src": 0,
                "host": self.host,
                "container_id": self.container_id,
                "container_name": self.name,
                "image": "busybox:latest",
                "labels": labels,
            }
        )

    def batch(self, *logs: tuple[str, int], stream: str = "stdout") -> bytes:
        """A body with this source and `(message, ts)` log lines."""
        lines = [self.line()]
        for message, ts in logs:
            entry = {"kind": "log", "src": 0, "stream": stream, "ts": ts, "seq": 0}
            lines.append(orjson.dumps(entry | {"message": message}))
        return b"\n".join(lines) + b"\n"


def indexed(es: Elasticsearch, host: str, n: int) -> None:
    """Wait until `n` documents of `host` are searchable."""

    def count() -> bool:
        es.indices.refresh(index="logs-*")
        return int(es.count(index="logs-*", query={"term": {"host.name": host}})["count"]) >= n

    wait_until(count, 30)


def request(
    url: str, token: str | None = READ, data: bytes | None = None, timeout: float = 30
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET (or a POST with `data`)."""
    req = urllib.request.Request(url, data=data)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/x-ndjson")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except (urllib.error.URLError, ConnectionError) as exc:
        return 0, {}, str(exc).encode()


def post(collector: Collector, body: bytes, token: str = INGEST) -> int:
    """POST a batch to `collector`; its status."""
    return request(f"{collector.url}/v1/logs", token, body)[0]


def post_batch(url: str, token: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST a wire batch to the collector at `url`, as any sender would: the status and
    the JSON answer (the text as `error` when it is not JSON)."""
    status, _, answer = request(f"{url}/v1/logs", token, body, timeout=120)
    try:
        return status, orjson.loads(answer)
    except orjson.JSONDecodeError:
        return status, {"error": answer.decode(errors="replace")}


def ndjson(body: bytes) -> list[dict[str, Any]]:
    """The documents of an NDJSON answer."""
    return [orjson.loads(line) for line in body.splitlines() if line]


def start_collector(tmp: Path, es_url: str = ES_URL, **settings: str) -> Collector:
    """A collector process with both kinds of token, waited for until ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
    env |= {
        "LOGPIPE_ES_URL": es_url,
        "LOGPIPE_LISTEN": f"127.0.0.1:{port}",
        "LOGPIPE_TOKENS": INGEST,
        "LOGPIPE_READ_TOKENS": READ,
        "LOGPIPE_ROUTING__DATASET": "readtest",
        "LOGPIPE_READ_TAIL_HEARTBEAT": "1",
    }
    env |= {f"LOGPIPE_{k.upper()}": v for k, v in settings.items()}
    tmp.mkdir(parents=True, exist_ok=True)
    process = Process("collector", [sys.executable, "-m", "collector", "serve"], env, tmp / "log")
    process.start()
    collector = Collector(process, port)
    wait_until(lambda: request(f"{collector.url}/healthz", None)[0] == 200, 30)
    return collector


@pytest.fixture
def collectors(template: None, tmp_path: Path) -> Iterator[Callable[..., Collector]]:
    """Start collector processes on the test node; stopped after the test."""
    started: list[Collector] = []

    def start(es_url: str = ES_URL, ready: bool = True, **settings: str) -> Collector:
        collector = start_collector(tmp_path / f"c{len(started)}", es_url, **settings)
        started.append(collector)
        if ready:
            wait_until(lambda: request(f"{collector.url}/readyz", None)[0] == 200, 30)
        return collector

    yield start
    for collector in started:
        collector.process.stop()
