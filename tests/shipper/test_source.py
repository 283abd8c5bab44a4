"""Unit tests of the supervisor's handling of containers it cannot inspect or follow."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import struct
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from shipper import metrics
from shipper.__main__ import open_state
from shipper.batch import Batcher
from shipper.catchup import DOCKERD_EVENTS_KEPT, GONE_GAP, ReplayCheck
from shipper.config import load_config
from shipper.containers import ContainerSummary, Listed
from shipper.cursor import CursorStore, Position, SavedMeta
from shipper.demux import parse_ts
from shipper.dockerd import Dockerd
from shipper.errors import ContainerGone
from shipper.events import ContainerEvent
from shipper.follow.gaps import REMOVED_EARLY_GAP
from shipper.inbox import Inbox
from shipper.lifecycle import DECISION_WAIT, EventRecords
from shipper.logfiles.watch import LogFiles
from shipper.record import DoneRecord, EventRecord, GapRecord, LogRecord, Meta, Record
from shipper.source import KEEP_GONE, KEEP_UNACKNOWLEDGED, STOPPED_READS, Supervisor
from shipper.spool import Spool
from tests.shipper.standin import StandIn
from tests.shipper.summaries import container

CID = "e" * 64


class _GoneDocker(StandIn):
    """dockerd after a --rm container went: its logs are gone, inspecting it never answers."""

    async def logs(self, cid: str, *args: object, **kwargs: object) -> AsyncGenerator[bytes, None]:
        raise ContainerGone(f"/containers/{cid}/logs: no such container")
        yield b""  # an async generator, like the real one

    async def inspect(self, cid: str) -> ContainerSummary:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


def _event(action: str, n: int) -> ContainerEvent:
    attrs = {"name": "/gone", "image": "busybox:latest", "exitCode": "0"}
    return ContainerEvent(CID, action, "", n, attrs)


async def test_events_of_a_container_gone_before_its_inspection_are_not_held(
    tmp_path: Path,
) -> None:
    """Its follower ends with a gap before inspection answers; its events follow at once."""
    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    docker = _GoneDocker()
    sup = Supervisor(config, docker, CursorStore(tmp_path), out, None)
    forward = asyncio.create_task(sup.lifecycle.forward())
    try:
        for n, action in enumerate(("create", "start", "die", "destroy"), 1):
            sup._on_event(_event(action, n))
        got: list[Record] = []
        async with asyncio.timeout(DECISION_WAIT / 2):
            while len(got) < 5:  # a gap per stream and three lifecycle events
                record = await out.get()
                if not isinstance(record, DoneRecord):  # its end, when the follower ends
                    got.append(record)
    finally:
        forward.cancel()
        for task in [forward, *sup.tasks.values()]:
            task.cancel()
        await asyncio.gather(forward, *sup.tasks.values(), return_exceptions=True)
    assert sorted(r.stream for r in got if isinstance(r, GapRecord)) == ["stderr", "stdout"]
    assert [r.action for r in got if isinstance(r, EventRecord)] == ["start", "die", "destroy"]


class _EmptyDocker(_GoneDocker):
    """dockerd after a followed container was removed while the shipper was down."""

    async def list_all(self) -> list[Listed]:
        return []


async def test_a_container_the_listing_found_removed_is_reported_once(tmp_path: Path) -> None:
    """At start the listing and the replay of the last events race: whichever comes first,
    the loss is reported once, from the last line read (the container printed on stdout
    only, so stderr has no position of its own)."""
    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    store = CursorStore(tmp_path)
    store.ensure(CID, 0, SavedMeta(name="gone", image="busybox", labels={}))
    store.advance(CID, "stdout", Position(1_000, 1))
    docker = _EmptyDocker()
    sup = Supervisor(config, docker, store, out, None)
    await sup.listing.run()
    sup._on_event(_event("start", 900))  # replayed after the listing answered
    assert CID not in sup.tasks
    gaps = []
    while not sup.lifecycle.backlog.empty():
        record = sup.lifecycle.backlog.get_nowait()
        if isinstance(record, GapRecord):
            gaps.append((record.stream, record.from_ts, record.reason))
    assert sorted(gaps) == [("stderr", 1_000, GONE_GAP), ("stdout", 1_000, GONE_GAP)]


def _removed_while_down(tmp_path: Path, docker: Dockerd) -> tuple[Supervisor, Inbox]:
    """A supervisor at its start, with the cursor of a container removed while the shipper
    was down: it had read a line of stdout, and none of stderr."""
    out = Inbox(100, metrics.PerContainer(False, 10))
    store = CursorStore(tmp_path)
    store.ensure(CID, 0, SavedMeta(name="gone", image="busybox", labels={}))
    store.advance(CID, "stdout", Position(1_000, 1))
    return Supervisor(load_config(state_dir=tmp_path), docker, store, out, None), out


def _queued(sup: Supervisor, out: Inbox) -> list[Record]:
    """Every record queued, taken: by followers, then by the listing."""
    records: list[Record] = []
    while not out.empty():
        records.append(out.get_nowait())
    while not sup.lifecycle.backlog.empty():
        records.append(sup.lifecycle.backlog.get_nowait())
    return records


def _reasons(records: list[Record]) -> list[tuple[str, str]]:
    """(stream, reason) of every gap among `records`, sorted."""
    return sorted((r.stream, r.reason) for r in records if isinstance(r, GapRecord))


def _spans(gaps: list[GapRecord]) -> list[tuple[str, str, int, int]]:
    """What makes each gap's `_id` (container, stream, start, end), sorted."""
    return sorted((g.meta.id, g.stream, g.from_ts, g.to_ts) for g in gaps)


