"""Documents as the collector makes them, in the real node under logpipe's template."""

from __future__ import annotations

import time
import uuid

import pytest
from elasticsearch import Elasticsearch

from collector.enrich import Context, log_document
from collector.parse import parse
from collector.wire import Log, Source

pytestmark = pytest.mark.integration


def test_phrases_match_and_a_replayed_line_is_refused_as_a_duplicate(
    es: Elasticsearch, template: None
) -> None:
    """Without norms a phrase still matches; the same line again gets its id and a 409."""
    run = "t" + uuid.uuid4().hex[:10]
    source = Source(
        kind="source", src=0, host=f"h-{run}", container_id=uuid.uuid4().hex * 2,
        container_name=f"c-{run}", image="busybox:latest", labels={},
    )  # fmt: skip
    ts = time.time_ns()
    docs = [
        log_document(source, Log(kind="log", src=0, stream="stdout", ts=ts + i, message=m),
                     parse(m), Context(dataset=f"docs.{run}"), "2026-01-01T00:00:00Z")
        for i, m in enumerate(["dial tcp: connection refused", "refused a connection"])
    ]  # fmt: skip
    for doc in docs:
        es.create(index=doc.stream, id=doc.id, document=doc.body)
    again = es.options(ignore_status=409).create(
        index=docs[0].stream, id=docs[0].id, document=docs[0].body
    )
    es.indices.refresh(index=docs[0].stream)
    phrase = {"match_phrase": {"message": "connection refused"}}
    hits = es.search(index=docs[0].stream, query=phrase)["hits"]["hits"]
    assert again.meta.status == 409
    assert [h["_id"] for h in hits] == [docs[0].id]
    assert es.count(index=docs[0].stream)["count"] == 2
