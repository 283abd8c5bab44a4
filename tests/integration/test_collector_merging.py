"""Small batches posted at once share `_bulk` requests on a real node, and each batch is
still answered for its own lines: indexed, or dead-lettered when the node refuses one.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from elasticsearch import Elasticsearch

from collector.shape import nested
from collector.templates import DEADLETTER_STREAM
from collector.wire import NDJSON, PATH_LOGS
from tests.conftest import (
    ES_URL,
    REFUSED_FIELD,
    REFUSED_KEY,
    Process,
    refusing_template,
    wait_until,
)
from tests.integration.test_collector_outages import collector, metric

pytestmark = pytest.mark.integration
__all__ = ["collector"]  # the fixture, shared with the outage tests

BATCHES = 6
LINES = 5


def small_batch(host: str, refused: bool) -> bytes:
    """LINES lines of one container on `host`; the last one with a value the node refuses
    (the streams' template is `refusing_template`'s) if `refused`."""
    source = {
        "kind": "source",
        "src": 0,
        "host": host,
        "container_id": uuid.uuid4().hex * 2,
        "container_name": "merge",
        "image": "busybox",
    }
    ts = time.time_ns()
    lines = [json.dumps(source)]
    for i in range(LINES):
        message = f"line {i} of {host}"
        if refused and i == LINES - 1:
            message = json.dumps({"msg": "refused", REFUSED_KEY: "app"})
        log = {"kind": "log", "src": 0, "stream": "stdout", "ts": ts + i, "message": message}
        lines.append(json.dumps(log))
    return "\n".join(lines).encode()


async def post_all(url: str, token: str, bodies: list[bytes]) -> list[dict[str, Any]]:
    """POST every body at once; the answers in order."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": NDJSON}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def post(body: bytes) -> dict[str, Any]:
            async with session.post(url + PATH_LOGS, data=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                return dict(await resp.json())

        return list(await asyncio.gather(*(post(b) for b in bodies)))


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_small_batches_share_requests_and_keep_their_own_answers(
    es: Elasticsearch,
    template: None,
    collector: Callable[..., tuple[Process, str]],
    compression: str,
) -> None:
    """Also with `_bulk` bodies gzipped (LOGPIPE_ES_COMPRESSION): the node inflates them,
    and its answers are read item by item as ever."""
    token = uuid.uuid4().hex
    # A long wait, so that the six meet however slowly they come in.
    run = uuid.uuid4().hex[:8]
    dataset = f"merge.{run}"
    refusing_template(es, dataset)
    _, url = collector(
        ES_URL,
        token,
        ready=True,
        bulk_merge_wait="1",
        es_compression=compression,
        routing__dataset=dataset,
    )
    hosts = [f"merge-{run}-{i}" for i in range(BATCHES)]
    bodies = [small_batch(host, refused=i == 2) for i, host in enumerate(hosts)]

    answers = asyncio.run(post_all(url, token, bodies))

    for i, answer in enumerate(answers):
        expected = {"received": LINES + 1, "indexed": LINES, "duplicates": 0, "dead_lettered": 0}
        if i == 2:
            expected |= {"indexed": LINES - 1, "dead_lettered": 1}
        assert answer == expected, f"batch {i}"
    assert metric(url, "logpipe_collector_bulk_merged_total") >= 2, "no batches were merged"
    assert metric(url, "logpipe_collector_bulk_seconds_count") < BATCHES + 1

    def counts() -> list[int] | None:
        es.indices.refresh(index="logs-*")
        found = [
            es.count(index="logs-*", query={"term": {"host.name": host}})["count"] for host in hosts
        ]
        return found if sum(found) == BATCHES * LINES else None

    # The refused line is in the dead-letter stream (also logs-*), the rest where they go.
    assert wait_until(counts, 30) == [LINES] * BATCHES
    dead = es.search(index=DEADLETTER_STREAM, query={"term": {"host.name": hosts[2]}})
    [hit] = dead["hits"]["hits"]
    assert (
        f"failed to parse field [{REFUSED_FIELD}] of type [long]"
        in nested(hit["_source"])["error"]["message"]
    )


def test_lines_refused_by_a_write_block_wait_for_it_to_lift(
    es: Elasticsearch, template: None, collector: Callable[..., tuple[Process, str]]
) -> None:
    """A stream whose write index an operator blocks (`index.blocks.write`): the batch is
    answered once the block is lifted, every line in its stream, none dead-lettered."""
    token = uuid.uuid4().hex
    _, url = collector(ES_URL, token, ready=True, es_retry_seconds="60")
    run = uuid.uuid4().hex[:8]
    [first] = asyncio.run(post_all(url, token, [small_batch(f"block-{run}-0", refused=False)]))
    assert first["indexed"] == LINES
    es.indices.refresh(index="logs-*")  # a count sees only what a refresh wrote
    [write_index] = [
        name
        for name in es.indices.get(index="logs-*", expand_wildcards="open,hidden").body
        if es.count(index=name, query={"term": {"host.name": f"block-{run}-0"}})["count"]
    ]
    es.indices.put_settings(index=write_index, settings={"index.blocks.write": True})
    try:

        async def blocked_then_lifted() -> dict[str, Any]:
            posted = asyncio.ensure_future(
                post_all(url, token, [small_batch(f"block-{run}-1", refused=False)])
            )
            await asyncio.sleep(3)
            assert not posted.done(), "answered while the stream was blocked"
            await asyncio.to_thread(
                es.indices.put_settings, index=write_index, settings={"index.blocks.write": None}
            )
            [answer] = await posted
            return answer

        answer = asyncio.run(blocked_then_lifted())
    finally:
        es.indices.put_settings(index=write_index, settings={"index.blocks.write": None})
    assert answer == {"received": LINES + 1, "indexed": LINES, "duplicates": 0, "dead_lettered": 0}
    es.indices.refresh(index=f"{write_index},{DEADLETTER_STREAM}")
    assert (
        es.count(index=write_index, query={"term": {"host.name": f"block-{run}-1"}})["count"]
        == LINES
    )
    dead = es.count(index=DEADLETTER_STREAM, query={"term": {"host.name": f"block-{run}-1"}})
    assert dead["count"] == 0