def _gaps(sup: Supervisor, out: Inbox) -> list[tuple[str, str]]:
    """(stream, reason) of every gap queued: by followers, and by the listing."""
    return _reasons(_queued(sup, out))


async def _write(sup: Supervisor, records: list[Record], tmp_path: Path) -> None:
    """Write `records` to a disk buffer as the shipper's batcher does: a container's done
    mark finishes its cursor once what came before it is on disk."""
    inbox = Inbox(100, metrics.PerContainer(False, 10))
    await inbox.put_many(records)
    spool = Spool(tmp_path / "spool", 10**6)
    spool.open()
    config = load_config(state_dir=tmp_path, collector_url="http://x", batch_max_age=0.01)
    batcher = Batcher(config, inbox, spool, sup.store, "h")
    writing = asyncio.create_task(batcher.run())
    try:
        assert await batcher.finish(10)
    finally:
        writing.cancel()
        await asyncio.gather(writing, return_exceptions=True)


async def test_a_replayed_removal_leaves_the_cursor_to_the_first_listing(tmp_path: Path) -> None:
    """The destroy event, replayed at the start, came before the listing answered (slow
    with many containers on the host): the cleanup of removed containers forgot the
    cursor, as nothing this run had read of it waited for an acknowledgement, and the
    listing, finding no cursor, reported nothing. The first listing reports the loss."""
    sup, out = _removed_while_down(tmp_path, _EmptyDocker())
    sup._on_event(_event("destroy", 900))
    sup._prune()
    assert sup.store.get(CID) is not None
    await sup.listing.run()
    records = _queued(sup, out)
    assert _reasons(records) == [("stderr", GONE_GAP), ("stdout", GONE_GAP)]
    sup._prune()
    assert sup.store.get(CID) is not None  # until the gaps are on disk
    await _write(sup, records, tmp_path)
    sup._prune()
    assert sup.store.get(CID) is None
    assert not sup._destroyed
    assert not sup.listing.reported


async def test_a_removal_the_listing_reported_outlives_a_kill_before_it_is_on_disk(
    tmp_path: Path,
) -> None:
    """The listing forgot the cursor as it queued the gaps: with the disk buffer full they
    waited in memory while the cursor file, saved every second, no longer had the
    container, and a kill then left nothing to report them from. The cursor stays until
    they are on disk; it is saved first with when the removal was found, so that the
    next start reports the same gaps, with the same ids (the collector keeps one copy)."""
    sup, out = _removed_while_down(tmp_path, _EmptyDocker())
    await sup.listing.run()
    first = [r for r in _queued(sup, out) if isinstance(r, GapRecord)]
    assert len(first) == 2
    sup._prune()
    # Killed now: the gaps were in memory only. The cursor file was saved before.
    store = CursorStore(tmp_path)
    store.load()
    saved = store.get(CID)
    assert saved is not None
    assert not saved.done
    assert saved.gone == first[0].to_ts
    out = Inbox(100, metrics.PerContainer(False, 10))
    sup = Supervisor(sup.config, _EmptyDocker(), store, out, None)
    await sup.listing.run()
    records = _queued(sup, out)
    again = [r for r in records if isinstance(r, GapRecord)]
    assert _spans(again) == _spans(first)
    assert [type(r) for r in records[2:]] == [DoneRecord]  # behind them
    await _write(sup, records, tmp_path)
    sup._prune()
    await sup.store.save_or_log()
    store = CursorStore(tmp_path)
    store.load()
    assert store.get(CID) is None  # on disk: the next start reports nothing


class _GoneOnCueDocker(_EmptyDocker):
    """dockerd after the removal: its answer to a log request waits for `answer`."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()

    async def logs(self, cid: str, *args: object, **kwargs: object) -> AsyncGenerator[bytes, None]:
        await self.answer.wait()
        raise ContainerGone(f"/containers/{cid}/logs: no such container")
        yield b""


async def test_a_removal_its_follower_reported_keeps_the_cursor_until_on_disk(
    tmp_path: Path,
) -> None:
    """The follower of a replayed start found the container removed and queued its gaps;
    the destroy came: the cleanup forgot the cursor as soon as the lines read were on
    disk, while the gaps behind them waited in memory (the disk buffer full), and a kill
    then lost them (the next start found no cursor to report from). It waits for the
    follower's end, queued behind its gaps, to be on disk."""
    docker = _GoneOnCueDocker()
    sup, out = _removed_while_down(tmp_path, docker)
    sup._on_event(_event("start", 900))
    docker.answer.set()
    await asyncio.wait_for(sup.tasks[CID], DECISION_WAIT / 2)
    sup._on_event(_event("destroy", 950))
    await sup.listing.run()
    records = _queued(sup, out)
    assert _reasons(records) == [("stderr", REMOVED_EARLY_GAP), ("stdout", REMOVED_EARLY_GAP)]
    sup._prune()
    assert sup.store.get(CID) is not None
    await _write(sup, records, tmp_path)
    sup._prune()
    assert sup.store.get(CID) is None
    assert not sup._destroyed


