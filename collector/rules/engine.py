"""Which rule applies to a parsed line, and what it makes of it. Pure: no I/O.

A rule applies when its ``match`` matches the record (the same matcher as retention's)
and its pattern, if it has one, fits the line's message; the first such rule in the
file's order wins. A container labelled ``logpipe.rule=<name>`` gets that rule for
every line, whatever its ``match`` says; a line its pattern does not fit is tagged.

Which rules may apply depends only on the container and the level, so that list is
cached per (container, level): a line then costs its patterns, nothing more. With no
rules and no redaction the engine is false and the collector never calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from collector.config import CollectorConfig
from collector.parse import Parsed
from collector.retention.rules import seconds
from collector.routing import service_name
from collector.rules.compiled import CompiledRule, Shaped
from collector.rules.config import RULE_LABEL, ParseRule, declared_fields
from collector.rules.masking import Counts, RedactConfig, masking_of
from collector.wire import Source

log = logging.getLogger("logpipe.collector.rules")

_CACHE_LIMIT = 10_000


class Defaults(Protocol):
    """The default dataset and namespace (the enrichment context has them)."""

    @property
    def dataset(self) -> str:
        """The dataset of containers without a dataset hint."""

    @property
    def namespace(self) -> str:
        """The namespace of containers without a namespace hint."""


class Outcome(NamedTuple):
    """What the rules did to one line: shaped it, dropped it (by `drop`), or neither."""

    shaped: Shaped | None = None
    drop: str | None = None


_NOTHING = Outcome()


class _Choice(NamedTuple):
    rules: tuple[CompiledRule, ...]
    named: bool  # chosen by the container's label: a line that does not fit is tagged
    problem: str | None  # the label names no rule


class Engine:
    """The parsing rules in force, compiled; false when there are none."""

    def __init__(
        self,
        rules: Sequence[ParseRule] = (),
        max_skew: str = "1d",
        redact: RedactConfig | None = None,
    ) -> None:
        self.config = (tuple(rules), max_skew, redact)
        # The redactions of every line, rule or no rule.
        self.masking = masking_of(redact)
        self.masks = bool(self.masking)  # read per line: an attribute, not two calls
        self.rules = tuple(CompiledRule(rule, redact) for rule in rules)
        self.by_name = {rule.name: rule for rule in self.rules}
        self.max_skew_ns = seconds(max_skew) * 10**9
        # The typed fields (name -> type) the index template must map.
        self.fields = declared_fields(list(rules))
        self._cache: dict[tuple[str | None, ...], _Choice] = {}

    def __bool__(self) -> bool:
        return bool(self.rules) or self.masks

    def apply(
        self, source: Source, ctx: Defaults, parsed: Parsed, docker_ns: int, counts: Counts
    ) -> Outcome:
        """Apply the first rule that fits; `parsed` gains its attributes in place.

        What the rule's own redactions mask is added to `counts`.
        """
        if not self.rules and RULE_LABEL not in source.labels:
            return _NOTHING  # redaction alone: no rule to choose, no label naming one
        choice = self._choose(source, ctx, parsed.level)
        for rule in choice.rules:
            taken = rule.take(parsed.message)
            if taken is None:
                continue
            if rule.drop:
                return Outcome(drop=rule.name)
            return Outcome(rule.shape(parsed, taken, docker_ns, self.max_skew_ns, counts))
        if choice.problem is not None:
            return Outcome(Shaped("", failures=[choice.problem]))
        if choice.named:
            name = choice.rules[0].name
            return Outcome(Shaped(name, failures=[f"the pattern of rule '{name}' does not fit"]))
        return _NOTHING

    def _choose(self, source: Source, ctx: Defaults, level: str | None) -> _Choice:
        dataset = source.hints.dataset or ctx.dataset
        namespace = source.hints.namespace or ctx.namespace
        # A container's labels, name and image never change: its id stands for them.
        key = (source.host, source.container_id, dataset, namespace, level)
        found = self._cache.get(key)
        if found is None:
            found = self._compute(source, (dataset, namespace), level)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _compute(self, source: Source, where: tuple[str, str], level: str | None) -> _Choice:
        named = source.labels.get(RULE_LABEL)
        if named is not None:
            rule = self.by_name.get(named.strip())
            if rule is None:
                known = ", ".join(self.by_name) or "none"
                problem = f"label {RULE_LABEL}={named[:64]!r} names no rule (rules: {known})"
                return _Choice((), False, problem)
            return _Choice((rule,), True, None)
        values = (service_name(source), source.container_name, source.image, *where[::-1])
        fitting = tuple(r for r in self.rules if r.matcher.matches(values, source.labels, level))
        return _Choice(fitting, False, None)


def engine_of(config: CollectorConfig) -> Engine:
    """The engine of the rules in a configuration."""
    return Engine(config.rules, config.timestamp_max_skew, config.redact)


class ParsingRules:
    """The engine in force; each batch reads `.engine` once, a reload swaps it."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or Engine()

    def take(self, config: CollectorConfig) -> None:
        """Follow a reloaded configuration: a new engine if its rules changed."""
        fresh = engine_of(config)
        if fresh.config != self.engine.config:
            self.engine = fresh
            log.info("parsing rules reloaded", extra={"rules": len(fresh.rules)})
