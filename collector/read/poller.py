"""Following one filter: new documents read from Elasticsearch about once a second and
handed to every tail with that filter (they share this one poller).

Documents are followed in order of arrival: by ``event.ingested`` (when a collector
received the batch), then ``@timestamp``, then id (:data:`~collector.read.cursor.TAIL_KEY`).
A line from a shipper catching up on an hour of logs is new when it arrives, whatever its
``@timestamp``. A document becomes searchable a moment after its arrival (the bulk
request, then the refresh), and not always in arrival order, so the poller reads only
documents that arrived at least `settle` seconds ago: those arriving together are sent
in order, and the position each line's event id carries is exact.

A document that took longer than `settle` to become searchable would sort before lines
already sent. The poller catches those within `late_window` seconds of their arrival:
it counts the documents that arrived in that window, and when Elasticsearch
counts more than the poller sent, it reads their ids and sends the ones it had not
(after the others, with the event id of the position reached). It keeps the ids of the
window's lines for that, at most :data:`MAX_RECENT` of them. That count is made at most
every :data:`LATE_CHECK_MS`, however often the poller reads: late lines are rare, and
a count per read would add to what a shorter poll interval costs Elasticsearch.

Arrival is in milliseconds (``event.ingested`` is a ``date``, the collector stamps it to
the millisecond), and so are the horizon and the key of a position: the horizon cuts
between two batches that arrived within one second, and lines are sent in their order.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from dataclasses import dataclass

from collector import metrics
from collector.config import TIME_VALUE
from collector.errors import CollectorError
from collector.read import cursor
from collector.read.cursor import TAIL_KEY, Position
from collector.read.filters import Filters
from collector.read.query import Clause, query
from collector.read.search import Hit, Reader
from collector.read.subscriber import Delivery, Subscriber

log = logging.getLogger("logpipe.collector.read")

PAGE = 1000
PAGES_PER_POLL = 20
MAX_RECENT = 200_000
# Beyond any nanosecond timestamp: a position "after everything that arrived at ms T".
END_OF_TIME_NS = 2**63 - 1
# The late lines are looked for at most this often (epoch ms of the poller's clock).
LATE_CHECK_MS = 1000


# What the settle delay needs beyond the refresh interval: the bulk request and the
# refresh itself (docs/read-api.md, "Order and guarantees").
SETTLE_MARGIN = 0.5
# Elasticsearch's refresh interval of an index that sets none, while it is searched.
DEFAULT_REFRESH = "1s"
_REFRESH_UNITS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def refresh_seconds(interval: str) -> float | None:
    """Seconds of an index refresh interval (``1s``, ``500ms``); None for ``-1`` (no
    periodic refresh) or a text Elasticsearch would not read either."""
    match = TIME_VALUE.fullmatch(interval.strip())
    return float(match.group(1)) * _REFRESH_UNITS[match.group(2)] if match and match[1] else None


def settle_problem(settle: float, refresh_interval: str | None) -> str | None:
    """Why tails would send lines out of arrival order with this settle delay, or None.
    `refresh_interval` None is Elasticsearch's default: every second while searched, as
    the shards are while a tail reads them."""
    refresh_interval = refresh_interval or DEFAULT_REFRESH
    refresh = refresh_seconds(refresh_interval)
    if refresh is None or settle >= refresh + SETTLE_MARGIN:
        return None
    return (
        f"LOGPIPE_READ_TAIL_SETTLE ({settle:g} s) leaves less than {SETTLE_MARGIN:g} s past "
        f"the index refresh interval ({refresh_interval}): tails will send many lines late, "
        f"after later ones; set it to {refresh + SETTLE_MARGIN:g} or more"
    )


@dataclass(frozen=True, slots=True)
class Pace:
    """How a poller reads: seconds between polls, the settle delay, the late window."""

    interval: float = 0.5
    settle: float = 1.5
    late_window: float = 30.0


def event_id(position: Position) -> str:
    """The tail's event id of a position (what `Last-Event-ID` sends back)."""
    return cursor.encode({"v": 1, "t": 1, "k": list(position.key), "i": list(position.ids)})


def arrived_by(ms: int) -> Position:
    """The position after every document that arrived by `ms` (epoch milliseconds)."""
    return Position((ms, END_OF_TIME_NS))


def _arrived(low: int, high: int) -> Clause:
    return {"range": {"event.ingested": {"gte": low, "lte": high, "format": "epoch_millis"}}}


