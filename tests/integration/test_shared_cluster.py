"""logpipe beside another tool's `logs-*-*` data streams (Elastic Agent, Filebeat) on one cluster.

The other tool is played by an index template at a Fleet integration's priority (200) for
`logs-nginx.access-*`. Data streams and templates in use cannot be deleted on the test
node, so all of this runs on the private node, never on the shared one.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from elasticsearch import ApiError, AsyncElasticsearch, Elasticsearch, NotFoundError

from collector.custom import UNSEARCHABLE
from collector.enrich import Doc
from collector.errors import RetryableSinkError
from collector.retention.lifecycle import apply, plan
from collector.retention.rules import RetentionConfig, RetentionRules
from collector.sink import Sink, SinkSettings
from collector.templates import (
    CUSTOM_TEMPLATE,
    DEADLETTER_STREAM,
    INDEX_PATTERNS,
    TEMPLATE_NAME,
    index_template,
)
from tests.conftest import PrivateElasticsearch, setup_template
from tests.integration.test_collector_outages import FALLBACK, remove_template, setup_command

pytestmark = pytest.mark.integration

DASHBOARDS = "dashboards/logpipe-data-view.ndjson"
OLD = "2020-01-01T00:00:00Z"
OTHER_TEMPLATE = "other-tool-nginx"
OTHER_META = {"tool": "other-tool"}
# The other tool's own mapping: `message` a keyword where ours is text.
OTHER_PROPERTIES = {
    "message": {"type": "keyword"},
    "host": {"properties": {"name": {"type": "keyword"}}},
}


@pytest.fixture
def uid() -> str:
    """A suffix of this test alone."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def other_tool(private_es: PrivateElasticsearch, uid: str) -> str:
    """Another tool's template for `logs-nginx.access-*` at priority 200: a new stream's name."""
    private_es.client.indices.put_index_template(
        name=OTHER_TEMPLATE,  # one name: two templates of one priority and pattern are refused
        index_patterns=["logs-nginx.access-*"],
        priority=200,
        data_stream={},
        template={"mappings": {"_meta": OTHER_META, "properties": OTHER_PROPERTIES}},
    )
    return f"logs-nginx.access-{uid}"


@pytest.fixture
def logpipe_setup(private_es: PrivateElasticsearch) -> str:
    """`logpipe-collector setup` run against the private node: what it printed."""
    done = setup_command(private_es.url)
    assert done.returncode == 0, done.stderr
    return done.stderr


def _index(es: Elasticsearch, stream: str, timestamp: str | None = None, host: str = "h") -> None:
    """One document into `stream`, dated `timestamp` (default: now)."""
    timestamp = timestamp or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    doc = {"@timestamp": timestamp, "message": "GET / 200", "host": {"name": host}}
    es.index(index=stream, document=doc, op_type="create", refresh=True)


def _mapping(es: Elasticsearch, stream: str) -> dict[str, Any]:
    """The mapping of the stream's write index."""
    *_, write = es.indices.get(index=stream).body.values()
    return dict(write["mappings"])


def _simulated(es: Elasticsearch, name: str) -> dict[str, Any]:
    """What Elasticsearch would create for a new index `name`."""
    return dict(es.indices.simulate_index_template(name=name).body)


def test_setup_leaves_another_tools_stream_to_its_own_template(
    private_es: PrivateElasticsearch, other_tool: str, logpipe_setup: str, uid: str
) -> None:
    """After setup, another tool's logs-nginx.access-* stream gets its own template, ours ours."""
    es = private_es.client
    assert f"installed for {' '.join(INDEX_PATTERNS)}" in logpipe_setup
    simulated = _simulated(es, other_tool)
    assert simulated["template"]["mappings"]["_meta"] == OTHER_META
    assert simulated["template"]["mappings"]["properties"]["message"]["type"] == "keyword"

    _index(es, other_tool)
    mapping = _mapping(es, other_tool)
    assert mapping["_meta"] == OTHER_META
    assert mapping["properties"]["message"]["type"] == "keyword"
    assert "attributes" not in mapping["properties"]

    ours = f"logs-nginx.access.keep_14d-{uid}"
    _index(es, ours)
    for mapping in (_mapping(es, ours), _simulated(es, DEADLETTER_STREAM)["template"]["mappings"]):
        assert mapping.get("_meta") != OTHER_META
        assert mapping["properties"]["message"]["type"] == "text"
        assert mapping["properties"]["attributes"]["type"] == "flattened"


