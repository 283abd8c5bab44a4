"""Glob patterns that choose keys: the labels documents carry (collector/labels.py) and
the parsed keys Elasticsearch indexes (collector/attributes.py) take the same ones.

Imports nothing of the collector, so that the config can check the patterns at start.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

ALL = ("*",)
# The character a `flattened` field (`attributes`, `container.labels`) keeps for itself:
# it joins a key to its value in the terms it indexes, and Elasticsearch refuses a
# document with a key that holds it there.
RESERVED = "\0"


def check_patterns(patterns: Iterable[str], noun: str) -> list[str]:
    """The patterns as a setting takes them, or ValueError saying what is wrong; `noun`
    names what their keys are keys of."""
    checked = []
    for pattern in patterns:
        text = pattern.strip()
        key = text.removeprefix("!")
        if not key:
            raise ValueError(
                f"{pattern!r} names no {noun}: write a key or a glob pattern after the '!' "
                "(e.g. '!traefik.*')"
            )
        if "=" in key:
            raise ValueError(
                f"{pattern!r}: the patterns match {noun} keys, not key=value (write "
                f"{text.split('=', 1)[0]!r})"
            )
        checked.append(text)
    return checked


class KeyFilter:
    """Which keys are chosen.

    A key is chosen when an include pattern matches it and no `!` pattern does (glob
    patterns, case-sensitive: `*` matches any text, dots too, `?` one character).
    Without include patterns but with `!` ones, every key is included first; without
    any pattern, no key is chosen.
    """

    __slots__ = ("every", "excludes", "includes", "patterns")
    noun = "key"

    def __init__(self, patterns: Iterable[str] = ALL) -> None:
        self.patterns = tuple(check_patterns(patterns, self.noun))
        includes = [p for p in self.patterns if not p.startswith("!")]
        excludes = [p[1:] for p in self.patterns if p.startswith("!")]
        self.includes = tuple(includes or (ALL if excludes else ()))
        self.excludes = tuple(excludes)
        # Every key whatever it is: the caller may skip asking.
        self.every = "*" in self.includes and not self.excludes

    def included(self, key: str) -> bool:
        """Whether an include pattern matches `key`."""
        return any(fnmatchcase(key, p) for p in self.includes)

    def keeps(self, key: str) -> bool:
        """Whether `key` is chosen."""
        return self.included(key) and not any(fnmatchcase(key, p) for p in self.excludes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.patterns)!r})"
