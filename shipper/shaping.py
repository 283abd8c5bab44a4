"""One container's lines shaped into the records its label hints ask for. Pure.

A follower hands each read's records to its container's :class:`Shaper`, which joins
them into multiline events and drops the events ``logpipe.include_lines`` /
``logpipe.exclude_lines`` filter out (the rules: :mod:`shipper.multiline`). What comes
out keeps each stream's order, and the follower queues it as it comes:

- an event still waiting for its next line is held; :meth:`Shaper.due` gives it up once
  its ``logpipe.multiline.timeout`` has passed, :meth:`Shaper.flush` at once (the
  container stopped, its following ended);
- an excluded event leaves a cursor mark (so the cursor may still pass its lines),
  collected per stream and given up shortly after (``MARK_AFTER``) unless a later kept
  event of the stream covers it first;
- when the container's labels change, what was held under the old ones is given up
  first and the shaping is rebuilt from the new ones.

Nothing is read from a clock here: the caller says what time it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from shipper import metrics
from shipper.multiline import Joiner, Shaping, shaping_from
from shipper.record import GapRecord, LogRecord, MarkRecord, Meta, Record

log = logging.getLogger("logpipe.shipper.shaping")

MARK_AFTER = 0.2  # seconds a cursor mark may wait for a later kept event to cover it

Read = Sequence[LogRecord | GapRecord]


class Shaper:
    """One container's multiline joining and include/exclude filtering, and what it holds."""

    def __init__(self) -> None:
        self._labels: dict[str, str] | None = None
        self._shaping: Shaping | None = None
        self._joiners: dict[str, Joiner] = {}
        self._marks: dict[str, MarkRecord] = {}
        self._marked_at = 0.0  # when the oldest mark not yet given up was made

    def passes(self, meta: Meta) -> bool:
        """Whether lines of `meta` would pass as they are: no hints, nothing held."""
        return self._shaping is None and self._same(meta)

    def shape(self, records: Read, now: float) -> Read | list[Record]:
        """The records of one read as they are to be queued (in order), at time `now`."""
        out: list[Record] = []
        if not records:
            return out
        if not self._same(records[0].meta):
            out += self._relabel(records[0].meta)
        if self._shaping is None:
            if not out:
                return records  # the common case: no hints, nothing held
            out += records
            return out
        for record in records:
            if isinstance(record, LogRecord):
                self._filter(self._join(record, now), now, out)
            else:
                out.append(record)
        return out

    def due(self, now: float) -> list[Record]:
        """Held events whose timeout has passed, and marks that waited long enough."""
        out: list[Record] = []
        for joiner in self._joiners.values():
            if joiner.due(now):
                metrics.MULTILINE_FLUSHED.inc()
                self._filter(joiner.flush(), now, out)
        if self._marks and now >= self._marked_at + MARK_AFTER:
            out += self._marks.values()
            self._marks.clear()
        return out

    def next_due(self) -> float | None:
        """When :meth:`due` will have something to give (None: nothing is held)."""
        times = [d for j in self._joiners.values() if (d := j.deadline) is not None]
        if self._marks:
            times.append(self._marked_at + MARK_AFTER)
        return min(times, default=None)

    def flush(self) -> list[Record]:
        """Every held event and mark, now (the container stopped or is no longer followed)."""
        out: list[Record] = []
        for joiner in self._joiners.values():
            self._filter(joiner.flush(), 0.0, out)
        out += self._marks.values()
        self._marks.clear()
        return out

    def _same(self, meta: Meta) -> bool:
        """Whether `meta` has the labels the shaping was built from."""
        labels = self._labels
        return labels is meta.labels or (labels is not None and labels == meta.labels)

    def _relabel(self, meta: Meta) -> list[Record]:
        """What the old labels held; then the shaping the new labels ask for."""
        out = self.flush()
        shaping, warnings = shaping_from(meta.labels)
        for warning in warnings:
            log.warning(
                "invalid hint label ignored", extra={"container": meta.name, "reason": warning}
            )
        self._labels = meta.labels
        self._shaping = shaping
        self._joiners = {}
        return out

    def _join(self, record: LogRecord, now: float) -> list[LogRecord]:
        assert self._shaping is not None
        rule = self._shaping.multiline
        if rule is None:
            return [record]
        joiner = self._joiners.get(record.stream)
        if joiner is None:
            joiner = self._joiners[record.stream] = Joiner(rule)
        return joiner.push(record, now)

    def _filter(self, events: list[LogRecord], now: float, out: list[Record]) -> None:
        """Kept events to `out`; an excluded one leaves a mark so the cursor may pass it."""
        shaping = self._shaping
        for event in events:
            if shaping is None or shaping.keeps(event):
                out.append(event)
                self._marks.pop(event.stream, None)  # this event's position covers the mark
                continue
            metrics.LINES_EXCLUDED.inc(event.lines)
            if not self._marks:
                self._marked_at = now
            self._marks[event.stream] = MarkRecord(
                event.meta, event.stream, event.end(), event.written
            )
