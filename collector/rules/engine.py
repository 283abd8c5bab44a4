"""Which rule applies to a parsed line, and what it makes of it. Pure: no I/O.

A rule applies when its ``match`` matches the record (the same matcher as retention's)
and its pattern, if it has one, fits the line's message; the first such rule in the
file's order wins. A container labelled ``logpipe.rule=<name>`` gets that rule for
every line, whatever its ``match`` says; a line its pattern does not fit is tagged.

Which rules may apply depends only on the container and the level, so it is resolved
once per container (a :class:`Plan`), and per level only when a rule's ``match`` names
levels: a line then costs its patterns, nothing more. A container no rule can apply to
(and no label names a rule for) takes the collector's plain path when nothing is
redacted; with no rules and no redaction the engine is false and the collector never
calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from collector.config import CollectorConfig
from collector.parse import Parsed
from collector.retention.rules import seconds
from collector.routing import service_name
from collector.rules.check import rule_warnings
from collector.rules.compiled import CompiledRule, Shaped
from collector.rules.config import RULE_LABEL, ParseRule, declared_fields
from collector.rules.masking import Counts, RedactConfig, masking_of
from collector.wire import Source

log = logging.getLogger("logpipe.collector.rules")

_CACHE_LIMIT = 10_000
_LEVELS_LIMIT = 64  # levels of one container (JSON lines may write any)


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


class Plan:
    """The rules one container's lines may get, resolved once (per level when needed).

    `idle`: no rule can apply to any of its lines; `direct`: nor is anything redacted,
    so its lines are made exactly as without rules. `needle`: when one rule, and no label, no
    redaction, no level, decides for every line, the text its pattern says first: a line
    without it is made as without rules too (else "", and every line goes to the rules).
    `fast`: that one rule, when it is written out; `fasts`: the rules that decide for every
    line (no label, no redaction, no level), in order, when each of them is written out
    (else empty).
    """

    __slots__ = (
        "by_level",
        "direct",
        "engine",
        "fast",
        "fasts",
        "fixed",
        "idle",
        "needle",
        "source",
        "where",
    )

    def __init__(self, engine: Engine, source: Source, where: tuple[str, str]) -> None:
        self.engine = engine
        self.source = source
        self.where = where
        self.by_level: dict[str | None, _Choice] = {}
        # The choice of every level at once, unless a rule that may apply reads the level.
        self.fixed = engine._level_free(source, where)
        fixed = self.fixed
        # No rule for any line (`direct` unless something is redacted).
        self.idle = fixed is not None and not fixed.rules and fixed.problem is None
        self.direct = self.idle and not engine.masks
        self.needle = ""
        # That one rule, when it is written out (collector/rules/fused.py).
        self.fast: CompiledRule | None = None
        # Those rules, in order, when every one of them is written out.
        self.fasts: tuple[CompiledRule, ...] = ()
        if fixed is not None and fixed.rules and not (fixed.named or engine.masks):
            if len(fixed.rules) == 1:
                self.needle = fixed.rules[0].needle
                if fixed.rules[0].fast is not None:
                    self.fast = fixed.rules[0]
            if all(rule.fast is not None for rule in fixed.rules):
                self.fasts = fixed.rules

    def choice(self, level: str | None) -> _Choice:
        """The rules to try, in order, on a line of this container at `level`."""
        fixed = self.fixed
        if fixed is not None:
            return fixed
        found = self.by_level.get(level)
        if found is None:
            found = self.engine._compute(self.source, self.where, level)
            if len(self.by_level) >= _LEVELS_LIMIT:
                self.by_level.clear()
            self.by_level[level] = found
        return found


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
        self.rule_masks = any(rule.masks for rule in self.rules)  # a rule's own redactions
        self.max_skew_ns = seconds(max_skew) * 10**9
        # The typed fields (name -> type) the index template must map.
        self.fields = declared_fields(list(rules))
        self._plans: dict[tuple[str, ...], Plan] = {}

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
        found = self.first_fit(
            self.plan(source, ctx).choice(parsed.level), parsed, docker_ns, counts
        )
        if found is None:
            return _NOTHING
        if isinstance(found, str):
            return Outcome(drop=found)
        return Outcome(found)

    def first_fit(
        self, choice: _Choice, parsed: Parsed, docker_ns: int, counts: Counts
    ) -> Shaped | str | None:
        """`apply` once the container's rules for the line's level are known.

        What the line gets: a Shaped, the name of the drop rule that takes it, or None.
        """
        message = parsed.message
        for rule in choice.rules:
            if rule.needle not in message:
                continue  # what the pattern says first is not in the line
            if rule.fast is not None and not parsed.attributes:
                fitted = rule.fit(parsed, docker_ns, self.max_skew_ns)
                if fitted is None:
                    continue
                if isinstance(fitted, Shaped):  # else SLOW: the general way says what is wrong
                    return fitted
            taken = rule.take(message)
            if taken is None:
                continue
            if rule.drop:
                return rule.name
            return rule.shape(parsed, taken, docker_ns, self.max_skew_ns, counts)
        if choice.problem is not None:
            return Shaped("", failures=[choice.problem])
        if choice.named:
            name = choice.rules[0].name
            return Shaped(name, failures=[f"the pattern of rule '{name}' does not fit"])
        return None

    def plan(self, source: Source, ctx: Defaults) -> Plan:
        """The rules of `source`'s lines, resolved once per container (cached)."""
        dataset = source.hints.dataset or ctx.dataset
        namespace = source.hints.namespace or ctx.namespace
        # A container's labels never change, so its id stands for them; its name does
        # (`docker rename`), and the shipper's later lines carry the new one.
        key = (
            source.host,
            source.container_id,
            source.container_name,
            source.image,
            dataset,
            namespace,
        )
        found = self._plans.get(key)
        if found is None:
            found = Plan(self, source, (dataset, namespace))
            if len(self._plans) >= _CACHE_LIMIT:
                self._plans.clear()
            self._plans[key] = found
        return found

    def _level_free(self, source: Source, where: tuple[str, str]) -> _Choice | None:
        """The choice of every level of `source`, or None if it depends on the level."""
        if RULE_LABEL in source.labels:
            return self._compute(source, where, None)  # the label's rule, whatever the level
        values = (service_name(source), source.container_name, source.image, *where[::-1])
        labels = source.labels
        fitting = tuple(r for r in self.rules if r.matcher.matches_container(values, labels))
        if any(r.matcher.level is not None for r in fitting):
            return None
        return _Choice(fitting, False, None)

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
            warn_of_rules(config.rules)


def warn_of_rules(rules: list[ParseRule]) -> None:
    """Log each warning `rules check` gives of `rules` (rules that load but partly never
    work), as `serve` starts and at each reload that changes them."""
    for warning in rule_warnings(rules):
        log.warning(
            "parsing rule partly never works: %s (`logpipe-collector rules check` lists them)",
            warning,
            extra={"rule_warning": warning},
        )
