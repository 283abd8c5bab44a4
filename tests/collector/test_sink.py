"""The bulk sink's classification and retries, against a scripted Elasticsearch.

These are edge-case unit tests: per-item 429s, exact 5xx/dropped-connection/timeout
sequences cannot be provoked on the shared node. The real client speaks real HTTP to
the fake; the real-node behaviour (mapping rejection, outages) is in tests/integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from elastic_transport import BaseAsyncNode
from elasticsearch import AsyncElasticsearch

from collector import metrics
from collector.bulk import chunks, encode
from collector.enrich import Doc
from collector.errors import RetryableSinkError, SetupError, SinkError
from collector.sink import Sink, SinkSettings, _url
from collector.templates import DEADLETTER_STREAM
from tests.collector.fake_es import HEADERS, Answer, each, fake_es, ok, whole
from tests.conftest import extra, free_port

FAST = SinkSettings(retry_deadline=5, backoff_initial=0.01, backoff_max=0.05, request_timeout=1)
STREAM = "logs-unit-default"


def docs(n: int, **extra: Any) -> list[Doc]:
    """`n` small documents for STREAM, ids d0..d(n-1)."""
    return [
        Doc(
            f"d{i}",
            STREAM,
            {
                "@timestamp": "2024-05-01T00:00:00.000000000Z",
                "message": f"line {i}",
                "event": {"ingested": "2024-05-01T00:00:01.000Z"},
                **extra,
            },
            f"raw line {i}",
        )
        for i in range(n)
    ]


def counter(c: Any) -> float:
    """The current value of a prometheus counter."""
    return float(c._value.get())


async def test_per_item_429_is_retried_until_indexed() -> None:
    """Items answered 429 inside a 200 bulk response are sent again, and only they."""
    busy = {"d1", "d3"}
    first = each(lambda a, s: 429 if a["create"]["_id"] in busy else 201)
    retried = counter(metrics.RECORDS_RETRIED)
    async with fake_es(first, ok) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(docs(5))
    assert outcome.indexed == 5
    assert es.ids() == ["d0", "d1", "d2", "d3", "d4", "d1", "d3"]
    assert counter(metrics.RECORDS_RETRIED) - retried == 2


@pytest.mark.parametrize("failure", [whole(503), whole(500), whole(429), "drop", "hang"])
async def test_transient_failures_are_retried(failure: Any) -> None:
    """A 5xx/429 answer, a dropped connection or a timeout is retried until it succeeds
    (a node that answers the probe is not taken for lost)."""
    async with fake_es(failure, failure, ok) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(docs(3))
        assert not s.reach.lost
    assert outcome.indexed == 3
    assert len(es.requests) == 3


@contextlib.contextmanager
def hung_node() -> Iterator[str]:
    """The URL of a node that hung (a paused process, a dead host): the kernel takes its
    connections, nothing reads or answers them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


