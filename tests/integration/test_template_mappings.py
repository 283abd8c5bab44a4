"""The per-stream fields (data_stream.*, event.dataset) are cheap to index yet still
filter and aggregate, on the real node, with the mapping `setup` chooses for it."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
import pytest
from elasticsearch import ApiError, AsyncElasticsearch, Elasticsearch

from collector.attributes import UNINDEXED
from collector.read.search import _line
from collector.shape import flat, nested
from collector.sink import Sink
from collector.templates import MAPPINGS, PER_STREAM, UNINDEXED_MAPPING, mappings
from tests.conftest import ES_URL, node_has_constant_keyword, wait_until

pytestmark = pytest.mark.integration


async def _setup_probe() -> bool:
    async with Sink(AsyncElasticsearch(ES_URL)) as sink:
        return await sink.has_constant_keyword()


def test_setups_probe_says_what_the_node_can_map(es: Elasticsearch) -> None:
    """The probe says constant_keyword exactly when the node can create an index with it."""
    index = "logpipe-test-probe-" + uuid.uuid4().hex[:8]
    try:
        es.indices.create(index=index, mappings={"properties": {"c": {"type": "constant_keyword"}}})
        creatable, reason = True, ""
    except ApiError as exc:
        reason = str(exc)
        creatable = False
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
    if not creatable:
        assert "constant_keyword" in reason
    assert asyncio.run(_setup_probe()) is creatable
    assert node_has_constant_keyword(es) is creatable


def _doc(dataset: str, rule: str, n: int) -> dict[str, Any]:
    return {
        "@timestamp": f"2026-01-01T00:00:0{n}Z",
        "message": f"line {n}",
        "event": {"dataset": dataset},
        "data_stream": {
            "type": "logs",
            "dataset": f"{dataset}.keep_{rule}",
            "namespace": "default",
        },
    }


def test_per_stream_fields_filter_and_aggregate(es: Elasticsearch, template: None) -> None:
    """Term, terms, wildcard, prefix, exists and query-string filters on the per-stream
    fields match each stream's documents only; terms aggregations count them."""
    tag = "tmpl" + uuid.uuid4().hex[:6]
    streams = {f"{tag}a": 3, f"{tag}b": 2}
    for dataset, docs in streams.items():
        for n in range(docs):
            es.index(
                index=f"logs-{dataset}.keep_1d-default", document=_doc(dataset, "1d", n),
                op_type="create", refresh=True,
            )  # fmt: skip
    pattern = f"logs-{tag}*"

    def count(query: dict[str, Any]) -> int:
        return int(es.count(index=pattern, query=query)["count"])

    mapping = es.indices.get_mapping(index=pattern).body
    for index in mapping.values():
        props = index["mappings"]["properties"]
        for path in PER_STREAM:
            spec = props[path]  # a leaf under its dotted name (no object mappers)
            assert spec["type"] in ("constant_keyword", "keyword")
            assert spec.get("index", True) is False or spec["type"] == "constant_keyword"

    a, b = streams
    assert count({"term": {"event.dataset": a}}) == 3
    assert count({"terms": {"event.dataset": [b, "nothing"]}}) == 2
    assert count({"term": {"data_stream.dataset": f"{b}.keep_1d"}}) == 2
    assert count({"wildcard": {"data_stream.dataset": {"value": f"{tag}*.keep_1d"}}}) == 5
    assert count({"prefix": {"event.dataset": a}}) == 3
    assert count({"exists": {"field": "data_stream.namespace"}}) == 5
    assert count({"term": {"data_stream.type": "logs"}}) == 5
    assert count({"query_string": {"query": f"event.dataset:{b}"}}) == 2
    assert count({"bool": {"must_not": {"term": {"event.dataset": a}}}}) == 2
    terms = {
        "d": {"terms": {"field": "event.dataset"}},
        "n": {"terms": {"field": "data_stream.namespace"}},
    }
    aggs = es.search(index=pattern, size=0, aggs=terms)["aggregations"]
    assert {x["key"]: x["doc_count"] for x in aggs["d"]["buckets"]} == streams
    assert aggs["n"]["buckets"] == [{"key": "default", "doc_count": 5}]
    sort = es.search(index=pattern, size=5, sort=[{"event.dataset": "desc"}])["hits"]["hits"]
    assert [nested(h["_source"])["event"]["dataset"] for h in sort] == [b, b, a, a, a]


