"""Retention rules: the config model, and matching a record to the rule that keeps it. Pure.

A record's data stream carries the name of its rule in the dataset part
(``logs-docker.keep_payments-default``), so records kept for different times never
share a backing index, and the lifecycle can tell each stream's retention from its
name alone. A rule without a ``name`` is named after its duration (``keep_400d``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)

from collector.invalid import readable
from collector.matching import Match, Matcher
from collector.templates import DEADLETTER_STREAM

DURATION_PATTERN = r"^[1-9][0-9]{0,6}[smhdw]$"
RULE_NAME_PATTERN = r"^[a-z0-9_]{1,16}$"
# Marks a data stream as managed by logpipe's retention; dataset parts never hold '-'.
STREAM_MARKER = ".keep_"
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SIZE_PATTERN = r"^[1-9][0-9]{0,6}(b|kb|mb|gb|tb|pb)$"
SIZE_UNITS = {unit: 1024**i for i, unit in enumerate(("b", "kb", "mb", "gb", "tb", "pb"))}
# Elasticsearch's numbers are longs.
LONG_MAX = 2**63 - 1
_CACHE_LIMIT = 10_000


def _no_bare_number(value: object) -> object:
    # YAML reads `keep: 30` as a number, which would only be "not a valid string".
    if isinstance(value, int) and not isinstance(value, bool):
        units = ", ".join(f"{value}{unit}" for unit in "smhd")
        raise ValueError(f"{value} has no unit: write {units} or {value}w")
    if isinstance(value, float):
        raise ValueError(f"{value} is not a duration: write a whole number and one of s m h d w")
    return value


def _check_duration(text: str) -> str:
    if re.fullmatch(r"0+[smhdw]", text):
        raise ValueError(f"{text!r}: a duration must be more than zero, e.g. 1{text[-1]}")
    if not is_duration(text):
        raise ValueError(not_a_duration(text))
    return text


def _check_size(text: str) -> str:
    if re.fullmatch(SIZE_PATTERN, text) is None:
        raise ValueError(f"{text!r} is not a size: write a whole number and one of b kb mb gb tb")
    # Elasticsearch reads a size into a long: beyond it, every rollover request fails.
    if size_bytes(text) > LONG_MAX:
        raise ValueError(f"{text!r} is more than Elasticsearch takes (8191pb)")
    return text


def _check_name(text: str) -> str:
    if re.fullmatch(RULE_NAME_PATTERN, text) is None:
        raise ValueError(f"{text!r} is not a rule name: use 1 to 16 of a-z 0-9 _")
    return text


Duration = Annotated[str, BeforeValidator(_no_bare_number), AfterValidator(_check_duration)]
RuleName = Annotated[str, AfterValidator(_check_name)]
Size = Annotated[str, AfterValidator(_check_size)]


def seconds(duration: str) -> int:
    """Seconds in a duration such as ``14d`` (units s m h d w)."""
    return int(duration[:-1]) * UNIT_SECONDS[duration[-1]]


def size_bytes(size: str) -> int:
    """Bytes in a size such as ``50gb`` (units b kb mb gb tb pb, powers of 1024)."""
    found = re.fullmatch(SIZE_PATTERN, size)
    if found is None:
        raise ValueError(f"{size!r} is not a size")
    return int(size[: found.start(1)]) * int(SIZE_UNITS[found.group(1)])


def is_duration(text: str) -> bool:
    """Whether `text` is a duration such as ``14d``."""
    return re.fullmatch(DURATION_PATTERN, text) is not None


def not_a_duration(text: str) -> str:
    """Why `text` is no duration (:func:`is_duration` is false): too long, or not one."""
    if re.fullmatch(r"[0-9]+[smhdw]", text):
        return f"{text!r} is too long a duration: at most 9999999 of its unit, e.g. 520w"
    return f"{text!r} is not a duration: write a whole number and one of s m h d w"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Section):
    """Records matching `match` are kept for `keep`."""

    match: Match = Field(description="Glob patterns (a list means any of them).")
    keep: Duration = Field(description="How long to keep matching records: s m h d w.")
    name: RuleName | None = Field(
        None,
        description="Names the rule's data streams; defaults to `keep`. Renaming a rule "
        "starts new data streams.",
    )

    @property
    def stream_name(self) -> str:
        """The name its data streams carry."""
        return self.name or self.keep

    @model_validator(mode="after")
    def _name_is_not_another_duration(self) -> Rule:
        if self.name is not None and is_duration(self.name) and self.name != self.keep:
            raise ValueError(f"name {self.name!r} looks like a duration other than keep")
        return self


class Rollover(_Section):
    """When the lifecycle rolls a data stream over to a new write index (any condition)."""

    max_age: Duration | None = Field("1d", description="Age of the write index.")
    max_primary_shard_size: Size | None = Field(
        "50gb", description="Size of its largest primary shard."
    )
    max_docs: int | None = Field(
        None, ge=1, le=LONG_MAX, description="Documents in the write index."
    )

    @model_validator(mode="after")
    def _some_maximum(self) -> Rollover:
        if self.max_age is None and self.max_primary_shard_size is None and self.max_docs is None:
            raise ValueError("give at least one of max_age, max_primary_shard_size, max_docs")
        return self

    def may_hold(self, docs: int, primary_bytes: int, age_seconds: float) -> bool:
        """Whether a write index of `docs` documents, `primary_bytes` in its primary shards
        and `age_seconds` old meets these conditions, by the numbers Elasticsearch reads
        for them (the primaries' documents and store, the creation date). The primaries'
        whole store stands for the largest primary shard: never smaller, so a stream that
        may roll over is never passed over."""
        if docs < 1:  # min_docs
            return False
        return (
            (self.max_age is not None and age_seconds >= seconds(self.max_age))
            or (
                self.max_primary_shard_size is not None
                and primary_bytes >= size_bytes(self.max_primary_shard_size)
            )
            or (self.max_docs is not None and docs >= self.max_docs)
        )

    def conditions(self) -> dict[str, str | int]:
        """The `conditions` of a rollover request; never rolls an empty write index."""
        found: dict[str, str | int] = {"min_docs": 1}
        if self.max_age is not None:
            # Elasticsearch has no 'w' unit: send seconds.
            found["max_age"] = f"{seconds(self.max_age)}s"
        if self.max_primary_shard_size is not None:
            found["max_primary_shard_size"] = self.max_primary_shard_size
        if self.max_docs is not None:
            found["max_docs"] = self.max_docs
        return found


class RetentionConfig(_Section):
    """How long logs are kept, and how data streams roll over; first matching rule wins."""

    default: Duration = Field("14d", description="Retention of records no rule matches.")
    rules: list[Rule] = Field(default_factory=list, description="Checked in order.")
    deadletter: Duration | None = Field(
        None, description="Retention of the dead-letter data stream; defaults to `default`."
    )
    rollover: Rollover = Field(
        default_factory=Rollover,
        description="When a data stream rolls over to a new write index (any condition); "
        "conditions not given keep their defaults, null drops one.",
    )
    interval: Duration = Field("5m", description="How often the lifecycle loop runs.")

    @model_validator(mode="wrap")
    @classmethod
    def _name_the_rule(
        cls, data: Any, handler: ModelWrapValidatorHandler[RetentionConfig]
    ) -> RetentionConfig:
        # Pydantic says "rules.1.keep"; people think "the second rule, 'payments'".
        try:
            return handler(data)
        except ValidationError as exc:
            raise ValueError(describe_rule_errors(exc, data)) from None

    @model_validator(mode="after")
    def _nothing_after_a_rule_for_everything(self) -> RetentionConfig:
        # The first match wins: behind `match: {}` a rule would silently keep nothing.
        for number, rule in enumerate(self.rules[:-1], 1):
            if all(value in (None, {}) for value in rule.match.model_dump().values()):
                after = self.rules[number]
                raise ValueError(
                    f"rule {number + 1} ({after.stream_name}) never applies: rule {number} "
                    f"({rule.stream_name}) has an empty match, which takes every record "
                    "first; put that rule last, or make its keep the default"
                )
        return self

    @model_validator(mode="after")
    def _one_keep_per_name(self) -> RetentionConfig:
        seen = {self.default: self.default}
        for number, rule in enumerate(self.rules, 1):
            keep = seen.setdefault(rule.stream_name, rule.keep)
            if keep != rule.keep:
                raise ValueError(
                    f"rule {number} ({rule.stream_name}): 'name': "
                    f"another rule of that name keeps {keep}, this one {rule.keep}"
                )
        return self


def describe_rule_errors(exc: ValidationError, data: Any) -> str:
    """One clause per problem, each naming the rule (number and name) and the key."""
    raw_rules = data.get("rules") if isinstance(data, Mapping) else None
    clauses = []
    for located, err in readable(exc.errors()):
        loc = list(located)
        where = ""
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            where = _rule_label(loc[1], raw_rules) + ": "
            loc = loc[2:]
        key = ".".join(str(part) for part in loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            clauses.append(f"{where}unknown key '{key}'")
        elif key:
            clauses.append(f"{where}'{key}': {msg}")
        else:
            clauses.append(f"{where}{msg}")
    return "; ".join(clauses)


def _rule_label(index: int, raw_rules: object) -> str:
    name = None
    if isinstance(raw_rules, list) and index < len(raw_rules):
        raw = raw_rules[index]
        if isinstance(raw, Mapping):
            name = raw.get("name") or raw.get("keep")
    return f"rule {index + 1}" + (f" ({name})" if isinstance(name, str) else "")


class RetentionRules:
    """The rules compiled for the hot path, and each stream's retention."""

    def __init__(self, config: RetentionConfig) -> None:
        self.config = config
        self._matchers = tuple(Matcher(rule.stream_name, rule.match) for rule in config.rules)
        self._keep = {config.default: seconds(config.default)}
        for rule in config.rules:
            self._keep[rule.stream_name] = seconds(rule.keep)
        self._cache: dict[tuple[str | None, ...], str] = {}

    def rule_for(
        self,
        values: tuple[str, str, str, str, str],
        labels: Mapping[str, str],
        level: str | None,
        key: tuple[str | None, ...] | None = None,
    ) -> str:
        """Name of the first rule matching (service, container, image, namespace, dataset).

        `key` identifies the inputs for the cache (labels of a container never change).
        """
        if key is not None and (hit := self._cache.get(key)) is not None:
            return hit
        name = next(
            (m.name for m in self._matchers if m.matches(values, labels, level)),
            self.config.default,
        )
        if key is not None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = name
        return name

    def keep_seconds(self, stream: str) -> tuple[str, int] | None:
        """(rule name, retention in seconds) of a data stream, None if not ours to delete.

        A stream named after a rule that no longer exists is kept (deletion cannot be
        undone), unless its name is a duration, which then is its retention.
        """
        if stream == DEADLETTER_STREAM:
            return ("deadletter", seconds(self.config.deadletter or self.config.default))
        name = rule_of_stream(stream)
        if name is None:
            return None
        if name in self._keep:
            return (name, self._keep[name])
        if is_duration(name):
            return (name, seconds(name))
        return None


def stream_dataset(dataset: str, rule_name: str) -> str:
    """The dataset part of the data stream for records of `dataset` kept by `rule_name`."""
    return f"{dataset}{STREAM_MARKER}{rule_name}"


def is_logpipe_stream(stream: str) -> bool:
    """Whether logpipe writes `stream`: one named after a rule, or the dead-letter stream."""
    return stream == DEADLETTER_STREAM or rule_of_stream(stream) is not None


def rule_of_stream(stream: str) -> str | None:
    """The rule name a data stream's name carries, or None if it carries none."""
    parts = stream.split("-")
    if len(parts) != 3 or parts[0] != "logs":
        return None
    _, marker, name = parts[1].rpartition(STREAM_MARKER)
    if not marker or re.fullmatch(RULE_NAME_PATTERN, name) is None:
        return None
    return name


class RulesHolder:
    """The rules in force; routing reads `.rules` per record, a reload swaps it."""

    def __init__(self, config: RetentionConfig | None = None) -> None:
        self.rules = RetentionRules(config or RetentionConfig())