def test_data_view_shows_logpipes_streams_and_not_another_tools(
    private_es: PrivateElasticsearch, other_tool: str, logpipe_setup: str, uid: str
) -> None:
    """The Kibana data view's index pattern finds logpipe's documents, not the other tool's."""
    es, host = private_es.client, f"dv-{uid}"
    with open(DASHBOARDS) as lines:
        [data_view] = [json.loads(line) for line in lines if line.strip()]
    _index(es, other_tool, host=host)
    _index(es, f"logs-docker.keep_14d-{uid}", host=host)
    found = es.search(index=data_view["attributes"]["title"], query={"term": {"host.name": host}})
    assert [h["_index"].startswith(".ds-logs-docker.keep_14d-") for h in found["hits"]["hits"]] == [
        True
    ]


@pytest.fixture
async def aes(private_es: PrivateElasticsearch) -> AsyncIterator[AsyncElasticsearch]:
    """An async client of the private node, as retention uses."""
    async with AsyncElasticsearch(private_es.url, request_timeout=60) as client:
        yield client


def _old_generation(es: Elasticsearch, stream: str) -> str:
    """A document from 2020 in the stream, rolled over: the backing index now past retention."""
    _index(es, stream, OLD)
    es.indices.rollover(alias=stream)
    _index(es, stream)
    names: list[str] = list(es.indices.get(index=stream).body)
    return min(names, key=lambda name: name[-6:])


async def test_retention_never_lists_rolls_over_or_deletes_another_tools_stream(
    private_es: PrivateElasticsearch,
    other_tool: str,
    logpipe_setup: str,
    aes: AsyncElasticsearch,
    uid: str,
) -> None:
    """retention plan/apply skip another tool's stream with an expired backing index entirely."""
    es, ns = private_es.client, uid
    theirs_old = _old_generation(es, other_tool)
    ours = f"logs-docker.keep_2d-{ns}"
    ours_old = _old_generation(es, ours)
    theirs_before = sorted(es.indices.get(index=other_tool).body)
    rules = RetentionRules(RetentionConfig.model_validate({"default": "2d"}))
    clock = time.time

    planned = {p.stream for p in await plan(aes, rules, clock)}
    assert ours in planned
    assert other_tool not in planned

    done = await apply(aes, rules, clock, f"logs-*-{ns}")
    assert {p.stream for p in done.plans} == {ours}
    assert done.deleted == (ours_old,)
    assert other_tool not in done.rolled_over
    assert sorted(es.indices.get(index=other_tool).body) == theirs_before
    assert theirs_old in theirs_before


def test_setup_says_which_streams_would_lose_their_only_template(
    private_es: PrivateElasticsearch, uid: str
) -> None:
    """A stream only the old logs-*-* template matched: setup names it and says what to do."""
    es, stream = private_es.client, f"logs-filebeat-{uid}"
    old = index_template() | {"index_patterns": ["logs-*-*"]}
    es.indices.put_index_template(name=TEMPLATE_NAME, **old)
    with contextlib.suppress(NotFoundError):  # a low-priority logs-*-* another test may leave
        es.indices.delete_index_template(name=FALLBACK)
    _index(es, stream)
    refused = setup_command(private_es.url)
    assert refused.returncode != 0
    assert stream in refused.stderr
    assert "Give those data streams an index template of their own" in refused.stderr
    assert "Traceback" not in refused.stderr
    es.indices.put_index_template(
        name=f"filebeat-{uid}", index_patterns=[stream], priority=200, data_stream={}
    )
    done = setup_command(private_es.url)
    assert done.returncode == 0, done.stderr