async def test_a_bulk_to_a_hung_node_goes_to_another_node(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A node that answers neither a _bulk nor the probe after it is given up on: the batch
    goes to the next node, long before request_timeout (an hour here), and the collector
    says which node hung."""
    settings = dataclasses.replace(
        FAST, request_timeout=3600, retry_deadline=3600, hang_check=0.2, probe_timeout=0.2
    )
    hung_before = counter(metrics.BULK_HUNG)
    with hung_node() as hung:
        async with fake_es(ok) as es:
            # The hung node first: the pool's first request goes to it.
            client = AsyncElasticsearch(
                [hung, es.url], max_retries=0, randomize_nodes_in_pool=False
            )
            async with Sink(client, settings) as s:
                outcome = await s.write(docs(3))
                assert not s.reach.lost, "another node answered"
    assert outcome.indexed == 3
    assert es.ids() == ["d0", "d1", "d2"]
    [record] = [r for r in caplog.records if r.name == "logpipe.collector.sink"]
    assert record.message.startswith("Elasticsearch node answers neither a _bulk nor a probe")
    assert extra(record, "node") == hung
    assert counter(metrics.BULK_HUNG) - hung_before == 1


async def test_a_hung_node_gets_no_bulk_until_it_answers_a_probe(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found hung, a node is probed until it answers, and no _bulk goes to it meanwhile:
    the client's pool alone brings it back after its dead-node backoff (a hundredth of a
    second here), and each _bulk sent to it then waited hang_check + probe_timeout. Once
    it answers a probe, it takes _bulk requests again."""
    settings = dataclasses.replace(
        FAST,
        request_timeout=3600,
        retry_deadline=3600,
        hang_check=0.2,
        probe_timeout=0.2,
        reprobe=0.01,
    )
    hung_before = counter(metrics.BULK_HUNG)
    async with fake_es(ok) as sleeper, fake_es(ok) as other:
        sleeper.awake.clear()
        client = AsyncElasticsearch(
            [sleeper.url, other.url],
            max_retries=0,
            randomize_nodes_in_pool=False,
            dead_node_backoff_factor=0.01,
            max_dead_node_backoff=0.01,
        )
        async with Sink(client, settings) as s:
            for _ in range(6):
                assert (await s.write(docs(1))).indexed == 1
                await asyncio.sleep(0.05)  # past the pool's backoff: it would try the node
            assert counter(metrics.BULK_HUNG) - hung_before == 1, "one _bulk waited for it"
            assert len(other.requests) == 6
            sleeper.awake.set()
            for _ in range(200):
                if not s._shunned:
                    break
                await asyncio.sleep(0.01)
            for _ in range(4):
                await s.write(docs(1))
                await asyncio.sleep(0.02)
    assert sleeper.requests, "back in the pool once it answered"
    messages = [r.message for r in caplog.records if r.name == "logpipe.collector.sink"]
    assert "Elasticsearch node answers _bulk requests again" in messages


async def test_only_a_node_that_lets_the_probe_time_out_is_hung() -> None:
    """A node that refuses the probe's connection is shutting down or gone (its _bulk
    fails by itself), not hung; one whose kernel takes it and nothing answers is."""
    settings = dataclasses.replace(FAST, probe_timeout=0.2)
    with hung_node() as hung:
        refused = f"http://127.0.0.1:{free_port()}"
        client = AsyncElasticsearch([hung, refused], max_retries=0, randomize_nodes_in_pool=False)
        async with Sink(client, settings) as s:
            pool = client.transport.node_pool.all()
            nodes = {_url(n): n for n in pool if isinstance(n, BaseAsyncNode)}
            assert not await s._answers(nodes[hung])
            assert await s._answers(nodes[refused])


async def test_a_slow_bulk_to_a_node_that_answers_is_waited_for() -> None:
    """A node slow to answer a _bulk (busy indexing) that answers the probe is waited for:
    the request is not sent again (to another node it would be indexed twice over)."""
    settings = dataclasses.replace(FAST, request_timeout=30, hang_check=0.2, probe_timeout=5)
    hung_before = counter(metrics.BULK_HUNG)
    async with fake_es("slow", whole(500)) as es, Sink(es.client(), settings) as s:
        outcome = await s.write(docs(3))
    assert outcome.indexed == 3
    assert len(es.requests) == 1
    assert es.probes >= 2, "probed while it waited"
    assert counter(metrics.BULK_HUNG) == hung_before


async def test_backoff_grows_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits between tries double up to the maximum, each scaled by a random 0.5-1."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        if seconds:  # asyncio itself yields with sleep(0); only the sink's waits count
            slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    jitter = iter([0.5, 1.0, 0.75, 0.6, 0.9])
    monkeypatch.setattr(random, "uniform", lambda a, b: next(jitter))
    settings = SinkSettings(retry_deadline=60, backoff_initial=0.1, backoff_max=0.3)
    async with fake_es(*[whole(503)] * 5, ok) as es, Sink(es.client(), settings) as s:
        await s.write(docs(1))
    assert slept == pytest.approx([0.05, 0.2, 0.3 * 0.75, 0.3 * 0.6, 0.3 * 0.9])


@pytest.mark.parametrize(("failure", "status"), [(whole(429), 429), (whole(502), 503)])
async def test_deadline_answers_retry_later(failure: Any, status: int) -> None:
    """Past the deadline the sink gives up with 429 (overloaded) or 503 and a Retry-After."""
    settings = SinkSettings(retry_deadline=0.3, backoff_initial=0.05, backoff_max=0.1)
    async with fake_es(failure) as es, Sink(es.client(), settings) as s:
        with pytest.raises(RetryableSinkError) as caught:
            await s.write(docs(2))
    assert caught.value.status == status
    assert caught.value.retry_after >= 1
    assert "the shipper will send them again" in str(caught.value)


def refused_as(status: int, kind: str, reason: str) -> Answer:
    """Every item answered `status` with an error of type `kind`."""

    def answer(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> web.Response:
        item = {"status": status, "error": {"type": kind, "reason": reason}}
        body = {"errors": True, "items": [{"create": item} for _ in pairs]}
        return web.json_response(body, headers=HEADERS)

    return answer


WRITE_BLOCK = refused_as(
    403, "cluster_block_exception", "index [x] blocked by: [FORBIDDEN/8/index write (api)];"
)


CLOSED = refused_as(400, "index_closed_exception", "closed")
NO_TEMPLATE = refused_as(
    404,
    "index_not_found_exception",
    "no such index [logs-x.keep_14d-default] and the index creation request requires a data "
    "stream, but no matching index template with data stream template was found for it",
)


# What the node answers for each document of a stream whose settings name a missing
# ingest pipeline (index.default_pipeline or index.final_pipeline, from logpipe@custom).
NO_PIPELINE = refused_as(
    400, "illegal_argument_exception", "pipeline with id [geoip] does not exist"
)


@pytest.mark.parametrize(
    "stopped",
    [WRITE_BLOCK, CLOSED, NO_TEMPLATE, NO_PIPELINE],
    ids=["write_block", "closed", "no_template", "no_pipeline"],
)
async def test_a_block_on_writes_is_waited_out_not_dead_lettered(stopped: Answer) -> None:
    """Items refused by an index write block (403), by the write index closed (400), by
    no template making their stream a data stream (404: ours is gone, a node wiped), or
    by a missing ingest pipeline their stream names (400) are sent again until writes are
    allowed: the lines belong in their stream, not in the dead letters (a closed write
    index sent every line there until it was opened)."""
    async with fake_es(stopped, stopped, ok) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(docs(3))
    assert (outcome.indexed, outcome.dead_lettered) == (3, 0)
    assert es.ids() == ["d0", "d1", "d2"] * 3
    assert es.ids(DEADLETTER_STREAM) == []
    settings = SinkSettings(retry_deadline=0.3, backoff_initial=0.05, backoff_max=0.1)
    async with fake_es(WRITE_BLOCK) as es, Sink(es.client(), settings) as s:
        with pytest.raises(RetryableSinkError) as caught:
            await s.write(docs(2))
    assert caught.value.status == 503
    assert "index write" in str(caught.value)
    assert es.ids(DEADLETTER_STREAM) == []


async def test_a_missing_ingest_pipeline_is_named_with_what_to_do() -> None:
    """Lines refused for a missing ingest pipeline wait, and the 503 given up with names
    the pipeline and the two ways out: create it, or remove the setting."""
    settings = SinkSettings(retry_deadline=0.3, backoff_initial=0.05, backoff_max=0.1)
    async with fake_es(NO_PIPELINE) as es, Sink(es.client(), settings) as s:
        with pytest.raises(RetryableSinkError) as caught:
            await s.write(docs(2))
    assert caught.value.status == 503
    assert (
        "item status 400: illegal_argument_exception: pipeline with id [geoip] does not exist: "
        "the ingest pipeline [geoip] that index.default_pipeline or index.final_pipeline of the "
        "stream names (from logpipe@custom) is missing; the lines wait until it is created, or "
        "the setting is removed from logpipe@custom and the stream"
    ) in str(caught.value)
    assert es.ids(DEADLETTER_STREAM) == []


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        # A pipeline that exists but fails on one document (a processor's error).
        (400, "illegal_argument_exception", "field [user] not present as part of path"),
        # A refusal of the collector's rights on a stream.
        (403, "security_exception", "action [indices:data/write/bulk[s]] is unauthorized"),
    ],
)
async def test_a_refusal_that_is_no_stop_of_writes_is_dead_lettered(
    status: int, kind: str, reason: str
) -> None:
    """A document's own refusal is not waited out as a block is: it goes to the dead
    letters with the reason, as any refused document."""
    async with fake_es(refused_as(status, kind, reason), ok) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(docs(2))
    assert (outcome.indexed, outcome.dead_lettered) == (0, 2)
    assert es.ids(DEADLETTER_STREAM) == ["d0", "d1"]


