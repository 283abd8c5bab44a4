"""The composable index template that every logpipe data stream is created from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.attributes import UNINDEXED

TEMPLATE_NAME = "logpipe"
# An operator's own additions to every backing index logpipe's template makes: a
# component template logpipe names but never creates, changes or deletes (`setup` says
# what it adds). The index template's own settings and mappings win over it.
CUSTOM_TEMPLATE = "logpipe@custom"
DEADLETTER_STREAM = "logs-logpipe.deadletter-default"
# Only logpipe's own streams, `logs-<dataset>.keep_<rule>-<namespace>` and the dead letters,
# never another tool's `logs-*-*` (Elastic Agent, Filebeat) on a shared cluster. The dead
# letters' pattern is a wildcard so that searching these patterns (Kibana, retention) never
# fails with "no such index" before the first dead letter.
INDEX_PATTERNS = ["logs-*.keep_*-*", "logs-logpipe.deadletter-*"]
# Our patterns overlap those of Elasticsearch's built-in `logs` template (100), of Fleet
# integrations (up to 200) and APM (210); the highest priority wins, and Elasticsearch
# refuses two overlapping templates of equal priority. 550 is above them all, above the
# 500 Elasticsearch's docs suggest for custom templates, and unlikely to be anyone's
# round number. Matching only our names, it takes nothing from the others.
TEMPLATE_PRIORITY = 550
# Bumped whenever the mappings change; `serve` compares it with the installed one.
# 4: the per-stream constants below as constant_keyword, or doc values only.
# 5: documents flat (dotted names, collector/shape.py), no object mappers.
# 6: `attributes_unindexed`, the parsed keys `attributes` does not index (attributes.py).
TEMPLATE_VERSION = 6
# The oldest template version whose collectors' documents this template indexes as they
# should. A collector of that version or newer keeps taking logs after a newer logpipe's
# `setup` installed this template, so that a rolling upgrade never has the older
# collectors refusing every batch. Raise it only when the mappings change so that older
# collectors' documents no longer fit. (Collectors from before this rule, whose --version
# does not name the template version, do not read it: they take only their own version.)
COLLECTORS_FROM = 6

_KW = {"type": "keyword", "ignore_above": 1024}
_DATE = {"type": "date_nanos"}
_LONG = {"type": "long"}
# No norms: they only weigh a hit by its field's length for scoring, and logs are read in
# time order (docs/documents.md). Positions stay: phrase queries ("connection refused").
_TEXT = {"type": "text", "norms": False}


# A keyword searched and aggregated through its doc values only, with nothing in the
# inverted index: term, terms, prefix, wildcard and exists queries still match (Elasticsearch
# 8.1+ runs them on doc values), terms aggregations and sorting work as before.
_KW_DOC_VALUES = {"type": "keyword", "ignore_above": 1024, "index": False}
# One value per data stream: its name holds them (`logs-<dataset>.keep_<rule>-<namespace>`,
# `event.dataset` the part before `.keep_`). Elasticsearch's own `logs` templates map
# them as constant_keyword, which stores nothing per document and answers a filter from
# the index's one value; `setup` does so where the cluster has that type.
PER_STREAM = ("data_stream.type", "data_stream.dataset", "data_stream.namespace", "event.dataset")
CONSTANT = {"type": "constant_keyword"}
# A pattern no index has, for `setup`'s probe of whether the cluster knows a mapping type.
PROBE_PATTERN = "logpipe-mapping-probe-*"


def _obj(**props: Any) -> dict[str, Any]:
    return {"properties": props}


# Kept in `_source`, shown with the document, neither indexed nor with doc values: what
# Elasticsearch spends on it is reading it with the document (docs/documents.md).
UNINDEXED_MAPPING = {"type": "flattened", "index": False, "doc_values": False}


# The fields, drawn as objects; the template maps their leaves under dotted names
# (`dotted_fields`): documents come flat, and without object mappers Elasticsearch parses them
# for about 0.92x the CPU (docs/BENCHMARKS.md, "a flat `_source`").
MAPPINGS: dict[str, Any] = {
    "properties": {
        "@timestamp": _DATE,
        "message": _TEXT,
        "stream": _KW,
        "tags": _KW,
        "attributes": {"type": "flattened", "ignore_above": 1024},
        UNINDEXED: UNINDEXED_MAPPING,
        "log": _obj(level=_KW, logger=_KW),
        "container": _obj(
            id=_KW,
            name=_KW,
            image=_obj(name=_KW),
            labels={"type": "flattened", "ignore_above": 1024},
        ),
        "host": _obj(name=_KW),
        "service": _obj(name=_KW, environment=_KW),
        "process": _obj(exit_code=_LONG),
        "event": _obj(
            kind=_KW,
            action=_KW,
            dataset=_KW_DOC_VALUES,
            ingested={"type": "date"},
            original={"type": "keyword", "index": False, "doc_values": False},
            created=_DATE,
            duration=_LONG,
            reason=_TEXT,
        ),
        "error": _obj(message=_TEXT, type=_KW, stack_trace=_TEXT),
        "data_stream": _obj(type=_KW_DOC_VALUES, dataset=_KW_DOC_VALUES, namespace=_KW_DOC_VALUES),
        "http": _obj(
            request=_obj(method=_KW, referrer=_KW),
            response=_obj(status_code=_LONG, body=_obj(bytes=_LONG)),
            version=_KW,
        ),
        "url": _obj(original=_KW, path=_KW),
        "user_agent": _obj(original=_KW),
        "source": _obj(ip={"type": "ip"}),
        "trace": _obj(id=_KW),
        "span": _obj(id=_KW),
        "logpipe": _obj(
            parser=_KW,
            lines=_LONG,
            rule=_KW,
            rule_failure={"type": "keyword", "ignore_above": 1024},
            gap=_obj(**{"from": _DATE, "to": _DATE, "estimated_lines": _LONG}),
        ),
    },
}


# Typed fields of parsing rules, by the type the rules declare; `setup` maps each by name.
FIELD_MAPPINGS: dict[str, dict[str, Any]] = {
    "long": _LONG,
    "double": {"type": "double"},
    "boolean": {"type": "boolean"},
    "ip": {"type": "ip"},
    "keyword": _KW,
    "date": {"type": "date"},
}
# A typed field the template does not map yet (its rule came after the last `setup`)
# is still searchable, as its JSON type says: a number as a long or double, text as a
# keyword (an ip too, until `setup` maps it and the stream rolls over).
_DYNAMIC = [
    {f"fields_{kind}": {"path_match": "fields.*", "match_mapping_type": kind, "mapping": spec}}
    for kind, spec in (
        ("long", _LONG),
        ("double", {"type": "double"}),
        ("boolean", {"type": "boolean"}),
        ("date", {"type": "date"}),
        ("string", _KW),
    )
]


def _constants(props: dict[str, Any]) -> dict[str, Any]:
    """`props` with the per-stream fields as constant_keyword (the objects copied)."""
    out = dict(props)
    for path in PER_STREAM:
        parent, name = path.split(".")
        out[parent] = {**out[parent], "properties": {**out[parent]["properties"], name: CONSTANT}}
    return out


def probe_template() -> dict[str, Any]:
    """A template body `_index_template/_simulate` accepts only where constant_keyword is."""
    return {
        "index_patterns": [PROBE_PATTERN],
        "template": {"mappings": {"properties": {"probe": CONSTANT}}},
    }


# Names the collector does not map (a dead letter's copy of the refused document, say)
# are kept in _source and mapped as nothing searchable: each costs a mapping entry, no
# indexing. Every top-level name is the collector's own choice (a line's parsed keys
# live in `attributes`, flattened), so no application can cause a mapping explosion.
_UNMAPPED = {
    "unmapped": {
        "match": "*",
        "unmatch_mapping_type": "object",
        "mapping": {"type": "keyword", "index": False, "doc_values": False},
    }
}


def dotted_fields(props: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Each leaf of nested mapping properties under its dotted name."""
    out: dict[str, Any] = {}
    for name, spec in props.items():
        if "properties" in spec and spec.get("type", "object") == "object":
            out.update(dotted_fields(spec["properties"], f"{prefix}{name}."))
        else:
            out[prefix + name] = spec
    return out