def test_the_operators_component_template_adds_to_logpipes_streams_and_overrides_nothing(
    private_es: PrivateElasticsearch, uid: str
) -> None:
    """`logpipe@custom` adds its settings and fields to logpipe's new backing indices; what
    logpipe's template sets itself stays logpipe's, and setup says which is which."""
    es = private_es.client
    es.cluster.put_component_template(
        name=CUSTOM_TEMPLATE,
        template={
            "settings": {"index.mapping.total_fields.limit": 3000, "number_of_replicas": 2},
            "mappings": {
                "properties": {"team": {"type": "keyword"}, "message": {"type": "keyword"}}
            },
        },
    )
    try:
        done = setup_command(private_es.url)
        assert done.returncode == 0, done.stderr
        assert (
            "component template 'logpipe@custom' adds setting index.mapping.total_fields.limit, "
            "field team (to each stream's next backing index)"
        ) in done.stderr
        assert (
            "warning: logpipe's template sets index.number_of_replicas and maps message itself, "
            "so logpipe@custom's are not used; set LOGPIPE_INDEX__REPLICAS instead"
        ) in done.stderr
        stream = f"logs-docker.keep_14d-{uid}"
        _index(es, stream)
        [index] = es.indices.get_settings(index=stream).body.values()
        assert index["settings"]["index"]["mapping"]["total_fields"]["limit"] == "3000"
        assert index["settings"]["index"]["number_of_replicas"] == "0"
        mapping = _mapping(es, stream)
        assert mapping["properties"]["team"] == {"type": "keyword"}
        assert mapping["properties"]["message"]["type"] == "text"
    finally:
        es.cluster.delete_component_template(name=CUSTOM_TEMPLATE)
    done = setup_command(private_es.url)
    assert done.returncode == 0, done.stderr
    assert "no component template 'logpipe@custom'" in done.stderr


@contextlib.contextmanager
def _custom(es: Elasticsearch, template: dict[str, Any]) -> Iterator[None]:
    """`logpipe@custom` holding `template` for the block, and none after it (every test of
    the private node may meet it: it is never left in place)."""
    es.cluster.put_component_template(name=CUSTOM_TEMPLATE, template=template)
    try:
        yield
    finally:
        with contextlib.suppress(NotFoundError):
            es.cluster.delete_component_template(name=CUSTOM_TEMPLATE)


def _flat_doc(**fields: Any) -> dict[str, Any]:
    """A document as the collector sends it: flat, dotted names."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"@timestamp": now, "message": "GET / 200", "host.name": "h", **fields}


def test_objects_in_the_component_become_dotted_names_and_take_logpipes_documents(
    private_es: PrivateElasticsearch, logpipe_setup: str, uid: str
) -> None:
    """A field the operator writes nested in plain objects, as Elasticsearch's docs do, is
    flattened by Elasticsearch into its dotted name, as logpipe's fields are: setup takes
    it, and a backing index maps it and indexes logpipe's flat documents into it."""
    es = private_es.client
    geo = {"source": {"properties": {"geo": {"properties": {"location": {"type": "geo_point"}}}}}}
    with _custom(es, {"mappings": {"properties": geo}}):
        done = setup_command(private_es.url)
        assert done.returncode == 0, done.stderr
        assert "adds field source.geo.location (to each stream's next backing index)" in done.stderr
        stream = f"logs-docker.keep_14d-{uid}"
        doc = _flat_doc(**{"source.ip": "10.0.0.1", "source.geo.location": {"lat": 1, "lon": 2}})
        es.index(index=stream, document=doc, op_type="create", refresh=True)
        props = _mapping(es, stream)["properties"]
        assert props["source.geo.location"] == {"type": "geo_point"}
        assert props["source.ip"] == {"type": "ip"}
        near = {"geo_distance": {"distance": "1km", "source.geo.location": {"lat": 1, "lon": 2}}}
        assert es.count(index=stream, query=near)["count"] == 1


def test_setup_refuses_objects_elasticsearch_cannot_flatten_naming_what_to_write(
    private_es: PrivateElasticsearch, uid: str
) -> None:
    """Objects that set `enabled: false` or `dynamic`, and `nested` fields, Elasticsearch
    refuses to compose under logpipe's flat mappings, naming the first deep in its causes:
    setup names them all, with what to write instead, and installs nothing."""
    es = private_es.client
    remove_template(private_es)  # the component comes first, as on a cluster before setup
    mappings = {
        "properties": {
            "raw": {"type": "object", "enabled": False},
            "kubernetes": {"dynamic": False, "properties": {"pod": {"type": "keyword"}}},
            "spans": {"type": "nested"},
        }
    }
    try:
        with _custom(es, {"mappings": mappings}):
            refused = setup_command(private_es.url)
            assert refused.returncode == 1, refused.stderr
            assert "Traceback" not in refused.stderr
            for said in (
                "component template 'logpipe@custom' cannot work in logpipe's streams: ",
                f"raw is an object with enabled: false; to keep it unsearchable, map raw as "
                f"{UNSEARCHABLE}",
                "kubernetes is an object with dynamic: false; leave dynamic out",
                "spans is nested, which needs object mappers: map it as flattened",
                "Nothing was changed",
            ):
                assert said in refused.stderr
            assert not es.indices.exists_index_template(name=TEMPLATE_NAME)
            # What setup foresaw Elasticsearch refuses: one of them, named deep in its causes
            # ("Tried to add nested object [spans] to object [_doc] which does not support
            # subobjects" on 9.2), each alone too.
            for name, spec in mappings["properties"].items():
                es.cluster.put_component_template(
                    name=CUSTOM_TEMPLATE, template={"mappings": {"properties": {name: spec}}}
                )
                with pytest.raises(ApiError, match="invalid") as caught:
                    es.indices.put_index_template(name=TEMPLATE_NAME, **setup_template(es))
                assert f"[{name}]" in json.dumps(caught.value.body)
            # The form setup says to write instead is taken.
            fixed = {"raw": json.loads(UNSEARCHABLE), "kubernetes.pod": {"type": "keyword"}}
            es.cluster.put_component_template(
                name=CUSTOM_TEMPLATE, template={"mappings": {"properties": fixed}}
            )
            done = setup_command(private_es.url)
            assert done.returncode == 0, done.stderr
            assert "adds field kubernetes.pod, field raw" in done.stderr
    finally:
        done = setup_command(private_es.url)
        assert done.returncode == 0, done.stderr


