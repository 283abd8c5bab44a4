"""Which containers to follow, and the per-container hints their labels give. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import get_close_matches
from fnmatch import fnmatchcase

from collector.wire import NAME_PART_PATTERN
from shipper.config import ShipperConfig
from shipper.containers import ContainerSummary
from shipper.multiline import LABELS as SHAPING_LABELS
from shipper.record import Meta

ENABLE_LABEL = "logpipe.enable"
RULE_LABEL = "logpipe.rule"  # read by the collector (collector/rules/config.py)
KNOWN_LABELS = frozenset(
    {
        ENABLE_LABEL,
        RULE_LABEL,
        "logpipe.parser",
        "logpipe.dataset",
        "logpipe.namespace",
        *SHAPING_LABELS,
    }
)
_SUFFIXES = {key.removeprefix("logpipe."): key for key in KNOWN_LABELS}
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
    if c["log_driver"] == "none":  # dockerd answers every read 501, and keeps no cache
        return "its logging driver is none: dockerd keeps no log of it to read"
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


def unknown_labels(labels: dict[str, str], filters: Iterable[str] = ()) -> list[str]:
    """A warning for each logpipe.* label key that nothing reads, naming the nearest known
    one: a misspelt hint (logpipe.exclude_line) would otherwise be without effect,
    silently. Keys that a label filter (`filters`, key=value globs) names are in use."""
    keys = [key.partition("=")[0] for key in filters]
    warnings = []
    for key in sorted(labels):
        if not key.startswith("logpipe.") or key in KNOWN_LABELS:
            continue
        if any(fnmatchcase(key, pattern) for pattern in keys):
            continue
        # Compared without the prefix, which every key shares: logpipe.test is no logpipe.rule.
        near = get_close_matches(key.removeprefix("logpipe."), _SUFFIXES, n=1)
        meant = f"did you mean {_SUFFIXES[near[0]]}?" if near else "no such logpipe label"
        warnings.append(f"label {key} is unknown: {meant}")
    return warnings


def meta_from(c: ContainerSummary, filters: Iterable[str] = ()) -> tuple[Meta, list[str]]:
    """The container's metadata and hints, with a warning for each invalid hint label
    and each unknown logpipe.* label (`filters`: the label filters, whose keys are used)."""
    labels = c["labels"]
    warnings = unknown_labels(labels, filters)
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
