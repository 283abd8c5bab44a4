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

from collector.keys import ALL, KeyFilter

# The field of the keys `attributes` does not index (templates.py maps it so).
UNINDEXED = "attributes_unindexed"
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
        """The keys indexed and those kept unindexed, each in the line's order."""
        indexed: dict[str, Any] = {}
        unindexed: dict[str, Any] = {}
        for key, value in attributes.items():
            (indexed if self.indexes(key) else unindexed)[key] = value
        return indexed, unindexed


EVERY_ATTRIBUTE = AttributeFilter()
