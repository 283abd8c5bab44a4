"""How the sink reads Elasticsearch's answers to _bulk and what it sends with each request.

Against the scripted Elasticsearch of fake_es: compact answers as a real node writes them,
and answers no real node gives (a proxy's page, a truncated body).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from aiohttp import web

from collector.bulk import read_answer
from collector.errors import RetryableSinkError, SinkError
from collector.sink import Sink
from tests.collector.fake_es import HEADERS, fake_es, ok, whole
from tests.collector.test_sink import FAST, docs, named

Pairs = list[tuple[dict[str, Any], dict[str, Any]]]


def raw(body: bytes, status: int = 200) -> Any:
    """An answer of exactly these bytes."""

    def answer(pairs: Pairs) -> web.Response:
        return web.Response(
            body=body, status=status, headers=HEADERS, content_type="application/json"
        )

    return answer


def test_a_clean_answer_is_read_by_its_flag_and_its_count_of_items() -> None:
    """An answer starting with errors false is taken as such when it lists one status per
    document; its items are counted, not parsed. Any other answer is read whole."""
    clean = b'{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}'
    assert read_answer(clean, 2) == {"errors": False}
    failed = b'{"errors":true,"items":[{"create":{"status":409}}]}'
    assert read_answer(failed, 1) == {"errors": True, "items": [{"create": {"status": 409}}]}
    for answer, count, why in [
        (clean, 3, "lists 2 items for 3 documents"),
        (b'{"errors":false}', 1, "lists 0 items for 1 documents"),
        (b"{}", 1, "unreadable answer"),
        (b'{"errors": false, "items": []}', 2, "lists 0 items for 2 documents"),
        (failed, 2, "lists 1 items for 2 documents"),
        (b'{"errors":true}', 1, "lists 0 items for 1 documents"),
        (b'{"errors":true,"items":[{"index":{"status":201}}]}', 1, "item that is no answer"),
        (b'{"errors":true,"items":[{"create":{"status":"201"}}]}', 1, "item that is no answer"),
        (b'{"errors":true,"items":[7]}', 1, "item that is no answer"),
        (b'{"errors":falsehood}', 1, "unreadable answer"),
        (b"<html>bad gateway</html>", 1, "unreadable answer"),
        (b"[1]", 1, "unreadable answer"),
    ]:
        with pytest.raises(ValueError, match=why):
            read_answer(answer, count)


async def test_a_compact_clean_answer_counts_every_document_indexed() -> None:
    """A node's compact errors:false answer counts each document once, items not parsed."""
    statuses = b",".join([b'{"create":{"status":201}} not parsed'] * 3)
    async with (
        fake_es(raw(b'{"errors":false,"items":[' + statuses + b"]}")) as es,
        Sink(es.client(), FAST) as s,
    ):
        outcome = await s.write(docs(3))
    assert (outcome.indexed, outcome.duplicates, outcome.dead_lettered) == (3, 0, 0)
    assert len(es.requests) == 1


async def test_a_compact_answer_with_conflicts_is_classified_per_item() -> None:
    """With errors true (409s of documents already there), each item's status decides."""
    answer = (
        b'{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,'
        b'"error":{"type":"version_conflict_engine_exception","reason":"exists"}}}]}'
    )
    async with fake_es(raw(answer)) as es, Sink(es.client(), FAST) as s:
        outcome = await s.write(docs(2))
    assert (outcome.indexed, outcome.duplicates, outcome.dead_lettered) == (1, 1, 0)


async def test_an_unreadable_answer_is_sent_again() -> None:
    """A 200 that is no JSON object (a proxy's page) is retried, then a retryable error."""
    async with fake_es(raw(b"<html>oops</html>")) as es, Sink(es.client(), FAST) as s:
        with pytest.raises(RetryableSinkError, match="unreadable answer to _bulk"):
            await s.write(docs(1))
    assert len(es.requests) > 1


