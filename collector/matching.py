"""Which records a rule applies to: the globs of a `match:` section, compiled once. Pure.

Retention rules and parsing rules share this matcher, so one `match:` means the same in
both: every key given must match (a list means any of its globs), levels compare
case-insensitively, labels by key.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from collector.parse.level import LEVELS, normalise_level

# The order of the values a matcher reads: (service, container, image, namespace, dataset).
VALUE_NAMES = ("service", "container", "image", "namespace", "dataset")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Globs = str | list[str]


class Match(_Section):
    """What a record must look like for a rule to apply; every key given must match."""

    service: Globs | None = Field(None, description="Compose service, else container name.")
    container: Globs | None = Field(None, description="Container name.")
    image: Globs | None = Field(None, description="Image name, e.g. 'nginx:*'.")
    label: dict[str, Globs] | None = Field(None, description="Container labels: key -> glob.")
    namespace: Globs | None = Field(None, description="Data stream namespace.")
    dataset: Globs | None = Field(None, description="Data stream dataset (before the rule).")
    level: Globs | None = Field(None, description="Log level, case-insensitive.")

    @field_validator("service", "container", "image", "namespace", "dataset", "level")
    @classmethod
    def _not_empty(cls, value: Globs | None) -> Globs | None:
        if isinstance(value, list) and not value:
            raise ValueError("an empty list matches nothing: give at least one pattern")
        for glob in [value] if isinstance(value, str) else value or []:
            _classes_closed(glob)
        return value

    @field_validator("label")
    @classmethod
    def _label_globs(cls, value: dict[str, Globs] | None) -> dict[str, Globs] | None:
        for key, globs in (value or {}).items():
            for glob in [globs] if isinstance(globs, str) else globs:
                try:
                    _classes_closed(glob)
                except ValueError as exc:
                    raise ValueError(f"label {key!r}: {exc}") from None
        return value

    @field_validator("namespace", "dataset")
    @classmethod
    def _stream_parts(cls, value: Globs | None, info: ValidationInfo) -> Globs | None:
        # A namespace or dataset is 1 to 100 of a-z 0-9 _ . (the wire refuses others):
        # `Staging` or `my-app` would never match a line.
        for glob in [value] if isinstance(value, str) else value or []:
            _name_part(glob, str(info.field_name))
        return value

    @field_validator("level")
    @classmethod
    def _levels(cls, value: Globs | None) -> Globs | None:
        # A line's level is one of six names: `warning` would never match a line.
        if isinstance(value, str):
            return _level(value)
        return None if value is None else [_level(glob) for glob in value]


_GLOB_CHARS = frozenset("*?[")
_LEVEL_NAMES = "trace, debug, info, warn, error, fatal"


def _level(glob: str) -> str:
    """A level glob that can match a line's level: a level's other name (`warning`,
    `critical`, `err`) as the name lines carry (`warn`, `fatal`, `error`)."""
    if _GLOB_CHARS & set(glob):
        if not any(fnmatch.fnmatchcase(level, glob.lower()) for level in LEVELS):
            raise ValueError(f"{glob!r} matches none of the levels a line has: {_LEVEL_NAMES}")
        return glob
    level = normalise_level(glob)
    if level is None:
        raise ValueError(f"{glob!r} is not a level: a line's level is one of {_LEVEL_NAMES}")
    return level


# The characters of a namespace or dataset (wire.NAME_PART_PATTERN).
_NAME_PART_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_."


def _class_end(glob: str, start: int) -> int:
    """Where the `[...]` class opening at `start` ends (its `]`), as fnmatch reads it;
    -1 when no `]` closes it."""
    end = start + 1
    end += glob.startswith("!", end)
    end += glob.startswith("]", end)
    return glob.find("]", end)


def _classes_closed(glob: str) -> None:
    """Refuse a glob with a `[` that no `]` closes: fnmatch would take it as the
    character `[` itself, which is hardly what `[abc` meant."""
    i = glob.find("[")
    while i >= 0:
        end = _class_end(glob, i)
        if end < 0:
            raise ValueError(
                f"{glob!r}: the '[' at character {i + 1} opens a class that no ']' closes "
                "(write '[[]' to match a '[' itself)"
            )
        i = glob.find("[", end + 1)


def _name_part(glob: str, key: str) -> None:
    """Refuse a namespace or dataset glob that no name of _NAME_PART_CHARS can match:
    the piece of it (a character, or a `[...]` class, as fnmatch reads them) that no
    such character matches."""
    if not glob:
        raise ValueError(f"'' matches no {key}: a {key} is 1 to 100 of a-z 0-9 _ .")
    i = 0
    while i < len(glob):
        piece = glob[i]
        if piece == "[":
            end = _class_end(glob, i)
            if end >= 0:
                piece = glob[i : end + 1]
        i += len(piece)
        if piece in ("*", "?") or any(fnmatch.fnmatchcase(c, piece) for c in _NAME_PART_CHARS):
            continue
        raise ValueError(
            f"{glob!r} matches no {key}: {piece!r} is never in one "
            f"(a {key} is 1 to 100 of a-z 0-9 _ .)"
        )


def _compile(globs: Globs, lower: bool = False) -> re.Pattern[str]:
    patterns = [globs] if isinstance(globs, str) else globs
    if lower:
        patterns = [p.lower() for p in patterns]
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


class Matcher:
    """A rule's globs, compiled once; `name` is the rule it stands for."""

    __slots__ = ("fields", "labels", "level", "name")

    def __init__(self, name: str, match: Match) -> None:
        self.name = name
        self.fields = tuple(
            (i, _compile(getattr(match, key)))
            for i, key in enumerate(VALUE_NAMES)
            if getattr(match, key) is not None
        )
        labels = match.label or {}
        self.labels = tuple((key, _compile(globs)) for key, globs in labels.items())
        self.level = None if match.level is None else _compile(match.level, lower=True)

    def matches(
        self, values: tuple[str, ...], labels: Mapping[str, str], level: str | None
    ) -> bool:
        """Whether a record with these values, labels and level matches."""
        if not self.matches_container(values, labels):
            return False
        if self.level is not None:
            return level is not None and self.level.match(level.lower()) is not None
        return True

    def matches_container(self, values: tuple[str, ...], labels: Mapping[str, str]) -> bool:
        """Whether these values and labels match, whatever the level (`level` aside)."""
        for i, pattern in self.fields:
            if pattern.match(values[i]) is None:
                return False
        for key, pattern in self.labels:
            value = labels.get(key)
            if value is None or pattern.match(value) is None:
                return False
        return True
