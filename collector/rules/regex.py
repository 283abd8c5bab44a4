"""Regular expressions with named groups, run by RE2: linear time on any line. Pure.

Python's own ``re`` backtracks, so one hostile line can hold a pattern like ``(a+)+$``
for minutes; RE2 (the ``google-re2`` package) never backtracks and refuses what only a
backtracking engine can do (look-around, back-references). This module is the one
place that converts re2's errors into ours, for the collector's rules and the shipper's
multiline and filter labels alike (:func:`compile_re2`); it imports nothing but ``re2``
and :mod:`collector.errors`, so the shipper stays light.

RE2 reads UTF-8: the line is encoded once, and shared by every pattern tried on it (the
rules of a container are tried in turn on the same message). The match is RE2's own
``Match`` where the ``re2`` wrapper keeps it (as ``_regexp``): the wrapper's generator,
match object and offsets mapped back to characters cost more than the search on a short
line. A group's bytes are decoded; a pattern with ``\\C`` (one byte, which may cut a
character in two) goes through the wrapper, which cuts the text as it always did.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import re2

from collector.errors import RulesError

OPTIONS = re2.Options()
OPTIONS.log_errors = False  # the error is ours to report, once, naming the rule or label
UNANCHORED: Any = re2._Anchor.UNANCHORED
NO_SPAN = (-1, -1)
RawMatch = Callable[[Any, bytes, int, int], Sequence[tuple[int, int]]]


class RegexRefused(RulesError):
    """RE2 refused a pattern; `reason` is RE2's own words."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the regular expression does not compile (RE2): {reason}")
        self.reason = reason


def compile_re2(pattern: str, options: Any = OPTIONS) -> Any:
    """`pattern` compiled by RE2 with `options` (which log nothing); RegexRefused when RE2
    refuses it."""
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        raise RegexRefused(re2_reason(exc)) from None


def re2_reason(exc: Exception) -> str:
    """RE2's own words for an error it raised (it gives them as bytes)."""
    reason = exc.args[0] if exc.args else exc
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def raw_match(compiled: Any) -> RawMatch | None:
    """RE2's own ``Match`` of a compiled pattern, where the ``re2`` wrapper keeps it."""
    raw: Any = getattr(compiled, "_regexp", None)
    match = getattr(raw, "Match", None)
    return match if callable(match) else None


# A named group's opening, past escapes and character classes (whose text is literal).
_OPENING = re.compile(r"\\.|\[\^?\]?(?:\\.|[^\]\\])*\]|\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>", re.DOTALL)


def _names_once(pattern: str) -> None:
    """Refuse a group name given twice: RE2 keeps the first group of the name only, so
    a line that the other one took would lose its text."""
    seen: set[str] = set()
    for found in _OPENING.finditer(pattern):
        name = found.group(1)
        if name is not None and name in seen:
            raise RulesError(
                f"the group name {name!r} is given twice: a name takes one group "
                "(RE2 would keep only the first); name them apart"
            )
        seen.add(name or "")


class _LastLine:
    """The last line encoded, and its UTF-8 (one line is tried by many patterns)."""

    text: str = ""
    data: bytes = b""


def _utf8(text: str) -> bytes:
    """`text` as UTF-8, encoded once for the patterns tried on it in a row."""
    if text is not _LastLine.text:
        _LastLine.data = text.encode("utf-8")  # UnicodeEncodeError: a lone surrogate
        _LastLine.text = text
    return _LastLine.data


class Regex:
    """A pattern compiled by RE2; `names` are its named groups."""

    __slots__ = ("_groups", "_match", "_search", "names")

    def __init__(self, pattern: str) -> None:
        compiled = compile_re2(pattern)
        _names_once(pattern)
        self._search = compiled.search
        self.names = tuple(compiled.groupindex)
        self._groups = tuple((name, int(index)) for name, index in compiled.groupindex.items())
        self._match = raw_match(compiled) if "\\C" not in pattern else None

    def __call__(self, text: str) -> dict[str, str] | None:
        """The named groups that took part in the first match, or None without a match."""
        if self._match is None:
            return self._wrapped(text)
        try:
            data = _utf8(text)
        except UnicodeEncodeError:  # a lone surrogate, which UTF-8 (and so RE2) cannot carry
            return self._wrapped(text)
        spans = self._match(UNANCHORED, data, 0, len(data))
        if spans[0] == NO_SPAN:
            return None
        return {
            name: data[spans[i][0] : spans[i][1]].decode()
            for name, i in self._groups
            if spans[i] != NO_SPAN
        }

    def _wrapped(self, text: str) -> dict[str, str] | None:
        """The same, through the re2 wrapper's search on text."""
        try:
            found = self._search(text)
        except UnicodeEncodeError:
            found = self._search(text.encode("utf-8", "replace").decode("utf-8"))
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}