async def test_unreachable_elasticsearch_is_retryable() -> None:
    """Connection refused is a transient failure: a 503 for the shipper, not an error;
    with the probe failing too, at once (not after the retry deadline), until it answers."""
    settings = SinkSettings(retry_deadline=300, backoff_initial=0.05)
    client = AsyncElasticsearch(f"http://127.0.0.1:{free_port()}", max_retries=0)
    async with Sink(client, settings) as s:
        with pytest.raises(RetryableSinkError, match="cannot reach Elasticsearch") as caught:
            await asyncio.wait_for(s.write(docs(1)), 60)
        assert s.reach.lost
    assert (caught.value.status, caught.value.retry_after) == (503, 5)


async def test_a_template_check_that_reaches_no_node_finds_elasticsearch_lost() -> None:
    """An idle collector, or one never connected, is lost by its template check: the
    reachable metric says 0 (not the 1 it starts with) until a probe is answered."""
    client = AsyncElasticsearch(f"http://127.0.0.1:{free_port()}", max_retries=0)
    async with Sink(client) as s:
        with pytest.raises(SetupError, match="cannot reach Elasticsearch"):
            await s.check_template()
        assert s.reach.lost
        assert metrics.ES_REACHABLE._value.get() == 0
    async with fake_es(ok) as es, Sink(es.client()) as s:
        es.template_status = 500
        with pytest.raises(SetupError, match="cannot read the index template"):
            await s.check_template()
        assert not s.reach.lost, "a node that answers is reached, whatever it says"


async def test_conflict_counts_as_already_indexed() -> None:
    """409 on create means an earlier try stored it: a duplicate, not an error."""
    conflict = each(lambda a, s: 409 if a["create"]["_id"] == "d0" else 201)
    async with fake_es(conflict) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(docs(2))
    assert (outcome.indexed, outcome.duplicates, outcome.dead_lettered) == (1, 1, 0)
    assert len(es.requests) == 1


