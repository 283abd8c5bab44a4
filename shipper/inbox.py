"""The bounded queue from the followers to the batcher, where per-container hints apply.

The supervisor ``await inbox.put(record)`` as on any asyncio queue; followers hand over
the lines of each read at once with ``await inbox.put_many(records)``. On the way in, a
container's lines are joined into multiline events and filtered as its labels ask
(:mod:`shipper.multiline`), and a container whose reading is paused waits here: when
the disk buffer nears its bound the busiest container (most bytes lately) is paused
first, then the next one each second while it stays near; all resume once the buffer
has drained to well below the bound. A paused follower simply stops reading its HTTP
stream, so its cursor stays and Docker's log files hold the rest.

Everything leaves in the order it was produced per stream (one lock around the queue),
which the cursors rely on: a joined event held back by a timeout can never be overtaken
by a later line of its stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from shipper import metrics
from shipper.multiline import Joiner, Shaping, shaping_from
from shipper.record import (
    DoneRecord,
    EventRecord,
    GapRecord,
    LogRecord,
    MarkRecord,
    Meta,
    Record,
)

log = logging.getLogger("logpipe.shipper.inbox")

TICK = 0.2  # how often timeouts are checked
PAUSE_AT = 0.9  # buffer fill ratio where the busiest containers start to be paused
RESUME_AT = 0.7  # ... and where every paused container resumes
PAUSE_EVERY = 1.0  # seconds between two pauses, so each can take effect
_DECAY_EVERY = 1.0
_ENDS = {"die", "destroy"}


@dataclass(slots=True)
class _Hinted:
    """One container's shaping and the per-stream state it keeps."""

    labels: dict[str, str]
    shaping: Shaping
    joiners: dict[str, Joiner] = field(default_factory=dict)
    skipped: dict[str, MarkRecord] = field(default_factory=dict)