def test_older_indices_with_indexed_keywords_query_alongside(
    es: Elasticsearch, template: None
) -> None:
    """A backing index from before template version 4 (the per-stream fields indexed)
    and a new one answer the same filter and aggregation together, and field
    capabilities show one searchable, aggregatable keyword field (no conflict in Kibana)."""
    tag = "tmplold" + uuid.uuid4().hex[:6]
    stream = f"logs-{tag}.keep_1d-default"
    old = f"logpipe-test-v3-{tag}"
    keyword = {"type": "keyword", "ignore_above": 1024}
    es.indices.create(
        index=old,
        mappings={
            "properties": {
                "@timestamp": {"type": "date_nanos"},
                "event": {"properties": {"dataset": keyword}},
                "data_stream": {
                    "properties": {"type": keyword, "dataset": keyword, "namespace": keyword}
                },
            }
        },
    )
    try:
        for index, n in ((old, 0), (stream, 1), (stream, 2)):
            es.index(index=index, document=_doc(tag, "1d", n), op_type="create", refresh=True)
        both = [old, stream]
        count = es.count(index=both, query={"term": {"event.dataset": tag}})["count"]
        assert count == 3
        aggs = es.search(
            index=both, size=0, aggs={"d": {"terms": {"field": "data_stream.dataset"}}}
        )["aggregations"]
        assert aggs["d"]["buckets"] == [{"key": f"{tag}.keep_1d", "doc_count": 3}]
        caps = es.field_caps(index=both, fields=list(PER_STREAM))["fields"]
        for path in PER_STREAM:
            [(kind, cap)] = caps[path].items()
            assert kind in ("keyword", "constant_keyword")
            assert cap["searchable"] is True
            assert cap["aggregatable"] is True
    finally:
        es.indices.delete(index=old, ignore_unavailable=True)


def test_documents_of_either_shape_read_the_same_across_the_upgrade(
    es: Elasticsearch, template: None
) -> None:
    """A stream whose older backing index has the object mappers of template version 4
    and whose newer one version 5's: a flat document (a version 5 collector's) indexes
    into the older, a nested one (an older collector's) into the newer; the same filters
    match both, and the read API answers both nested."""
    tag = "shape" + uuid.uuid4().hex[:6]
    stream = f"logs-{tag}.keep_1d-default"
    older = {"dynamic": False, "properties": MAPPINGS["properties"]}  # version 4's shape
    es.indices.put_index_template(
        name=f"logpipe-test-{tag}", index_patterns=[f"logs-{tag}.*"], priority=1000,
        data_stream={}, template={"mappings": older},
    )  # fmt: skip
    doc = {
        **_doc(tag, "1d", 1),
        "container": {"id": "c" * 64, "name": "web-1", "labels": {"com.example.team": "core"}},
        "log": {"level": "error"},
        "attributes": {"user.id": 7},
    }
    try:
        es.index(index=stream, document=flat(doc), op_type="create", refresh=True)
        es.indices.delete_index_template(name=f"logpipe-test-{tag}")
        es.indices.rollover(alias=stream)
        es.index(index=stream, document=doc, op_type="create", refresh=True)
        first, second = sorted(es.indices.get_mapping(index=stream).body.items())
        assert "container" in first[1]["mappings"]["properties"]  # object mappers
        assert "container.name" in second[1]["mappings"]["properties"]  # leaves
        for query in (
            {"term": {"container.name": "web-1"}},
            {"term": {"log.level": "error"}},
            {"term": {"container.labels.com.example.team": "core"}},
            {"term": {"attributes.user.id": "7"}},
            {"term": {"data_stream.type": "logs"}},
        ):
            assert es.count(index=stream, query=query)["count"] == 2, query
        hits = es.search(index=stream, sort=[{"_index": "asc"}])["hits"]["hits"]
        read = [orjson.loads(_line(h)) for h in hits]
        assert [{k: v for k, v in r.items() if k not in ("_id", "_index")} for r in read] == [
            doc,
            doc,
        ]
    finally:
        es.options(ignore_status=404).indices.delete_index_template(name=f"logpipe-test-{tag}")


def _shard(es: Elasticsearch, index: str) -> dict[str, Any]:
    stats = es.indices.stats(index=index, metric="docs,refresh", level="shards").body
    [(_, shards)] = stats["indices"].items()
    [copy] = shards["shards"]["0"]
    return dict(copy)