def mappings(
    fields: Mapping[str, str] | None = None, constant_keyword: bool = False
) -> dict[str, Any]:
    """The mappings, with `fields` (name -> type) mapped as `fields.<name>`, and the
    per-stream fields as constant_keyword if `constant_keyword` (the cluster has it).

    No object mappers (`subobjects: false`): each field is a leaf under its dotted name,
    as documents come (collector/shape.py); a nested document still indexes the same.
    Dynamic only for the rules' typed fields not mapped yet, and for the unmapped rest.
    """
    typed = {
        f"fields.{name}": FIELD_MAPPINGS[kind] for name, kind in sorted((fields or {}).items())
    }
    props = _constants(MAPPINGS["properties"]) if constant_keyword else MAPPINGS["properties"]
    return {
        "dynamic": True,
        "subobjects": False,
        "dynamic_templates": [*_DYNAMIC, _UNMAPPED],
        "properties": {**dotted_fields(props), **typed},
    }


def index_template(
    shards: int = 1,
    replicas: int = 0,
    refresh_interval: str | None = None,
    fields: Mapping[str, str] | None = None,
    constant_keyword: bool = False,
    codec: str = "best_compression",
) -> dict[str, Any]:
    """The body of `PUT _index_template/logpipe`; `fields` are the rules' typed fields;
    `constant_keyword` whether the cluster has that type (see `PER_STREAM`).

    `codec` compresses the stored documents: `best_compression` (zstd on Elasticsearch
    8.14+) keeps them in about 0.6x the disk of `default` (LZ4) at no measurable
    indexing CPU, and reading them back costs more (docs/documents.md). A setting, not
    a mapping: no template version.

    Without a `refresh_interval` the backing indices keep Elasticsearch's default: a
    refresh every second while the stream is searched, none while nobody searches it
    for 30 s (a search then waits for the next refresh and sees every line indexed
    before it). A refresh interval set on the index, even 1s, refreshes that often
    whether anyone searches or not, at a cost per document (docs/documents.md)."""
    settings: dict[str, Any] = {
        "number_of_shards": shards,
        "number_of_replicas": replicas,
        "codec": codec,
    }
    if refresh_interval is not None:
        settings["refresh_interval"] = refresh_interval
    return {
        "index_patterns": INDEX_PATTERNS,
        "priority": TEMPLATE_PRIORITY,
        "version": TEMPLATE_VERSION,
        "data_stream": {},
        "composed_of": [CUSTOM_TEMPLATE],
        "ignore_missing_component_templates": [CUSTOM_TEMPLATE],
        "_meta": {"managed_by": "logpipe", "collectors_from": COLLECTORS_FROM},
        "template": {
            "settings": settings,
            "mappings": mappings(fields, constant_keyword),
        },
    }


def mapped_fields(installed: Mapping[str, Any]) -> dict[str, str]:
    """The typed fields (name -> type) an installed template maps as `fields.<name>`
    (the sink asks only once the template is of this version)."""
    props = installed.get("template", {}).get("mappings", {}).get("properties", {})
    fields = {
        name.removeprefix("fields."): spec
        for name, spec in props.items()
        if name.startswith("fields.")
    }
    kinds = {str(spec["type"]): kind for kind, spec in FIELD_MAPPINGS.items()}
    return {name: kinds.get(str(spec.get("type")), "?") for name, spec in fields.items()}


def unmapped(needed: Mapping[str, str], mapped: Mapping[str, str]) -> list[str]:
    """The typed fields the rules need that the template lacks, or maps as another type."""
    return [f"fields.{name} ({kind})" for name, kind in needed.items() if mapped.get(name) != kind]
