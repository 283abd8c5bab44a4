"""One parsing rule compiled for the hot path, and what it makes of one parsed line. Pure.

A rule's pattern runs on the line's ``message`` (a plain line as it came, less terminal
escapes; a JSON or logfmt record's message). The keys it takes join the parsed
``attributes``; each declared field is then taken out of them and converted to its
type into ``fields``, or left in ``attributes`` as it was, with the reason in
``failures``. A time taken from a field replaces ``@timestamp`` unless it lies more
than the allowed skew away from Docker's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import msgspec
import orjson

from collector.matching import Matcher
from collector.parse import JSONValue, Parsed
from collector.parse.level import normalise_level
from collector.rules.config import ParseRule, TypedField
from collector.rules.convert import FieldType, Typed, converter
from collector.rules.dissect import Dissect
from collector.rules.fused import SLOW, FusedRule, fused
from collector.rules.masking import Counts, RedactConfig, masking_of
from collector.rules.regex import Regex
from collector.rules.timestamp import TimeParser

Attributes = dict[str, JSONValue]


class Shaped(msgspec.Struct):
    """What a rule made of one line, beyond the parsed line it changed in place.

    A msgspec Struct, as `Parsed` is: one is made per line a rule shapes, and its
    __init__ runs in C.
    """

    rule: str
    fields: dict[str, Typed] = msgspec.field(default_factory=dict)
    timestamp: int | None = None
    failures: Sequence[str] = ()  # a list when there are some (none: no list per line)


class CompiledRule:
    """A rule's matcher, pattern, converters and time parser, made once per load."""

    __slots__ = (
        "converters",
        "date_parsers",
        "drop",
        "extract",
        "fast",
        "kinds",
        "masking",
        "masks",
        "matcher",
        "name",
        "needle",
        "take",
        "time_field",
        "time_parser",
    )

    def __init__(self, rule: ParseRule, besides: RedactConfig | None = None) -> None:
        self.name = rule.name
        self.matcher = Matcher(rule.name, rule.match)
        self.extract: Dissect | Regex | None = None
        if rule.dissect is not None:
            self.extract = Dissect(rule.dissect)
        elif rule.regex is not None:
            self.extract = Regex(rule.regex)
        # The pattern's keys in a message; {} without a pattern; None if it does not fit.
        # The pattern itself, not a method around it: one call less per line and rule.
        self.take: Callable[[str], dict[str, str] | None] = _no_pattern
        if isinstance(self.extract, Dissect):
            self.take = self.extract.cut
        elif self.extract is not None:
            self.take = self.extract
        self.drop = rule.drop
        # The rule's own redactions, less those every line already had (`besides`).
        self.masking = masking_of(rule.redact, besides)
        self.masks = bool(self.masking)
        # Each typed field's type, converter, and a date field's time parser.
        self.kinds = rule.field_types()
        self.date_parsers = {
            name: _date_parser(spec)
            for name, spec in rule.fields.items()
            if self.kinds[name] == "date"
        }
        self.converters = tuple(
            (name, converter(kind, self.date_parsers.get(name)))
            for name, kind in self.kinds.items()
        )
        spec = rule.timestamp
        self.time_field = spec.field if spec is not None else None
        self.time_parser = TimeParser(spec.format, spec.timezone) if spec is not None else None
        # Text every line the pattern fits holds (its first literal): a line without it is
        # passed over without a call. "" for a regular expression (in every line).
        self.needle = ""
        # The usual line's whole work in one written-out function (collector/rules/fused.py).
        self.fast: FusedRule | None = None
        if isinstance(self.extract, Dissect):
            first = self.extract.steps[0]
            self.needle = self.extract.prefix or first[1]
            if not (self.drop or self.masks):
                kinds = self.kinds
                typed = [(name, kinds[name], convert) for name, convert in self.converters]
                self.fast = fused(self.extract, typed, self.time_field, self.time_parser)

    def fit(self, parsed: Parsed, docker_ns: int, max_skew_ns: int) -> Shaped | object | None:
        """The written-out rule (`fast`, which must be set) on `parsed`'s message: a
        Shaped (`parsed` then holds the attributes left), None when the pattern does not
        fit, or SLOW when the general way (`shape`) is to say what is wrong."""
        made = self.fast(parsed.message, docker_ns, max_skew_ns)  # type: ignore[misc]
        if made is None or made is SLOW:
            return made
        attributes, fields, timestamp = made
        parsed.attributes = attributes or None
        return Shaped(self.name, fields, timestamp)

    def shape(
        self,
        parsed: Parsed,
        taken: dict[str, str],
        docker_ns: int,
        max_skew_ns: int,
        counts: Counts,
    ) -> Shaped:
        """Apply the rule to a line its pattern fit: `parsed` gains attributes, loses typed.

        The rule's own redactions are counted in `counts`.
        """
        fields: dict[str, Typed] = {}
        failures: list[str] = []
        if self.masks:  # before typing: a masked value is never indexed as a number
            taken = self._masked(parsed, taken, failures, counts)
        # `taken` is a fresh dict of this line's: extended, not copied, when it can be.
        attributes: dict[str, JSONValue] = (
            {**parsed.attributes, **taken} if parsed.attributes else cast(Attributes, taken)
        )
        # A pattern's `level` key is the line's level, as a JSON line's `level` is.
        level = normalise_level(taken.get("level"))
        if level is not None:
            parsed.level = level
        time_field = self.time_field
        # Read before the typed fields leave `attributes`: the time may be one of them.
        when = attributes.get(time_field) if time_field is not None else None
        for name, convert in self.converters:
            value = attributes.get(name, _ABSENT)
            if value is _ABSENT:
                continue
            try:
                fields[name] = convert(value, docker_ns)
            except ValueError as exc:
                failures.append(f"{name}: {exc}")
                attributes[name] = value if isinstance(value, str) else _text(value)
            else:
                del attributes[name]
        timestamp = None
        if time_field is not None:
            if when is None:
                failures.append(f"timestamp: no field '{time_field}' in the line")
            else:
                timestamp = self._time(when, failures, docker_ns, max_skew_ns)
        parsed.attributes = attributes or None
        return Shaped(self.name, fields, timestamp, failures or ())

    def _masked(
        self, parsed: Parsed, taken: dict[str, str], failures: list[str], counts: Counts
    ) -> dict[str, str]:
        """The line masked by the rule's redactions, and its keys taken again from that.

        A pattern may mask a value by its context (``card (?P<secret>...)``), which the
        value alone no longer has: so the keys are taken from the masked message. When
        the pattern no longer fits it (a ``\\d+`` key masked), a key whose text is still
        in the masked message is kept (it holds nothing the message does not), and the
        others are left out.
        """
        before = parsed.message
        self.masking.parsed(parsed, counts)
        if parsed.message != before:
            again = self.take(parsed.message)
            if again is None:
                masked = parsed.message
                left = [name for name, text in taken.items() if text not in masked]
                out = f": {', '.join(left)} left out (masked in the line)" if left else ""
                failures.append(f"the pattern no longer fits once redacted{out}")
                again = {name: text for name, text in taken.items() if name not in left}
            taken = again
        return self.masking.strings(taken, counts)

    def _time(
        self, value: JSONValue, failures: list[str], docker_ns: int, max_skew_ns: int
    ) -> int | None:
        """The line's time, or None (with the reason in `failures`) to keep Docker's."""
        parser = self.time_parser
        if parser is None:
            return None
        try:
            ns = parser.parse(value, docker_ns)
        except ValueError as exc:
            failures.append(f"timestamp: {exc}")
            return None
        if abs(ns - docker_ns) > max_skew_ns:
            hours = abs(ns - docker_ns) / 3.6e12
            off = f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.0f} days"
            failures.append(
                f"timestamp: {self.time_field} is {off} from Docker's time, more than the "
                "allowed skew (timestamp_max_skew): Docker's time kept"
            )
            return None
        return ns


_ABSENT: JSONValue = cast(JSONValue, object())  # a key not in the attributes (None is a value)


def _no_pattern(_message: str) -> dict[str, str]:
    """What a rule without a pattern takes from any line: nothing, and it fits."""
    return {}


def _text(value: JSONValue) -> str:
    """A value that is not text, as the JSON it was written in (kept as text)."""
    return orjson.dumps(value).decode()


def _date_parser(spec: FieldType | TypedField) -> TimeParser:
    """A date field's time parser (RFC 3339 in UTC unless its spec names a format)."""
    if isinstance(spec, str):
        return TimeParser()
    return TimeParser(spec.format or "rfc3339", spec.timezone)