async def test_rejected_item_is_dead_lettered_with_reason_and_line() -> None:
    """A 400 item goes to the dead-letter stream with the reason and the original line."""
    refuse = each(lambda a, s: 400 if a["create"]["_id"] == "d1" else 201)
    async with fake_es(refuse, ok) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(docs(3, container={"id": "c1"}))
    assert (outcome.indexed, outcome.dead_lettered) == (2, 1)
    [dead] = es.sources(DEADLETTER_STREAM)
    assert es.ids(DEADLETTER_STREAM) == ["d1"]
    assert dead["error"]["message"] == "mapper_exception: scripted 400"
    assert dead["event"]["original"] == "raw line 1"
    assert dead["message"] == "line 1"
    assert dead["container"] == {"id": "c1"}
    assert dead["logpipe"]["refused"]["index"] == STREAM
    assert dead["@timestamp"] == "2024-05-01T00:00:00.000000000Z"


async def test_refusals_are_logged_once_per_stream_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stream refusing a whole batch costs one warning with the count, not one per line."""
    refuse = each(lambda a, s: 400 if a["create"]["_index"] == STREAM else 201)
    async with fake_es(refuse) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(docs(50))
    assert outcome.dead_lettered == 50
    [record] = [r for r in caplog.records if r.name == "logpipe.collector.sink"]
    assert record.message == "documents refused by Elasticsearch, dead-lettered"
    assert (extra(record, "stream"), extra(record, "count"), extra(record, "doc_id")) == (
        STREAM,
        50,
        "d0",
    )
    assert extra(record, "reason") == "mapper_exception: scripted 400"


async def test_refused_dead_letter_falls_back_to_bare_copy() -> None:
    """If the dead-letter copy is refused too, a copy of only our own fields is stored."""
    refuse_once = each(lambda a, s: 400)
    refuse_copy = each(lambda a, s: 400 if "container.id" in s else 201)  # sent flat
    async with fake_es(refuse_once, refuse_copy, ok) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(docs(1, container={"id": "c1"}))
    assert outcome.dead_lettered == 1
    rich, bare = es.sources(DEADLETTER_STREAM)
    assert "container" in rich
    assert "container" not in bare
    assert bare["@timestamp"] == "2024-05-01T00:00:01.000Z", "bare copy uses the receive time"
    assert bare["event"]["original"] == "raw line 0"


async def test_dead_letter_refused_everywhere_is_an_error() -> None:
    """When even the bare dead-letter copy is refused, the batch fails loudly."""
    async with fake_es(each(lambda a, s: 400)) as es, Sink(es.client(), FAST) as s:
        with pytest.raises(SinkError, match="dead-letter stream refused 1"):
            await s.write(docs(1))


async def test_unserializable_document_is_dead_lettered() -> None:
    """An integer beyond 64 bits cannot be sent: the document is dead-lettered, others go."""
    batch = docs(2)
    batch[1].body["process"] = {"exit_code": 2**70}
    async with fake_es(ok) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(batch)
    assert (outcome.indexed, outcome.dead_lettered) == (1, 1)
    [dead] = es.sources(DEADLETTER_STREAM)
    assert "Integer exceeds 64-bit range" in dead["error"]["message"]
    assert str(2**70) in dead["logpipe"]["refused"]["document"]


async def test_whole_request_refused_is_an_error() -> None:
    """A non-retryable answer to the whole request (a 400) is a SinkError, not retried."""
    async with fake_es(whole(400)) as es, Sink(es.client(), FAST) as s:
        with pytest.raises(SinkError, match="refused the bulk request") as caught:
            await s.write(docs(1))
    assert not isinstance(caught.value, RetryableSinkError)
    assert len(es.requests) == 1


async def test_bulk_requests_are_bounded_in_bytes_and_documents() -> None:
    """A large batch is split into requests under the byte and document bounds."""
    settings = SinkSettings(max_bytes=4096, max_docs=7)
    batch = docs(50, pad="x" * 300)
    async with fake_es(ok) as es, Sink(es.client(), settings) as s:
        outcome = await s.write(batch)
    assert outcome.indexed == 50
    assert sorted(es.ids()) == sorted(d.id for d in batch)
    for request in es.requests:
        size = sum(len(encode(Doc(a["create"]["_id"], STREAM, s))) for a, s in request)
        assert len(request) <= 7
        assert size <= 4096


async def test_compressed_requests_are_gzip_and_answered_item_by_item() -> None:
    """With compression on, each _bulk body goes gzipped (the fake inflates it, as a node
    does) and its items are classified as ever: a refused one dead-lettered, a 409 a
    duplicate; off, bodies go as they are."""
    batch = docs(40, pad="the same words again " * 20)
    plain = sum(len(encode(d)) for d in batch)
    answer = each(lambda a, s: {"d3": 409, "d7": 400}.get(a["create"]["_id"], 201))
    settings = dataclasses.replace(FAST, compress=True)
    async with fake_es(answer, ok) as es, Sink(es.client(), settings) as s:
        outcome = await s.write(batch)
    assert (outcome.indexed, outcome.duplicates, outcome.dead_lettered) == (38, 1, 1)
    assert es.ids(DEADLETTER_STREAM) == ["d7"]
    assert [h["Content-Encoding"] for h in es.bulk_headers] == ["gzip", "gzip"]
    assert int(es.bulk_headers[0]["Content-Length"]) < plain / 5
    assert sorted(es.ids(STREAM)) == sorted(d.id for d in batch)
    async with fake_es(ok) as es, Sink(es.client(), FAST) as s:
        await s.write(docs(3))
    assert "Content-Encoding" not in es.bulk_headers[0]


def test_chunks_keep_an_oversized_item_alone() -> None:
    """An item bigger than the byte bound still goes, in a request of its own."""
    assert chunks([b"x" * 10, b"x" * 100, b"x" * 10], 50, 10) == [range(i, i + 1) for i in range(3)]
    assert chunks([b"x" * 10] * 5, 1000, 2) == [range(2), range(2, 4), range(4, 5)]


async def test_request_too_large_for_the_node_is_split() -> None:
    """A _bulk the node refuses as too large (413) is halved until it fits; nothing is lost."""
    too_large = whole(413)

    def limit(pairs: list[Any]) -> Any:
        big = any(len(s.get("pad", "")) > 1000 for _, s in pairs)
        return too_large(pairs) if len(pairs) > 2 or big else ok(pairs)

    batch = docs(7)
    batch.append(Doc("huge", STREAM, {"message": "m", "pad": "x" * 5000, "event": {}}))
    async with fake_es(limit) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(batch)
    assert (outcome.indexed, outcome.dead_lettered) == (7, 1)
    assert set(es.ids(STREAM)) == {d.id for d in batch}  # each sent until it fit
    [dead] = es.sources(DEADLETTER_STREAM)
    assert "over the node's limit" in dead["error"]["message"]


# The indexing-pressure refusal as Elasticsearch 9 words it (bytes: what it counts).
PRESSURE = (
    "rejected execution of primary operation [coordinating_and_primary_bytes={all}, "
    "replica_bytes=0, all_bytes={all}, primary_operation_bytes={op}, max_primary_bytes={limit}]"
)


def pressure(limit: int, busy: int = 0) -> Any:
    """A node whose indexing-pressure limit is `limit` bytes of STREAM's documents, `busy` of
    them in use: when a request's are over what is left, each is refused with 429, as the
    items of one shard's operation are."""

    def answer(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> web.Response:
        op = sum(len(str(s)) for a, s in pairs if a["create"]["_index"] == STREAM)
        error = {
            "type": "es_rejected_execution_exception",
            "reason": PRESSURE.format(all=busy + op, op=op, limit=limit),
        }
        refused = busy + op > limit
        out = [
            {"create": {"status": 429, "error": error}}
            if refused and a["create"]["_index"] == STREAM
            else {"create": {"status": 201}}
            for a, _ in pairs
        ]
        return web.json_response({"errors": refused, "items": out}, headers=HEADERS)

    return answer


async def test_document_over_the_indexing_pressure_limit_alone_is_dead_lettered() -> None:
    """A document larger than the node's whole indexing-pressure limit (429 naming an
    operation over the limit) is dead-lettered with the reason; the documents refused
    with it in the same request are sent again apart and indexed, at once."""
    batch = docs(5)
    batch.insert(2, Doc("huge", STREAM, {"message": "x" * 5000, "event": {}}, "x" * 5000))
    async with fake_es(pressure(2000)) as es, Sink(es.client(), FAST) as s:
        outcome = await asyncio.wait_for(s.write(batch), 2)
    assert (outcome.indexed, outcome.dead_lettered) == (5, 1)
    assert set(es.ids(STREAM)) == {d.id for d in batch}  # each sent until it fit
    [dead] = es.sources(DEADLETTER_STREAM)
    assert dead["error"]["message"].startswith("document of ")
    assert "over the node's limit: es_rejected_execution_exception" in dead["error"]["message"]
    assert "max_primary_bytes=2000" in dead["error"]["message"]
    assert dead["event"]["original"] == "x" * 5000


def coordinating(limit: int) -> Any:
    """A node that coordinates each request and holds its primaries, idle otherwise: it
    counts the request's own bytes (its bulk lines as sent) and, on top, each primary
    operation's at four times its STREAM documents' size, refusing those items with 429
    when both are over `limit`, as Elasticsearch does."""

    def answer(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> web.Response:
        request = sum(len(str(a)) + len(str(s)) for a, s in pairs)
        op = 4 * sum(len(str(s)) for a, s in pairs if a["create"]["_index"] == STREAM)
        error = {
            "type": "es_rejected_execution_exception",
            "reason": PRESSURE.format(all=request, op=op, limit=limit),
        }
        refused = request + op > limit
        out = [
            {"create": {"status": 429, "error": error}}
            if refused and a["create"]["_index"] == STREAM
            else {"create": {"status": 201}}
            for a, _ in pairs
        ]
        return web.json_response({"errors": refused, "items": out}, headers=HEADERS)

    return answer


async def test_document_over_the_limit_with_its_own_request_is_dead_lettered() -> None:
    """A document whose primary operation fits the node's indexing-pressure limit but not
    with its own request's bytes, which the coordinating node counts too (a 4 MiB line of
    control characters on a 1 GiB heap), is refused however idle the node is: it is
    dead-lettered, and the documents sent with it are indexed, rather than the batch
    being retried until the shipper is answered 429 and sends it again forever."""
    batch = docs(5)
    batch.insert(2, Doc("huge", STREAM, {"message": "x" * 5000, "event": {}}, "x" * 5000))
    # The huge document alone: its operation (4x) is under the limit, with its request over.
    async with fake_es(coordinating(22_000)) as es, Sink(es.client(), FAST) as s:
        outcome = await asyncio.wait_for(s.write(batch), 2)
    assert (outcome.indexed, outcome.dead_lettered) == (5, 1)
    assert set(es.ids(STREAM)) == {d.id for d in batch}
    [dead] = es.sources(DEADLETTER_STREAM)
    assert dead["error"]["message"].startswith("document of ")
    assert "primary_operation_bytes=" in dead["error"]["message"]
    assert dead["event"]["original"] == "x" * 5000


async def test_429_of_a_busy_node_is_retried_not_dead_lettered() -> None:
    """The usual indexing-pressure 429 (the operation fits the limit, what is in flight
    leaves no room) is retried as it is until the node takes it; nothing is dead-lettered."""
    busy = pressure(2000, busy=1990)
    async with fake_es(busy, busy, ok) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(docs(3))
    assert (outcome.indexed, outcome.dead_lettered) == (3, 0)
    assert es.ids() == ["d0", "d1", "d2"] * 3
    assert es.sources(DEADLETTER_STREAM) == []


async def test_429_of_a_busy_node_still_answers_429_at_the_deadline() -> None:
    """A node too busy for the whole deadline makes write() raise the retryable error (429
    to the shipper), not dead-letter the documents."""
    settings = dataclasses.replace(FAST, retry_deadline=0.3)
    async with fake_es(pressure(2000, busy=1990)) as es, Sink(es.client(), settings) as s:
        with pytest.raises(RetryableSinkError) as caught:
            await s.write(docs(3))
    assert caught.value.status == 429
    assert es.sources(DEADLETTER_STREAM) == []


async def test_whole_request_over_the_coordinating_limit_alone_is_split() -> None:
    """A whole _bulk refused with 429 for a coordinating operation over the limit on its
    own is sent again in halves, like a 413, rather than retried forever."""
    reason = (
        "rejected execution of coordinating operation [coordinating_and_primary_bytes=9000, "
        "replica_bytes=0, all_bytes=9000, coordinating_operation_bytes=9000, "
        "max_coordinating_and_primary_bytes=100]"
    )

    def limit(pairs: list[Any]) -> Any:
        if len(pairs) == 1:
            return ok(pairs)
        body = {"error": {"type": "es_rejected_execution_exception", "reason": reason}}
        return web.json_response(body, status=429, headers=HEADERS)

    async with fake_es(limit) as es, Sink(es.client(), FAST) as s:
        outcome = await asyncio.wait_for(s.write(docs(4)), 2)
    assert outcome.indexed == 4
    assert sorted(set(es.ids(STREAM))) == ["d0", "d1", "d2", "d3"]


async def test_request_timeouts_are_the_setting_or_whole_seconds_left() -> None:
    """A request waits request_timeout, or the whole seconds left before the deadline (at
    least one) when they are fewer."""
    settings = dataclasses.replace(FAST, request_timeout=3)
    async with fake_es(ok) as es, Sink(es.client(), settings) as s:
        timeouts = [s._timeout(left) for left in (30.0, 3.0, 2.9, 2.0, 1.5, 0.2)]
        assert timeouts == [3, 3, 2, 2, 1, 1]


def named(prefix: str, n: int) -> list[Doc]:
    """`n` documents like `docs(n)`, their ids starting with `prefix`."""
    return [dataclasses.replace(d, id=prefix + d.id) for d in docs(n)]


def together(documents: int) -> SinkSettings:
    """FAST, with batches written at once sending one request once all their `documents`
    are in, however late the last comes on a busy machine (FAST's 5 ms wait for others
    let one miss the request there)."""
    return dataclasses.replace(FAST, merge_below=documents, merge_wait=0.5)


async def test_small_batches_waiting_together_share_one_request() -> None:
    """Batches that wait for Elasticsearch at once go as one request; each learns its own."""
    merged = counter(metrics.BULK_MERGED)
    async with fake_es(ok) as es, Sink(es.client(), together(9)) as s:
        outcomes = await asyncio.gather(
            s.write(named("a", 3)), s.write(named("b", 2)), s.write(named("c", 4))
        )
    assert [o.indexed for o in outcomes] == [3, 2, 4]
    assert len(es.requests) == 1
    expected = [d.id for p, n in (("a", 3), ("b", 2), ("c", 4)) for d in named(p, n)]
    assert sorted(es.ids()) == sorted(expected)
    assert counter(metrics.BULK_MERGED) - merged == 3


async def later(delay: float, writing: Any) -> Any:
    """`writing` (a write coroutine), awaited `delay` seconds from now."""
    await asyncio.sleep(delay)
    return await writing


async def test_a_small_batch_waits_a_little_for_others() -> None:
    """A batch that comes within merge_wait of a small one shares its request."""
    waiting = dataclasses.replace(FAST, merge_wait=0.5)
    async with fake_es(ok) as es, Sink(es.client(), waiting) as s:
        await asyncio.gather(s.write(named("a", 2)), later(0.05, s.write(named("b", 2))))
    assert [len(r) for r in es.requests] == [4]


async def test_enough_documents_end_the_wait() -> None:
    """Small batches that add up to merge_below documents go at once, without waiting."""
    five = dataclasses.replace(FAST, merge_below=5, merge_wait=60)
    async with fake_es(ok) as es, Sink(es.client(), five) as s:
        writes = asyncio.gather(s.write(named("a", 3)), later(0.05, s.write(named("b", 3))))
        await asyncio.wait_for(writes, 10)
        # Once sent, the next small batches wait for others again: c and d for e.
        three = asyncio.gather(
            s.write(named("c", 2)),
            later(0.05, s.write(named("d", 2))),
            later(0.1, s.write(named("e", 1))),
        )
        await asyncio.wait_for(three, 10)
    assert [len(r) for r in es.requests] == [6, 5]


async def test_batches_are_sent_alone_when_merging_is_off_or_they_are_big() -> None:
    """merge_below=0 sends each batch alone; so does a batch of merge_below documents."""
    off = dataclasses.replace(FAST, merge_below=0)
    async with fake_es(ok) as es, Sink(es.client(), off) as s:
        await asyncio.gather(s.write(named("a", 3)), s.write(named("b", 2)))
    assert len(es.requests) == 2
    big = dataclasses.replace(FAST, merge_below=3)
    async with fake_es(ok) as es, Sink(es.client(), big) as s:
        writes = [s.write(named(p, n)) for p, n in (("a", 3), ("b", 3), ("c", 2), ("d", 1))]
        await asyncio.gather(*writes)
    assert sorted(len(r) for r in es.requests) == [3, 3, 3]


@pytest.mark.parametrize("bound", ["max_docs", "max_bytes"])
async def test_merged_requests_keep_the_bounds(bound: str) -> None:
    """Batches share a request only up to max_docs documents and max_bytes bytes."""
    if bound == "max_docs":
        bounded = dataclasses.replace(together(7), max_docs=4)
    else:
        bounded = dataclasses.replace(
            together(7), max_bytes=sum(len(encode(d)) for d in named("a", 4))
        )
    async with fake_es(ok) as es, Sink(es.client(), bounded) as s:
        writes = [s.write(named(p, n)) for p, n in (("a", 3), ("b", 2), ("c", 2))]
        await asyncio.gather(*writes)
    assert sorted(len(r) for r in es.requests) == [3, 4]


async def test_each_batch_gets_its_own_items_of_a_merged_answer() -> None:
    """Per-item answers of a merged request reach the batch they belong to: b's refused
    documents are dead-lettered, c's 429 is retried, a's are indexed."""
    first = each(lambda a, s: {"b": 400, "c": 429}.get(a["create"]["_id"][0], 201))
    async with fake_es(first, ok) as es, Sink(es.client(), together(5)) as s:
        a, b, c = await asyncio.gather(
            s.write(named("a", 2)), s.write(named("b", 2)), s.write(named("c", 1))
        )
    assert (a.indexed, a.dead_lettered) == (2, 0)
    assert (b.indexed, b.dead_lettered) == (0, 2)
    assert (c.indexed, c.dead_lettered) == (1, 0)
    assert len(es.requests[0]) == 5
    assert sorted(es.ids(DEADLETTER_STREAM)) == ["bd0", "bd1"]
    assert es.ids(STREAM).count("cd0") == 2


@pytest.mark.parametrize("refusal", [whole(400), whole(413)])
async def test_a_refused_merged_request_is_sent_again_batch_by_batch(refusal: Any) -> None:
    """A merged request refused as a whole (or too large) is not every batch's failure:
    each batch is sent alone and gets its own answer."""
    async with fake_es(refusal, ok) as es, Sink(es.client(), together(6)) as s:
        outcomes = await asyncio.gather(s.write(named("a", 2)), s.write(named("b", 4)))
    assert [o.indexed for o in outcomes] == [2, 4]
    assert [len(r) for r in es.requests] == [6, 2, 4]


async def test_a_merged_request_that_fails_is_retried_by_each_batch() -> None:
    """A 503 to a merged request sends every batch of it back to its own retry."""
    async with fake_es(whole(503), ok) as es, Sink(es.client(), together(5)) as s:
        outcomes = await asyncio.gather(s.write(named("a", 2)), s.write(named("b", 3)))
    assert [o.indexed for o in outcomes] == [2, 3]
    assert len(es.requests[0]) == 5
    assert sorted(es.ids()[5:]) == ["ad0", "ad1", "bd0", "bd1", "bd2"]


OTHER = "logs-other-default"


def _streams(es: Any) -> None:
    """STREAM rolled over twice (its write index a3), OTHER never (b1 only)."""
    es.resolved_streams = [
        {"name": STREAM, "backing_indices": ["a1", "a2", "a3"]},
        {"name": OTHER, "backing_indices": ["b1"]},
    ]
    es.stored = {"d0", "o1"}


async def test_a_lookup_refreshes_the_backing_indices_but_the_write_index() -> None:
    """Before the search of a batch sent again, the backing indices of its streams are
    refreshed (a line indexed just before a rollover is searchable then), in one request,
    all but the write index (`create` sees its ids); a stream never rolled over costs no
    refresh."""
    batch = [*docs(2), Doc("o1", OTHER, {"message": "other"}, "other")]
    async with fake_es() as es, Sink(es.client(), FAST) as s:
        _streams(es)
        found = await s.known(batch)
    assert found == {"d0", "o1"}
    [resolve] = es.resolves  # one request for every stream of the batch
    assert resolve.startswith(f"/_resolve/index/{STREAM},{OTHER}?")
    assert es.refreshed == ["a1,a2"]
    assert es.searched == [STREAM, OTHER]


@pytest.mark.parametrize("failing", ["resolve", "refresh"])
async def test_a_lookup_whose_refresh_fails_searches_all_the_same(
    failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Where the streams' backing indices cannot be listed, or the refresh is refused (a
    user without the privilege to refresh), that is logged and the search runs as it
    would without the refresh: what it finds is still left out of the batch."""
    caplog.set_level(logging.INFO, logger="logpipe.collector.sink")
    async with fake_es() as es, Sink(es.client(), FAST) as s:
        _streams(es)
        if failing == "resolve":
            es.resolve_status = 503
        else:
            es.refresh_status = 403
        found = await s.known([*docs(2), Doc("o1", OTHER, {"message": "other"}, "other")])
    assert found == {"d0", "o1"}
    assert es.searched == [STREAM, OTHER]
    assert es.refreshed == ([] if failing == "resolve" else ["a1,a2"])
    [record] = [r for r in caplog.records if r.name == "logpipe.collector.sink"]
    assert (
        record.message == "a batch sent again looked up without a refresh of older backing indices"
    )
    assert extra(record, "streams") == sorted([STREAM, OTHER])
    assert str({"resolve": 503, "refresh": 403}[failing]) in extra(record, "reason")


async def test_a_refresh_with_failed_shards_is_logged_and_the_lookup_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refresh that some shards failed (answered 200 all the same) is logged with
    the indices and the count; the search runs and finds what it finds."""
    caplog.set_level(logging.INFO, logger="logpipe.collector.sink")
    async with fake_es() as es, Sink(es.client(), FAST) as s:
        _streams(es)
        es.refresh_failed = 2
        found = await s.known([*docs(2), Doc("o1", OTHER, {"message": "other"}, "other")])
    assert found == {"d0", "o1"}
    [record] = [r for r in caplog.records if r.name == "logpipe.collector.sink"]
    assert record.message == "a batch sent again looked up before a refresh of some shards"
    assert (extra(record, "indices"), extra(record, "failed_shards")) == (["a1", "a2"], 2)


async def test_a_lookup_of_many_streams_lists_and_refreshes_them_in_short_requests() -> None:
    """Names are sent in groups: Elasticsearch refuses a request line over 4 KiB, and a
    batch may hold lines of many streams."""
    streams = [f"logs-many{i:03d}.{'x' * 40}.keep_14d-default" for i in range(100)]
    batch = [Doc(f"m{i}", stream, {"message": "m"}, "m") for i, stream in enumerate(streams)]
    async with fake_es() as es, Sink(es.client(), FAST) as s:
        es.resolved_streams = [
            {"name": stream, "backing_indices": [f".ds-{stream}-1", f".ds-{stream}-2"]}
            for stream in streams
        ]
        await s.known(batch)
    assert len(es.resolves) > 1
    assert all(len(path) < 4096 for path in [*es.resolves, *es.refreshed])
    named = [name for path in es.resolves for name in path.split("/")[-1].split("?")[0].split(",")]
    assert named == streams
    refreshed = [name for group in es.refreshed for name in group.split(",")]
    assert refreshed == [f".ds-{stream}-1" for stream in streams]
