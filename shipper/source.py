"""Discover containers and keep one follower per container, across dockerd restarts.

The event subscription is opened before containers are listed and read while they are
listed, so a container started meanwhile is seen by one or the other (never by neither)
and a short-lived one is attached to on its ``start`` event without waiting for the
listing; followers are keyed by id, so seeing one twice is harmless. Lifecycle events
become records of their own, queued by a task of their own (lifecycle.py) so that a
slow collector never delays attaching to a new container.

What happened while the shipper was not running is caught up at start: events are
replayed from the last time it was alive (dockerd keeps the last few hundred), stopped
containers that exited after that time are read (at the first start of a new state
folder, with start_at=beginning, every stopped container still there), and a container
removed meanwhile before its log was read to the end is reported as a gap, never
silently forgotten (listing.py). The logs of stopped containers are read a few at a
time: a host may keep thousands of exited containers, each read holding a connection.

A container with a cursor that is gone at a start is learnt of by the replayed events
and by the listing, in either order, and is accounted for once (read to its end, or its
loss reported as a gap per stream) by one owner:
- a follower of this run began for it (its id in `positions`: a replayed create or start
  came first): that follower, which finds the container gone and reads the rest of its
  log from a file it holds or reports it lost; the listing leaves it;
- otherwise the first listing that finds it gone, which marks it gone (`_gone`), so that
  a create or start replayed afterwards begins no follower, and reports it;
- the cleanup of removed containers (`_prune`) forgets only cursors one of them
  accounted for, and only once that account is on disk (the cursor done: each queues a
  done mark behind its gaps): a replayed destroy of a container no follower of this run
  began waits for the first listing (forgotten before it, the loss went unreported), and
  a cursor forgotten while the gaps waited in memory (the disk buffer full) left nothing
  to report them from after a kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from prometheus_client import Gauge

from shipper import metrics
from shipper.catchup import ReplayCheck, saved_meta, subscribe_from
from shipper.config import ShipperConfig
from shipper.containers import ContainerSummary
from shipper.cursor import STREAMS, CursorStore, Position
from shipper.demux import format_since
from shipper.dockerd import Dockerd
from shipper.errors import DockerError, DockerUnavailable
from shipper.events import LIFECYCLE, ContainerEvent, summary_from_event
from shipper.follow import Follower
from shipper.follow.rescue import KeptLog
from shipper.follow.turns import Turns
from shipper.inbox import Inbox
from shipper.lifecycle import EventRecords, load_held
from shipper.listing import Listing
from shipper.logfiles.root import find_log_files
from shipper.logfiles.watch import LogFiles
from shipper.record import DoneRecord
from shipper.selection import meta_from, skip_reason
from shipper.skipped import Skipped
from shipper.tail.tap import Tap

log = logging.getLogger("logpipe.shipper.source")

KEEP_GONE = 60.0  # seconds a finished follower stays on /status
# ... and at most this long while lines it read are not acknowledged (the collector down,
# say): an operator sees them wait, and a follower never acknowledged does not stay.
KEEP_UNACKNOWLEDGED = 600.0
STOPPED_READS = 8  # logs of stopped containers found by a listing read at once
CATCH_UPS = 4  # running containers' backlogs read from their files at once

TASKS = Gauge("logpipe_shipper_tasks", "asyncio tasks alive in the shipper process.")


class Supervisor:
    """Owns the followers; turns Docker events into followers and event records."""

    def __init__(
        self,
        config: ShipperConfig,
        docker: Dockerd,
        store: CursorStore,
        out: Inbox,
        self_id: str | None,
        tap: Tap | None = None,
    ) -> None:
        self.config = config
        self.tap = tap  # the GET /logs clients, handed each read's lines
        self.docker = docker
        self.store = store
        self.out = out
        self.self_id = self_id
        self.followers: dict[str, Follower] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.positions: dict[str, dict[str, Position]] = {}
        self.recent: dict[str, tuple[Follower, float]] = {}  # finished, for /status
        self.connected = False
        self._lost_at: float | None = None  # when the connection to dockerd was lost
        self._last_event_ns = 0
        self._destroyed: set[str] = set()
        # The last start event of each container followed as it came: a follower that
        # had left its loop by then is followed anew from it at its end.
        self._starts: dict[str, ContainerSummary] = {}
        self._stopped = False  # stop() was called: no follower begins any more
        self._skipped: set[str] = set()  # not to be shipped, as only inspecting could tell
        self.not_followed = Skipped()
        self.files: LogFiles | None = None  # containers' log files, once dockerd said where
        self._gone: set[str] = set()  # found removed by a listing, their loss reported
        self._stopped_reads = Turns(STOPPED_READS)
        self._catch_ups = asyncio.Semaphore(CATCH_UPS)
        self.lifecycle = EventRecords(
            config, self_id, store, out, self.followers, self.recent, self._skipped
        )
        self.listing = Listing(
            config,
            docker,
            store,
            self.tasks,
            self.positions,
            self._gone,
            self._destroyed,
            lambda summary, start: self._follow(summary, start, inspected=True),
            self.lifecycle.put,
        )

    async def run(self) -> None:
        """Discover and follow until cancelled; reconnect to dockerd with backoff. The
        events the last clean stop held in memory are queued first."""
        self.lifecycle.restore(load_held(self.config.state_dir))
        background = [
            asyncio.create_task(self.lifecycle.forward(), name="events-out"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
        ]
        try:
            await self._connect_forever()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if self.files is not None:
                self.files.stop()

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._session()
                log.warning("dockerd closed the event stream; reconnecting")
                delay = 0.2
            except DockerUnavailable as exc:
                log.warning("dockerd unavailable", extra={"reason": str(exc), "retry_in": delay})
            if self._lost_at is None:
                self._lost_at = time.monotonic()
            self.connected = False
            metrics.RECONNECTS.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _session(self) -> None:
        """One event subscription: list while reading events, then read events."""
        if self.files is None:
            self.files = await find_log_files(self.docker)
        since = subscribe_from(self._last_event_ns, self.listing.alive_before, time.time_ns())
        async with self.docker.event_stream(format_since(since)) as events:
            # dockerd answers the headers, then takes the events it replays: every event
            # it kept up to about now is in the replay, none of them counted as live.
            replay = ReplayCheck(since, time.time_ns())
            consumer = asyncio.create_task(self._consume(events, replay), name="events-in")
            try:
                await self.listing.run()
                if self._lost_at is not None:  # its loss was logged: so is its return
                    log.info(
                        "dockerd answers again",
                        extra={"lost_seconds": round(time.monotonic() - self._lost_at, 1)},
                    )
                    self._lost_at = None
                self.connected = True
                for follower in self.followers.values():
                    follower.wake.set()
                await consumer
            finally:
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)

    async def _consume(self, events: AsyncIterator[ContainerEvent], replay: ReplayCheck) -> None:
        """Handle the subscription's events (the replay from `replay.since` first); say so
        when dockerd no longer had every event since then (catchup.ReplayCheck)."""
        async for event in events:
            # The next subscription replays from here: every event up to it, of any
            # kind, was seen (from a container's last one, a reconnection after many
            # events of other kinds would be taken for a short replay).
            self._last_event_ns = max(self._last_event_ns, event.ts)
            oldest = replay.see(event.ts)
            if oldest is not None:
                metrics.EVENTS_MISSED.inc()
                log.warning(
                    "dockerd no longer had every container event since the shipper's last "
                    "one: lifecycle events (start, die...) before its oldest kept may be "
                    "missing from the index; the lines are not, they are read from the logs",
                    extra={"asked_from": _iso(replay.since), "oldest_kept": _iso(oldest)},
                )
            if event.kind == "container":
                self._on_event(event)

    def _on_event(self, event: ContainerEvent) -> None:
        cid = event.cid
        if event.action in ("create", "start"):
            self._destroyed.discard(cid)
            create = event.action == "create"
            summary = summary_from_event(event)
            self._follow(summary, 0, inspected=False, prestart=create)
            follower = self.followers.get(cid)
            if follower is not None and not create:
                follower.again = True
                self._starts[cid] = summary
        elif event.action == "destroy":
            self._destroyed.add(cid)
        if event.action in LIFECYCLE:
            self.lifecycle.add(event)

    def _follow(
        self,
        summary: ContainerSummary,
        floor: int,
        inspected: bool,
        prestart: bool = False,
        kept: KeptLog | None = None,
    ) -> None:
        cid = summary["id"]
        task = self.tasks.get(cid)
        if (task is not None and not task.done()) or cid in self._gone or self._stopped:
            return
        reason = skip_reason(summary, self.config, self.self_id)
        if reason:
            self._not_following(summary["name"], reason)
            if self.files is not None:
                self.files.drop(cid)
            return
        filters = (*self.config.include_labels, *self.config.exclude_labels)
        meta, warnings = meta_from(summary, filters)
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
        follow = self.store.begin(cid)
        # A stopped container's log waits for a turn; a stopped --rm one is being removed:
        # its log is asked for at once.
        stopped = inspected and not summary["running"] and not summary["auto_remove"]
        follower = Follower(
            self.docker,
            meta,
            positions,
            self.out,
            self.config.max_line_bytes,
            prestart,
            complete,
            pace=self.config.read_pace,
            files=self.files,
            tap=self.tap,
            turns=self._stopped_reads if stopped else None,
            catch_ups=self._catch_ups,
            follow_files=self.config.follow_files,
            kept=kept,
            held=saved.held() if saved is not None else None,
            note_removal=functools.partial(self._note_removal, cid),
        )
        if inspected:
            follower.learn(summary, meta, skip=False)
        self.followers[cid] = follower
        self.recent.pop(cid, None)
        self.tasks[cid] = asyncio.create_task(
            self._run_follower(follower, inspected, follow), name=f"follow-{cid[:12]}"
        )
        metrics.FOLLOWED.set(len(self.tasks))

    async def _note_removal(self, cid: str, ns: int) -> int:
        """A follower found its container removed at `ns` and reports lines lost: when is
        saved before its gaps are queued (the time noted first is returned, their end).
        A kill before they and the follower's end are on disk leaves the cursor to the
        next start, whose listing reports the same gaps, with the same ids, as it does
        its own (listing.py)."""
        end = self.store.mark_gone(cid, ns)
        await self.store.save_or_log()
        return end or ns

    async def _run_follower(self, follower: Follower, inspected: bool, follow: int) -> None:
        learning = None if inspected else asyncio.create_task(self._learn(follower))
        ended = False  # its records are all queued: not cancelled, not failed
        try:
            await follower.run()
            ended = True
        except Exception:
            log.exception("follower failed", extra={"container": follower.cid[:12]})
        finally:
            if learning is not None:
                learning.cancel()
                if not follower.decided:
                    # It ended (gone, say) before the inspection answered: the filters
                    # passed on the event's labels, so its lifecycle events need not wait.
                    follower.learn(None, follower.meta, skip=False)
            self.tasks.pop(follower.cid, None)
            self.followers.pop(follower.cid, None)
            start = self._starts.pop(follower.cid, None)
            kept = follower.hand_over()  # the log file of the run that start began
            if follower.cid in self._skipped:
                self.store.forget(follower.cid)
                self.positions.pop(follower.cid, None)
            else:
                # Done only once the lines before its end are on disk (the batcher marks
                # it): its last lines may wait in the queue for room in the disk buffer,
                # and a cursor done before then would skip them at the next start. Not
                # when a start came as it finished (`again`, too late for it to follow
                # once more): the follower begun for that run marks it done at its own
                # end, or, if none could begin, the next start reads it. Also when it
                # found the container removed: no later run of it can begin, and its
                # cursor is forgotten once done (`_prune`).
                ended_for_good = not follower.again or follower.found_gone
                if ended and follower.read_to_end and ended_for_good:
                    self.out.put_done(DoneRecord(follower.meta, follow))
                self.recent[follower.cid] = (follower, time.monotonic())
                # Not when it found the container removed: the start's run was read
                # from the log, or reported, with the rest (a replayed start, say).
                if ended and follower.again and start is not None and not follower.found_gone:
                    self._refollow(start, kept)
            if kept is not None:
                kept.close()  # no follower took it
            metrics.FOLLOWED.set(len(self.tasks))

    def _refollow(self, start: ContainerSummary, kept: KeptLog | None) -> None:
        """Follow a container whose start event came as its follower was leaving its
        loop: without it, that run's lines would wait for the next start of the shipper.
        The window is open while the follower's last rotation audit still runs (up to
        about half a second), and a container restarted (by its policy, `docker
        restart`) can come in it. Its records are all queued by now, so the new follower
        goes on from the same positions.

        Also when the container was removed meanwhile (`docker restart` then `docker rm
        -f`): dockerd has its log no more, but the log file taken at that start (`kept`)
        still holds the run, and the new follower reads it from there, as a removed
        --rm container's tail; without one, the new follower reports the run lost as a
        gap. Not followed, the run was lost without a word: the cursor of a removed
        container is dropped."""
        cid = start["id"]
        if cid in self._destroyed:
            if kept is None:
                # The start came while the follower still looked for one, and it ended
                # finding the container removed: it read or reported the rest of the
                # log, that run's lines included.
                return
            log.info(
                "container started and removed as its follower ended: that run is read"
                " from its log file if the shipper holds it, else reported as a gap",
                extra={"container": cid[:12], "log_file_held": kept.held is not None},
            )
        self._follow(start, 0, inspected=False, kept=kept)

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
            self._not_following(meta.name, reason)
            self._skipped.add(follower.cid)
            task = self.tasks.get(follower.cid)
            if task is not None:
                task.cancel()

    def _not_following(self, name: str, reason: str) -> None:
        # Decided again at each of its events: at info only in the summaries.
        log.debug("not following container", extra={"container": name, "reason": reason})
        self.not_followed.note(name, reason)

    async def _housekeeping(self) -> None:
        """Every second: note that we are alive, save, and forget what is long gone."""
        while True:
            await asyncio.sleep(1.0)
            if self.connected:
                # Never past an event still in memory: the next start asks dockerd for
                # the events since then, so one a stop loses here comes again.
                held = self.lifecycle.held_since()
                now = time.time_ns()
                self.store.alive_ns = now if held is None else min(now, held)
            self._prune()
            summary = self.not_followed.summary()
            if summary:
                log.info(summary)
            await self.store.save_or_log()
            TASKS.set(len(asyncio.all_tasks()))

    def _prune(self) -> None:
        now = time.monotonic()
        for cid, (follower, since) in list(self.recent.items()):
            kept = KEEP_GONE if self._acknowledged(cid, follower.positions) else KEEP_UNACKNOWLEDGED
            if now - since > kept:
                del self.recent[cid]
        reported = self.listing.reported
        for cid in list(reported):
            if self._done(cid):  # its gaps are on disk
                self.store.forget(cid)
                reported.discard(cid)
        for cid in list(self._destroyed):
            if cid in self.tasks or cid in reported:
                continue
            positions = self.positions.get(cid)
            if positions is None and not self.listing.listed:
                continue  # the first listing's to report (see the module's docstring)
            if positions is not None and not self._done(cid):
                continue  # what its follower queued last (gaps, say) is not on disk yet
            if self._acknowledged(cid, positions or {}):
                self.store.forget(cid)
                self.positions.pop(cid, None)
                self._destroyed.discard(cid)
                self._skipped.discard(cid)

    def _done(self, cid: str) -> bool:
        """The container's end is on disk (or it has no cursor)."""
        cursor = self.store.get(cid)
        return cursor is None or cursor.done

    def _acknowledged(self, cid: str, positions: dict[str, Position]) -> bool:
        """A collector acknowledged every line read up to `positions` (or the container
        has no cursor: forgotten, removed or not shipped)."""
        cursor = self.store.get(cid)
        return cursor is None or all(
            cursor.position(s) == p for s, p in positions.items() if p.count
        )

    async def stop(self) -> None:
        """Cancel every follower: each queues what it held; positions stay in memory.
        None begins after: one that ends meanwhile, a start having come as it finished,
        would begin another, left running once this returns."""
        self._stopped = True
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _iso(ns: int) -> str:
    """A time in ns as UTC ISO 8601 (to the microsecond), for a log line."""
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="microseconds")