def test_setup_refuses_a_component_naming_a_missing_pipeline(
    private_es: PrivateElasticsearch, logpipe_setup: str, uid: str
) -> None:
    """Elasticsearch takes a component whose index.default_pipeline names no pipeline,
    then refuses every line of each index made with it: setup refuses it, naming the
    setting and the pipeline, and leaves the template as it was until the pipeline exists."""
    es, pipeline = private_es.client, f"logpipe-test-geoip-{uid}"
    before = es.indices.get_index_template(name=TEMPLATE_NAME).body
    with _custom(es, {"settings": {"index.default_pipeline": pipeline}}):
        # Another codec: a template installed all the same would differ from the one before.
        refused = setup_command(private_es.url, index__codec="default")
        assert refused.returncode == 1, refused.stderr
        assert (
            f"index.default_pipeline names the ingest pipeline '{pipeline}', which does not "
            f"exist: Elasticsearch would refuse every line of each stream's next backing index"
        ) in refused.stderr
        assert es.indices.get_index_template(name=TEMPLATE_NAME).body == before
        es.ingest.put_pipeline(id=pipeline, processors=[])
        try:
            done = setup_command(private_es.url)
            assert done.returncode == 0, done.stderr
            assert "adds setting index.default_pipeline" in done.stderr
        finally:
            es.ingest.delete_pipeline(id=pipeline)


async def test_lines_of_a_stream_whose_pipeline_is_missing_wait_then_land_in_their_stream(
    private_es: PrivateElasticsearch, logpipe_setup: str, aes: AsyncElasticsearch, uid: str
) -> None:
    """A pipeline named after setup ran, and missing, makes the node refuse each line
    (400); the lines are not dead-lettered (whose stream names it too) but wait, the
    503 naming the pipeline, and land in their stream once it is created."""
    es, pipeline = private_es.client, f"logpipe-test-audit-{uid}"
    stream = f"logs-docker.keep_14d-{uid}"
    doc = Doc(f"p-{uid}", stream, _flat_doc(), "GET / 200")
    settings = SinkSettings(retry_deadline=2, backoff_initial=0.1, backoff_max=0.2)
    with _custom(es, {"settings": {"index.final_pipeline": pipeline}}):
        async with Sink(AsyncElasticsearch(private_es.url), settings) as sink:
            with pytest.raises(RetryableSinkError) as caught:
                await sink.write([doc])
            assert caught.value.status == 503
            assert f"pipeline with id [{pipeline}] does not exist: the ingest pipeline" in str(
                caught.value
            )
            assert not es.indices.exists(index=stream)
            es.ingest.put_pipeline(id=pipeline, processors=[])
            try:
                outcome = await sink.write([doc])
                assert (outcome.indexed, outcome.dead_lettered) == (1, 0)
            finally:
                # The node keeps a pipeline an index names: the stream lets go of it first.
                es.indices.put_settings(index=stream, settings={"index.final_pipeline": None})
                es.ingest.delete_pipeline(id=pipeline)
    dead = es.search(index="logs-logpipe.deadletter-*", query={"ids": {"values": [doc.id]}})
    assert dead["hits"]["hits"] == []
