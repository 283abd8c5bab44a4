"""The index template maps only what users search, filter or chart, and cheaply."""

from __future__ import annotations

from typing import Any

from collector.templates import MAPPINGS, index_template


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


def test_template_carries_its_version_and_the_mappings() -> None:
    """The template body names its version (what `serve` compares) and holds MAPPINGS."""
    body = index_template()
    assert body["version"] >= 2
    assert body["template"]["mappings"] is MAPPINGS
