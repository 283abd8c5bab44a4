"""Redaction applied to a line and to everything parsed out of it, counted per rule. Pure.

The raw line is redacted before any parser sees it, so the mask is what ``message``,
``event.original`` and the dead-letter copy hold; then every string parsed out of it
(attributes at any depth, the HTTP fields, the logger) is redacted again, since JSON
escapes (``\\u0040``) can hide a secret from the first pass. A rule's own redactions
run on its pattern's keys before they are typed, so a masked value is never indexed
as a number, and on the message. See collector/rules/redact.py for the rules themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from collector.parse import Http, JSONValue, Parsed
from collector.rules.redact import BUILTIN_NAMES, Redactor, RedactSpec

Counts = dict[str, int]
# Texts found clean are remembered (redaction is a pure function of the text): the
# short ones (levels, methods, logger and field values that recur line after line) up
# to a bound, and the last long one (a plain line's message is the line just masked).
_SHORT = 128
_CLEAN_MAX = 4096
_HTTP_TEXT = ("url", "path", "referrer", "user_agent")


class RedactConfig(BaseModel):
    """Which redactions apply: built-ins by name, and the user's own patterns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    builtins: list[str] = Field(
        default_factory=list, description=f"Built-ins: {', '.join(BUILTIN_NAMES)}."
    )
    custom: list[RedactSpec] = Field(
        default_factory=list, description="Own patterns: {name, pattern (RE2), mask}."
    )

    @model_validator(mode="after")
    def _compiles(self) -> RedactConfig:
        Redactor(self.builtins, self.custom)  # RedactError (a ValueError) names the rule
        return self


class Masking:
    """A redactor applied to texts and parsed lines, adding what it masked to `counts`."""

    __slots__ = ("_clean", "_last_clean", "redactor")

    def __init__(self, builtins: Iterable[str] = (), custom: Iterable[RedactSpec] = ()) -> None:
        self.redactor = Redactor(builtins, custom)
        self._clean: set[str] = set()
        self._last_clean = ""

    def __bool__(self) -> bool:
        return bool(self.redactor)

    def text(self, text: str, counts: Counts) -> str:
        """`text` masked."""
        short = len(text) <= _SHORT
        if (text in self._clean) if short else (text == self._last_clean):
            return text
        masked, found = self.redactor.redact(text)
        if not found:
            self._remember(text, short)
            return masked
        for name, n in found.items():
            counts[name] = counts.get(name, 0) + n
        return masked

    def _remember(self, text: str, short: bool) -> None:
        """Note a text found clean, so that it is not searched again."""
        if not short:
            self._last_clean = text
            return
        if len(self._clean) >= _CLEAN_MAX:
            self._clean.clear()
        self._clean.add(text)

    def value(self, value: JSONValue, counts: Counts) -> JSONValue:
        """A parsed value with every string in it masked, at any depth."""
        if isinstance(value, str):
            return self.text(value, counts)
        if isinstance(value, dict):
            return {k: self.value(v, counts) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, counts) for v in value]
        return value

    def strings(self, values: dict[str, str], counts: Counts) -> dict[str, str]:
        """The keys a pattern took, masked."""
        return {k: self.text(v, counts) for k, v in values.items()}

    def parsed(self, parsed: Parsed, counts: Counts) -> None:
        """Mask, in place, every string of a parsed line."""
        parsed.message = self.text(parsed.message, counts)
        if parsed.original is not None:
            parsed.original = self.text(parsed.original, counts)
        if parsed.logger is not None:
            parsed.logger = self.text(parsed.logger, counts)
        if parsed.attributes:
            clean, value = self._clean, self.value  # a remembered text is itself: no call
            parsed.attributes = {
                k: v if type(v) is str and v in clean else value(v, counts)
                for k, v in parsed.attributes.items()
            }
        if parsed.http is not None:
            self._http(parsed.http, counts)

    def _http(self, http: Http, counts: Counts) -> None:
        for name in _HTTP_TEXT:
            value = getattr(http, name)
            if value is not None:
                setattr(http, name, self.text(value, counts))


def masking_of(config: RedactConfig | None, besides: RedactConfig | None = None) -> Masking:
    """The masking of `config`, less what `besides` (the redactions of every line) does."""
    if config is None:
        return Masking()
    skip = set(besides.builtins) if besides is not None else set()
    return Masking([b for b in config.builtins if b not in skip], config.custom)