async def test_a_removal_its_follower_reported_is_reported_again_alike_after_a_kill(
    tmp_path: Path,
) -> None:
    """The follower found the container removed and queued its gaps; a kill came once
    they were on disk, before its end queued behind them was. The next start's listing
    reported the loss again, ending at its own time: a second pair of gap documents for
    one loss. The follower saves the span before queueing the gaps, and the repeat has
    their ids (the collector keeps one copy)."""
    docker = _GoneOnCueDocker()
    docker.answer.set()
    sup, out = _removed_while_down(tmp_path, docker)
    await sup.store.save_or_log()  # as the last run left it
    sup._on_event(_event("start", 900))
    await asyncio.wait_for(sup.tasks[CID], DECISION_WAIT / 2)
    records = _queued(sup, out)
    first = [r for r in records if isinstance(r, GapRecord)]
    assert _reasons(records) == [("stderr", REMOVED_EARLY_GAP), ("stdout", REMOVED_EARLY_GAP)]
    await _write(sup, [r for r in records if not isinstance(r, DoneRecord)], tmp_path)
    await sup.stop()
    # Killed: the cursors as last saved, moved forward by the disk buffer.
    store, _ = open_state(sup.config)
    out = Inbox(100, metrics.PerContainer(False, 10))
    restarted = Supervisor(sup.config, _EmptyDocker(), store, out, None)
    await restarted.listing.run()
    again = [r for r in _queued(restarted, out) if isinstance(r, GapRecord)]
    assert _spans(again) == _spans(first)


async def test_a_container_read_to_its_end_then_removed_unheard_is_forgotten(
    tmp_path: Path,
) -> None:
    """A follower of this run read the container to its end; it was removed while dockerd
    was down (no destroy event ever came): the listing at the reconnection, which leaves
    it to that follower, no longer finds it. Its cursor lingered until the next start;
    it is forgotten now, its end being on disk."""
    sup, out = _removed_while_down(tmp_path, _EmptyDocker())
    sup.positions[CID] = {"stdout": Position(1_000, 1), "stderr": Position(0, 0)}
    follow = sup.store.begin(CID)
    await _write(sup, [DoneRecord(Meta(CID, "gone", "busybox"), follow)], tmp_path)
    await sup.listing.run()
    assert _queued(sup, out) == []  # nothing to report: it was read to its end
    sup._prune()
    assert sup.store.get(CID) is None
    assert not sup._destroyed


@pytest.mark.parametrize("ended", [True, False], ids=["follower-ended", "follower-waiting"])
async def test_a_removal_a_replayed_start_found_first_is_its_followers_to_report(
    tmp_path: Path, ended: bool
) -> None:
    """The replayed start came before the listing answered, and its follower found the
    container gone (before the listing, or after it): the listing, finding the cursor
    not yet done, reported the loss a second time. The follower reports it, alone."""
    docker = _GoneOnCueDocker()
    sup, out = _removed_while_down(tmp_path, docker)
    sup._on_event(_event("start", 900))
    follower = sup.tasks[CID]
    if ended:
        docker.answer.set()
        await asyncio.wait_for(follower, DECISION_WAIT / 2)
    await sup.listing.run()
    docker.answer.set()
    await asyncio.wait_for(follower, DECISION_WAIT / 2)
    assert _gaps(sup, out) == [("stderr", REMOVED_EARLY_GAP), ("stdout", REMOVED_EARLY_GAP)]
    await sup.stop()


class _RemovedOnInspectionDocker(_GoneDocker):
    """dockerd listing a stopped container that is removed before its inspection."""

    async def list_all(self) -> list[Listed]:
        return [Listed(id=CID, state="exited")]

    async def inspect(self, cid: str) -> ContainerSummary:
        raise ContainerGone(f"/containers/{cid}/json: no such container")


async def test_a_container_removed_between_its_listing_and_inspection_is_reported(
    tmp_path: Path,
) -> None:
    """Listed, then gone when inspected: nobody reported its loss, and the cleanup of
    removed containers forgot its cursor at its destroy event. The listing reports it,
    and a start replayed after that begins no follower."""
    sup, out = _removed_while_down(tmp_path, _RemovedOnInspectionDocker())
    await sup.listing.run()
    sup._on_event(_event("start", 900))
    assert CID not in sup.tasks
    assert _gaps(sup, out) == [("stderr", GONE_GAP), ("stdout", GONE_GAP)]
    assert sup.listing.reported == {CID}  # its cursor forgotten once they are on disk


