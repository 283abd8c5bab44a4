"""The operator's component template `logpipe@custom`, as `setup` reads it: what it adds
to logpipe's backing indices (said), and what cannot work there (refused before `setup`
changes anything, each with what to write instead).

logpipe's template maps every field under its dotted name, without object mappers
(`subobjects: false`, templates.py). Elasticsearch composes the component under that:
it flattens a plain object of the component into dotted names (`source.geo.location`),
but refuses an object that sets `dynamic`, `enabled: false` or `subobjects: true`, a
`nested` field, and a field written under objects that logpipe's template maps as
another type (the same field under its dotted name is taken, and logpipe's mapping
wins). Its own refusal names only the first, deep in its causes; `setup` names them all.
An ingest pipeline the component names must exist: Elasticsearch takes the setting,
then refuses every document of an index made with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.shape import flat
from collector.templates import CUSTOM_TEMPLATE, dotted_fields

# The index settings that run an ingest pipeline on every document.
PIPELINE_SETTINGS = ("index.default_pipeline", "index.final_pipeline")

# The collector settings behind each index setting logpipe's template sets itself.
_SETTING_VARIABLES = {
    "index.number_of_shards": "LOGPIPE_INDEX__SHARDS",
    "index.number_of_replicas": "LOGPIPE_INDEX__REPLICAS",
    "index.refresh_interval": "LOGPIPE_INDEX__REFRESH_INTERVAL",
    "index.codec": "LOGPIPE_INDEX__CODEC",
}
# How to keep an object in `_source` and out of the index, in logpipe's streams.
UNSEARCHABLE = '{"type": "flattened", "index": false, "doc_values": false}'


def _dotted(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Index settings, nested or dotted, under their full dotted names (`index.` first)."""
    return {
        name if name.startswith("index.") else f"index.{name}": value
        for name, value in flat(dict(settings)).items()
    }


def pipelines(component: Mapping[str, Any] | None) -> dict[str, str]:
    """The ingest pipelines the component names: setting -> pipeline (`_none`: none)."""
    settings = _dotted((component or {}).get("template", {}).get("settings", {}))
    named = {name: str(settings[name]) for name in PIPELINE_SETTINGS if name in settings}
    return {name: pipeline for name, pipeline in named.items() if pipeline not in ("", "_none")}


def missing_pipeline(setting: str, pipeline: str) -> str:
    """Why `setup` refuses a component whose `setting` names a pipeline that does not exist."""
    return (
        f"{setting} names the ingest pipeline '{pipeline}', which does not exist: Elasticsearch "
        "would refuse every line of each stream's next backing index (the lines would wait "
        f"in the shippers); create it (PUT _ingest/pipeline/{pipeline}) or remove the setting"
    )


def unflattenable(component: Mapping[str, Any] | None, ours: Mapping[str, Any]) -> list[str]:
    """What Elasticsearch cannot compose of the component's mappings under `ours`
    (logpipe's template body, flat), each with what to write instead; [] when nothing."""
    mappings = (component or {}).get("template", {}).get("mappings", {})
    mapped = ours["template"]["mappings"]["properties"]
    return _objects(mappings.get("properties", {}), mapped, "")


def _objects(props: Mapping[str, Any], mapped: Mapping[str, Any], prefix: str) -> list[str]:
    problems: list[str] = []
    for name, spec in props.items():
        path = prefix + name
        if not isinstance(spec, Mapping):
            continue
        kind = spec.get("type")
        if kind == "nested":
            problems.append(
                f"{path} is nested, which needs object mappers: map it as flattened, or the "
                "fields under it by their dotted names"
            )
        elif kind in (None, "object"):  # Elasticsearch's default type: an object
            problems += _object(path, spec)
            problems += _objects(spec.get("properties", {}), mapped, path + ".")
        elif prefix and path in mapped and kind != mapped[path].get("type"):
            problems.append(
                f"{path} (written under objects) is a field logpipe maps itself, as "
                f"{mapped[path].get('type')}: Elasticsearch refuses another type there; remove "
                "it (logpipe's mapping is the one used)"
            )
    return problems


