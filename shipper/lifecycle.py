"""Containers' lifecycle events as records of their own, queued by a task of their own.

A slow collector must never delay attaching to a new container, so event records wait
in a bounded backlog (past it they are dropped and counted) that a task of their own
moves to the queue, each once its container's inspection said whether it is shipped.

An event waits in memory until its batch is on disk; a stop meanwhile loses it there,
but the next start asks dockerd for the events since a little before the shipper was
last alive, and "alive" never passes the oldest event not on disk (`held_since`), so
the event comes again (its `_id` keeps one copy).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import replace

from prometheus_client import Counter

from shipper.catchup import saved_meta
from shipper.config import ShipperConfig
from shipper.cursor import CursorStore
from shipper.events import ContainerEvent, summary_from_event
from shipper.follow import Follower
from shipper.inbox import Inbox
from shipper.record import EventRecord, Meta, Record
from shipper.selection import meta_from, skip_reason

DECISION_WAIT = 5.0  # seconds an event waits for its container's inspection
EVENT_BACKLOG = 10_000  # lifecycle records waiting for the queue before they are dropped

EVENTS_DROPPED = Counter(
    "logpipe_shipper_events_dropped_total",
    "Lifecycle events not indexed because too many were waiting for the queue.",
)


class EventRecords:
    """Turns lifecycle events into records and forwards them to the queue in order."""

    def __init__(
        self,
        config: ShipperConfig,
        self_id: str | None,
        store: CursorStore,
        out: Inbox,
        followers: dict[str, Follower],
        recent: dict[str, tuple[Follower, float]],
        skipped: set[str],
    ) -> None:
        self.config = config
        self.self_id = self_id
        self.store = store
        self.out = out
        self.followers = followers  # the supervisor's: followed now
        self.recent = recent  # the supervisor's: finished lately
        self.skipped = skipped  # the supervisor's: not shipped, as only inspecting told
        self.backlog: asyncio.Queue[Record] = asyncio.Queue(EVENT_BACKLOG)
        # Each event not yet on disk, oldest first: [the queue's count once it was put
        # (None while in the backlog; 0 when not shipped), its time]; by id, while in the
        # backlog.
        self._unwritten: deque[list[int | None]] = deque()
        self._backlogged: dict[int, list[int | None]] = {}

    def add(self, event: ContainerEvent) -> None:
        """Queue the event's record (a rename also renames the container's later lines)."""
        if event.cid in self.skipped:
            return
        follower = self.followers.get(event.cid) or self.recent_follower(event.cid)
        if follower is None:
            summary = summary_from_event(event)
            if skip_reason(summary, self.config, self.self_id):
                return
            meta, _ = meta_from(summary)
        else:
            meta = follower.meta
        detail = event.detail
        if event.action == "rename":
            meta = self._renamed(event.cid, meta, event.name or meta.name)
            detail = f"renamed from {event.old_name}"
        record = EventRecord(meta, event.ts, event.action, event.exit_code, detail or None)
        try:
            self.backlog.put_nowait(record)
        except asyncio.QueueFull:
            EVENTS_DROPPED.inc()
            return
        entry: list[int | None] = [None, event.ts]
        self._unwritten.append(entry)
        self._backlogged[id(record)] = entry

    def held_since(self) -> int | None:
        """The time of the oldest event still in memory (None: every one is on disk)."""
        unwritten, written = self._unwritten, self.out.written
        while unwritten and (put := unwritten[0][0]) is not None and put <= written:
            unwritten.popleft()
        return unwritten[0][1] if unwritten else None

    async def put(self, record: Record) -> None:
        """Queue a record among the events (waits for room)."""
        await self.backlog.put(record)

    def recent_follower(self, cid: str) -> Follower | None:
        """The container's follower if it finished lately."""
        entry = self.recent.get(cid)
        return entry[0] if entry else None

    def _renamed(self, cid: str, meta: Meta, name: str) -> Meta:
        """Later lines (and the cursor file) carry the new name."""
        meta = replace(meta, name=name)
        for follower in (self.followers.get(cid), self.recent_follower(cid)):
            if follower is not None:
                follower.meta = meta
        if self.store.get(cid) is not None:
            self.store.ensure(cid, 0, saved_meta(meta))
        return meta

    async def forward(self) -> None:
        """Move records to the queue until cancelled, none before its container's verdict."""
        while True:
            record = await self.backlog.get()
            entry = self._backlogged.pop(id(record), [None, 0])  # held while undecided
            follower = self.followers.get(record.meta.id)
            if (
                follower is not None and await follower.skipped(DECISION_WAIT)
            ) or record.meta.id in self.skipped:
                entry[0] = 0  # not shipped: nothing to hold back for
                continue
            await self.out.put(record)
            entry[0] = self.out.put_total
