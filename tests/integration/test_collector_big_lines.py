"""A line too large for the node ever to index does not hold up the lines of its batch
on a real node: it is dead-lettered with the reason, the others are indexed. Too large is
over the node's indexing-pressure limit on its own (429 for each item of its shard), or
over http.max_content_length (413 for any request holding it).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from collector.shape import nested
from collector.wire import NDJSON, PATH_LOGS
from tests.conftest import ES_URL, Process, wait_until
from tests.integration.test_collector_outages import collector

pytestmark = pytest.mark.integration
__all__ = ["collector"]  # the fixture, shared with the outage tests

# Elasticsearch's default http.max_content_length: a _bulk request past it is a 413.
MAX_CONTENT = 100 * 1024 * 1024


def pressure_limit(es: Elasticsearch) -> int:
    """The smallest indexing-pressure limit (bytes) of the node(s)."""
    stats = es.nodes.stats(metric="indexing_pressure")["nodes"]
    return min(int(n["indexing_pressure"]["memory"]["limit_in_bytes"]) for n in stats.values())


def batch(host: str, big: int) -> bytes:
    """A source line, a short line, a line of `big` characters, and another short line."""
    source = {
        "kind": "source",
        "src": 0,
        "host": host,
        "container_id": uuid.uuid4().hex * 2,
        "container_name": "bigline",
        "image": "busybox",
    }
    ts = time.time_ns()
    messages = ["before", "x" * big, "after"]
    lines = [json.dumps(source)]
    for i, message in enumerate(messages):
        log = {"kind": "log", "src": 0, "stream": "stdout", "ts": ts + i, "message": message}
        lines.append(json.dumps(log))
    return "\n".join(lines).encode()


def post(url: str, token: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST one batch; the status and the answer."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": NDJSON}
    request = urllib.request.Request(url + PATH_LOGS, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode(errors="replace")}


def test_line_over_the_indexing_pressure_limit_is_dead_lettered_not_retried_forever(
    es: Elasticsearch, template: None, collector: Callable[..., tuple[Process, str]]
) -> None:
    """A line whose document is over the node's indexing-pressure limit on its own (each
    item of its shard answered 429 es_rejected_execution_exception) is dead-lettered with
    that reason and the first MiB of the line; the batch is answered 200 and the other
    lines are indexed, where before it was answered 429 and sent again forever."""
    # The node counts a document several times its size against the limit: half of the
    # limit is over it, whatever the heap, as long as the request stays under 413's bound.
    big = pressure_limit(es) // 2
    if big > MAX_CONTENT * 0.9:
        pytest.skip("this node's indexing-pressure limit is past what one request can carry")
    reason = deliver(es, collector, big)
    assert "over the node's limit: es_rejected_execution_exception" in reason, reason
    assert "operation_bytes=" in reason


def test_line_over_http_max_content_length_is_dead_lettered(
    es: Elasticsearch, template: None, collector: Callable[..., tuple[Process, str]]
) -> None:
    """A line whose document alone is over http.max_content_length (the node answers any
    request holding it 413, with no body) is dead-lettered; the other lines are indexed."""
    reason = deliver(es, collector, MAX_CONTENT + 1024 * 1024)
    assert reason.startswith("document of "), reason
    assert reason.endswith(" bytes is over the node's limit"), reason


def deliver(es: Elasticsearch, collector: Callable[..., tuple[Process, str]], big: int) -> str:
    """Post a batch with a line of `big` characters to a collector of its own; check what
    became of its lines and return the reason the big one was dead-lettered for."""
    token = uuid.uuid4().hex
    run = uuid.uuid4().hex[:8]
    settings = {"max_body_bytes": str(2 * big), "body_buffer_bytes": str(4 * big)}
    _, url = collector(
        ES_URL, token, es_retry_seconds="20", routing__dataset=f"bigline.{run}", **settings
    )
    host = f"bigline-{run}"
    return check(es, host, *post(url, token, batch(host, big)))


def check(es: Elasticsearch, host: str, status: int, answer: dict[str, Any]) -> str:
    """The batch answered 200, its short lines indexed, the big one dead-lettered with its
    first MiB: the reason it was."""
    assert status == 200, answer
    assert answer == {"received": 4, "indexed": 2, "duplicates": 0, "dead_lettered": 1}

    def found() -> list[dict[str, Any]] | None:
        es.indices.refresh(index="logs-*")
        hits = es.search(index="logs-*", query={"term": {"host.name": host}}, size=10)
        docs = [nested(h["_source"]) for h in hits["hits"]["hits"]]
        return docs if len(docs) == 3 else None

    docs = wait_until(found, 30)
    indexed = sorted(d["message"] for d in docs if "dead_letter" not in d.get("tags", []))
    assert indexed == ["after", "before"]
    [dead] = [d for d in docs if "dead_letter" in d.get("tags", [])]
    assert dead["message"] == "x" * 1024 * 1024
    assert "truncated" in dead["tags"]
    return str(dead["error"]["message"])
