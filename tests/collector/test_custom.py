"""What `setup` says of the operator's `logpipe@custom`."""

from __future__ import annotations

from collector.custom import custom_additions
from collector.templates import index_template


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