def _open_ahead(files: LogFiles, cid: str) -> None:
    """What the watch thread does when dockerd creates the container's log file."""
    with open(files.path(cid), "rb") as opened:
        files._open_ahead(cid, opened)


async def test_the_log_file_of_a_container_not_shipped_is_not_held(tmp_path: Path) -> None:
    """Its file would stay open for a minute: filtered out, it is let go at once."""
    root = tmp_path / "docker"
    (root / "containers" / CID).mkdir(parents=True)
    (root / "containers" / CID / f"{CID}-json.log").write_bytes(b"")
    config = load_config(state_dir=tmp_path, include_names=["web-*"])
    out = Inbox(100, metrics.PerContainer(False, 10))
    sup = Supervisor(config, _GoneDocker(), CursorStore(tmp_path), out, None)
    sup.files = LogFiles(str(root))
    _open_ahead(sup.files, CID)
    assert sup.files.held == 1
    sup._on_event(_event("create", 1))  # named "gone": not shipped
    assert CID not in sup.tasks
    assert sup.files.held == 0


async def test_a_container_not_followed_is_summed_up_not_logged_per_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each event of a filtered container is a debug line; the summary names it once."""
    config = load_config(state_dir=tmp_path, include_names=["web-*"])
    out = Inbox(100, metrics.PerContainer(False, 10))
    sup = Supervisor(config, _GoneDocker(), CursorStore(tmp_path), out, None)
    with caplog.at_level(logging.DEBUG, logger="logpipe"):
        for n, action in enumerate(("create", "start", "die", "start"), 1):
            sup._on_event(_event(action, n))
    skips = [r for r in caplog.records if r.getMessage() == "not following container"]
    assert skips
    assert {r.levelno for r in skips} == {logging.DEBUG}
    assert sup.not_followed.summary() == (
        "not following 1 container: gone (name 'gone' not in the name filter)"
    )


class _StoppedDocker(StandIn):
    """dockerd with many exited containers; each log read waits until released."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.release = asyncio.Event()
        self.open = 0
        self.most_open = 0

    async def list_all(self) -> list[Listed]:
        return [Listed(id=cid, state="exited") for cid in self.ids]

    async def inspect(self, cid: str) -> ContainerSummary:
        return container(cid=cid, name=f"old-{cid[:4]}", running=False, finished_ns=5)

    async def logs(
        self,
        cid: str,
        since: str,
        *,
        on_end: Callable[[int], None] | None = None,
        **options: object,
    ) -> AsyncGenerator[bytes, None]:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.release.wait()
            if on_end is not None:
                on_end(0)  # an empty log, at its end: the container has stopped
        finally:
            self.open -= 1
        return
        yield b""  # an async generator, like the real one


async def test_stopped_containers_are_read_a_few_at_a_time_and_once(tmp_path: Path) -> None:
    """At a first start, 20 exited containers: their logs are read STOPPED_READS at a time
    (each read holds a connection to dockerd), each to its end, and noted as finished
    once the batcher has written what came before each end."""
    ids = [f"{n:02d}" * 32 for n in range(20)]
    docker = _StoppedDocker(ids)
    config = load_config(state_dir=tmp_path, collector_url="http://x", batch_max_age=0.01)
    store = CursorStore(tmp_path)
    inbox = Inbox(100, metrics.PerContainer(False, 10))
    sup = Supervisor(config, docker, store, inbox, None)
    await sup.listing.run()
    assert set(sup.tasks) == set(ids)
    await asyncio.sleep(0.2)  # the first ones reach dockerd; none of the others may
    assert docker.open == STOPPED_READS
    states = [f.stats.state for f in sup.followers.values()]
    assert states.count("queued") == len(ids) - STOPPED_READS
    sup.followers[ids[-1]].again = True  # it was started: its lines come live, no waiting
    await asyncio.sleep(0.2)
    assert docker.open == STOPPED_READS + 1
    docker.release.set()
    async with asyncio.timeout(5):
        await asyncio.gather(*sup.tasks.values())
    assert docker.most_open == STOPPED_READS + 1
    assert not any(c is not None and c.done for c in map(store.get, ids))  # not yet written
    await _write(sup, _queued(sup, inbox), tmp_path)
    assert all(c is not None and c.done for c in map(store.get, ids))