class Poller:
    """Reads what arrived for one filter and offers each line to its subscribers."""

    def __init__(self, reader: Reader, filters: Filters, pace: Pace) -> None:
        self.reader, self.filters, self.pace = reader, filters, pace
        self.position = arrived_by(self._now_ms() - self._settle_ms)
        self.subscribers: set[Subscriber] = set()
        self._recent: dict[str, int] = {}  # id -> arrival (ms) of the lines of the window
        self._by_age: list[tuple[int, str]] = []
        self._floor = 0  # arrival before which the window is not tracked (after a cap)
        self._late_checked = 0  # when the late lines were last looked for (epoch ms)
        self._failing = False

    @property
    def _settle_ms(self) -> int:
        return int(self.pace.settle * 1000)

    def _now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def run(self) -> None:
        """Poll until cancelled; Elasticsearch failures are logged and retried."""
        while True:
            try:
                await self.poll()
                if self._failing:
                    log.info("tail reads Elasticsearch again")
                self._failing = False
            except CollectorError as exc:
                if not self._failing:
                    log.warning(
                        "tail cannot read Elasticsearch; retrying", extra={"reason": str(exc)}
                    )
                self._failing = True
            except Exception:
                # A bug must not leave its tails waiting silently for ever: say so, go on.
                log.exception("tail poller failed; retrying")
            await asyncio.sleep(self.pace.interval)

    async def poll(self) -> None:
        """One round: what arrived since the position, then what turned up late."""
        now = self._now_ms()
        horizon = now - self._settle_ms
        for _ in range(PAGES_PER_POLL):
            extra = (cursor.after(self.position, TAIL_KEY, "asc"), _arrived(0, horizon))
            hits = await self.reader.page(query(self.filters, *extra), TAIL_KEY, "asc", PAGE)
            for hit in hits:
                self._send_in_order(hit)
            if len(hits) < PAGE:
                break
        if self.pace.late_window > 0 and now - self._late_checked >= LATE_CHECK_MS:
            self._late_checked = now
            await self._late()

    def _send_in_order(self, hit: Hit) -> None:
        self.position = self.position.then(hit.key, hit.id)
        if hit.id in self._recent:  # sent already, as a late one
            return
        self._remember(hit.id, hit.key[0])
        self._offer(hit)

    def _offer(self, hit: Hit) -> None:
        delivery = Delivery(event_id(self.position), hit.id, hit.line, hit.key[0])
        for subscriber in self.subscribers:
            subscriber.offer(delivery)

    def _remember(self, doc_id: str, arrival: int) -> None:
        if len(self._recent) >= MAX_RECENT:  # track a shorter window than asked
            oldest = self._by_age[0][0]
            self._forget_below(oldest + 1)
            self._floor = max(self._floor, oldest + 1)
        self._recent[doc_id] = arrival
        heapq.heappush(self._by_age, (arrival, doc_id))

    def _forget_below(self, ms: int) -> None:
        while self._by_age and self._by_age[0][0] < ms:
            _, doc_id = heapq.heappop(self._by_age)
            self._recent.pop(doc_id, None)

    def _window(self) -> tuple[int, int]:
        high = self.position.key[0]
        low = max(high - int(self.pace.late_window * 1000), self._floor)
        self._forget_below(low)
        return low, high

    async def start(self) -> None:
        """Remember the lines of the window before the start as sent: they are the past
        (a tail's own start reads them). Done before any tail uses the poller, so that a
        line turning up late is either seen here or sent by the poller, never neither."""
        low, high = self._window()
        window = query(self.filters, _arrived(low, high))
        seen = await self.reader.seen(window, TAIL_KEY, MAX_RECENT, "desc")
        if len(seen) >= MAX_RECENT:  # the oldest arrival read may have more lines unread
            self._floor = seen[-1].key[0] + 1
        for doc in seen:
            if doc.key[0] >= self._floor:
                self._remember(doc.id, doc.key[0])

    async def _late(self) -> None:
        """Send the lines of the window that became searchable after their turn."""
        low, high = self._window()
        window = query(self.filters, _arrived(low, high))
        if await self.reader.count(window) <= len(self._recent):
            return
        seen = await self.reader.seen(window, TAIL_KEY, MAX_RECENT, "asc")
        new = [doc.id for doc in seen if doc.id not in self._recent]
        for start in range(0, len(new), PAGE):
            ids = {"ids": {"values": new[start : start + PAGE]}}
            for hit in await self.reader.page(query(self.filters, ids), TAIL_KEY, "asc", PAGE):
                if hit.id not in self._recent:
                    self._remember(hit.id, hit.key[0])
                    self._offer(hit)
                    metrics.TAIL_LINES_LATE.inc()
