"""Discover containers and keep one follower per container, across dockerd restarts.

The event subscription is opened before containers are listed and read while they are
listed, so a container started meanwhile is seen by one or the other (never by neither)
and a short-lived one is attached to on its ``start`` event without waiting for the
listing; followers are keyed by id, so seeing one twice is harmless. Lifecycle events
become records of their own, queued by a task of their own so that a slow collector
never delays attaching to a new container.

What happened while the shipper was not running is caught up at start: events are
replayed from the last time it was alive (dockerd keeps the last few hundred), stopped
containers that exited after that time are read, and a container removed meanwhile
before its log was read to the end is reported as a gap, never silently forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from typing import Any

from prometheus_client import Counter, Gauge

from shipper import metrics
from shipper.config import ShipperConfig
from shipper.cursor import STREAMS, CursorStore, Position, SavedMeta
from shipper.demux import format_since
from shipper.docker_api import ContainerSummary, DockerClient, Listed
from shipper.errors import ContainerGone, DockerError, DockerUnavailable
from shipper.follow import Follower
from shipper.record import EventRecord, GapRecord, Meta, Record
from shipper.selection import meta_from, skip_reason

log = logging.getLogger("logpipe.shipper.source")

# Event attributes that are not labels (Docker mixes labels into the same map).
_EVENT_KEYS = {"name", "image", "exitCode", "signal", "execDuration", "oldName"}
_LIFECYCLE = {"start", "die", "oom", "restart", "stop", "destroy", "rename", "pause", "unpause"}
_ALIVE_STATES = {"running", "paused", "restarting"}
CATCH_UP_NS = 5_000_000_000  # events and exits this long before the last sign of life
SUBSCRIBE_SLACK_NS = 2_000_000_000  # a first subscription replays this much
DECISION_WAIT = 5.0  # seconds an event waits for its container's inspection
KEEP_GONE = 60.0  # seconds a finished follower stays on /status
EVENT_BACKLOG = 10_000  # lifecycle records waiting for the queue before they are dropped
INSPECTS = 8  # inspections at once while listing
GONE_GAP = (
    "the container was removed while the shipper was not reading it; "
    "lines after this point may be lost"
)

TASKS = Gauge("logpipe_shipper_tasks", "asyncio tasks alive in the shipper process.")
EVENTS_DROPPED = Counter(
    "logpipe_shipper_events_dropped_total",
    "Lifecycle events not indexed because too many were waiting for the queue.",
)


def _now_ns() -> int:
    return time.time_ns()


def saved_meta(meta: Meta) -> SavedMeta:
    """What the cursor file keeps about a container."""
    return SavedMeta(name=meta.name, image=meta.image, labels=meta.labels)


class Supervisor:
    """Owns the followers; turns Docker events into followers and event records."""

    def __init__(
        self,
        config: ShipperConfig,
        docker: DockerClient,
        store: CursorStore,
        out: asyncio.Queue[Record],
        self_id: str | None,
    ) -> None:
        self.config = config
        self.docker = docker
        self.store = store
        self.out = out
        self.self_id = self_id
        self.followers: dict[str, Follower] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.positions: dict[str, dict[str, Position]] = {}
        self.recent: dict[str, tuple[Follower, float]] = {}  # finished, for /status
        self.connected = False
        self._alive_before = store.alive_ns  # when the previous run was last reading
        self._first_listing = True
        self._last_event_ns = 0
        self._events: asyncio.Queue[Record] = asyncio.Queue(EVENT_BACKLOG)
        self._destroyed: set[str] = set()
        self._skipped: set[str] = set()  # not to be shipped, as only inspecting could tell

    async def run(self) -> None:
        """Discover and follow until cancelled; reconnect to dockerd with backoff."""
        background = [
            asyncio.create_task(self._forward_events(), name="events-out"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
        ]
        try:
            await self._connect_forever()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._session()
                log.warning("dockerd closed the event stream; reconnecting")
                delay = 0.2
            except DockerUnavailable as exc:
                log.warning("dockerd unavailable", extra={"reason": str(exc), "retry_in": delay})
            self.connected = False
            metrics.RECONNECTS.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _session(self) -> None:
        """One event subscription: list while reading events, then read events."""
        async with self.docker.event_stream(self._events_since()) as events:
            consumer = asyncio.create_task(self._consume(events), name="events-in")
            try:
                await self._list()
                self.connected = True
                for follower in self.followers.values():
                    follower.wake.set()
                await consumer
            finally:
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)

    def _events_since(self) -> str:
        """Replay from the last event seen, or the last sign of life, or a moment ago.

        dockerd sends the answer's headers before it registers the subscription, so an
        event in between would be lost were the subscription not replayed from earlier.
        """
        if self._last_event_ns:
            return format_since(self._last_event_ns)
        if self._alive_before:
            return format_since(max(0, self._alive_before - CATCH_UP_NS))
        return format_since(max(0, _now_ns() - SUBSCRIBE_SLACK_NS))

    async def _consume(self, events: Any) -> None:
        async for event in events:
            self._on_event(event)

    async def _list(self) -> None:
        """Follow running containers, stopped ones with unread lines, and ones that exited
        since the shipper was last alive; report the ones removed before being read."""
        listed = await self.docker.list_all()
        existing = {c["id"] for c in listed}
        for cid in set(self.store.containers()) - existing:
            if cid not in self.tasks:
                await self._gone_while_away(cid)
        todo = [c for c in listed if self._worth_inspecting(c)]
        limit = asyncio.Semaphore(INSPECTS)

        async def one(item: Listed) -> None:
            async with limit:
                await self._consider(item)

        await asyncio.gather(*(one(c) for c in todo))
        self._first_listing = False

    def _worth_inspecting(self, c: Listed) -> bool:
        if c["id"] in self.tasks:
            return False
        if c["state"] in _ALIVE_STATES:
            return True
        cursor = self.store.get(c["id"])
        if cursor is not None and not cursor.done:
            return True
        return c["state"] in ("exited", "dead") and bool(self._caught_up_from())

    def _caught_up_from(self) -> int:
        """Containers that exited after this time are read even without a cursor."""
        return max(0, self._alive_before - CATCH_UP_NS) if self._alive_before else 0

    async def _consider(self, item: Listed) -> None:
        try:
            summary = await self.docker.inspect(item["id"])
        except ContainerGone:
            return
        cursor = self.store.get(item["id"])
        exited_lately = summary["finished_ns"] >= self._caught_up_from() > 0
        if summary["running"] or (cursor is not None and not cursor.done) or exited_lately:
            self._follow(summary, self._floor(), inspected=True)

    def _floor(self) -> int:
        """Where a container never seen before is read from."""
        if self.config.start_at == "beginning" or not self._first_listing:
            return 0
        return self._alive_before or _now_ns()

    async def _gone_while_away(self, cid: str) -> None:
        cursor = self.store.get(cid)
        self.store.forget(cid)
        if cursor is None or cursor.done or cursor.meta is None:
            return
        meta = Meta(cid, cursor.meta["name"], cursor.meta["image"], cursor.meta["labels"])
        now = _now_ns()
        for stream in STREAMS:
            metrics.GAPS.inc()
            await self._events.put(
                GapRecord(meta, stream, cursor.position(stream).ts, now, GONE_GAP)
            )

    def _on_event(self, event: dict[str, Any]) -> None:
        action = str(event.get("Action") or event.get("status") or "")
        actor = event.get("Actor") or {}
        cid = str(actor.get("ID") or event.get("id") or "")
        attrs: dict[str, str] = dict(actor.get("Attributes") or {})
        if not cid or not action:
            return
        ts = int(event.get("timeNano") or _now_ns())
        self._last_event_ns = max(self._last_event_ns, ts)
        base, _, detail = action.partition(": ")
        if base in ("create", "start"):
            self._destroyed.discard(cid)
            summary = self._summary_from_event(cid, attrs)
            self._follow(summary, 0, inspected=False, prestart=base == "create")
            follower = self.followers.get(cid)
            if follower is not None and base == "start":
                follower.again = True
        elif base == "destroy":
            self._destroyed.add(cid)
        if base in _LIFECYCLE or base == "health_status":
            self._event_record(cid, attrs, base, detail, ts)

    def _summary_from_event(self, cid: str, attrs: dict[str, str]) -> ContainerSummary:
        labels = {k: v for k, v in attrs.items() if k not in _EVENT_KEYS}
        return ContainerSummary(
            id=cid,
            name=attrs.get("name", cid[:12]),
            image=attrs.get("image", ""),
            labels=labels,
            env=[],
            tty=False,
            running=True,
            started_at="",
            finished_ns=0,
            log_driver="",
            log_opts={},
        )

    def _event_record(
        self, cid: str, attrs: dict[str, str], action: str, detail: str, ts: int
    ) -> None:
        if cid in self._skipped:
            return
        follower = self.followers.get(cid) or self._recent_follower(cid)
        if follower is None:
            summary = self._summary_from_event(cid, attrs)
            if skip_reason(summary, self.config, self.self_id):
                return
            meta, _ = meta_from(summary)
        else:
            meta = follower.meta
        if action == "rename":
            meta = self._renamed(cid, meta, attrs.get("name", meta.name).lstrip("/"))
            detail = f"renamed from {attrs.get('oldName', '?').lstrip('/')}"
        exit_code = attrs.get("exitCode")
        code = int(exit_code) if exit_code and exit_code.lstrip("-").isdigit() else None
        try:
            self._events.put_nowait(EventRecord(meta, ts, action, code, detail or None))
        except asyncio.QueueFull:
            EVENTS_DROPPED.inc()

    def _recent_follower(self, cid: str) -> Follower | None:
        entry = self.recent.get(cid)
        return entry[0] if entry else None

    def _renamed(self, cid: str, meta: Meta, name: str) -> Meta:
        """Later lines (and the cursor file) carry the new name."""
        meta = replace(meta, name=name)
        for follower in (self.followers.get(cid), self._recent_follower(cid)):
            if follower is not None:
                follower.meta = meta
        if self.store.get(cid) is not None:
            self.store.ensure(cid, 0, saved_meta(meta))
        return meta

    async def _forward_events(self) -> None:
        while True:
            record = await self._events.get()
            follower = self.followers.get(record.meta.id)
            if follower is not None and await follower.skipped(DECISION_WAIT):
                continue
            if record.meta.id not in self._skipped:
                await self.out.put(record)

    def _follow(
        self, summary: ContainerSummary, floor: int, inspected: bool, prestart: bool = False
    ) -> None:
        cid = summary["id"]
        task = self.tasks.get(cid)
        if task is not None and not task.done():
            return
        reason = skip_reason(summary, self.config, self.self_id)
        if reason:
            log.info(
                "not following container", extra={"container": summary["name"], "reason": reason}
            )
            return
        meta, warnings = meta_from(summary)
        for warning in warnings:
            log.warning(
                "invalid hint label ignored", extra={"container": meta.name, "reason": warning}
            )
        positions = self.positions.get(cid)
        if positions is None:
            cursor = self.store.ensure(cid, floor, saved_meta(meta))
            positions = {s: cursor.position(s) for s in STREAMS}
            self.positions[cid] = positions
        saved = self.store.get(cid)
        complete = saved is not None and saved.done
        self.store.set_done(cid, False)
        follower = Follower(
            self.docker, meta, positions, self.out, self.config.max_line_bytes, prestart, complete
        )
        if inspected:
            follower.learn(summary, meta, skip=False)
        self.followers[cid] = follower
        self.recent.pop(cid, None)
        self.tasks[cid] = asyncio.create_task(
            self._run_follower(follower, inspected), name=f"follow-{cid[:12]}"
        )
        metrics.FOLLOWED.set(len(self.tasks))

    async def _run_follower(self, follower: Follower, inspected: bool) -> None:
        learning = None if inspected else asyncio.create_task(self._learn(follower))
        try:
            await follower.run()
        except Exception:
            log.exception("follower failed", extra={"container": follower.cid[:12]})
        finally:
            if learning is not None:
                learning.cancel()
            self.tasks.pop(follower.cid, None)
            self.followers.pop(follower.cid, None)
            if follower.cid in self._skipped:
                self.store.forget(follower.cid)
                self.positions.pop(follower.cid, None)
            else:
                self.store.set_done(follower.cid, follower.read_to_end)
                self.recent[follower.cid] = (follower, time.monotonic())
            metrics.FOLLOWED.set(len(self.tasks))

    async def _learn(self, follower: Follower) -> None:
        """Inspect a container followed from its start event: exact labels, env, log options."""
        summary: ContainerSummary | None = None
        with contextlib.suppress(DockerError):
            summary = await self.docker.inspect(follower.cid)
        if summary is None:
            follower.learn(None, follower.meta, skip=False)
            return
        meta, _ = meta_from(summary)
        reason = skip_reason(summary, self.config, self.self_id)
        follower.learn(summary, meta, skip=reason is not None)
        self.store.ensure(follower.cid, 0, saved_meta(meta))
        if reason:
            log.info("not following container", extra={"container": meta.name, "reason": reason})
            self._skipped.add(follower.cid)
            task = self.tasks.get(follower.cid)
            if task is not None:
                task.cancel()

    async def _housekeeping(self) -> None:
        """Every second: note that we are alive, save, and forget what is long gone."""
        while True:
            await asyncio.sleep(1.0)
            if self.connected:
                self.store.alive_ns = _now_ns()
            self._prune()
            await self.store.save_in_thread()
            TASKS.set(len(asyncio.all_tasks()))

    def _prune(self) -> None:
        now = time.monotonic()
        for cid, (_, since) in list(self.recent.items()):
            if now - since > KEEP_GONE:
                del self.recent[cid]
        for cid in list(self._destroyed):
            if cid in self.tasks:
                continue
            cursor = self.store.get(cid)
            positions = self.positions.get(cid, {})
            acked = cursor is None or all(
                cursor.position(s) == p for s, p in positions.items() if p.count
            )
            if acked:
                self.store.forget(cid)
                self.positions.pop(cid, None)
                self._destroyed.discard(cid)
                self._skipped.discard(cid)

    async def stop(self) -> None:
        """Cancel every follower (their positions stay in memory for the flush)."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
