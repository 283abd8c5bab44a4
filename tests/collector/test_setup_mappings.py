"""`setup` maps the per-stream fields as constant_keyword only where the cluster has it."""

from __future__ import annotations

import argparse

import pytest
from elasticsearch import AsyncElasticsearch

from collector.__main__ import setup
from collector.attributes import UNINDEXED
from collector.config import CollectorConfig
from collector.sink import Sink
from collector.templates import (
    INDEX_PATTERNS,
    PER_STREAM,
    TEMPLATE_NAME,
    UNINDEXED_MAPPING,
    index_template,
)
from tests.collector.fake_es import fake_es
from tests.conftest import free_port


@pytest.mark.parametrize(("status", "constant"), [(200, True), (400, False)])
async def test_setup_installs_the_mapping_the_cluster_can_take(
    status: int, constant: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cluster that accepts constant_keyword gets it for data_stream.* and event.dataset;
    one that refuses it gets the doc-values keywords; setup says which."""
    async with fake_es() as fake:
        fake.simulate_status = status
        config = CollectorConfig(es_url=[fake.url], tokens=["t" * 32])
        args = argparse.Namespace(wait=1.0, kibana_url=None, kibana_wait=1.0, dashboards=None)
        await setup(config, args)
    installed = fake.installed[TEMPLATE_NAME]
    assert (
        installed["template"]["mappings"]
        == (index_template(constant_keyword=constant)["template"]["mappings"])
    )
    props = installed["template"]["mappings"]["properties"]
    for path in PER_STREAM:
        assert props[path]["type"] == ("constant_keyword" if constant else "keyword")
    err = capsys.readouterr().err
    assert ("mapped as constant_keyword" in err) is constant
    assert ("no constant_keyword" in err) is not constant


@pytest.mark.parametrize("status", [200, 403])
async def test_setup_maps_the_unindexed_keys_in_streams_made_before(
    status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Setup adds `attributes_unindexed` to every backing index of logpipe's streams
    (made from an older template, they would map each unindexed key as a field); a
    cluster that refuses it gets a warning naming the setting, and the template still."""
    async with fake_es() as fake:
        fake.mapping_status = status
        config = CollectorConfig(es_url=[fake.url], tokens=["t" * 32])
        args = argparse.Namespace(wait=1.0, kibana_url=None, kibana_wait=1.0, dashboards=None)
        await setup(config, args)
    assert TEMPLATE_NAME in fake.installed
    err = capsys.readouterr().err
    if status == 200:
        assert fake.mapped == [
            (",".join(INDEX_PATTERNS), {"properties": {UNINDEXED: UNINDEXED_MAPPING}})
        ]
        assert "warning" not in err
    else:
        assert fake.mapped == []
        assert f"warning: could not map {UNINDEXED} in the existing streams" in err
        assert "LOGPIPE_INDEXED_ATTRIBUTES" in err


async def test_an_unreachable_cluster_is_asked_no_constant_keyword() -> None:
    """The probe's failure of any kind says no: the keyword mapping works everywhere."""
    client = AsyncElasticsearch(f"http://127.0.0.1:{free_port()}", max_retries=0)
    async with Sink(client) as sink:
        assert await sink.has_constant_keyword() is False
