"""Regular expressions with named groups, run by RE2: linear time on any line. Pure.

Python's own ``re`` backtracks, so one hostile line can hold a pattern like ``(a+)+$``
for minutes; RE2 (the ``google-re2`` package) never backtracks and refuses what only a
backtracking engine can do (look-around, back-references). This module is the one
place that converts re2's errors into ours.
"""

from __future__ import annotations

import re2

from collector.errors import RulesError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is ours to report, once, naming the rule


class Regex:
    """A pattern compiled by RE2; `names` are its named groups."""

    __slots__ = ("_search", "names")

    def __init__(self, pattern: str) -> None:
        try:
            compiled = re2.compile(pattern, options=_OPTIONS)
        except re2.error as exc:
            reason = exc.args[0] if exc.args else exc
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", "replace")
            raise RulesError(f"the regular expression does not compile (RE2): {reason}") from None
        self._search = compiled.search
        self.names = tuple(compiled.groupindex)

    def __call__(self, text: str) -> dict[str, str] | None:
        """The named groups that took part in the first match, or None without a match."""
        try:
            found = self._search(text)
        except UnicodeEncodeError:  # a lone surrogate, which UTF-8 (and so RE2) cannot carry
            found = self._search(text.encode("utf-8", "replace").decode("utf-8"))
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}
