"""Where the followers' lines meet the ``/logs`` clients: one bounded queue per client.

:meth:`Tap.publish` runs in a follower's task with the lines of one read (all of one
container). It never waits: each client's queue takes what fits and counts the rest as
missed, so a client that reads slowly (or not at all) costs the shipping nothing but
that count. With no client attached the follower does not call it at all
(:attr:`Tap.subscribers` is empty). A client's handler takes everything queued at once,
then how many lines it missed after those, and writes both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from shipper import metrics
from shipper.record import LogRecord, Record
from shipper.tail.query import Query


@dataclass(slots=True)
class Taken:
    """What a client is given at once: lines in order, then how many it missed after them."""

    lines: list[LogRecord] = field(default_factory=list)
    missed: int = 0


class Subscriber:
    """One client's bounded queue of lines."""

    def __init__(self, query: Query, max_lines: int) -> None:
        self.query = query
        self._max = max_lines
        self._lines: list[LogRecord] = []
        self._missed = 0
        self._ready = asyncio.Event()
        self.closed = False

    def offer(self, records: Sequence[Record]) -> None:
        """Queue the wanted lines of one read that fit; count the rest as missed."""
        query = self.query
        if not query.container(records[0].meta):
            return
        streams = query.streams
        wanted = [r for r in records if type(r) is LogRecord and r.stream in streams]
        if not wanted:
            return
        room = self._max - len(self._lines)
        if room < len(wanted):
            lost = len(wanted) - max(room, 0)
            self._missed += lost
            metrics.TAIL_MISSED.inc(lost)
            wanted = wanted[: max(room, 0)]
        self._lines += wanted
        self._ready.set()

    async def take(self, idle: float) -> Taken | None:
        """Everything queued, once there is something (an empty Taken after `idle`
        seconds of nothing); None once the tap closed."""
        if not self._lines and not self._missed and not self.closed:
            try:
                await asyncio.wait_for(self._ready.wait(), idle)
            except TimeoutError:
                return Taken()
        if self.closed:
            return None
        taken = Taken(self._lines, self._missed)
        self._lines = []
        self._missed = 0
        self._ready.clear()
        return taken

    def close(self) -> None:
        """End this client's stream (the shipper stops)."""
        self.closed = True
        self._ready.set()


class Tap:
    """The ``/logs`` clients attached now, and the lines handed to them."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        self.closed = False  # the shipper stops: no new client

    def publish(self, records: Sequence[Record]) -> None:
        """Offer one read's records (one container's) to every client."""
        if not records:
            return
        for subscriber in self.subscribers:
            subscriber.offer(records)

    def subscribe(self, query: Query, max_lines: int) -> Subscriber:
        """A new client's queue, attached."""
        subscriber = Subscriber(query, max_lines)
        self.subscribers = [*self.subscribers, subscriber]
        metrics.TAIL_CLIENTS.set(len(self.subscribers))
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Detach a client (its stream ended)."""
        self.subscribers = [s for s in self.subscribers if s is not subscriber]
        metrics.TAIL_CLIENTS.set(len(self.subscribers))

    def close(self) -> None:
        """End every client's stream (the shipper stops)."""
        self.closed = True
        for subscriber in self.subscribers:
            subscriber.close()
