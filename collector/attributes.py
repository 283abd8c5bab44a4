"""Which of a line's parsed keys Elasticsearch indexes.

The keys a JSON or logfmt line carries beside the fields the collector knows (and those
a parsing rule's pattern takes) go into `attributes`, one `flattened` field: every key
is indexed, keyed and plain, with doc values, in every document that has it. Keys
nobody searches (a line's own time, payload dumps, request headers) cost the cluster on
every line. `LOGPIPE_INDEXED_ATTRIBUTES` chooses the keys `attributes` indexes; the
others are kept whole in `attributes_unindexed`, which Elasticsearch stores with the
document and does not index: shown with the line, not searchable.

Imports nothing of the collector but collector/keys.py, so that the config can check
the patterns at start.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from collector.keys import ALL, RESERVED, KeyFilter

# The field of the keys `attributes` does not index (templates.py maps it so).
UNINDEXED = "attributes_unindexed"
# How deep objects may nest in a `flattened` field, itself counted: Elasticsearch refuses
# a document whose `attributes` go deeper (its `depth_limit`, 20 by default).
FLATTENED_DEPTH = 20
# The longest path of a parsed key `attributes` indexes, in characters (a nested key's
# path joins its parents' keys with dots): a `flattened` field indexes each value as one
# term that holds its key's whole path, and Elasticsearch refuses a document with a term
# over 32766 bytes (a JSON or logfmt line with a key of 40,000 characters was
# dead-lettered). A key past it goes to `attributes_unindexed`: shown with the line, not
# searchable, as a container label's key is cut there (collector.wire.LABEL_KEY_CHARS).
LONGEST_KEY = 1024
# A key that holds RESERVED (a binary line that still read as logfmt was dead-lettered)
# goes to `attributes_unindexed` too, which Elasticsearch does not parse into terms.
# The values that hold keys of their own.
_NESTING = (dict, list)
# Decisions remembered per filter: a collector sees the same few keys again and again;
# forgotten all at once when full (a line of made-up keys cannot grow it).
DECISIONS = 4096


class AttributeFilter(KeyFilter):
    """The parsed keys `attributes` indexes: the keys the patterns choose (KeyFilter)."""

    __slots__ = ("_decided",)
    noun = "attribute"

    def __init__(self, patterns: Iterable[str] = ALL) -> None:
        super().__init__(patterns)
        self._decided: dict[str, bool] = {}

    def indexes(self, key: str) -> bool:
        """Whether `attributes` indexes the parsed key `key`."""
        decided = self._decided.get(key)
        if decided is None:
            if len(self._decided) >= DECISIONS:
                self._decided.clear()
            decided = self._decided[key] = self.keeps(key)
        return decided

    def split(self, attributes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The keys indexed and those kept unindexed (not chosen, or a key Elasticsearch
        refuses in `attributes`: :func:`unfit`), each in the line's order."""
        indexed: dict[str, Any] = {}
        unindexed: dict[str, Any] = {}
        for key, value in attributes.items():
            keep = self.indexes(key) and not unfit(key, value)
            (indexed if keep else unindexed)[key] = value
        return indexed, unindexed


def unfit(key: str, value: Any) -> bool:
    """Whether `attributes` cannot hold `key`: its path, or that of a key nested in its
    `value`, is longer than LONGEST_KEY characters or holds RESERVED."""
    return (
        len(key) > LONGEST_KEY
        or RESERVED in key
        or (type(value) in _NESTING and _over(len(key), value))
    )


def _over(length: int, value: Any) -> bool:
    """Whether a path `length` long, or a path under it in `value`, is longer than
    LONGEST_KEY, or a key under it holds RESERVED."""
    if length > LONGEST_KEY:
        return True
    if isinstance(value, dict):
        return any(RESERVED in key or _over(length + 1 + len(key), v) for key, v in value.items())
    if isinstance(value, list):
        return any(_over(length, v) for v in value)
    return False


def indexable(attributes: dict[str, Any]) -> bool:
    """Whether every key of `attributes` fits `attributes` (nearly always: no key path
    longer than LONGEST_KEY, none holding RESERVED)."""
    for key, value in attributes.items():  # a loop: a generator costs twice as much
        if (
            len(key) > LONGEST_KEY
            or RESERVED in key
            or (type(value) in _NESTING and _over(len(key), value))
        ):
            return False
    return True


EVERY_ATTRIBUTE = AttributeFilter()


def within_depth(attributes: dict[str, Any]) -> dict[str, Any]:
    """`attributes` as Elasticsearch's `flattened` field takes them: an object nested
    deeper than FLATTENED_DEPTH is kept as its JSON text, a keyword at the deepest level
    that may hold one (nothing of the line is lost; the rest stays searchable). The same
    dict when nothing is that deep (almost always)."""
    if not any(_too_deep(value, 1) for value in attributes.values()):
        return attributes
    return {key: _within(value, 1) for key, value in attributes.items()}


def _too_deep(value: Any, level: int) -> bool:
    """Whether `value`, held by an object `level` deep, holds an object deeper than a
    `flattened` field takes (arrays do not count as a level)."""
    if isinstance(value, dict):
        return level >= FLATTENED_DEPTH or any(_too_deep(v, level + 1) for v in value.values())
    if isinstance(value, list):
        return any(_too_deep(v, level) for v in value)
    return False


def _within(value: Any, level: int) -> Any:
    if isinstance(value, dict):
        if level >= FLATTENED_DEPTH:
            return orjson.dumps(value).decode()
        return {key: _within(v, level + 1) for key, v in value.items()}
    if isinstance(value, list):
        return [_within(v, level) for v in value]
    return value