@pytest.mark.parametrize(
    "answer",
    [
        b"{}",
        b'{"errors":false,"items":[]}',
        b'{"errors":false,"items":[{"create":{"status":201}}]}',
        b'{"errors":true,"items":[{"create":{"status":201}}]}',
        b'{"errors":true,"items":[{"create":{}},{"create":{}},{"create":{}}]}',
    ],
)
async def test_an_answer_that_does_not_list_every_document_is_never_taken_as_stored(
    answer: bytes,
) -> None:
    """A 200 that does not answer for each document (a proxy, a broken node) stores
    nothing the shipper could then delete: the request is sent again, then the batch
    fails retryably, naming what was wrong."""
    brief = dataclasses.replace(FAST, retry_deadline=3)  # room for a second try under load
    async with fake_es(raw(answer)) as es, Sink(es.client(), brief) as s:
        with pytest.raises(RetryableSinkError, match=r"items for 3 documents|no answer|unreadable"):
            await s.write(docs(3))
    assert len(es.requests) > 1


async def test_a_merged_request_answered_short_is_sent_again() -> None:
    """Small batches merged into one request whose answer lists too few items count
    nothing from it: they are sent again, and each counts what a full answer lists."""

    def answer(pairs: Pairs) -> web.Response:
        listed = 1 if len(es.requests) == 1 else len(pairs)  # the first answer is short
        items = b",".join([b'{"create":{"status":201}}'] * listed)
        body = b'{"errors":false,"items":[' + items + b"]}"
        return web.Response(body=body, headers=HEADERS, content_type="application/json")

    together = dataclasses.replace(FAST, merge_below=2, merge_wait=5)
    async with fake_es(answer) as es, Sink(es.client(), together) as s:
        outcomes = await asyncio.gather(s.write(named("a", 1)), s.write(named("b", 1)))
    assert [(o.indexed, o.duplicates) for o in outcomes] == [(1, 0), (1, 0)]
    assert len(es.requests[0]) == 2
    assert sum(map(len, es.requests)) == 4


async def test_a_refused_request_names_elasticsearchs_reason() -> None:
    """A whole request refused with a 400 is an error naming the status and the reason."""
    async with fake_es(whole(400)) as es, Sink(es.client(), FAST) as s:
        with pytest.raises(SinkError, match=r"refused the bulk request \(HTTP 400\): scripted: "):
            await s.write(docs(1))


async def test_bulk_requests_carry_the_clients_credentials() -> None:
    """Each _bulk request sends the credentials the client was made with, as NDJSON."""
    async with fake_es(ok) as es, Sink(es.client(api_key="c2VjcmV0"), FAST) as s:
        await s.write(docs(2))
    [headers] = es.bulk_headers
    assert headers["Authorization"] == "ApiKey c2VjcmV0"
    assert headers["Content-Type"] == "application/x-ndjson"


@pytest.mark.parametrize(
    ("headers", "impostor"), [({}, True), ({"X-Elastic-Product": "Elasticsearch"}, False)]
)
async def test_another_program_at_the_elasticsearch_url_is_named(
    headers: dict[str, str], impostor: bool
) -> None:
    """A 404 to /_cluster/health without Elasticsearch's product header (another web
    service at LOGPIPE_ES_URL) is said as such, not 'Elasticsearch did not answer'."""
    from aiohttp.test_utils import TestServer
    from elasticsearch import AsyncElasticsearch

    async def anything(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"}, status=404, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    es = AsyncElasticsearch(url)
    try:
        sink = Sink(es, FAST)
        assert not await sink.ping()
        if impostor:
            assert sink.impostor == (
                f"{url} answers (HTTP 404 to /_cluster/health) but is no Elasticsearch: set "
                "LOGPIPE_ES_URL to the cluster's URL"
            )
        else:
            assert sink.impostor is None
        await server.close()
        assert not await sink.ping()  # nothing answers now: no longer said to be another
        assert sink.impostor is None
    finally:
        await es.close()
        await server.close()