def test_a_finished_follower_stays_on_status_while_its_lines_wait_for_a_collector(
    tmp_path: Path,
) -> None:
    """A finished follower leaves /status KEEP_GONE after its end once a collector
    acknowledged every line it read; while one is not, it stays, up to
    KEEP_UNACKNOWLEDGED; one whose container has no cursor any more leaves as ever."""
    config = load_config(state_dir=tmp_path)
    store = CursorStore(tmp_path)
    docker = _GoneDocker()
    sup = Supervisor(config, docker, store, Inbox(100, metrics.PerContainer(False, 10)), None)
    read = {"stdout": Position(2_000, 1)}
    acked, waiting, forgotten = "a" * 64, "b" * 64, "c" * 64
    for cid in (acked, waiting):
        store.ensure(cid, 0, SavedMeta(name=cid[:1], image="busybox", labels={}))
    store.advance(acked, "stdout", Position(2_000, 1))
    store.advance(waiting, "stdout", Position(1_000, 1))
    ended = time.monotonic() - KEEP_GONE - 1
    follower: Any = SimpleNamespace(positions=read)
    sup.recent.update({cid: (follower, ended) for cid in (acked, waiting, forgotten)})
    sup._prune()
    assert set(sup.recent) == {waiting}
    sup.recent[waiting] = (follower, time.monotonic() - KEEP_UNACKNOWLEDGED + 5)
    sup._prune()
    assert set(sup.recent) == {waiting}
    sup.recent[waiting] = (follower, time.monotonic() - KEEP_UNACKNOWLEDGED - 1)
    sup._prune()
    assert not sup.recent


async def test_a_cursor_save_refused_by_the_disk_does_not_stop_the_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk at the every-second cursor save is one error line, not an ended
    supervisor (which stopped the shipper with a traceback), and each failed save is
    counted; the next save that the disk takes says so."""
    full = True

    def write(path: Path, data: bytes) -> None:
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("shipper.cursor.write_durably", write)
    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    store = CursorStore(tmp_path)
    sup = Supervisor(config, _GoneDocker(), store, out, None)
    caplog.set_level(logging.INFO, logger="logpipe")
    failed = metrics.CURSOR_SAVE_ERRORS._value.get()
    task = asyncio.create_task(sup._housekeeping())
    try:
        await asyncio.sleep(2.3)
        assert not task.done()
        assert store.save_error == f"{tmp_path / 'cursors.json'}: ENOSPC: No space left on device"
        assert metrics.CURSOR_SAVE_ERRORS._value.get() >= failed + 2
        full = False
        await asyncio.sleep(1.0)
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage().split(":")[0] for r in errors] == ["cannot save the cursors"]
    assert errors[0].errno == "ENOSPC"  # type: ignore[attr-defined]
    assert errors[0].path == str(tmp_path / "cursors.json")  # type: ignore[attr-defined]
    assert "cursors saved again" in caplog.messages
    assert store.save_error is None


async def test_an_event_not_yet_on_disk_holds_back_the_last_sign_of_life(
    tmp_path: Path,
) -> None:
    """A die event waiting in memory (the disk buffer full) was lost at a stop: the next
    start replays dockerd's events only from a little before the shipper was last alive,
    which went on moving. It may not pass an event until that event is on disk."""
    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    events = EventRecords(config, None, CursorStore(tmp_path), out, {}, {}, set())
    events.add(ContainerEvent(CID, "die", "", 5_000, {"name": "/web", "exitCode": "0"}))
    assert events.held_since() == 5_000  # waiting for the queue
    forward = asyncio.create_task(events.forward())
    try:
        await asyncio.wait_for(out.wait(), 5)
        assert events.held_since() == 5_000  # queued, not on disk
        records, _ = out.take(10, 10**6, 0)
        assert [type(r) for r in records] == [EventRecord]
        out.written += len(records)  # as the batcher counts them once written
        assert events.held_since() is None
    finally:
        forward.cancel()
        await asyncio.gather(forward, return_exceptions=True)


async def test_an_event_waiting_for_its_containers_verdict_holds_back_the_sign_of_life(
    tmp_path: Path,
) -> None:
    """While inspection has not said whether its container is shipped, the event is in
    memory too; once it says no, the event holds nothing back."""
    verdict = asyncio.Event()

    class Undecided:
        meta = Meta(CID, "web", "busybox")

        async def skipped(self, wait: float) -> bool:
            await verdict.wait()
            return True  # not shipped

    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    followers: Any = {CID: Undecided()}
    events = EventRecords(config, None, CursorStore(tmp_path), out, followers, {}, set())
    events.add(ContainerEvent(CID, "start", "", 7_000, {"name": "/web"}))
    forward = asyncio.create_task(events.forward())
    try:
        await asyncio.sleep(0.05)  # taken from the backlog, waiting for the verdict
        assert events.backlog.empty()
        assert events.held_since() == 7_000
        verdict.set()
        await asyncio.sleep(0.05)
        assert events.held_since() is None
        assert out.empty()
    finally:
        forward.cancel()
        await asyncio.gather(forward, return_exceptions=True)


class _QuietDocker(_GoneDocker):
    """dockerd with a running container that has printed nothing yet."""

    async def logs(self, cid: str, *args: object, **kwargs: object) -> AsyncGenerator[bytes, None]:
        await asyncio.sleep(3600)
        yield b""


class _Finishing:
    """A follower that left its loop: `during` is what happens before it ends."""

    cid = CID
    meta = Meta(CID, "web", "busybox")
    read_to_end = True
    decided = True
    again = False
    found_gone = False

    def __init__(self, during: Callable[[], Awaitable[None]]) -> None:
        self.during = during

    async def run(self) -> None:
        await self.during()

    def hand_over(self) -> None:
        return None  # no log file taken at a start as it ended


async def _finish(sup: Supervisor, follower: Any) -> asyncio.Task[None]:
    """Run `follower` as the supervisor runs one, until it ends."""
    sup.followers[CID] = follower
    task = asyncio.create_task(sup._run_follower(follower, True, sup.store.begin(CID)))
    sup.tasks[CID] = task
    await asyncio.wait([task])
    return task


async def test_a_start_as_its_follower_ends_follows_the_container_anew(tmp_path: Path) -> None:
    """A start event that came once the follower had left its loop was not followed:
    that run's lines waited for the shipper's next start (a crash-looping container
    comes to this at each restart). A new follower goes on from the same positions at
    once; the old one's end is not queued, as that run is not read yet."""
    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    store = CursorStore(tmp_path)
    store.ensure(CID, 0)
    sup = Supervisor(config, _QuietDocker(), store, out, None)
    positions = {"stdout": Position(1_000, 3), "stderr": Position(0, 0)}
    sup.positions[CID] = positions

    async def nothing() -> None:
        pass

    await _finish(sup, _Finishing(nothing))  # no start meanwhile: its end is queued
    [end] = out.take(10, 10**6, 0)[0]
    assert isinstance(end, DoneRecord)

    async def started() -> None:
        sup._on_event(_event("start", 2))

    old = await _finish(sup, _Finishing(started))
    try:
        new = sup.tasks[CID]
        assert new is not old
        assert not new.done()
        assert sup.followers[CID].positions is positions
        assert out.empty()
    finally:
        await sup.stop()
    assert not sup.tasks
    assert out.empty()  # cancelled: the new follower did not read it to its end
    saved = store.get(CID)
    assert saved is not None
    assert not saved.done


