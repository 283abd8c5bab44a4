"""`setup` checks the operator's `logpipe@custom` before it changes anything."""

from __future__ import annotations

import argparse

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError

from collector.__main__ import setup
from collector.config import CollectorConfig
from collector.errors import SetupError
from collector.es_failures import template_not_installed
from collector.templates import TEMPLATE_NAME
from tests.collector.fake_es import fake_es

ARGS = argparse.Namespace(wait=1.0, kibana_url=None, kibana_wait=1.0, dashboards=None)
GEOIP = {"template": {"settings": {"index": {"default_pipeline": "geoip"}}}}


async def test_setup_refuses_a_component_naming_a_missing_pipeline_and_changes_nothing() -> None:
    """A pipeline the component names that does not exist would make every line of each
    new backing index refused: setup exits 1 naming the setting and the pipeline, having
    installed nothing."""
    async with fake_es() as fake:
        fake.component = GEOIP
        with pytest.raises(SetupError) as caught:
            await setup(CollectorConfig(es_url=[fake.url], tokens=["t" * 32]), ARGS)
    assert fake.installed == {}
    assert (
        "index.default_pipeline names the ingest pipeline 'geoip', which does not exist"
    ) in str(caught.value)
    assert "Nothing was changed" in str(caught.value)


async def test_setup_takes_a_component_whose_pipeline_exists(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the pipeline there, the template is installed and setup says what it adds."""
    async with fake_es() as fake:
        fake.component, fake.pipelines = GEOIP, {"geoip"}
        await setup(CollectorConfig(es_url=[fake.url], tokens=["t" * 32]), ARGS)
    assert TEMPLATE_NAME in fake.installed
    assert (
        "component template 'logpipe@custom' adds setting index.default_pipeline"
        in capsys.readouterr().err
    )


async def test_setup_warns_when_it_may_not_read_pipelines_and_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A user without the privilege to read pipelines cannot tell whether one exists: a
    warning naming the setting, and the template installed (Elasticsearch is the judge)."""
    async with fake_es() as fake:
        fake.component, fake.pipeline_status = GEOIP, 403
        await setup(CollectorConfig(es_url=[fake.url], tokens=["t" * 32]), ARGS)
    assert TEMPLATE_NAME in fake.installed
    err = capsys.readouterr().err
    assert "warning: cannot read the ingest pipeline 'geoip'" in err
    assert "whether index.default_pipeline names one that exists is unchecked" in err


async def test_setup_refuses_objects_elasticsearch_cannot_flatten_before_installing() -> None:
    """Objects the component maps that Elasticsearch would refuse to compose are named, all
    of them, before the template is touched."""
    component = {
        "template": {
            "mappings": {
                "properties": {
                    "raw": {"type": "object", "enabled": False},
                    "team": {"type": "nested"},
                }
            }
        }
    }
    async with fake_es() as fake:
        fake.component = component
        with pytest.raises(SetupError) as caught:
            await setup(CollectorConfig(es_url=[fake.url], tokens=["t" * 32]), ARGS)
    assert fake.installed == {}
    assert "raw is an object with enabled: false" in str(caught.value)
    assert "team is nested" in str(caught.value)


def test_a_composition_elasticsearch_refuses_is_named_by_its_deepest_cause() -> None:
    """What setup did not foresee, Elasticsearch refuses: its reason (the last cause, which
    the client's text leaves out) and what to change are in the error."""
    cause = "mapper [x] cannot be changed from type [keyword] to [long]"
    invalid = (
        "composable template [logpipe] template after composition with component templates "
        "[logpipe@custom] is invalid"
    )
    body = {  # as the node answered (its reasons but the last)
        "error": {
            "root_cause": [{"type": "illegal_argument_exception", "reason": invalid}],
            "type": "illegal_argument_exception",
            "reason": invalid,
            "caused_by": {
                "type": "illegal_argument_exception",
                "reason": "invalid composite mappings for [logpipe]",
                "caused_by": {"type": "mapper_parsing_exception", "reason": cause},
            },
        },
        "status": 400,
    }
    meta = ApiResponseMeta(400, "1.1", HttpHeaders(), 0.0, NodeConfig("http", "localhost", 9200))
    with pytest.raises(SetupError) as caught:
        template_not_installed(ApiError("illegal_argument_exception", meta, body))
    message = str(caught.value)
    assert message.startswith("cannot install the index template: ")
    assert f": {cause}. Elasticsearch cannot compose logpipe@custom into it: change " in message
