"""The tails open on this collector: one poller per distinct filter, shared by every tail
with that filter, and the bound on how many tails may be open at once."""

from __future__ import annotations

import asyncio
import contextlib

from collector import metrics
from collector.errors import ReadUnavailable, TooMany
from collector.read.filters import Filters
from collector.read.poller import Pace, Poller
from collector.read.search import Reader
from collector.read.subscriber import Subscriber


class Hub:
    """Opens and closes tails; a poller lives while a tail needs it."""

    def __init__(self, reader: Reader, pace: Pace, max_tails: int, buffer: int) -> None:
        self.reader, self.pace = reader, pace
        self.max_tails, self.buffer = max_tails, buffer
        self._pollers: dict[Filters, tuple[Poller, asyncio.Task[None]]] = {}
        self.open_tails = 0
        self._starting = asyncio.Lock()  # two first tails of a filter start one poller
        self._stopping = False

    async def open(self, filters: Filters) -> tuple[Subscriber, Poller]:
        """A new tail on `filters` (times aside), or TooMany past the bound (or the
        failure of a new poller's first read: Elasticsearch cannot answer), or
        ReadUnavailable once the collector is stopping."""
        self._check_running()
        if self.open_tails >= self.max_tails:
            raise TooMany(
                f"{self.open_tails} tails are open on this collector, its limit "
                "(LOGPIPE_READ_TAIL_MAX): close one, or retry later"
            )
        self.open_tails += 1
        metrics.TAILS_OPEN.inc()
        try:
            poller = await self._poller(filters.without_times())
        except BaseException:
            self.open_tails -= 1
            metrics.TAILS_OPEN.dec()
            raise
        subscriber = Subscriber(self.buffer)
        poller.subscribers.add(subscriber)
        if self._stopping:  # shut down while the poller started: nothing would end this tail
            self.close(subscriber, poller)
            self._check_running()
        return subscriber, poller

    def _check_running(self) -> None:
        if self._stopping:
            raise ReadUnavailable("this collector is stopping: tail another one, or retry")

    async def _poller(self, shared: Filters) -> Poller:
        async with self._starting:
            if shared not in self._pollers:
                poller = Poller(self.reader, shared, self.pace)
                await poller.start()
                self._pollers[shared] = (poller, asyncio.create_task(poller.run(), name="tail"))
                metrics.TAIL_POLLERS.inc()
            return self._pollers[shared][0]

    def close(self, subscriber: Subscriber, poller: Poller) -> None:
        """The tail is gone; its poller stops when it was the last of its filter."""
        poller.subscribers.discard(subscriber)
        self.open_tails -= 1
        metrics.TAILS_OPEN.dec()
        if not poller.subscribers:
            _, task = self._pollers.pop(poller.filters)
            task.cancel()
            metrics.TAIL_POLLERS.dec()

    async def shutdown(self) -> None:
        """End every tail's stream and stop the pollers (the collector is stopping); a tail
        that opens from now on is refused (503), not left streaming until the collector's
        shutdown timeout."""
        self._stopping = True
        tasks = []
        for poller, task in self._pollers.values():
            for subscriber in poller.subscribers:
                subscriber.close()
            task.cancel()
            tasks.append(task)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
