"""One container's records on their way to the queue, shaped by its label hints.

Each read's lines are admitted by the queue (which waits while the container is
paused), shaped (:mod:`shipper.shaping`: multiline events joined, filtered events left
as cursor marks) and queued in one hand-off. A held event must go out after its
timeout even if the container prints nothing more: while anything is held, a timer
task of this container's sleeps until the next due time and queues what is due. The
hand-offs and the timer take turns (one lock), and each shapes only once it has its
turn, so a held event sent on its timeout is never overtaken by a later line or mark
of its stream. Each read's lines, as read, also go to the ``GET /logs`` clients
attached (shipper/tail/), before they are shaped and whatever the queue does: that
never waits. What is still held goes out when the container's log has been read to
its end and when following it ends (a stop, a removal, the shipper's shutdown), unless
a hand-off was cut short: then what was held is left to be read again.
"""

from __future__ import annotations

import asyncio
import time

from shipper.inbox import Inbox
from shipper.record import GapRecord, LogRecord, MarkRecord, Record
from shipper.shaping import Read, Shaper
from shipper.tail.tap import Tap

SLACK = 0.01  # seconds past a due time the timer wakes, so that it is due by then


class Handoff:
    """Shapes one container's reads and queues them in order; sends held events in time."""

    def __init__(self, out: Inbox, tap: Tap | None = None) -> None:
        self._out = out
        self._tap = tap
        self._shaper = Shaper()
        self._turn = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._cut = False  # a hand-off was cancelled halfway: the rest was never queued

    async def put_many(self, records: Read) -> None:
        """Queue the records of one read of the container, shaped, in order."""
        if not records:
            return
        tap = self._tap
        if tap is not None and tap.subscribers:
            tap.publish(records)  # as read, before shaping: never waits
        await self._out.admit(records)
        idle = self._timer is None and not self._turn.locked()
        if idle and self._shaper.passes(records[0].meta):
            # No hints and nothing held: nothing else queues this container's lines.
            await self._queue(records)
            return
        async with self._turn:
            await self._queue(self._shaper.shape(records, time.monotonic()))
        self._arm()

    async def put(self, record: LogRecord | GapRecord) -> None:
        """Queue one record (a line joins the container's reads; a gap goes as it is)."""
        if isinstance(record, LogRecord):
            await self.put_many([record])
        else:
            await self._out.put(record)

    async def flush(self) -> None:
        """Queue every held event and mark now (the container's log was read to its end)."""
        async with self._turn:
            await self._queue(self._shaper.flush())

    async def release(self, marks: list[MarkRecord]) -> None:
        """Queue every held event and mark, then `marks`: positions the cursor may reach
        once all before them is acknowledged (the container's log was read to its end)."""
        async with self._turn:
            await self._queue([*self._shaper.flush(), *marks])

    async def close(self) -> None:
        """Queue everything held and stop the timer (following the container has ended)."""
        async with self._turn:
            timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()  # asleep or waiting for its turn: it has nothing in hand
            await self._queue(self._shaper.flush())

    def _arm(self) -> None:
        """Start the timer if something is held and no timer runs."""
        if self._timer is None and self._shaper.next_due() is not None:
            self._timer = asyncio.create_task(self._send_when_due(), name="held-events")

    async def _send_when_due(self) -> None:
        try:
            while (due := self._shaper.next_due()) is not None:
                await asyncio.sleep(max(0.0, due - time.monotonic()) + SLACK)
                async with self._turn:
                    await self._queue(self._shaper.due(time.monotonic()))
        finally:
            if self._timer is asyncio.current_task():
                self._timer = None

    async def _queue(self, records: Read | list[Record]) -> None:
        # Held events and marks pass a paused container's gate: they were admitted already.
        if self._cut:
            return
        try:
            await self._out.put_many(records)
        except BaseException:
            # Cancelled while waiting for room (the following ends): nothing more may be
            # queued after that (a held event, the timer's), or its position would let
            # the cursor pass the lines never queued; they are read again at next start.
            self._cut = True
            raise
