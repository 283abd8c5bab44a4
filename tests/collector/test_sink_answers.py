"""How the sink reads Elasticsearch's answers to _bulk and what it sends with each request.

Against the scripted Elasticsearch of fake_es: compact answers as a real node writes them,
and answers no real node gives (a proxy's page, a truncated body).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from collector.errors import RetryableSinkError, SinkError
from collector.sink import Sink, read_answer
from tests.collector.fake_es import HEADERS, fake_es, ok, whole
from tests.collector.test_sink import FAST, docs

Pairs = list[tuple[dict[str, Any], dict[str, Any]]]


def raw(body: bytes, status: int = 200) -> Any:
    """An answer of exactly these bytes."""

    def answer(pairs: Pairs) -> web.Response:
        return web.Response(
            body=body, status=status, headers=HEADERS, content_type="application/json"
        )

    return answer


def test_a_clean_answer_is_read_by_its_flag_alone() -> None:
    """An answer starting with errors false is taken as such; its items are never read."""
    assert read_answer(b'{"errors":false,"items":[{"create":{"sta') == {"errors": False}
    assert read_answer(b'{"errors":false}') == {"errors": False}
    failed = b'{"errors":true,"items":[{"create":{"status":409}}]}'
    assert read_answer(failed) == {"errors": True, "items": [{"create": {"status": 409}}]}
    assert read_answer(b'{"errors":falsehood}') is None
    assert read_answer(b"<html>bad gateway</html>") is None
    assert read_answer(b"[1]") is None


async def test_a_compact_clean_answer_counts_every_document_indexed() -> None:
    """A node's compact errors:false answer counts each document once, items unread."""
    async with (
        fake_es(raw(b'{"errors":false,"items":[not read]}')) as es,
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
