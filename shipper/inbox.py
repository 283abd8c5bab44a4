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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from shipper import metrics
from shipper.record import LogRecord, Record

log = logging.getLogger("logpipe.shipper.inbox")

PAUSE_AT = 0.9  # buffer fill ratio where the busiest containers start to be paused
RESUME_AT = 0.7  # ... and where every paused container resumes
PAUSE_EVERY = 1.0  # seconds between two pauses, so each can take effect
DECAY_EVERY = 1.0  # seconds between two halvings of the recent byte counts


class Inbox(asyncio.Queue[Record]):
    """``asyncio.Queue`` of records that pauses the busiest containers and counts their reads."""

    def __init__(self, maxsize: int, counter: metrics.PerContainer) -> None:
        super().__init__(maxsize)
        self._counter = counter
        self._recent: dict[str, float] = {}
        self._names: dict[str, str] = {}
        self._paused: set[str] = set()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._last_pause = 0.0

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

    async def put_many(self, records: Sequence[Record]) -> None:
        """Queue records in order, waiting for room (one container's, after :meth:`admit`)."""
        for record in records:
            if self.full():
                await self.put(record)
            else:
                self.put_nowait(record)

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
