"""What applications print never breaks the mapping: real containers, shipper, collector, node.

Conflicting JSON types and thousands of distinct keys are indexed (they live in one
`flattened` field); what the node does refuse is dead-lettered with its reason and the
original line.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import docker
import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from collector.enrich import Doc
from collector.errors import RetryableSinkError
from collector.shape import nested
from collector.sink import Sink, SinkSettings
from collector.templates import DEADLETTER_STREAM
from tests.conftest import (
    ES_URL,
    REFUSED_FIELD,
    REFUSED_KEY,
    Pipeline,
    refusing_template,
    wait_until,
)

pytestmark = pytest.mark.integration


def run(client: docker.DockerClient, p: Pipeline, script: str) -> Any:
    """A busybox container in the pipeline's scope running `script`."""
    return client.containers.run(
        "busybox:latest", ["sh", "-c", script], detach=True, network_mode="none", labels=p.labels
    )


def echo_lines(lines: list[str]) -> str:
    """A shell script printing `lines` verbatim."""
    return "; ".join("echo " + "'" + line.replace("'", "'\\''") + "'" for line in lines)


def dead_letters(pipeline: Pipeline) -> int:
    """How many of the pipeline's documents were dead-lettered."""
    # On a fresh node the dead-letter stream exists only once something was refused.
    pipeline.es.indices.refresh(index=DEADLETTER_STREAM, ignore_unavailable=True)
    found = pipeline.es.count(
        index=DEADLETTER_STREAM, query=pipeline.query(), ignore_unavailable=True
    )
    return int(found["count"])


def mapped_fields(es: Elasticsearch, index: str) -> set[str]:
    """Every field path in the mappings of `index` (all its backing indices)."""
    paths: set[str] = set()

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            paths.add(prefix + name)
            walk(spec.get("properties", {}), f"{prefix}{name}.")

    for mapping in es.indices.get_mapping(index=index).body.values():
        walk(mapping["mappings"].get("properties", {}), "")
    return paths