# Another test's search or refresh of logs-* would wake the idle stream.
@pytest.mark.alone
def test_streams_nobody_searches_skip_refreshes_and_a_search_still_sees_every_line(
    es: Elasticsearch, template: None
) -> None:
    """The backing indices keep Elasticsearch's refresh: a stream nobody searches is not
    refreshed while lines arrive (the node's work saved), and the next search waits
    for them and sees every one ("searchable within seconds" holds)."""
    tag = "idle" + uuid.uuid4().hex[:6]
    stream = f"logs-{tag}.keep_1d-default"
    es.index(index=stream, document=_doc(tag, "1d", 0), op_type="create")
    [(backing, settings)] = es.indices.get_settings(index=stream).body.items()
    assert "refresh_interval" not in settings["settings"]["index"]
    # Idle after 1 s instead of 30 s: only how long until idle, not what idle does.
    es.indices.put_settings(index=backing, settings={"index.search.idle.after": "1s"})
    wait_until(lambda: _shard(es, backing)["search_idle"], 30)
    before = _shard(es, backing)
    for n in range(1, 6):
        es.index(index=stream, document=_doc(tag, "1d", n), op_type="create")
    time.sleep(3)  # three refreshes of a stream that refreshes every second
    idle = _shard(es, backing)
    assert idle["search_idle"] is True
    assert idle["docs"]["count"] == before["docs"]["count"] < 6, "refreshed while idle"
    assert es.count(index=stream)["count"] == 6
    assert _shard(es, backing)["docs"]["count"] == 6


# Setup's mapping update goes to every logpipe stream on the node: another test's stream
# made or removed meanwhile fails it (404), and it changes their mappings.
@pytest.mark.alone
def test_unindexed_keys_are_kept_and_not_searchable_in_old_and_new_streams(
    es: Elasticsearch, template: None
) -> None:
    """A stream made before template version 6 gains `attributes_unindexed` from setup's
    mapping update, so its unindexed keys never become fields of their own there; in it
    and in a stream made from today's template, a document keeps the unindexed keys in
    `_source` (the read API answers them), the indexed ones are searched, the others
    not."""
    tag = "unidx" + uuid.uuid4().hex[:6]
    old_stream, new_stream = f"logs-{tag}.keep_1d-old", f"logs-{tag}.keep_1d-default"
    before = mappings()
    del before["properties"][UNINDEXED]  # version 5's
    es.indices.put_index_template(
        name=f"logpipe-test-{tag}", index_patterns=[f"logs-{tag}.keep_1d-old"], priority=1000,
        data_stream={}, template={"mappings": before},
    )  # fmt: skip
    doc = {
        **_doc(tag, "1d", 1),
        "attributes": {"user_id": 7},
        UNINDEXED: {"time": "2026-12-04T10:00:00Z", "req": {"id": uuid.uuid4().hex}},
    }
    try:
        es.index(index=old_stream, document={"@timestamp": "2026-01-01T00:00:00Z"}, refresh=True)
        assert asyncio.run(_add_unindexed()) is None
        for stream in (old_stream, new_stream):
            es.index(index=stream, document=flat(doc), op_type="create", refresh=True)
            [(_, mapping)] = es.indices.get_mapping(index=stream).body.items()
            props = mapping["mappings"]["properties"]
            assert props[UNINDEXED] == UNINDEXED_MAPPING, stream
            assert not [name for name in props if name.startswith(UNINDEXED + ".")], stream
            assert es.count(index=stream, query={"term": {"attributes.user_id": "7"}})["count"] == 1
            unsearched = {"term": {f"{UNINDEXED}.time": "2026-12-04T10:00:00Z"}}
            with pytest.raises(ApiError, match="since it is not indexed"):
                es.count(index=stream, query=unsearched)
            # Free text passes over it (Elasticsearch expands `*` to searchable fields).
            free = {"query_string": {"query": "7"}}
            assert es.count(index=stream, query=free)["count"] == 1
            hits = es.search(index=stream, query={"term": {"attributes.user_id": "7"}})
            [hit] = hits["hits"]["hits"]
            assert orjson.loads(_line(hit))[UNINDEXED] == doc[UNINDEXED]
    finally:
        es.options(ignore_status=404).indices.delete_index_template(name=f"logpipe-test-{tag}")


async def _add_unindexed() -> str | None:
    async with Sink(AsyncElasticsearch(ES_URL)) as sink:
        return await sink.add_mappings({UNINDEXED: UNINDEXED_MAPPING})