async def test_a_start_heard_after_its_follower_found_the_container_removed_is_not_followed(
    tmp_path: Path,
) -> None:
    """A follower that found the container removed accounted for the rest of its log (read
    from its file, or a gap), every run before the removal included; a start it hears of
    as it ends (a replayed one, after a restart of the shipper) is one of those: a new
    follower would report the same loss a second time."""
    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    store = CursorStore(tmp_path)
    store.ensure(CID, 0)
    sup = Supervisor(config, _QuietDocker(), store, out, None)

    async def started() -> None:
        sup._on_event(_event("start", 2))

    follower: Any = _Finishing(started)
    follower.found_gone = True
    await _finish(sup, follower)
    assert follower.again
    assert CID not in sup.tasks
    # Its end is queued all the same (then the start's event): the cursor is done, and
    # forgotten, once on disk.
    assert [type(r) for r in _queued(sup, out)] == [DoneRecord, EventRecord]
    await sup.stop()


async def test_no_follower_begins_anew_once_stopping(tmp_path: Path) -> None:
    """A start as the follower finished begins no new follower once stop() was called:
    stop() awaits the followers it cancelled, and one begun as one of them ended would
    be left running. The container is left not done."""
    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    store = CursorStore(tmp_path)
    store.ensure(CID, 0)
    sup = Supervisor(config, _QuietDocker(), store, out, None)

    async def started_then_stopped() -> None:
        sup._on_event(_event("start", 4))
        # Its last await lost the cancel (as a `suppress` in a finally can): it ends as
        # if it had not been cancelled.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)

    follower: Any = _Finishing(started_then_stopped)
    sup.followers[CID] = follower
    task = asyncio.create_task(sup._run_follower(follower, True, store.begin(CID)))
    sup.tasks[CID] = task
    await asyncio.sleep(0)  # asleep, its start event seen
    assert follower.again
    await sup.stop()
    assert task.done()
    assert not task.cancelled()
    assert not sup.tasks
    assert out.empty()
    saved = store.get(CID)
    assert saved is not None
    assert not saved.done


RUN = 3  # lines each run of the container prints


def _ts(n: int) -> bytes:
    return b"2026-11-28T03:00:00.%09dZ" % n


def _frame(n: int) -> bytes:
    """Line n as dockerd's logs API sends it (stdout, stamped n ns into the second)."""
    payload = _ts(n) + b" line %d\n" % n
    return struct.pack(">BxxxL", 1, len(payload)) + payload


def _json_log(first: int, last: int) -> bytes:
    """Lines first..last as dockerd's json-file log holds them (the times of _frame)."""
    entries = [
        orjson.dumps({"log": f"line {n}\n", "stream": "stdout", "time": _ts(n).decode()})
        for n in range(first, last + 1)
    ]
    return b"\n".join(entries) + b"\n"


