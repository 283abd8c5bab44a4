"""Lines of any length, posted by a sender that cuts nothing, on a real collector and node.

A line past the collector's LOGPIPE_MAX_LINE_BYTES (4 MiB unless set lower) is indexed cut
there and tagged truncated, as the shipper's own lines are, never dead-lettered; that
includes lines too large for the node ever to index whole (over its indexing-pressure
limit, which it answers 429 for each item of their shard, or over
http.max_content_length, 413 for any request holding them), which were dead-lettered with
only their first MiB kept before. Lines within the limit are indexed as they came: a
single 40 KiB token, a JSON line with one huge field.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from collector.shape import nested
from collector.wire import MAX_LINE_BYTES
from tests.conftest import ES_URL, Process, wait_until
from tests.integration.readers import post_batch
from tests.integration.test_collector_outages import collector

pytestmark = pytest.mark.integration
__all__ = ["collector"]  # the fixture, shared with the outage tests

MiB = 1024 * 1024
# Elasticsearch's default http.max_content_length: a _bulk request past it is a 413.
MAX_CONTENT = 100 * MiB


def pressure_limit(es: Elasticsearch) -> int:
    """The smallest indexing-pressure limit (bytes) of the node(s)."""
    stats = es.nodes.stats(metric="indexing_pressure")["nodes"]
    return min(int(n["indexing_pressure"]["memory"]["limit_in_bytes"]) for n in stats.values())


def batch(host: str, messages: list[str]) -> bytes:
    """A source line, a short line, a log line of each of `messages`, another short line."""
    source = {
        "kind": "source",
        "src": 0,
        "host": host,
        "container_id": uuid.uuid4().hex * 2,
        "container_name": "bigline",
        "image": "busybox",
    }
    ts = time.time_ns()
    lines = [json.dumps(source)]
    for i, message in enumerate(["before", *messages, "after"]):
        log = {"kind": "log", "src": 0, "stream": "stdout", "ts": ts + i, "message": message}
        lines.append(json.dumps(log, ensure_ascii=False))
    return "\n".join(lines).encode()


def deliver(
    es: Elasticsearch,
    collector: Callable[..., tuple[Process, str]],
    messages: list[str],
    **settings: str,
) -> list[dict[str, Any]]:
    """Post `messages` between two short lines to a collector of its own (with
    `settings`); check the answer (200, every line indexed, none dead-lettered) and
    return the documents of `messages`, in order."""
    token = uuid.uuid4().hex
    run = uuid.uuid4().hex[:8]
    body = batch(f"bigline-{run}", messages)
    room = {"max_body_bytes": str(len(body) + MiB), "body_buffer_bytes": str(2 * len(body) + MiB)}
    _, url = collector(
        ES_URL,
        token,
        ready=True,
        es_retry_seconds="20",
        routing__dataset=f"bigline.{run}",
        **room,
        **settings,
    )
    status, answer = post_batch(url, token, body)
    assert status == 200, answer
    n = len(messages) + 2
    assert answer == {"received": n + 1, "indexed": n, "duplicates": 0, "dead_lettered": 0}
    docs = found(es, f"bigline-{run}", n)
    assert [d["message"] for d in (docs[0], docs[-1])] == ["before", "after"]
    assert not any("dead_letter" in d.get("tags", []) for d in docs)
    return docs[1:-1]


def found(es: Elasticsearch, host: str, count: int) -> list[dict[str, Any]]:
    """The `count` documents of `host`, dead letters too, in time order."""

    def search() -> list[dict[str, Any]] | None:
        es.indices.refresh(index="logs-*")
        hits = es.search(
            index="logs-*",
            query={"term": {"host.name": host}},
            sort=[{"@timestamp": "asc"}],
            size=count + 1,
        )
        docs = [nested(h["_source"]) for h in hits["hits"]["hits"]]
        return docs if len(docs) == count else None

    return list(wait_until(search, 60))


def test_a_line_over_the_indexing_pressure_limit_is_indexed_cut_not_dead_lettered(
    es: Elasticsearch, collector: Callable[..., tuple[Process, str]], template: None
) -> None:
    """A line whose document would be over the node's indexing-pressure limit on its own
    (before: 429 es_rejected_execution_exception for it, then a dead letter keeping its
    first MiB) is indexed cut at 4 MiB, tagged truncated; the lines beside it as sent."""
    # The node counts a document several times its size against the limit: half of the
    # limit is over it, whatever the heap, as long as the request stays under 413's bound.
    big = pressure_limit(es) // 2
    if big > MAX_CONTENT * 0.9:
        pytest.skip("this node's indexing-pressure limit is past what one request can carry")
    [doc] = deliver(es, collector, ["x" * big])
    assert doc["message"] == "x" * MAX_LINE_BYTES
    assert doc["tags"] == ["truncated"]


def test_a_line_over_http_max_content_length_is_indexed_cut_not_dead_lettered(
    es: Elasticsearch, collector: Callable[..., tuple[Process, str]], template: None
) -> None:
    """A line longer than any request the node takes (before: 413, then a dead letter) is
    indexed cut at 4 MiB, tagged truncated."""
    [doc] = deliver(es, collector, ["w" * (MAX_CONTENT + MiB)])
    assert doc["message"] == "w" * MAX_LINE_BYTES
    assert doc["tags"] == ["truncated"]


def test_lines_within_the_limit_are_indexed_as_sent(
    es: Elasticsearch, collector: Callable[..., tuple[Process, str]], template: None
) -> None:
    """Under the default limit a 3 MiB line, a single 40 KiB token and a JSON line with a
    3 MiB field are indexed whole, untagged: the token is searchable by its first 255
    characters (the standard analyzer's longest token), the huge field kept in _source
    (`attributes` indexes values up to 1024 characters)."""
    words = ("lorem ipsum " * (3 * MiB // 12 + 1))[: 3 * MiB]
    token = "k" * (40 * 1024)
    blob = json.dumps({"msg": "small", "level": "info", "blob": "y" * (3 * MiB)})
    plain, single, structured = deliver(es, collector, [words, token, blob])
    assert (plain["message"], single["message"]) == (words, token)
    assert (structured["message"], structured["attributes"]) == ("small", {"blob": "y" * (3 * MiB)})
    for doc in (plain, single, structured):
        assert "tags" not in doc
    host = {"term": {"host.name": plain["host"]["name"]}}
    hits = es.search(
        index="logs-*",
        query={"bool": {"filter": [host], "must": [{"match": {"message": "k" * 255}}]}},
    )
    assert hits["hits"]["total"]["value"] == 1


def test_a_lower_limit_cuts_as_the_shipper_does(
    es: Elasticsearch, collector: Callable[..., tuple[Process, str]], template: None
) -> None:
    """With LOGPIPE_MAX_LINE_BYTES=1048576 (the shipper's default) a 3 MiB line, a line of
    2-byte characters with the limit inside one, and a huge JSON line are indexed cut to
    their first MiB or less, no half character, tagged truncated; the JSON line is indexed
    as the text it became, as a shipper's cut JSON line is."""
    words = ("lorem ipsum " * (3 * MiB // 12 + 1))[: 3 * MiB]
    accents = "a" + "é" * MiB
    blob = json.dumps({"msg": "small", "blob": "y" * (3 * MiB)})
    plain, accented, structured = deliver(
        es, collector, [words, accents, blob], max_line_bytes=str(MiB)
    )
    assert plain["message"] == words[:MiB]
    assert accented["message"] == "a" + "é" * (MiB // 2 - 1)
    assert structured["message"] == blob[:MiB]
    assert structured["logpipe"]["parser"] == "plain"
    for doc in (plain, accented, structured):
        assert "truncated" in doc["tags"]


def test_a_line_of_control_characters_at_the_limit_is_answered_whatever_the_heap(
    es: Elasticsearch, collector: Callable[..., tuple[Process, str]], template: None
) -> None:
    """A 4 MiB line of control characters (24 MiB once escaped) is indexed where the node
    takes it and dead-lettered where it never can: on a 1 GiB heap the node counts its
    request's bytes and its primary operation's (four times the document) together, over
    the limit on an idle node too (before: the batch was retried as for a busy node, and
    answered 429, for ever). The lines beside it are indexed either way."""
    bell = "\a" * MAX_LINE_BYTES
    token = uuid.uuid4().hex
    run = uuid.uuid4().hex[:8]
    body = batch(f"bigline-{run}", [bell])
    room = {"max_body_bytes": str(len(body) + MiB), "body_buffer_bytes": str(2 * len(body) + MiB)}
    _, url = collector(
        ES_URL, token, ready=True, es_retry_seconds="20", routing__dataset=f"bigline.{run}", **room
    )
    status, answer = post_batch(url, token, body)
    assert status == 200, answer
    assert answer["received"] == 4
    assert answer["indexed"] + answer["dead_lettered"] == 3
    assert answer["indexed"] >= 2
    docs = found(es, f"bigline-{run}", 3)
    assert [d["message"] for d in (docs[0], docs[-1])] == ["before", "after"]
    bells = docs[1]
    if answer["dead_lettered"]:
        assert bells["tags"] == ["dead_letter", "truncated"]
        assert "over the node's limit" in bells["error"]["message"]
    else:
        assert bells["message"] == bell
