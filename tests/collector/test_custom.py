"""What `setup` says of the operator's `logpipe@custom`, and what it refuses there."""

from __future__ import annotations

from typing import Any

from collector.custom import (
    custom_additions,
    missing_pipeline,
    pipelines,
    refusal,
    unflattenable,
)
from collector.templates import index_template


def _mappings(properties: dict[str, Any]) -> dict[str, Any]:
    """A component whose mappings hold `properties`."""
    return {"template": {"mappings": {"properties": properties}}}


def test_setup_says_where_settings_of_ones_own_go_when_there_is_no_component() -> None:
    [line] = custom_additions(None, index_template())
    assert line.startswith("no component template 'logpipe@custom'")


def test_setup_lists_what_the_component_adds_nested_or_dotted() -> None:
    """Settings as Elasticsearch answers them (nested) and as written (dotted, no `index.`)
    read the same; fields nested in objects by their dotted names."""
    component = {
        "template": {
            "settings": {
                "index": {
                    "default_pipeline": "geoip",
                    "mapping": {"total_fields": {"limit": "3000"}},
                },
                "routing.allocation.require.box": "hot",
            },
            "mappings": {
                "properties": {
                    "team": {"type": "keyword"},
                    "source": {
                        "properties": {"geo": {"properties": {"location": {"type": "geo_point"}}}}
                    },
                },
                "dynamic_templates": [{"strings": {"match_mapping_type": "string"}}],
            },
        }
    }
    [line] = custom_additions(component, index_template())
    assert line == (
        "component template 'logpipe@custom' adds setting index.default_pipeline, setting "
        "index.mapping.total_fields.limit, setting index.routing.allocation.require.box, field "
        "source.geo.location, field team, dynamic template strings (tried before logpipe's) "
        "(to each stream's next backing index)"
    )
    assert custom_additions({"template": {}}, index_template()) == [
        "component template 'logpipe@custom' adds nothing (to each stream's next backing index)"
    ]


def test_setup_warns_of_what_logpipes_own_template_overrides() -> None:
    """A setting or field logpipe's template sets itself is logpipe's: said, with the
    collector setting to use instead where there is one."""
    component = {
        "template": {
            "settings": {"index": {"number_of_replicas": "2", "codec": "default", "hidden": "x"}},
            "mappings": {"properties": {"message": {"type": "keyword"}}, "subobjects": True},
        }
    }
    adds, warning = custom_additions(component, index_template(refresh_interval="5s"))
    assert adds == (
        "component template 'logpipe@custom' adds setting index.hidden (to each stream's next "
        "backing index)"
    )
    assert warning == (
        "warning: logpipe's template sets index.codec, index.number_of_replicas and maps "
        "message and sets the mapping parameter subobjects itself, so logpipe@custom's are "
        "not used; set LOGPIPE_INDEX__CODEC, LOGPIPE_INDEX__REPLICAS instead"
    )


def test_setup_warns_that_a_lifecycle_deletes_beside_logpipes_retention() -> None:
    for component in (
        {"template": {"lifecycle": {"data_retention": "7d"}}},
        {"template": {"settings": {"index.lifecycle.name": "logs"}}},
    ):
        lines = custom_additions(component, index_template())
        assert lines[-1].startswith("warning: logpipe@custom gives logpipe's streams a lifecycle")


def test_plain_objects_and_dotted_names_are_no_problem() -> None:
    """A plain object Elasticsearch flattens into dotted names, as logpipe's fields are;
    dotted names, `subobjects: false`, `dynamic: true` and a field logpipe maps under its
    dotted name (logpipe's mapping wins, said as a warning) are taken as they are."""
    component = _mappings(
        {
            "source": {"properties": {"geo": {"properties": {"location": {"type": "geo_point"}}}}},
            "host.name": {"type": "text"},
            "host": {"properties": {"name": {"type": "keyword", "ignore_above": 256}}},
            "extra": {"type": "object", "dynamic": True, "subobjects": False, "properties": {}},
            "raw": {"type": "flattened", "index": False, "doc_values": False},
        }
    )
    assert unflattenable(component, index_template()) == []
    assert unflattenable(None, index_template()) == []
    assert unflattenable({"template": {}}, index_template()) == []


def test_what_elasticsearch_cannot_flatten_is_named_with_what_to_write_instead() -> None:
    """Every object Elasticsearch refuses under logpipe's flat mappings is named, however
    deep, each with the form that works: the first alone is in Elasticsearch's refusal."""
    component = _mappings(
        {
            "raw": {"type": "object", "enabled": False},
            "kubernetes": {
                "dynamic": "false",
                "properties": {"labels": {"type": "nested"}, "pod": {"subobjects": True}},
            },
            "http": {
                "properties": {"response": {"properties": {"status_code": {"type": "keyword"}}}}
            },
        }
    )
    assert unflattenable(component, index_template()) == [
        'raw is an object with enabled: false; to keep it unsearchable, map raw as {"type": '
        '"flattened", "index": false, "doc_values": false}',
        "kubernetes is an object with dynamic: false; leave dynamic out (logpipe's streams "
        "keep the names no mapping names unsearchable) and map the fields you search by "
        "their dotted names (kubernetes.<name>)",
        "kubernetes.labels is nested, which needs object mappers: map it as flattened, or "
        "the fields under it by their dotted names",
        "kubernetes.pod is an object with subobjects: true; leave subobjects out",
        "http.response.status_code (written under objects) is a field logpipe maps itself, "
        "as long: Elasticsearch refuses another type there; remove it (logpipe's mapping is "
        "the one used)",
    ]


def test_the_pipelines_a_component_names_nested_or_dotted() -> None:
    """Both pipeline settings are found as Elasticsearch answers them (nested) or as
    written (dotted, with or without `index.`); `_none` names no pipeline."""
    nested = {"template": {"settings": {"index": {"default_pipeline": "geoip"}}}}
    assert pipelines(nested) == {"index.default_pipeline": "geoip"}
    dotted = {"template": {"settings": {"final_pipeline": "audit", "default_pipeline": "_none"}}}
    assert pipelines(dotted) == {"index.final_pipeline": "audit"}
    assert pipelines(None) == {} == pipelines({"template": {}})


def test_the_refusal_names_each_problem_and_says_nothing_changed() -> None:
    message = refusal([missing_pipeline("index.final_pipeline", "audit"), "x is nested"])
    assert message == (
        "component template 'logpipe@custom' cannot work in logpipe's streams: "
        "index.final_pipeline names the ingest pipeline 'audit', which does not exist: "
        "Elasticsearch would refuse every line of each stream's next backing index (the lines "
        "would wait in the shippers); create it (PUT _ingest/pipeline/audit) or remove the "
        "setting; x is nested. Nothing was changed: change logpipe@custom (PUT "
        "_component_template/logpipe@custom) and run setup again"
    )
