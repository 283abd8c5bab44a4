"""Dissect patterns: a line cut at the literal text between ``%{...}`` keys. Pure.

``%{client} - %{user} [%{time}] "%{request}" %{status}`` takes everything up to the next
literal (``" - "``, ``" ["``...) into each key, the last key taking the rest of the line.
No backtracking, so a line costs one scan however it is written. Keys:

- ``%{name}``: the text up to the next literal, into ``name``;
- ``%{}`` or ``%{?name}``: the same text, skipped;
- ``%{name->}``: then skip further repeats of the literal that follows (padding, as in
  columns aligned with spaces).

Two keys with no literal between them could split the text anywhere: a pattern error.

The pattern is compiled into a regular expression of atomic groups, one per key
(``(?>(?P<client>.*?) - )``): each takes the text up to the first occurrence of its
literal and is never revisited, which is exactly the cut described above, in one call
into C (a quarter of the time of a loop of ``str.find`` in Python on an access log
line). The literals are escaped, so nothing a user writes is a regular expression to
Python's ``re``; a line without the first literal is refused by ``str.find`` first, since
a lazy scan for it is slower than memchr on the lines a rule is not for.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from collector.errors import RulesError

_KEY = re.compile(r"%\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class _Key(NamedTuple):
    name: str | None  # None: skipped
    delimiter: str  # the literal after the key; "" for the last one (takes the rest)
    padded: bool


class Dissect:
    """A dissect pattern, parsed once."""

    __slots__ = ("first", "keys", "names", "prefix", "regex")

    def __init__(self, pattern: str) -> None:
        pieces = _KEY.split(pattern)
        # pieces: literal, key, literal, key, ..., literal
        if len(pieces) < 3:
            raise RulesError("a dissect pattern needs at least one %{key}")
        self.prefix = pieces[0]
        keys: list[_Key] = []
        for i in range(1, len(pieces), 2):
            delimiter = pieces[i + 1]
            if not delimiter and i + 2 < len(pieces):
                raise RulesError(
                    f"keys %{{{pieces[i]}}} and %{{{pieces[i + 2]}}} have no text between "
                    "them, so the line could be split anywhere: put a literal between them"
                )
            keys.append(_key(pieces[i], delimiter))
        self.keys = tuple(keys)
        self.names = tuple(k.name for k in keys if k.name is not None)
        if len(set(self.names)) != len(self.names):
            raise RulesError("a key appears twice in the dissect pattern")
        self.first = keys[0].delimiter
        self.regex = re.compile(re.escape(self.prefix) + "".join(map(_group, keys)), re.DOTALL)

    def __call__(self, text: str) -> dict[str, str] | None:
        """The keys' values, or None when `text` does not have the pattern's shape."""
        if not text.startswith(self.prefix) or text.find(self.first, len(self.prefix)) < 0:
            return None
        found = self.regex.match(text)
        return None if found is None else found.groupdict()


def _group(key: _Key) -> str:
    """The atomic group of one key: its text (named, or not kept), then its literal."""
    opening = f"(?P<{key.name}>" if key.name is not None else "(?:"
    if not key.delimiter:
        return opening + ".*)"
    literal = re.escape(key.delimiter)
    if key.padded:
        literal = f"(?:{literal})+"
    return f"(?>{opening}.*?){literal})"


def _key(spec: str, delimiter: str) -> _Key:
    padded = spec.endswith("->")
    name = spec.removesuffix("->")
    if name == "" or name.startswith("?"):
        return _Key(None, delimiter, padded)
    if _NAME.fullmatch(name) is None:
        raise RulesError(
            f"%{{{spec}}}: a key is a name of letters, digits and _ (at most 64), "
            "optionally ending in -> (skip padding); %{} or %{?name} skips text"
        )
    return _Key(name, delimiter, padded)
