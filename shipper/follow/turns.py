"""Turns for reading stopped containers' logs: a few at a time, none for running ones.

A host may keep thousands of exited containers, and each log read holds a connection
to dockerd and a task, so the logs of stopped containers a listing finds are read a
few at a time. A container that starts meanwhile does not wait for its turn, and gives
its turn back at once if it had one: its lines come live, and a log rotated while they
waited could lose some of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Turns:
    """At most `size` holders at once; a holder whose container started leaves."""

    def __init__(self, size: int) -> None:
        self._free = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def turn(self, started: asyncio.Event) -> AsyncIterator[bool]:
        """Hold a turn while the body runs (yields True), given back the moment `started`
        is set; no wait and no turn (yields False) once it is set."""
        if not await self._take(started):
            yield False
            return
        given_back = False

        def give_back(_: object = None) -> None:
            nonlocal given_back
            if not given_back:
                given_back = True
                self._free.release()

        watch = asyncio.ensure_future(started.wait())
        watch.add_done_callback(lambda t: None if t.cancelled() else give_back())
        try:
            yield True
        finally:
            watch.cancel()
            give_back()

    async def _take(self, started: asyncio.Event) -> bool:
        """Wait for a free turn; False (and no turn held) if `started` is set first."""
        if started.is_set():
            return False
        acquire = asyncio.ensure_future(self._free.acquire())
        watch = asyncio.ensure_future(started.wait())
        try:
            await asyncio.wait((acquire, watch), return_when=asyncio.FIRST_COMPLETED)
            if not acquire.done():
                acquire.cancel()
                await asyncio.wait((acquire,))  # a turn that came meanwhile is kept
        except BaseException:
            acquire.cancel()  # not done yet: the semaphore takes its turn back itself
            if acquire.done() and not acquire.cancelled():
                self._free.release()
            raise
        finally:
            watch.cancel()
        if acquire.cancelled():
            return False
        if started.is_set():
            self._free.release()  # it started as the turn came: it reads live
            return False
        return True