class _RerunDocker(StandIn):
    """dockerd with a container whose first run printed RUN lines and exited; once
    `removed`, every request finds it gone."""

    def __init__(self) -> None:
        self.removed = False

    async def logs(
        self,
        cid: str,
        since: str,
        follow: bool = True,
        on_end: Callable[[int], None] | None = None,
        **options: object,
    ) -> AsyncGenerator[bytes, None]:
        if self.removed:
            raise ContainerGone(f"/containers/{cid}/logs: no such container")
        frames = [_frame(n) for n in range(1, RUN + 1)] if follow else []
        if on_end is not None:  # it has exited: the stream ends after these
            on_end(sum(map(len, frames)))
        for frame in frames:
            await asyncio.sleep(0)
            yield frame

    async def inspect(self, cid: str) -> ContainerSummary:
        if self.removed:
            raise ContainerGone(f"/containers/{cid}/json: no such container")
        return container(cid=cid, running=False)


async def _run_and_remove_at_its_end(
    sup: Supervisor, docker: _RerunDocker, log: Path, removed_first: bool = False
) -> list[Record]:
    """Follow CID's first run; as its follower has left its loop (waiting for its last
    rotation audit), the container runs again, prints RUN more lines and is removed
    (`removed_first`: before the shipper reads its start event); what the supervisor
    queued by the end of the last follower."""

    def remove() -> None:
        docker.removed = True
        log.unlink()  # dockerd removes the container's folder with it

    async def restarted_and_removed() -> None:
        with log.open("ab") as f:
            f.write(_json_log(RUN + 1, 2 * RUN))
        if removed_first:
            remove()
        sup._on_event(_event("start", 3))
        sup._on_event(_event("die", 4))
        if not removed_first:
            remove()
        sup._on_event(_event("destroy", 5))

    sup._on_event(_event("start", 1))
    first = sup.tasks[CID]
    sup.followers[CID]._numbering.finish_audits = restarted_and_removed  # type: ignore[method-assign]
    await asyncio.wait([first])
    assert CID in sup.tasks  # the second run is followed
    await asyncio.wait([sup.tasks[CID]])
    assert CID not in sup.tasks
    records, _ = sup.out.take(100, 10**6, 0)
    return list(records)


def _log_file(tmp_path: Path) -> tuple[LogFiles, Path]:
    """dockerd's containers folder with CID's json-file log holding its first run."""
    root = tmp_path / "docker"
    (root / "containers" / CID).mkdir(parents=True)
    log = root / "containers" / CID / f"{CID}-json.log"
    log.write_bytes(_json_log(1, RUN))
    return LogFiles(str(root)), log


async def test_a_run_started_and_removed_as_its_follower_ends_is_read_from_its_log_file(
    tmp_path: Path,
) -> None:
    """`docker restart` then `docker rm -f` as the follower finished: the start came once
    it had left its loop, the removal before another follower could ask dockerd, and
    that run was lost without a word. The log file is taken at the start event and the
    run is read from it, after the lines read already (none twice); then it is done."""
    config = load_config(state_dir=tmp_path, follow_files=False)
    out = Inbox(100, metrics.PerContainer(False, 10))
    docker = _RerunDocker()
    sup = Supervisor(config, docker, CursorStore(tmp_path), out, None)
    sup.files, log = _log_file(tmp_path)
    rescues = REGISTRY.get_sample_value("logpipe_shipper_logfile_rescues_total")
    assert rescues is not None
    records = await _run_and_remove_at_its_end(sup, docker, log)
    lines = [r.data for r in records if isinstance(r, LogRecord)]
    assert lines == [b"line %d" % n for n in range(1, 2 * RUN + 1)]
    assert not [r for r in records if isinstance(r, GapRecord)]
    assert isinstance(records[-1], DoneRecord)
    assert REGISTRY.get_sample_value("logpipe_shipper_logfile_rescues_total") == rescues + 1


@pytest.mark.parametrize("why", ["no access to the files", "removed before its start was read"])
async def test_a_run_started_and_removed_as_its_follower_ends_is_a_gap_if_unreadable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, why: str
) -> None:
    """The same, but the shipper cannot take its log file (it does not see dockerd's
    containers folder, or the container was gone by the time its start event was read):
    that run is reported lost, from the last line read, for each stream; counted and
    logged; the container is done (its cursor is dropped with it, the loss told)."""
    config = load_config(state_dir=tmp_path, follow_files=False)
    out = Inbox(100, metrics.PerContainer(False, 10))
    docker = _RerunDocker()
    sup = Supervisor(config, docker, CursorStore(tmp_path), out, None)
    files, log = _log_file(tmp_path)
    sup.files = LogFiles("") if why == "no access to the files" else files
    gaps = REGISTRY.get_sample_value("logpipe_shipper_gaps_total") or 0.0
    caplog.set_level(logging.INFO, logger="logpipe")
    removed_first = why == "removed before its start was read"
    records = await _run_and_remove_at_its_end(sup, docker, log, removed_first)
    lines = [r.data for r in records if isinstance(r, LogRecord)]
    assert lines == [b"line %d" % n for n in range(1, RUN + 1)]
    lost = [(r.stream, r.from_ts, r.reason) for r in records if isinstance(r, GapRecord)]
    last = parse_ts(_ts(RUN))
    assert sorted(lost) == [
        ("stderr", last, REMOVED_EARLY_GAP),
        ("stdout", last, REMOVED_EARLY_GAP),
    ]
    assert isinstance(records[-1], DoneRecord)
    assert REGISTRY.get_sample_value("logpipe_shipper_gaps_total") == gaps + 2
    told = [m for m in caplog.messages if m.startswith("container started and removed")]
    assert len(told) == 1


