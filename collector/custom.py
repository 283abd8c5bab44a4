"""The operator's component template `logpipe@custom`, as `setup` reads it: what it adds
to logpipe's backing indices, next to what logpipe's own template sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.shape import flat
from collector.templates import CUSTOM_TEMPLATE, dotted_fields

# The collector settings behind each index setting logpipe's template sets itself.
_SETTING_VARIABLES = {
    "index.number_of_shards": "LOGPIPE_INDEX__SHARDS",
    "index.number_of_replicas": "LOGPIPE_INDEX__REPLICAS",
    "index.refresh_interval": "LOGPIPE_INDEX__REFRESH_INTERVAL",
    "index.codec": "LOGPIPE_INDEX__CODEC",
}


def _dotted(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Index settings, nested or dotted, under their full dotted names (`index.` first)."""
    return {
        name if name.startswith("index.") else f"index.{name}": value
        for name, value in flat(dict(settings)).items()
    }


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