def _object(path: str, spec: Mapping[str, Any]) -> list[str]:
    """Why Elasticsearch cannot flatten the object at `path` into dotted names, if it cannot."""
    problems = []
    if str(spec.get("enabled", True)).lower() == "false":
        problems.append(
            f"{path} is an object with enabled: false; to keep it unsearchable, map "
            f"{path} as {UNSEARCHABLE}"
        )
    dynamic = spec.get("dynamic")
    if dynamic is not None and str(dynamic).lower() != "true":
        problems.append(
            f"{path} is an object with dynamic: {str(dynamic).lower()}; leave dynamic out "
            "(logpipe's streams keep the names no mapping names unsearchable) and map the "
            f"fields you search by their dotted names ({path}.<name>)"
        )
    if str(spec.get("subobjects", False)).lower() == "true":
        problems.append(f"{path} is an object with subobjects: true; leave subobjects out")
    return problems


def refusal(problems: list[str]) -> str:
    """What `setup` says when it refuses the component (it changed nothing)."""
    return (
        f"component template '{CUSTOM_TEMPLATE}' cannot work in logpipe's streams: "
        + "; ".join(problems)
        + f". Nothing was changed: change {CUSTOM_TEMPLATE} (PUT _component_template/"
        f"{CUSTOM_TEMPLATE}) and run setup again"
    )


def custom_additions(component: Mapping[str, Any] | None, ours: Mapping[str, Any]) -> list[str]:
    """What `setup` says of the operator's `logpipe@custom` (its body as Elasticsearch
    answers it, None where there is none) next to `ours`, logpipe's template body.

    Elasticsearch builds each new backing index from the component first and logpipe's
    own settings and mappings over it: a setting or field both set is logpipe's, and
    the component's dynamic templates are tried before logpipe's."""
    if component is None:
        return [
            f"no component template '{CUSTOM_TEMPLATE}': index settings and mappings of your "
            "own (an ingest pipeline, allocation, field limits) go there"
        ]
    body = component.get("template", {})
    settings = _dotted(body.get("settings", {}))
    mappings = body.get("mappings", {})
    fields = dotted_fields(mappings.get("properties", {}))
    dynamic = [name for entry in mappings.get("dynamic_templates", []) for name in entry]
    params = sorted(set(mappings) - {"properties", "dynamic_templates"})
    our_settings = _dotted(ours["template"]["settings"])
    our_mappings = ours["template"]["mappings"]
    taken = sorted(set(settings) & set(our_settings))
    shadowed = sorted(set(fields) & set(our_mappings["properties"]))
    shadowed_params = [p for p in params if p in our_mappings]
    added = [
        *(f"setting {name}" for name in sorted(set(settings) - set(taken))),
        *(f"field {name}" for name in sorted(set(fields) - set(shadowed))),
        *(f"mapping parameter {name}" for name in params if name not in shadowed_params),
        *(f"dynamic template {name} (tried before logpipe's)" for name in dynamic),
    ]
    if "lifecycle" in body:
        added.append("a data stream lifecycle")
    lines = [
        f"component template '{CUSTOM_TEMPLATE}' adds "
        + (", ".join(added) if added else "nothing")
        + " (to each stream's next backing index)"
    ]
    overridden = []
    if taken:
        overridden.append(f"sets {', '.join(taken)}")
    if shadowed:
        overridden.append(f"maps {', '.join(shadowed)}")
    if shadowed_params:
        plural = "s" if len(shadowed_params) > 1 else ""
        overridden.append(f"sets the mapping parameter{plural} {', '.join(shadowed_params)}")
    if overridden:
        instead = [_SETTING_VARIABLES[name] for name in taken if name in _SETTING_VARIABLES]
        lines.append(
            f"warning: logpipe's template {' and '.join(overridden)} itself, so "
            f"{CUSTOM_TEMPLATE}'s are not used"
            + (f"; set {', '.join(instead)} instead" if instead else "")
        )
    if "lifecycle" in body or "index.lifecycle.name" in settings:
        lines.append(
            f"warning: {CUSTOM_TEMPLATE} gives logpipe's streams a lifecycle: Elasticsearch "
            "deletes their backing indices by it as well as by logpipe's retention rules, "
            "whichever comes first"
        )
    return lines
