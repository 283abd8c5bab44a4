"""Regular expressions searched by RE2 for the multiline rules and line filters.

A pattern is searched in time linear in the line, whatever it is; a plain word skips RE2
altogether, and a built-in rule's patterns are searched in one pass (:class:`Traits`).
RE2 is imported by the first pattern compiled: most hosts have no container that asks
for one.
"""

from __future__ import annotations

from typing import Any

# RE2's constants for the search, set by the first compile (:func:`_compile`): most
# hosts have no container with a regular expression, and RE2 costs memory once imported.
UNANCHORED: Any = None
NO_SPAN: tuple[int, int] = (-1, -1)


def _compile(source: str) -> Any:
    """`source` compiled by RE2; the first call imports RE2 (RegexRefused: RE2 refuses it)."""
    global UNANCHORED, NO_SPAN
    from collector.rules import regex

    UNANCHORED, NO_SPAN = regex.UNANCHORED, regex.NO_SPAN
    return regex.compile_re2(source)


class Pattern:
    """A regular expression searched by RE2: time linear in the line, whatever the pattern.

    The search goes to RE2's own ``Match`` (kept by the ``re2`` wrapper as ``_regexp``)
    on the line's UTF-8, encoded once for the several patterns tried on a line in a row:
    the wrapper's match objects cost more than the search.
    """

    __slots__ = ("_literal", "_match", "_search", "source")

    def __init__(self, source: str) -> None:
        """Compile `source`; RegexRefused (a ValueError, with RE2's reason) when RE2 refuses it."""
        from collector.rules.regex import raw_match

        compiled = _compile(source)
        self.source = source
        self._search = compiled.search
        self._match = raw_match(compiled)
        self._literal = _literal(source)

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in `text`."""
        if self._literal is not None:
            # Most filters are plain words (``DEBUG``, ``^GET /health``): str's own
            # search does those exactly, in a fifth of the time of a call into RE2.
            start, literal, end = self._literal
            if start:
                return text == literal if end else text.startswith(literal)
            return text.endswith(literal) if end else literal in text
        if self._match is None:
            return self._search(text) is not None
        data = utf8(text)
        return bool(self._match(UNANCHORED, data, 0, len(data))[0] != NO_SPAN)

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


class Traits:
    """A built-in rule's patterns searched in one RE2 pass (an RE2 set): which match.

    A search costs about 1 us whatever the pattern, most of it the call: one call per
    line for all of a rule's patterns keeps a built-in rule as fast as it was on ``re``.
    """

    __slots__ = ("_bits", "_match")

    def __init__(self, patterns: list[tuple[int, Pattern]]) -> None:
        from re2 import _re2  # already imported: the patterns are compiled

        from collector.rules.regex import OPTIONS

        found = _re2.Set(_re2.RE2.Anchor.UNANCHORED, OPTIONS)
        for _, pattern in patterns:
            found.Add(pattern.source.encode())
        found.Compile()
        self._match = found.Match
        self._bits = [bit for bit, _ in patterns]

    def __call__(self, text: str) -> int:
        bits = 0
        for i in self._match(utf8(text)):
            bits |= self._bits[i]
        return bits


_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ")
_SPECIAL = frozenset("\\.^$*+?()[]{}|")


def _literal(source: str) -> tuple[bool, str, bool] | None:
    """(anchored at the start, text, anchored at the end) when `source` is plain text,
    perhaps with ``^`` / ``$`` and escaped punctuation (``^\\[``); else None."""
    start = source.startswith("^")
    i, end, chars = int(start), len(source), []
    anchored_end = False
    while i < end:
        ch = source[i]
        if ch == "\\":
            escaped = source[i + 1 : i + 2]
            if escaped not in _PUNCTUATION or not escaped:
                return None
            chars.append(escaped)
            i += 2
            continue
        if ch == "$" and i == end - 1:
            anchored_end = True
        elif ch in _SPECIAL:
            return None
        else:
            chars.append(ch)
        i += 1
    return start, "".join(chars), anchored_end


_last: tuple[str, bytes] = ("", b"")


def utf8(text: str) -> bytes:
    """`text` as UTF-8, encoded once for the patterns tried on it in a row."""
    global _last
    last_text, data = _last
    if last_text is not text:
        # A decoded line has no lone surrogate; "replace" only guards other callers.
        data = text.encode("utf-8", "replace")
        _last = (text, data)
    return data
