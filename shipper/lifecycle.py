"""Containers' lifecycle events as records of their own, queued by a task of their own.

A slow collector must never delay attaching to a new container, so event records wait
in a bounded backlog (past it they are dropped and counted) that a task of their own
moves to the queue, each once its container's inspection said whether it is shipped.

An event waits in memory until its batch is on disk. A clean stop writes the events
still waiting to the state dir (`HELD_FILE`), and the next start queues them first
(`load_held`, `restore`). A kill loses them, but the next start asks dockerd for the
events since a little before the shipper was last alive, and "alive" never passes the
oldest event not on disk (`held_since`), so the event comes again as far back as
dockerd keeps its events (its `_id` keeps one copy). The file spares a clean stop that
limit: dockerd keeps its last 256 events of every kind, which a busy host (health
checks, ``exec_*``) makes in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import Counter

from shipper.catchup import saved_meta
from shipper.config import ShipperConfig
from shipper.cursor import CursorStore
from shipper.durable import write_durably
from shipper.events import ContainerEvent, summary_from_event
from shipper.follow import Follower
from shipper.inbox import Inbox
from shipper.record import EventRecord, Meta, Record
from shipper.selection import meta_from, skip_reason

log = logging.getLogger("logpipe.shipper.lifecycle")

DECISION_WAIT = 5.0  # seconds an event waits for its container's inspection
EVENT_BACKLOG = 10_000  # lifecycle records waiting for the queue before they are dropped
HELD_FILE = "events.json"  # in the state dir: the events a clean stop had in memory

EVENTS_DROPPED = Counter(
    "logpipe_shipper_events_dropped_total",
    "Lifecycle events not indexed because too many were waiting for the queue.",
)


@dataclass(slots=True)
class _Held:
    """An event not yet on disk: the queue's count once it was put (None while in the
    backlog; 0 when not shipped)."""

    record: EventRecord
    put: int | None = None


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
        # Each event not yet on disk, in the order queued; by id, while in the backlog.
        self._unwritten: deque[_Held] = deque()
        self._backlogged: dict[int, _Held] = {}

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
        self._hold(EventRecord(meta, event.ts, event.action, event.exit_code, detail or None))

    def restore(self, records: list[EventRecord]) -> None:
        """Queue the events a clean stop left in the state dir (`load_held`), each after
        its container's verdict as any event."""
        for record in records:
            self._hold(record)

    def _hold(self, record: EventRecord) -> None:
        try:
            self.backlog.put_nowait(record)
        except asyncio.QueueFull:
            EVENTS_DROPPED.inc()
            return
        held = _Held(record)
        self._unwritten.append(held)
        self._backlogged[id(record)] = held

    def _on_disk(self) -> deque[_Held]:
        """Drop the events on disk (or not shipped) from the front of those held."""
        unwritten, written = self._unwritten, self.out.written
        while unwritten and (put := unwritten[0].put) is not None and put <= written:
            unwritten.popleft()
        return unwritten

    def held_since(self) -> int | None:
        """The time of the oldest event still in memory (None: every one is on disk)."""
        unwritten = self._on_disk()
        return min(h.record.ts for h in unwritten) if unwritten else None

    def held(self) -> list[EventRecord]:
        """The events still in memory (in the backlog, queued, or in a batch not written
        yet), in the order they were queued."""
        written = self.out.written
        return [h.record for h in self._on_disk() if h.put is None or h.put > written]

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
            held = self._backlogged.pop(id(record), None)  # held while undecided
            follower = self.followers.get(record.meta.id)
            if (
                follower is not None and await follower.skipped(DECISION_WAIT)
            ) or record.meta.id in self.skipped:
                if held is not None:
                    held.put = 0  # not shipped: nothing to hold back for
                continue
            await self.out.put(record)
            if held is not None:
                held.put = self.out.put_total


def save_held(state_dir: Path, records: list[EventRecord]) -> None:
    """At a clean stop: write the events still in memory to the state dir (none: remove
    the file); a disk that refuses is logged, and the next start's replay remains."""
    path = state_dir / HELD_FILE
    try:
        if records:
            write_durably(path, orjson.dumps([_held_entry(r) for r in records]))
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.error(
            "cannot write the lifecycle events still in memory to the state dir: the next "
            "start asks dockerd for them again, which keeps only its last 256 events",
            extra={"path": str(path), "events": len(records), "reason": str(exc)},
        )


def load_held(state_dir: Path) -> list[EventRecord]:
    """The events the last clean stop wrote (`save_held`), the file removed: the next
    stop writes those still in memory again. A file that cannot be read is logged and
    left out (the replay of dockerd's events remains)."""
    path = state_dir / HELD_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning(
            "cannot read the lifecycle events the last stop left in the state dir; "
            "they come from dockerd's replay if it still has them",
            extra={"path": str(path), "reason": str(exc)},
        )
        return []
    try:
        records = _held_records(raw)
    except ValueError as exc:  # orjson.JSONDecodeError is one
        log.warning(
            "the lifecycle events the last stop left in the state dir are not readable; "
            "left out, they come from dockerd's replay if it still has them",
            extra={"path": str(path), "reason": str(exc)},
        )
        records = []
    with contextlib.suppress(OSError):  # read-only: it is read again, and _id keeps one
        path.unlink()
    return records


def _held_entry(record: EventRecord) -> dict[str, Any]:
    m = record.meta
    return {
        "id": m.id,
        "name": m.name,
        "image": m.image,
        "labels": m.labels,
        "parser": m.parser,
        "dataset": m.dataset,
        "namespace": m.namespace,
        "ts": record.ts,
        "action": record.action,
        "exit_code": record.exit_code,
        "detail": record.detail,
    }


def _held_records(raw: bytes) -> list[EventRecord]:
    """The records of HELD_FILE's bytes; ValueError, saying what is wrong, if not that."""
    entries = orjson.loads(raw)
    if not isinstance(entries, list):
        raise ValueError(f"a JSON {type(entries).__name__}, not a list of events")
    records = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"event {n}: a JSON {type(entry).__name__}, not an object")
        try:
            records.append(_held_record(entry))
        except KeyError as exc:
            raise ValueError(f"event {n}: no {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"event {n}: {exc}") from exc
    return records


def _held_record(entry: dict[str, Any]) -> EventRecord:
    """The record of one entry of HELD_FILE; KeyError or ValueError when it is not one."""
    labels = entry["labels"]
    if not isinstance(labels, dict):
        raise ValueError(f"labels is a JSON {type(labels).__name__}, not an object")
    meta = Meta(
        _text(entry, "id"),
        _text(entry, "name"),
        _text(entry, "image"),
        {str(k): str(v) for k, v in labels.items()},
        _text(entry, "parser"),
        _optional(entry, "dataset"),
        _optional(entry, "namespace"),
    )
    code = entry["exit_code"]
    if code is not None and type(code) is not int:
        raise ValueError(f"exit_code is {code!r}, not a number")
    ts = entry["ts"]
    if type(ts) is not int or ts <= 0:
        raise ValueError(f"ts {ts!r} is no time in ns")
    return EventRecord(meta, ts, _text(entry, "action"), code, _optional(entry, "detail"))


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is {value!r}, not a text")
    return value


def _optional(entry: dict[str, Any], key: str) -> str | None:
    value = entry[key]
    return None if value is None else _text(entry, key)
