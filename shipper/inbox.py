"""The bounded queue from the followers to the batcher, and which containers may fill it.

Followers hand over the records of each read at once: ``await inbox.admit(records)``
waits while their container is paused and counts what it read, then ``await
inbox.put_many(shaped)`` queues what those lines became (joined and filtered by the
container's label hints on the way, :mod:`shipper.shaping`); lifecycle events and gaps
come with ``await inbox.put(record)`` as on any asyncio queue. When the disk buffer
nears its bound the busiest container (most bytes lately) is paused first, then the
next one each second while it stays near; all resume once the buffer has drained to
well below the bound. A paused follower simply stops reading its HTTP stream, so its
cursor stays and Docker's log files hold the rest.

Records leave in the order they came, and callers waiting for room are served in turn.
A container's lines and cursor marks come from its follower alone, one hand-off at a
time (shipper/follow/handoff.py), so each stream's order, which the cursors rely on,
holds here without a lock.

The queue holds each hand-off as it came, a list of records, and the batcher takes
records a batch at a time (:meth:`Inbox.take`): per line, a queue of single records
cost more than reading the line (put, get and their checks, about 0.5 µs). A hand-off
waits while the queue is at its bound and then goes in whole, so the bound may be
passed by less than one hand-off (at most a read's slice of lines); a hand-off is
queued whole or, cancelled while it waits, not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

from shipper import metrics
from shipper.record import DoneRecord, LogRecord, MarkRecord, Record

log = logging.getLogger("logpipe.shipper.inbox")

PAUSE_AT = 0.9  # buffer fill ratio where the busiest containers start to be paused
RESUME_AT = 0.7  # ... and where every paused container resumes
PAUSE_EVERY = 1.0  # seconds between two pauses, so each can take effect
DECAY_EVERY = 1.0  # seconds between two halvings of the recent byte counts


class Inbox:
    """A bounded queue of records (each hand-off held as one list) that pauses the
    busiest containers and counts their reads."""

    def __init__(self, maxsize: int, counter: metrics.PerContainer) -> None:
        self.maxsize = maxsize
        self._reads: deque[list[Record]] = deque()
        self._taken = 0  # records of the first read already taken
        self._count = 0  # records queued
        self.put_total = 0  # records ever queued: the n-th is on disk once `written` >= n
        self.written = 0  # records the batcher took and wrote (or had nothing to write of)
        self._putters: deque[asyncio.Future[None]] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._counter = counter
        self._recent: dict[str, float] = {}
        self._names: dict[str, str] = {}
        self._paused: set[str] = set()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._last_pause = 0.0

    def qsize(self) -> int:
        """Records queued."""
        return self._count

    def empty(self) -> bool:
        """Whether no record is queued."""
        return not self._count

    def full(self) -> bool:
        """Whether the queue is at its bound (a hand-off waits for room)."""
        return self._count >= self.maxsize

    async def put(self, record: Record) -> None:
        """Queue one record, waiting for room."""
        await self.put_many([record])

    async def put_many(self, records: Sequence[Record]) -> None:
        """Queue records in order, whole, once there is room (one container's, after
        :meth:`admit`)."""
        if not records:
            return
        await _turn(self._putters, self.full)
        self._append(records if type(records) is list else list(records))
        if self._count < self.maxsize:
            _wake(self._putters)

    def put_done(self, record: DoneRecord) -> None:
        """Queue a container's end behind its records at once, past the bound if need be:
        it takes no room in a batch, and waiting for room would keep its follower from
        ending. The batcher marks the container done once the lines before it are on
        disk."""
        self._append([record])

    def _append(self, records: list[Record]) -> None:
        """Queue `records` as one hand-off, counted, and wake the batcher."""
        self._reads.append(records)
        self._count += len(records)
        self.put_total += len(records)
        _wake(self._getters)

    async def wait(self) -> None:
        """Return once a record is queued."""
        await _turn(self._getters, self.empty)

    async def get(self) -> Record:
        """The oldest record, waiting for one."""
        await self.wait()
        return self.get_nowait()

    def get_nowait(self) -> Record:
        """The oldest record; asyncio.QueueEmpty when none is queued."""
        if not self._count:
            raise asyncio.QueueEmpty
        [record], _size = self.take(1, 1, 0)
        return record

    def take(self, max_lines: int, max_bytes: int, size: int) -> tuple[list[Record], int]:
        """The oldest records, in order, while fewer than `max_lines` are taken and
        `size` plus theirs is under `max_bytes` (`record_size`: what a batch counts),
        and that sum."""
        out: list[Record] = []
        reads = self._reads
        while reads and len(out) < max_lines and size < max_bytes:
            read = reads[0]
            start = self._taken
            stop = min(len(read), start + max_lines - len(out))
            end = start
            for record in read[start:stop]:
                end += 1
                size += len(record.data) + 64 if type(record) is LogRecord else record_size(record)
                if size >= max_bytes:
                    break
            out.extend(read[start:end] if start or end < len(read) else read)
            if end == len(read):
                reads.popleft()
                self._taken = 0
            else:
                self._taken = end
        self._count -= len(out)
        if out and self._count < self.maxsize:
            _wake(self._putters)
        return out, size

    async def admit(self, records: Sequence[Record]) -> None:
        """Wait while the container of this read is paused; count the lines it read."""
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

    async def run(self) -> None:
        """Let the recent byte counts fade (so that busy means busy lately); until cancelled."""
        while True:
            await asyncio.sleep(DECAY_EVERY)
            self._recent = {c: b / 2 for c, b in self._recent.items() if b >= 2}

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


def record_size(record: Record) -> int:
    """What a record counts towards a batch's byte bound (its bytes and 64 for a line)."""
    if type(record) is LogRecord:
        return len(record.data) + 64
    return 0 if isinstance(record, MarkRecord | DoneRecord) else 256


async def _turn(waiters: deque[asyncio.Future[None]], blocked: Callable[[], bool]) -> None:
    """Wait in line among `waiters` while `blocked()` (as asyncio.Queue's put and get
    wait): woken by `_wake`, a waiter looks again; one cancelled after it was woken
    passes the turn on."""
    while blocked():
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            waiter.cancel()
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if not blocked() and not waiter.cancelled():
                _wake(waiters)
            raise


def _wake(waiters: deque[asyncio.Future[None]]) -> None:
    """Wake the first waiter still waiting."""
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return
