"""The index template maps only what users search, filter or chart, and cheaply."""

from __future__ import annotations

from typing import Any

from collector.templates import (
    CUSTOM_TEMPLATE,
    MAPPINGS,
    PER_STREAM,
    index_template,
    mapped_fields,
    probe_template,
    unmapped,
)


def _text_fields(props: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, spec in props.items():
        if spec.get("type") == "text":
            found[prefix + name] = spec
        if "properties" in spec:
            found |= _text_fields(spec["properties"], f"{prefix}{name}.")
    return found


def test_text_fields_keep_positions_but_store_no_norms() -> None:
    """Every text field drops norms (no length scoring) and keeps positions for phrases."""
    texts = _text_fields(MAPPINGS["properties"])
    assert {"message", "event.reason", "error.message", "error.stack_trace"} <= set(texts)
    assert all(spec.get("norms") is False for spec in texts.values())
    assert all(spec.get("index_options", "positions") == "positions" for spec in texts.values())


def _leaves(props: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, spec in props.items():
        if "properties" in spec:
            found |= _leaves(spec["properties"], f"{prefix}{name}.")
        else:
            found[prefix + name] = spec
    return found


def test_template_carries_its_version_and_the_mappings() -> None:
    """The template body names its version (what `serve` compares) and maps each leaf of
    MAPPINGS under its dotted name, with no object mappers (documents come flat)."""
    body = index_template()
    assert body["version"] >= 5
    mappings = body["template"]["mappings"]
    assert mappings["subobjects"] is False
    assert mappings["properties"] == _leaves(MAPPINGS["properties"])
    assert mappings["properties"]["container.id"] == {"type": "keyword", "ignore_above": 1024}
    assert mappings["properties"]["container.labels"]["type"] == "flattened"
    assert not any("properties" in spec for spec in mappings["properties"].values())


def test_names_the_template_does_not_map_cost_no_indexing() -> None:
    """Dynamic only to map the rules' new typed fields: any other name the collector
    sends unmapped (a dead letter's copy of its document) is mapped as nothing searchable,
    after every `fields.*` template."""
    mappings = index_template()["template"]["mappings"]
    assert mappings["dynamic"] is True
    *typed, last = mappings["dynamic_templates"]
    assert all(next(iter(t.values()))["path_match"] == "fields.*" for t in typed)
    assert last == {
        "unmapped": {
            "match": "*",
            "unmatch_mapping_type": "object",
            "mapping": {"type": "keyword", "index": False, "doc_values": False},
        }
    }


def test_rules_typed_fields_are_mapped_by_name_under_fields() -> None:
    """Each typed field of the rules is mapped with its type as `fields.<name>`, and read
    back."""
    body = index_template(fields={"request_time": "double", "client": "ip", "ok": "boolean"})
    props = body["template"]["mappings"]["properties"]
    typed = {name: spec for name, spec in props.items() if name.startswith("fields.")}
    assert typed == {
        "fields.client": {"type": "ip"},
        "fields.ok": {"type": "boolean"},
        "fields.request_time": {"type": "double"},
    }
    assert mapped_fields(body) == {"client": "ip", "ok": "boolean", "request_time": "double"}


def test_fields_the_template_lacks_or_types_otherwise_are_named() -> None:
    """unmapped() names a field missing from the template and one mapped with another type."""
    needed = {"a": "long", "b": "ip", "c": "keyword"}
    assert unmapped(needed, {"a": "long", "b": "keyword"}) == [
        "fields.b (ip)",
        "fields.c (keyword)",
    ]
    assert unmapped(needed, needed) == []


def test_unmapped_typed_fields_fall_back_to_their_json_type() -> None:
    """Dynamic templates under `fields.*` map numbers, booleans, dates and text by JSON type."""
    dynamic = index_template()["template"]["mappings"]["dynamic_templates"][:-1]
    kinds = {next(iter(t.values()))["match_mapping_type"] for t in dynamic}
    assert kinds == {"long", "double", "boolean", "date", "string"}
    assert all(next(iter(t.values()))["path_match"] == "fields.*" for t in dynamic)


def _spec(props: dict[str, Any], path: str) -> dict[str, Any]:
    spec: dict[str, Any] = props[path]
    return spec


def test_per_stream_fields_are_constant_keyword_where_the_cluster_has_it() -> None:
    """With constant_keyword, data_stream.* and event.dataset store nothing per document;
    without, they are keywords with doc values only; every other field is the same."""
    plain = index_template()["template"]["mappings"]["properties"]
    constant = index_template(constant_keyword=True)["template"]["mappings"]["properties"]
    assert PER_STREAM == (
        "data_stream.type",
        "data_stream.dataset",
        "data_stream.namespace",
        "event.dataset",
    )
    for path in PER_STREAM:
        assert _spec(constant, path) == {"type": "constant_keyword"}
        assert _spec(plain, path) == {"type": "keyword", "ignore_above": 1024, "index": False}
    assert _spec(constant, "event.ingested") == _spec(plain, "event.ingested") == {"type": "date"}
    rest = {k for k in plain if k not in PER_STREAM}
    assert {k: constant[k] for k in rest} == {k: plain[k] for k in rest}
    assert _leaves(MAPPINGS["properties"])["data_stream.type"] == plain["data_stream.type"]


def test_the_probe_uses_constant_keyword_on_a_pattern_no_index_has() -> None:
    """`setup` asks the cluster about constant_keyword with a template matching nothing of ours."""
    probe = probe_template()
    assert probe["template"]["mappings"]["properties"]["probe"] == {"type": "constant_keyword"}
    assert not set(probe["index_patterns"]) & set(index_template()["index_patterns"])


def test_backing_indices_keep_elasticsearchs_refresh_unless_one_is_set() -> None:
    """By default the template sets no refresh interval (Elasticsearch's own: shards
    nobody searches skip their refreshes); a configured one is set as given."""
    settings = index_template()["template"]["settings"]
    assert settings == {"number_of_shards": 1, "number_of_replicas": 0, "codec": "best_compression"}
    explicit = index_template(shards=2, replicas=1, refresh_interval="5s", codec="default")
    assert explicit["template"]["settings"] == {
        "number_of_shards": 2,
        "number_of_replicas": 1,
        "refresh_interval": "5s",
        "codec": "default",
    }


def test_the_template_takes_the_operators_component_template_where_there_is_one() -> None:
    """`logpipe@custom` is composed into every backing index, and may be missing."""
    body = index_template()
    assert body["composed_of"] == [CUSTOM_TEMPLATE] == ["logpipe@custom"]
    assert body["ignore_missing_component_templates"] == [CUSTOM_TEMPLATE]
