"""Parsing rules as written in the collector's YAML file: the model, checked whole at load.

Everything a rule can get wrong is found here, so a bad file never reaches the hot path
(and a reload with one keeps the rules in force): a pattern that does not compile, a
field declared with two types by two rules (which would make one of them unsearchable),
an unknown type, time format or time zone, a rule that does nothing. Each message
names the rule.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from collector.errors import RulesError
from collector.matching import Match
from collector.rules.convert import FieldType
from collector.rules.dissect import Dissect
from collector.rules.masking import RedactConfig
from collector.rules.regex import Regex
from collector.rules.timestamp import check_format, zone

RULE_NAME_PATTERN = r"^[a-z0-9_]{1,32}$"
FIELD_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
# The container label that names the rule for all of its lines.
RULE_LABEL = "logpipe.rule"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TypedField(_Section):
    """A field's type, with the format of a date."""

    type: FieldType = Field(description="long, double, boolean, ip, keyword or date.")
    format: str | None = Field(
        None, description="For a date: rfc3339, unix, unix_ms, ... or a strptime format."
    )
    timezone: str = Field("UTC", description="For a date without an offset: an IANA zone.")

    @model_validator(mode="after")
    def _check(self) -> TypedField:
        if self.format is not None:
            if self.type != "date":
                raise RulesError(f"'format' is for dates, and this field's type is {self.type}")
            check_format(self.format)
        zone(self.timezone)
        return self


class TimestampSpec(_Section):
    """Where the line's own time is, and how it is written."""

    field: str = Field(description="The parsed field (pattern key or JSON/logfmt key).")
    format: str = Field("rfc3339", description="rfc3339, unix, unix_ms, ... or strptime.")
    timezone: str = Field("UTC", description="For times without an offset: an IANA zone.")

    @model_validator(mode="after")
    def _check(self) -> TimestampSpec:
        check_format(self.format)
        zone(self.timezone)
        return self


class ParseRule(_Section):
    """One rule: which lines (`match`), what to take out of them, and what to do."""

    name: str = Field(description="Names the rule: on documents, metrics, and the label.")
    match: Match = Field(default_factory=Match, description="Which records; omitted: all.")
    dissect: str | None = Field(None, description="A dissect pattern, %{key} per field.")
    regex: str | None = Field(None, description="An RE2 regular expression, named groups.")
    fields: dict[str, FieldType | TypedField] = Field(
        default_factory=dict, description="Typed fields: name -> type (or {type, format})."
    )
    timestamp: TimestampSpec | None = Field(None, description="Take @timestamp from a field.")
    drop: bool = Field(False, description="Drop the matching lines (counted on /metrics).")
    redact: RedactConfig | None = Field(
        None, description="Redactions for this rule's lines, beyond the top-level ones."
    )

    @model_validator(mode="after")
    def _check(self) -> ParseRule:
        if re.fullmatch(RULE_NAME_PATTERN, self.name) is None:
            raise RulesError(f"rule {self.name!r}: a name is 1 to 32 of a-z 0-9 _")
        try:
            self._check_body()
        except RulesError as exc:
            raise RulesError(f"rule '{self.name}': {exc}") from None
        return self

    def _check_body(self) -> None:
        if self.dissect is not None and self.regex is not None:
            raise RulesError("give 'dissect' or 'regex', not both")
        if self.dissect is not None:
            Dissect(self.dissect)
        if self.regex is not None:
            Regex(self.regex)
        for name in self.fields:
            if re.fullmatch(FIELD_NAME_PATTERN, name) is None:
                raise RulesError(
                    f"field {name!r}: a name is a letter or _, then letters, digits, _"
                )
        if self.drop and (self.fields or self.timestamp or self.redact):
            raise RulesError(
                "a drop rule drops its lines: 'fields', 'timestamp' and 'redact' would never apply"
            )
        if not (self.drop or self.fields or self.timestamp or self.pattern_given or self.redact):
            raise RulesError(
                "the rule does nothing: give a pattern, fields, timestamp, redact or drop"
            )

    @property
    def pattern_given(self) -> bool:
        """Whether the rule has a dissect pattern or a regular expression."""
        return self.dissect is not None or self.regex is not None

    def field_types(self) -> dict[str, FieldType]:
        """Each declared field's type."""
        return {k: v if isinstance(v, str) else v.type for k, v in self.fields.items()}


def _check_rules(rules: list[ParseRule]) -> list[ParseRule]:
    names: set[str] = set()
    declared: dict[str, tuple[FieldType, str]] = {}
    for rule in rules:
        if rule.name in names:
            raise RulesError(f"two rules are named '{rule.name}': names must differ")
        names.add(rule.name)
        for field, kind in rule.field_types().items():
            first = declared.setdefault(field, (kind, rule.name))
            if first[0] != kind:
                raise RulesError(
                    f"field '{field}' is {first[0]} in rule '{first[1]}' and {kind} in rule "
                    f"'{rule.name}': a field has one type (its mapping is shared); rename one"
                )
    return rules


RuleList = Annotated[list[ParseRule], AfterValidator(_check_rules)]


def declared_fields(rules: list[ParseRule]) -> dict[str, FieldType]:
    """Every typed field the rules declare, with its type (one per name, checked)."""
    return {k: v for rule in rules for k, v in rule.field_types().items()}