class Inbox(asyncio.Queue[Record]):
    """``asyncio.Queue`` of records that shapes lines by label hints and pauses busy senders."""

    def __init__(self, maxsize: int, counter: metrics.PerContainer) -> None:
        super().__init__(maxsize)
        self._lock = asyncio.Lock()
        self._counter = counter
        self._hinted: dict[str, _Hinted | None] = {}
        self._labels: dict[str, dict[str, str]] = {}
        self._recent: dict[str, float] = {}
        self._names: dict[str, str] = {}
        self._paused: set[str] = set()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._last_pause = 0.0

    async def put(self, item: Record) -> None:
        """Queue a record (waits while its container is paused or the queue is full)."""
        if isinstance(item, LogRecord):
            await self.put_many([item])
            return
        if isinstance(item, DoneRecord) or (isinstance(item, EventRecord) and item.action in _ENDS):
            # The container stopped: what it printed last need not wait for a timeout.
            out = [*self._flush(item.meta.id), item]
        else:
            out = [item]
        await self._enqueue(out)

    async def put_many(self, records: Sequence[LogRecord | GapRecord]) -> None:
        """Queue the records of one read of one container, in order, in one hand-off.

        The same as :meth:`put` of each in turn, at a fraction of its cost per line: the
        container's pause, hints and counters are looked at once for all of them.
        """
        if not records:
            return
        meta = records[0].meta
        cid = meta.id
        while cid in self._paused:
            await self._resumed.wait()
        lines = 0
        size = 0
        for record in records:
            if type(record) is LogRecord:
                lines += 1
                size += len(record.data)
        self._recent[cid] = self._recent.get(cid, 0.0) + size
        self._names[cid] = meta.name
        self._counter.read(meta.name, size, lines)
        out: list[Record] = []
        hinted = self._hints(meta, out)
        if hinted is None:
            if not out:
                # Nothing else ever queues records of an unshaped stream: no order to keep.
                await self._put_all(records)
                return
            out += records
        else:
            for record in records:
                if isinstance(record, LogRecord):
                    out += self._shape(hinted, record)
                else:
                    out.append(record)
        await self._enqueue(out)

    async def _enqueue(self, records: list[Record]) -> None:
        if records:
            async with self._lock:
                await self._put_all(records)

    async def _put_all(self, records: Sequence[Record]) -> None:
        for record in records:
            if self.full():
                await super().put(record)
            else:
                self.put_nowait(record)

    def _shape(self, hinted: _Hinted, record: LogRecord) -> list[Record]:
        """What a line of a container with hints turns into (joined, filtered)."""
        rule = hinted.shaping.multiline
        if rule is None:
            events = [record]
        else:
            joiner = hinted.joiners.get(record.stream)
            if joiner is None:
                joiner = hinted.joiners[record.stream] = Joiner(rule)
            events = joiner.push(record, time.monotonic())
        return _filter(hinted, events)

    def _hints(self, meta: Meta, out: list[Record]) -> _Hinted | None:
        """The container's shaping, rebuilt (after flushing) when its labels changed."""
        labels = self._labels.get(meta.id)
        if labels is meta.labels or (labels is not None and labels == meta.labels):
            return self._hinted[meta.id]
        out += self._flush(meta.id)
        shaping, warnings = shaping_from(meta.labels)
        for warning in warnings:
            log.warning(
                "invalid hint label ignored", extra={"container": meta.name, "reason": warning}
            )
        hinted = _Hinted(meta.labels, shaping) if shaping is not None else None
        self._labels[meta.id] = meta.labels
        self._hinted[meta.id] = hinted
        return hinted

    def _flush(self, cid: str) -> list[Record]:
        hinted = self._hinted.get(cid)
        if hinted is None:
            return []
        events = [e for joiner in hinted.joiners.values() for e in joiner.flush()]
        out = _filter(hinted, events)
        out += hinted.skipped.values()
        hinted.skipped.clear()
        return out

    async def run(self) -> None:
        """Send multiline events whose timeout passed, and cursor marks; until cancelled."""
        decayed = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            await self._enqueue(self._due(now))
            if now - decayed >= _DECAY_EVERY:
                decayed = now
                self._recent = {c: b / 2 for c, b in self._recent.items() if b >= 2}

    def _due(self, now: float) -> list[Record]:
        out: list[Record] = []
        for hinted in self._hinted.values():
            if hinted is None:
                continue
            for joiner in hinted.joiners.values():
                if joiner.due(now):
                    metrics.MULTILINE_FLUSHED.inc()
                    out += _filter(hinted, joiner.flush())
            out += hinted.skipped.values()
            hinted.skipped.clear()
        return out

    async def close(self) -> None:
        """Queue every held event and mark (the followers have stopped)."""
        await self._enqueue([r for cid in list(self._hinted) for r in self._flush(cid)])

    def pressure(self, used: int, limit: int) -> None:
        """The disk buffer's fill changed: pause the busiest container, or resume all."""
        metrics.BUFFER_LIMIT.set(limit)
        if used >= limit * PAUSE_AT:
            self._pause_busiest(used, limit)
        elif used <= limit * RESUME_AT and self._paused:
            log.info(
                "disk buffer drained: reading resumes",
                extra={"containers": sorted(self._names.get(c, c) for c in self._paused)},
            )
            self._paused.clear()
            self._resumed.set()
            metrics.PAUSED.set(0)

    def _pause_busiest(self, used: int, limit: int) -> None:
        now = time.monotonic()
        if now - self._last_pause < PAUSE_EVERY:
            return
        candidates = [(b, c) for c, b in self._recent.items() if c not in self._paused and b > 0]
        if not candidates:
            return
        rate, cid = max(candidates)
        self._last_pause = now
        self._paused.add(cid)
        self._resumed.clear()
        metrics.PAUSES.inc()
        metrics.PAUSED.set(len(self._paused))
        log.warning(
            "disk buffer nearly full: pausing the busiest container (Docker keeps its logs)",
            extra={
                "container": self._names.get(cid, cid[:12]),
                "recent_bytes": int(rate),
                "buffer_bytes": used,
                "limit_bytes": limit,
            },
        )

    @property
    def paused(self) -> list[str]:
        """Names of the containers paused now."""
        return sorted(self._names.get(c, c[:12]) for c in self._paused)


def _filter(hinted: _Hinted, events: list[LogRecord]) -> list[Record]:
    """Kept events; an excluded one leaves a mark so the cursor may still pass it."""
    out: list[Record] = []
    for event in events:
        if hinted.shaping.keeps(event):
            out.append(event)
            hinted.skipped.pop(event.stream, None)  # this event's position covers the mark
        else:
            metrics.LINES_EXCLUDED.inc(event.lines)
            hinted.skipped[event.stream] = MarkRecord(event.meta, event.stream, event.end())
    return out
