"""A document's two shapes: nested, as the collector builds it and the read API answers
(``{"host": {"name": "web-1"}}``), and flat, as it is indexed (``{"host.name": "web-1"}``).

The same fields under the same names either way; Elasticsearch parses the flat one into
a template without object mappers (``subobjects: false``) for about 0.92x the CPU of
the nested one (docs/BENCHMARKS.md, "a flat `_source`"). Indices made before template
version 5 hold nested documents: readers take both shapes.
"""

from __future__ import annotations

from typing import Any

from collector.attributes import UNINDEXED

# Fields whose value is an object as it is: their mapping type (flattened) takes one.
OBJECT_VALUED = frozenset({"attributes", UNINDEXED, "container.labels"})
# Objects whose keys are names of their own, dots and all (a parsing rule's typed
# fields): `fields.a.b` nests as {"fields": {"a.b": ...}}.
NAMED_KEYS = frozenset({"fields"})


def flat(body: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The fields of a nested document under dotted names, in the same order; an empty
    object leaves nothing."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = prefix + key
        if type(value) is dict and name not in OBJECT_VALUED:
            out.update(flat(value, name + "."))
        else:
            out[name] = value
    return out


def nested(source: dict[str, Any]) -> dict[str, Any]:
    """A document of either shape as nested objects (a nested one comes back equal)."""
    if not any("." in key for key in source):
        return source
    out: dict[str, Any] = {}
    for key, value in source.items():
        parents = _parents(key)
        node = out
        for part in parents[:-1]:
            inner = node.get(part)
            if not isinstance(inner, dict):
                inner = node[part] = {}
            node = inner
        last = parents[-1]
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last] = {**node[last], **value}
        else:
            node[last] = value
    return out


def _parents(key: str) -> list[str]:
    """The path of a dotted name (a typed field's name whole, under `fields`)."""
    head, dot, rest = key.partition(".")
    if dot and head in NAMED_KEYS:
        return [head, rest]
    return key.split(".")
