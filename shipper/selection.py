"""Which containers to follow, and the per-container hints their labels give. Pure."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from collector.wire import NAME_PART_PATTERN
from shipper.config import ShipperConfig
from shipper.containers import ContainerSummary
from shipper.record import Meta

ENABLE_LABEL = "logpipe.enable"
PARSERS = {"auto", "json", "logfmt", "nginx", "apache", "plain"}
_NAME_PART = re.compile(NAME_PART_PATTERN)


def _any(patterns: list[str], value: str) -> bool:
    return any(fnmatchcase(value, p) for p in patterns)


def _label_match(patterns: list[str], labels: dict[str, str]) -> bool:
    for pattern in patterns:
        key, _, value = pattern.partition("=")
        for k, v in labels.items():
            if fnmatchcase(k, key) and fnmatchcase(v, value or "*"):
                return True
    return False


def skip_reason(c: ContainerSummary, config: ShipperConfig, self_id: str | None) -> str | None:
    """Why this container is not followed, or None to follow it."""
    if self_id and (c["id"] == self_id or c["id"].startswith(self_id)):
        return "it is the shipper itself"
    if c["labels"].get(ENABLE_LABEL, "").lower() in ("false", "0", "no"):
        return f"label {ENABLE_LABEL}=false"
    if "LOGSPOUT=ignore" in c["env"]:
        return "environment LOGSPOUT=ignore"
    checks = (
        (config.include_names, c["name"], True, "name"),
        (config.exclude_names, c["name"], False, "name"),
        (config.include_images, c["image"], True, "image"),
        (config.exclude_images, c["image"], False, "image"),
    )
    for patterns, value, include, what in checks:
        if patterns and _any(patterns, value) != include:
            return f"{what} '{value}' {'not in' if include else 'in'} the {what} filter"
    if config.include_labels and not _label_match(config.include_labels, c["labels"]):
        return "no label matches the include_labels filter"
    if config.exclude_labels and _label_match(config.exclude_labels, c["labels"]):
        return "a label matches the exclude_labels filter"
    return None


def meta_from(c: ContainerSummary) -> tuple[Meta, list[str]]:
    """The container's metadata and hints, with a warning for each invalid hint label."""
    labels = c["labels"]
    warnings: list[str] = []
    parser = labels.get("logpipe.parser", "auto").strip().lower()
    if parser not in PARSERS:
        warnings.append(f"label logpipe.parser={parser!r} is not one of {sorted(PARSERS)}")
        parser = "auto"
    parts: dict[str, str | None] = {}
    for key in ("dataset", "namespace"):
        value = labels.get(f"logpipe.{key}")
        if value is not None and not _NAME_PART.match(value):
            warnings.append(
                f"label logpipe.{key}={value!r} is not a valid data stream name part "
                "(lower case letters, digits, '_' and '.', at most 100, no '-')"
            )
            value = None
        parts[key] = value
    meta = Meta(
        id=c["id"],
        name=c["name"],
        image=c["image"],
        labels=labels,
        parser=parser,
        dataset=parts["dataset"],
        namespace=parts["namespace"],
    )
    return meta, warnings