async def test_a_follower_knows_the_positions_its_cursor_holds_at_a_window(
    tmp_path: Path,
) -> None:
    """Positions a stop saved held at a window's start, lines read past them: the follower
    is told which they are (its read is checked at them, as at any position read to), and
    not the stream with a line counted."""
    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    store = CursorStore(tmp_path)
    store.advance(CID, "stdout", Position(1_000, 0))  # held at the window's start
    store.wrote(CID, "stdout", Position(2_000, 1))  # the lines read after it
    store.advance(CID, "stderr", Position(1_500, 2))
    sup = Supervisor(config, _QuietDocker(), store, out, None)
    sup._follow(container(cid=CID), 0, inspected=True)
    try:
        assert sup.followers[CID].progress.held == {"stdout": Position(1_000, 0)}
    finally:
        await sup.stop()


async def test_a_replay_short_of_where_it_was_asked_from_is_logged_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A shipper that was away while more than 256 events happened on the host (a restart
    on a busy host, a stop with events still waiting in memory) gets dockerd's last 256:
    the lifecycle events before them are gone, which it says instead of nothing."""
    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    sup = Supervisor(config, _GoneDocker(), CursorStore(tmp_path), out, None)
    since = 1_700_000_000_000_000_000
    replayed = [_event("exec_start", since + 1_000 + n) for n in range(DOCKERD_EVENTS_KEPT)]

    async def events() -> AsyncIterator[ContainerEvent]:
        for event in replayed:
            yield event

    before = REGISTRY.get_sample_value("logpipe_shipper_event_replays_short_total") or 0
    with caplog.at_level(logging.WARNING, logger="logpipe"):
        await sup._consume(events(), ReplayCheck(since, since + 10**9))
    said = [r for r in caplog.records if r.getMessage().startswith("dockerd no longer had")]
    assert len(said) == 1
    assert said[0].oldest_kept == "2023-11-14T22:13:20.000001+00:00"  # type: ignore[attr-defined]
    after = REGISTRY.get_sample_value("logpipe_shipper_event_replays_short_total")
    assert after == before + 1
    assert sup._last_event_ns == replayed[-1].ts  # every event still handled


async def test_a_replay_short_of_where_it_was_asked_from_counts_the_events_of_every_kind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """dockerd's last 256 events are of every kind: each container adds a network's
    connect and disconnect to its own. A replay whose 256 kept events are mostly those
    lost the container events before them all the same, and says so; the events of other
    kinds are counted, not handled as containers'."""
    config = load_config(state_dir=tmp_path)
    out = Inbox(100, metrics.PerContainer(False, 10))
    sup = Supervisor(config, _GoneDocker(), CursorStore(tmp_path), out, None)
    since = 1_700_000_000_000_000_000
    network = {"name": "none", "container": CID}
    replayed = [
        _event("die", since + 1_000 + n)
        if n % 3 == 1
        else ContainerEvent("n" * 64, "disconnect", "", since + 1_000 + n, network, "network")
        for n in range(DOCKERD_EVENTS_KEPT)
    ]

    async def events() -> AsyncIterator[ContainerEvent]:
        for event in replayed:
            yield event

    with caplog.at_level(logging.WARNING, logger="logpipe"):
        await sup._consume(events(), ReplayCheck(since, since + 10**9))
    said = [r for r in caplog.records if r.getMessage().startswith("dockerd no longer had")]
    assert len(said) == 1
    containers = [e for e in replayed if e.kind == "container"]
    assert containers[-1].ts < replayed[-1].ts  # the last one is a network's
    assert sup._last_event_ns == replayed[-1].ts  # the next replay begins after it
    assert sup.lifecycle.backlog.qsize() == len(containers)  # the network's not handled


async def test_a_removal_a_replayed_create_found_first_is_reported_once(tmp_path: Path) -> None:
    """The replayed create began a follower waiting for the start, the replayed start came
    while it asked, and it found the container gone before the destroy was replayed: a
    second follower began for that start and reported the same loss again."""
    docker = _GoneOnCueDocker()
    sup, out = _removed_while_down(tmp_path, docker)
    sup._on_event(_event("create", 890))
    sup._on_event(_event("start", 900))
    docker.answer.set()
    while CID in sup.tasks:  # each follower begun for it, until none is left
        await asyncio.wait_for(sup.tasks[CID], DECISION_WAIT / 2)
    assert _gaps(sup, out) == [("stderr", REMOVED_EARLY_GAP), ("stdout", REMOVED_EARLY_GAP)]
    await sup.stop()