def test_conflicting_json_types_from_two_containers_are_both_indexed(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """{"code": 3} beside {"code": "E3"}, and nested beside scalar under one key, all indexed."""
    numbers = [
        json.dumps({"msg": f"n{i}", "level": 3, "code": i, "ctx": {"user": "ann"}})
        for i in range(5)
    ]
    strings = [
        json.dumps({"msg": f"s{i}", "level": "info", "code": f"E{i}", "ctx": "flat"})
        for i in range(5)
    ]
    first = run(docker_client, pipeline, echo_lines(numbers))
    second = run(docker_client, pipeline, echo_lines(strings))
    pipeline.wait_count(10, {"exists": {"field": "stream"}})
    by_container = {
        c.id: sorted(
            d["message"] for d in pipeline.docs({"term": {"container.id": c.id}}) if "stream" in d
        )
        for c in (first, second)
    }
    assert by_container[first.id] == [f"n{i}" for i in range(5)]
    assert by_container[second.id] == [f"s{i}" for i in range(5)]
    assert pipeline.count({"term": {"attributes.code": "E3"}}) == 1
    assert pipeline.count({"term": {"attributes.code": "3"}}) == 1
    assert pipeline.count({"term": {"attributes.ctx.user": "ann"}}) == 5
    assert pipeline.count({"term": {"attributes.ctx": "flat"}}) == 5
    assert dead_letters(pipeline) == 0, "nothing of this may be refused"


def test_ten_thousand_distinct_keys_leave_the_mapping_alone(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """10,000 lines with 10,000 different keys are all indexed; the mapping does not grow."""
    script = (
        "awk 'BEGIN { for (i = 0; i < 10000; i++) "
        'printf "{\\"msg\\":\\"k%d\\",\\"key_%d\\":%d}\\n", i, i, i }\''
    )
    c = run(docker_client, pipeline, script)
    query = {
        "bool": {"filter": [{"term": {"container.id": c.id}}, {"exists": {"field": "stream"}}]}
    }
    pipeline.wait_count(10000, query, timeout=180)
    assert pipeline.count(query) == 10000
    assert pipeline.count({"term": {"attributes.key_4242": "4242"}}) == 1
    [doc] = pipeline.docs({"term": {"attributes.key_9999": "9999"}})
    index = f"logs-{doc['data_stream']['dataset']}-{doc['data_stream']['namespace']}"
    fields = mapped_fields(pipeline.es, index)
    assert not any("key_" in f for f in fields)
    assert len(fields) < 150, f"{len(fields)} mapped fields"


def test_json_nested_deeper_than_flattened_takes_is_indexed_the_deep_part_as_text(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """25 objects deep: the node takes 20 in `attributes`; the object too deep is kept as
    its JSON text, searchable, and nothing goes to the dead letters."""
    deep: Any = "bottom"
    for level in range(25):
        deep = {f"l{level}": deep}
    line = json.dumps({"msg": "too deep", "tree": deep})
    c = run(docker_client, pipeline, echo_lines(["before", line, "after"]))
    pipeline.wait_count(3, {"term": {"container.id": c.id}})
    [doc] = pipeline.docs({"term": {"message": "deep"}})
    assert doc["container"]["id"] == c.id
    held: Any = doc["attributes"]["tree"]
    path = ["tree"]
    while isinstance(held, dict):
        [(key, held)] = held.items()
        path.append(key)
    assert len(path) == 20  # the keys of 20 objects, `attributes` itself counted
    assert json.loads(held) == {"l5": {"l4": {"l3": {"l2": {"l1": {"l0": "bottom"}}}}}}
    assert pipeline.count({"term": {f"attributes.{'.'.join(path)}": held}}) == 1
    pipeline.es.indices.refresh(index=DEADLETTER_STREAM, ignore_unavailable=True)
    dead = pipeline.es.count(
        index=DEADLETTER_STREAM, query={"term": {"container.id": c.id}}, ignore_unavailable=True
    )["count"]
    assert dead == 0


def test_document_the_node_refuses_is_dead_lettered_with_reason_and_line(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """A document the node refuses (an operator's template maps the line's logger as a
    long) is dead-lettered with its reason and line, counted."""
    pipeline = pipeline_factory()
    refusing_template(pipeline.es, pipeline.dataset)
    pipeline.start()
    line = json.dumps({"msg": "refused", REFUSED_KEY: "app"})
    c = run(docker_client, pipeline, echo_lines(["before", line, "after"]))
    pipeline.wait_count(2, {"term": {"container.id": c.id}})
    es = pipeline.es

    def dead_letters() -> list[dict[str, Any]]:
        # the stream is made by the first dead letter: on a fresh node, not there yet
        es.indices.refresh(index=DEADLETTER_STREAM, ignore_unavailable=True)
        query = {"bool": {"filter": [{"term": {"container.id": c.id}}]}}
        found = es.search(index=DEADLETTER_STREAM, query=query, ignore_unavailable=True)
        return [nested(h["_source"]) for h in found["hits"]["hits"]]

    [dead] = wait_until(dead_letters, 60)
    assert dead["event"]["original"] == line
    assert f"failed to parse field [{REFUSED_FIELD}] of type [long]" in dead["error"]["message"]
    assert dead["error"]["type"] == "rejected_by_elasticsearch"
    assert dead["message"] == "refused"
    assert dead["host"]["name"] == pipeline.host
    assert dead["event"]["reason"].startswith("refused by logs-")
    indexed = [
        d["message"]
        for d in pipeline.docs({"term": {"container.id": c.id}})
        if "stream" in d and "dead_letter" not in d.get("tags", [])
    ]
    assert sorted(indexed) == ["after", "before"]
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{pipeline.port}/metrics").read().decode()
    assert "logpipe_collector_records_dead_lettered_total 1.0" in metrics
    assert 'logpipe_collector_requests_total{status="200"}' in metrics


def test_a_stream_no_template_makes_a_data_stream_is_not_made_a_plain_index(
    es: Elasticsearch,
) -> None:
    """With logpipe's template gone (a node wiped, `setup` not run again yet), a stream's
    first line made it a plain index, with dynamic mappings and outside retention, that
    every later line of the stream went to for good. Its lines wait instead: the
    collector retries, then answers 503, and the shipper keeps them."""
    stream = f"nodatastream-{uuid.uuid4().hex[:8]}"  # a name no template makes a stream
    doc = Doc("d0", stream, {"@timestamp": "2024-05-01T00:00:00Z", "message": "x"}, "x")

    async def write() -> None:
        settings = SinkSettings(retry_deadline=2, backoff_initial=0.1, backoff_max=0.2)
        async with Sink(AsyncElasticsearch(ES_URL), settings) as sink:
            with pytest.raises(RetryableSinkError, match="requires a data stream"):
                await sink.write([doc])

    asyncio.run(write())
    assert not es.indices.exists(index=stream)


@pytest.mark.parametrize("native", ["1", "0"])
def test_well_known_keys_of_the_wrong_type_are_kept_searchable(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient, native: str
) -> None:
    """`{"level": 3, "msg": {"a": 1}}`: no level and no message taken, the line indexed
    whole as the message, both values searchable in attributes, nothing dead-lettered;
    on the compiled hot path (where installed) and the Python path alike."""
    pipeline = pipeline_factory(collector_native=native).start()
    lines = [
        json.dumps({"level": 3, "msg": {"a": 1}}),
        json.dumps({"severity": True, "message": [1, 2], "ctx": "x"}),
        json.dumps({"level": None, "msg": None}),
    ]
    c = run(docker_client, pipeline, echo_lines(lines))
    query = {
        "bool": {"filter": [{"term": {"container.id": c.id}}, {"exists": {"field": "stream"}}]}
    }
    pipeline.wait_count(3, query)
    docs = sorted(pipeline.docs(query), key=lambda d: d["message"])
    assert [d["message"] for d in docs] == sorted(lines)
    assert not any("level" in d.get("log", {}) for d in docs)
    assert pipeline.count({"term": {"attributes.level": "3"}}) == 1
    assert pipeline.count({"term": {"attributes.msg.a": "1"}}) == 1
    assert pipeline.count({"term": {"attributes.severity": "true"}}) == 1
    assert pipeline.count({"term": {"attributes.message": "2"}}) == 1
    assert pipeline.count({"match_phrase": {"message": '"msg": {"a": 1}'}}) == 1
    assert dead_letters(pipeline) == 0, "nothing of this may be refused"
