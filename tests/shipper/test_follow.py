"""Unit tests of a follower against a fake dockerd: what a --rm container's race leaves."""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import os
import shutil
import struct
import time
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pytest
from prometheus_client import REGISTRY

from shipper import metrics, native
from shipper.config import load_config
from shipper.containers import ContainerSummary
from shipper.cursor import Position
from shipper.demux import parse_ts
from shipper.docker_api import Pace
from shipper.dockerd import Following
from shipper.errors import ConfigError, ContainerGone
from shipper.follow import Follower
from shipper.follow.gaps import (
    NO_FILE_GAP,
    REMOVED_GAP,
    ROTATED_AWAY_GAP,
    ROTATED_BETWEEN_GAP,
    ROTATED_FULL_GAP,
    UNPACKED_SHORT_GAP,
    Gaps,
)
from shipper.follow.handoff import Handoff
from shipper.follow.numbering import Numbering
from shipper.follow.progress import Progress
from shipper.follow.rescue import KeptLog, Rescue
from shipper.inbox import Inbox
from shipper.logfiles import jsonfile
from shipper.logfiles.watch import LogFiles
from shipper.record import DoneRecord, EventRecord, GapRecord, LogRecord, MarkRecord, Meta, Record
from tests.shipper.logfiles.local_entries import entry as local_entry
from tests.shipper.standin import StandIn
from tests.shipper.summaries import container

CID = "f" * 64
LINES = 10


def _frame(n: int) -> bytes:
    payload = b"2026-11-28T03:00:00.%09dZ line %d\n" % (n, n)
    return struct.pack(">BxxxL", 1, len(payload)) + payload


class _RacingDocker(StandIn):
    """A --rm container that started while the shipper's poll was on its way: the follow
    stream carried its first lines and ended when it stopped (its reader was behind);
    a request sent at once gets the rest (unless `rest_refused`: removal had begun), any
    later one finds the container removed."""

    def __init__(self, rest_refused: bool = False) -> None:
        self.requests: list[bool] = []
        self.rest_refused = rest_refused

    async def logs(
        self,
        cid: str,
        since: str,
        *,
        follow: bool = True,
        on_end: Callable[[int], None] | None = None,
        **options: object,
    ) -> AsyncGenerator[bytes, None]:
        self.requests.append(follow)
        if len(self.requests) > 2 or (self.rest_refused and not follow):
            raise ContainerGone(f"/containers/{cid}/logs: no such container")
        upto = LINES // 2 if follow else LINES
        frames = [_frame(n) for n in range(1, upto + 1)]
        if on_end is not None:  # dockerd ended the stream before the follower read it
            on_end(sum(map(len, frames)))
        for n, frame in enumerate(frames, start=1):
            self.before(n)
            await asyncio.sleep(0)
            yield frame

    def before(self, n: int) -> None:
        """What happens on the host before line `n` reaches the follower."""

    async def inspect(self, cid: str) -> ContainerSummary:
        raise ContainerGone(f"/containers/{cid}/json: no such container")


async def _run(
    docker: Following, summary: ContainerSummary | None = None, room: int = 100, **options: Any
) -> tuple[Follower, list[Record]]:
    """A follower of CID on `docker` (inspected as `summary`), run to its end; with what
    it queued (`room` records at most)."""
    inbox = Inbox(room, metrics.PerContainer(False, 10))
    meta = Meta(CID, "app", "busybox")
    positions = {"stdout": Position(0, 0), "stderr": Position(0, 0)}
    follower = Follower(docker, meta, positions, inbox, 1 << 20, **options)
    follower.learn(summary, meta, skip=False)
    await asyncio.wait_for(follower.run(), 10)
    queued = []
    while not inbox.empty():
        queued.append(inbox.get_nowait())
    return follower, queued


class _RemovedDocker(StandIn):
    """dockerd for a container removed before its log could be asked for."""

    async def logs(self, cid: str, *args: object, **kwargs: object) -> AsyncGenerator[bytes, None]:
        raise ContainerGone(f"/containers/{cid}/logs: no such container")
        yield b""  # an async generator, like the real one

    async def inspect(self, cid: str) -> ContainerSummary:
        raise ContainerGone(f"/containers/{cid}/json: no such container")


async def test_a_container_removed_before_it_was_read_is_reported_once() -> None:
    """The follower reports the loss for both streams and counts the log as accounted for
    to its end: the next listing must not report the same container's loss again."""
    follower, queued = await _run(_RemovedDocker())
    gaps = []
    for record in queued:
        assert isinstance(record, GapRecord)
        gaps.append((record.stream, record.reason))
    assert sorted(gaps) == [("stderr", REMOVED_GAP), ("stdout", REMOVED_GAP)]
    assert follower.read_to_end  # saved as done: no gap for it when it is not listed


class _CreatedThenRemovedDocker(_RemovedDocker):
    """dockerd for a container created, then removed without a start: the first poll of
    its log answers with nothing, the next finds it gone."""

    def __init__(self) -> None:
        self.polls = 0

    async def logs(self, cid: str, *args: object, **kwargs: object) -> AsyncGenerator[bytes, None]:
        self.polls += 1
        if self.polls > 1:
            raise ContainerGone(f"/containers/{cid}/logs: no such container")
        return
        yield b""


async def test_a_created_container_removed_unstarted_is_accounted_for_to_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Removed right after a poll answered (nothing could have been logged between): no
    gap, but read to its end all the same, so that its cursor is done and forgotten; it
    was left not done, and the removal's cleanup now waits for done."""
    monkeypatch.setattr("shipper.follow.start.PRESTART_POLL", (0.0, 0.0))
    docker = _CreatedThenRemovedDocker()
    follower, queued = await _run(docker, prestart=True)
    assert docker.polls == 2
    assert queued == []
    assert follower.read_to_end


async def test_a_container_that_ran_during_a_poll_is_drained_before_it_is_removed() -> None:
    """The poll's stream ends after half the lines: the rest is asked for at that moment."""
    docker = _RacingDocker()
    _, queued = await _run(docker, prestart=True)
    got = []
    for record in queued:
        assert isinstance(record, LogRecord)
        got.append(record.data)
    assert got == [b"line %d" % n for n in range(1, LINES + 1)]
    assert docker.requests[:2] == [True, False]


def _cut_docker() -> _RacingDocker:
    """dockerd ended a --rm container's follow stream after half its lines (its reader was
    behind when it was removed): the request for the rest finds it gone."""
    return _RacingDocker(rest_refused=True)


def _json_log(first: int, last: int) -> bytes:
    """Lines first..last as dockerd's json-file log holds them (the times of _frame)."""
    entries = [
        orjson.dumps(
            {"log": f"line {n}\n", "stream": "stdout", "time": f"2026-11-28T03:00:00.{n:09d}Z"}
        )
        for n in range(first, last + 1)
    ]
    return b"\n".join(entries) + b"\n"


class _Unwatched:
    """Log files handed over without a watch: rotation's new files looked for by path."""

    def drop(self, cid: str) -> None:
        pass

    def follows_rotation(self, cid: str) -> bool:
        return False

    def rotated(self, cid: str) -> list[BinaryIO]:
        return []

    async def settle(self) -> None:
        pass


class _HeldFile(_Unwatched):
    """The container's json-file log, opened while it ran (as LogFiles hands it over)."""

    def __init__(self, upto: int = LINES) -> None:
        self.data = _json_log(1, upto)
        self.asked: list[str] = []

    def path(self, cid: str) -> str:
        return ""  # not on disk: never followed from files

    def open(self, cid: str, path: str = "") -> io.BytesIO:
        self.asked.append(cid)
        return io.BytesIO(self.data)


async def test_the_tail_of_a_cut_stream_is_read_from_the_file_opened_ahead() -> None:
    files = _HeldFile()
    follower, queued = await _run(_cut_docker(), files=files)
    got = []
    for record in queued:
        assert isinstance(record, LogRecord), record
        got.append(record.data)
    assert got == [b"line %d" % n for n in range(1, LINES + 1)]
    assert files.asked == [CID]
    assert follower.read_to_end


async def test_a_created_containers_tail_read_at_its_start_is_read_once() -> None:
    """A container followed from its create event: the poll that saw it start carried
    its first lines and ended as it was removed, and its tail was read from the file.
    The follower then went on as if the container ran, asked dockerd again, found it
    gone and read the tail once more: a second rescue counted, and a full file's gap
    document (lines after this may be missing) sent twice."""
    docker = _cut_docker()
    rescues = REGISTRY.get_sample_value("logpipe_shipper_logfile_rescues_total") or 0.0
    inbox = Inbox(100, metrics.PerContainer(False, 10))
    meta = Meta(CID, "app", "busybox")
    positions = {"stdout": Position(0, 0), "stderr": Position(0, 0)}
    follower = Follower(docker, meta, positions, inbox, 1 << 20, files=_HeldFile(), prestart=True)  # type: ignore[arg-type]
    follower.learn(_rm_container(), meta, skip=False)

    def started(n: int) -> None:
        if n == 1:  # its start event, heard while the poll reads
            follower.again = True

    docker.before = started  # type: ignore[method-assign]
    await asyncio.wait_for(follower.run(), 10)
    queued = []
    while not inbox.empty():
        queued.append(inbox.get_nowait())
    assert [r.data for r in queued if isinstance(r, LogRecord)] == [
        b"line %d" % n for n in range(1, LINES + 1)
    ]
    assert docker.requests == [True, False]  # the poll, the rest: nothing after
    assert REGISTRY.get_sample_value("logpipe_shipper_logfile_rescues_total") == rescues + 1
    assert follower.read_to_end
    # Its own start, not another run's: else the container is never done (the supervisor
    # leaves that to the follower of a run that cannot come).
    assert not follower.again


async def test_a_follower_that_read_a_removed_containers_tail_found_it_gone() -> None:
    """The removal cut the stream and the tail was read from the file, every run before
    the removal with it. A start heard of as the follower ends (a replayed one) is one of
    those runs: had the follower not said it found the container gone, the supervisor
    began another one, which read the same file again (a second rescue counted)."""
    follower, queued = await _run(_cut_docker(), files=_HeldFile())
    assert len([r for r in queued if isinstance(r, LogRecord)]) == LINES
    assert follower.found_gone


async def test_a_held_file_rotated_away_is_no_tail_and_the_loss_is_reported() -> None:
    """The file held has only the log's first lines: rotation started another since."""
    follower, queued = await _run(_cut_docker(), files=_HeldFile(upto=2))
    lines = [r.data for r in queued if isinstance(r, LogRecord)]
    gaps = sorted((r.stream, r.reason) for r in queued if isinstance(r, GapRecord))
    assert lines == [b"line %d" % n for n in range(1, LINES // 2 + 1)]
    assert gaps == [("stderr", ROTATED_AWAY_GAP), ("stdout", ROTATED_AWAY_GAP)]
    assert follower.read_to_end


def _rm_container(log_path: str = "", max_size: str | None = None) -> ContainerSummary:
    """A --rm json-file container as inspection gives it (removed since)."""
    summary = container(cid=CID, auto_remove=True)
    summary["log_path"] = log_path
    if max_size is not None:
        summary["log_opts"] = {"max-size": max_size}
    return summary


class _RotatingDocker(_RacingDocker):
    """The cut stream of a --rm container whose log rotated (max-size) while its lines
    were read: lines 1-7 went to the first file, 8-10 to the one rotation started; the
    follow stream carried 1-5 and ended (its reader was behind)."""

    def __init__(self, path: Path) -> None:
        super().__init__(rest_refused=True)
        self.path = path
        path.write_bytes(_json_log(1, 7))

    def before(self, n: int) -> None:
        if n == 4:
            os.replace(self.path, f"{self.path}.1")
            self.path.write_bytes(_json_log(8, LINES))


class _FilesAt(_Unwatched):
    """The log file at a path, opened when the follower asks for it."""

    def __init__(self, path: Path) -> None:
        self.file = path

    def path(self, cid: str) -> str:
        return str(self.file)

    def open(self, cid: str, path: str = "") -> io.BufferedReader:
        return self.file.open("rb")


async def test_the_tail_is_read_from_the_file_rotation_started_while_lines_were_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file held from the start has lines 6-7, the one rotation started 8-10: that one
    is taken as it appears, the first is kept, and the tail is read from both."""
    monkeypatch.setattr(jsonfile, "CHECK_EVERY", 0.0)
    path = tmp_path / f"{CID}-json.log"
    summary = _rm_container(str(path))
    follower, queued = await _run(_RotatingDocker(path), summary, files=_FilesAt(path))
    got, gaps = _split(queued)
    assert got == [b"line %d" % n for n in range(1, LINES + 1)]
    assert gaps == []
    assert follower.read_to_end


class _RotatedAtRemovalDocker(_RotatingDocker):
    """As _RotatingDocker, and the container is removed, its folder with it, as the last
    line the stream carried reaches the follower: by its path the new file is gone.
    dockerd removes a --rm container about 30 ms after it exits; here, once the watch of
    `files` opened the new file."""

    def __init__(self, path: Path, files: LogFiles) -> None:
        super().__init__(path)
        self.files = files

    def before(self, n: int) -> None:
        super().before(n)
        if n == LINES // 2:
            new = jsonfile.identity(os.stat(self.path))
            deadline = time.monotonic() + 5
            while jsonfile.file_identity(self.files._last[CID]) != new:
                assert time.monotonic() < deadline, "the watch never opened the new file"
                time.sleep(0.01)
            shutil.rmtree(self.path.parent)


def _until_watched(files: LogFiles) -> None:
    """Wait until the watch follows the rotation of CID's log (it saw its file created)."""
    deadline = time.monotonic() + 5
    while not files.follows_rotation(CID):
        assert time.monotonic() < deadline, "the watch never saw the log file"
        time.sleep(0.01)


@pytest.mark.parametrize("max_size", ["1m", "200"])
async def test_the_tail_is_read_from_the_file_rotation_began_just_before_the_removal(
    tmp_path: Path, max_size: str
) -> None:
    """Rotation began the file of lines 8-10 within the second before the removal, and
    the follower had not looked for a new file since (CHECK_EVERY): looking by path
    after the removal found nothing. The file held ended before the last line read, and
    the tail was a gap (`may be missing`), those three lines lost. The watch opened the
    new file as dockerd created it: the tail is read from it, every line once, no gap,
    even where the first file was full (max-size 200): the watch saw no file after."""
    folder = tmp_path / "containers" / CID
    (tmp_path / "containers").mkdir()
    path = folder / f"{CID}-json.log"
    files = LogFiles(str(tmp_path))
    assert files.start() is None
    folder.mkdir()  # created, then started: the watch sees both
    try:
        docker = _RotatedAtRemovalDocker(path, files)
        summary = _rm_container(str(path), max_size=max_size)
        _until_watched(files)
        follower, queued = await _run(docker, summary, files=files)
    finally:
        files.stop()
    got, gaps = _split(queued)
    assert got == [b"line %d" % n for n in range(1, LINES + 1)]
    assert gaps == []
    assert follower.read_to_end


class _HeldFrom(_HeldFile):
    """A held file that starts at line 7: rotation renamed away the one with line 6."""

    def __init__(self) -> None:
        super().__init__()
        self.data = _json_log(7, LINES)


async def test_lines_in_a_file_rotated_away_before_it_was_held_are_a_gap() -> None:
    """The stream carried 1-5, the files held start at 7: 7-10 are read, and what lay
    between the last line read and the first held is reported, not skipped."""
    follower, queued = await _run(_cut_docker(), files=_HeldFrom())
    got, gaps = _split(queued)
    assert got == [b"line %d" % n for n in (1, 2, 3, 4, 5, 7, 8, 9, 10)]
    fifth = 1795834800 * 10**9 + LINES // 2  # 2026-11-28T03:00:00 plus n ns
    assert gaps == [("stderr", ROTATED_BETWEEN_GAP, fifth), ("stdout", ROTATED_BETWEEN_GAP, fifth)]
    assert follower.read_to_end


@pytest.mark.parametrize(("max_size", "lost"), [("1m", False), ("200", True)])
async def test_a_held_file_at_max_size_is_no_proof_of_the_logs_end(
    max_size: str, lost: bool
) -> None:
    """A file as large as max-size may have been rotated since the last look at it: its
    tail is read, and the lines after it are reported as possibly lost."""
    summary = _rm_container(max_size=max_size)
    follower, queued = await _run(_cut_docker(), summary, files=_HeldFile())
    got, gaps = _split(queued)
    assert got == [b"line %d" % n for n in range(1, LINES + 1)]
    last = 1795834800 * 10**9 + LINES  # 2026-11-28T03:00:00 plus n ns
    full = [("stderr", ROTATED_FULL_GAP, last), ("stdout", ROTATED_FULL_GAP, last)]
    assert gaps == (full if lost else [])
    assert follower.read_to_end


class _NoFiles(_Unwatched):
    """Log files the shipper may not read."""

    def open(self, cid: str, path: str = "") -> None:
        return None


def _split(queued: list[Record]) -> tuple[list[bytes], list[tuple[str, str, int]]]:
    """Lines and gaps (stream, reason, from) of what a follower queued."""
    got, gaps = [], []
    for record in queued:
        if isinstance(record, GapRecord):
            gaps.append((record.stream, record.reason, record.from_ts))
        else:
            assert isinstance(record, LogRecord)
            got.append(record.data)
    return got, sorted(gaps)


async def test_a_cut_stream_with_no_file_to_read_is_reported_as_a_gap() -> None:
    """A --rm container whose file the shipper may not read: nothing says whether the
    stream had every line, and that is said, never left silent."""
    follower, queued = await _run(_cut_docker(), files=_NoFiles())
    got, gaps = _split(queued)
    assert got == [b"line %d" % n for n in range(1, LINES // 2 + 1)]
    last = 1795834800 * 10**9 + LINES // 2  # 2026-11-28T03:00:00 plus n ns
    assert gaps == [("stderr", NO_FILE_GAP, last), ("stdout", NO_FILE_GAP, last)]
    assert follower.read_to_end  # accounted for: no second report when it is not listed


async def test_a_force_removed_containers_unchecked_end_is_counted_not_a_gap() -> None:
    """No file is held for it (not --rm): docker rm -f, nearly always with nothing lost."""
    name = "logpipe_shipper_unchecked_ends_total"
    before = REGISTRY.get_sample_value(name) or 0.0
    follower, queued = await _run(_cut_docker(), summary=container(cid=CID, running=False))
    got, gaps = _split(queued)
    assert got == [b"line %d" % n for n in range(1, LINES // 2 + 1)]
    assert gaps == []
    assert REGISTRY.get_sample_value(name) == before + 1
    assert follower.read_to_end


class _PaceRecorder(StandIn):
    """Records the pace each log request was given; every stream ends at once."""

    def __init__(self) -> None:
        self.paces: list[tuple[bool, Pace | None]] = []

    async def logs(
        self,
        cid: str,
        since: str,
        *,
        follow: bool = True,
        pace: Pace | None = None,
        on_end: Callable[[int], None] | None = None,
        **options: object,
    ) -> AsyncGenerator[bytes, None]:
        self.paces.append((follow, pace))
        for n in range(1, 3):
            yield _frame(n)
        if on_end is not None:
            on_end(len(_frame(1)) + len(_frame(2)))

    async def inspect(self, cid: str) -> ContainerSummary:
        return container(cid=cid, running=False)


@pytest.mark.parametrize(
    ("auto_remove", "setting", "seconds"), [(False, 0.05, 0.05), (True, 0.05, 0.0), (False, 0, 0)]
)
async def test_follow_streams_are_paced_as_set_except_a_rm_containers(
    auto_remove: bool, setting: float, seconds: float
) -> None:
    """A --rm container's stream end must be seen at once; drains are never paced."""
    docker = _PaceRecorder()
    summary = container(cid=CID, log_driver="local", auto_remove=auto_remove)
    await _run(docker, summary, pace=setting)
    follows = [pace for follow, pace in docker.paces if follow]
    drains = [pace for follow, pace in docker.paces if not follow]
    assert follows
    assert drains
    assert all(p is not None and p.seconds == seconds for p in follows)
    assert all(p is None for p in drains)


def test_the_read_pace_setting_is_checked_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGPIPE_READ_PACE: 0.2 s by default, 0 allowed, a bad value names the setting."""
    monkeypatch.delenv("LOGPIPE_READ_PACE", raising=False)
    assert load_config(collector_url="http://x").read_pace == 0.2
    monkeypatch.setenv("LOGPIPE_READ_PACE", "0")
    assert load_config(collector_url="http://x").read_pace == 0
    for bad in ("-1", "5", "soon"):
        monkeypatch.setenv("LOGPIPE_READ_PACE", bad)
        with pytest.raises(ConfigError, match=r"^LOGPIPE_READ_PACE: "):
            load_config(collector_url="http://x")


_TRACE = [b"ERROR boom", b"\tat a.B.c(B.java:1)", b"\tat a.B.d(B.java:2)"]


class _DyingDocker(StandIn):
    """A java container that exited after printing a trace: its die event is queued while
    the trace's last line is still on its way (dockerd ends a stream ~30 ms after exit)."""

    def __init__(self, inbox: Inbox, meta: Meta) -> None:
        self.inbox = inbox
        self.meta = meta

    async def logs(
        self,
        cid: str,
        since: str,
        *,
        follow: bool = True,
        on_end: Callable[[int], None] | None = None,
        **options: object,
    ) -> AsyncGenerator[bytes, None]:
        if not follow:
            return  # the rest: nothing the follow stream left out
        frames = []
        for n, text in enumerate(_TRACE, start=1):
            payload = b"2026-11-28T03:00:00.%09dZ %s\n" % (n, text)
            frames.append(struct.pack(">BxxxL", 1, len(payload)) + payload)
        if on_end is not None:  # the container has exited: dockerd ends the stream
            on_end(sum(map(len, frames)))
        for n, frame in enumerate(frames, start=1):
            if n == len(frames):
                await self.inbox.put(EventRecord(self.meta, 10, "die", exit_code=1))
            yield frame

    async def inspect(self, cid: str) -> ContainerSummary:
        raise ContainerGone(f"/containers/{cid}/json: no such container")


async def test_a_die_event_queued_before_a_traces_last_line_does_not_split_it() -> None:
    """The trace's lines read after the die event still join it: one record, three lines."""
    inbox = Inbox(100, metrics.PerContainer(False, 10))
    meta = Meta(CID, "app", "busybox", labels={"logpipe.multiline": "java"})
    positions = {"stdout": Position(0, 0), "stderr": Position(0, 0)}
    follower = Follower(_DyingDocker(inbox, meta), meta, positions, inbox, 1 << 20)
    follower.learn(None, meta, skip=False)
    await asyncio.wait_for(follower.run(), 10)
    await inbox.put(DoneRecord(meta))  # its log was read to the end
    queued = []
    while not inbox.empty():
        queued.append(inbox.get_nowait())
    logged = [(r.data, r.lines) for r in queued if isinstance(r, LogRecord)]
    assert logged == [(b"\n".join(_TRACE), 3)]
    assert [r.action for r in queued if isinstance(r, EventRecord)] == ["die"]


class _PrintingDocker(_DyingDocker):
    """A java container still running: the first lines of a trace, then nothing more."""

    def __init__(self, inbox: Inbox, meta: Meta) -> None:
        super().__init__(inbox, meta)
        self.read = asyncio.Event()  # the follower asked for more: what it got is handed over

    async def logs(self, cid: str, *args: object, **kwargs: object) -> AsyncGenerator[bytes, None]:
        for n, text in enumerate(_TRACE[:2], start=1):
            payload = b"2026-11-28T03:00:00.%09dZ %s\n" % (n, text)
            yield struct.pack(">BxxxL", 1, len(payload)) + payload
        self.read.set()
        await asyncio.Event().wait()  # the stream stays open


async def test_a_follower_stopped_at_shutdown_queues_the_event_it_held() -> None:
    """Cancelled while a trace waits for its next line, the follower still queues it whole."""
    inbox = Inbox(100, metrics.PerContainer(False, 10))
    labels = {"logpipe.multiline": "java", "logpipe.multiline.timeout": "60s"}
    meta = Meta(CID, "app", "busybox", labels=labels)
    positions = {"stdout": Position(0, 0), "stderr": Position(0, 0)}
    docker = _PrintingDocker(inbox, meta)
    follower = Follower(docker, meta, positions, inbox, 1 << 20)
    follower.learn(None, meta, skip=False)
    task = asyncio.create_task(follower.run())
    await asyncio.wait_for(docker.read.wait(), 5)
    assert follower.stats.lines == 2
    assert inbox.empty()  # held: its timeout has not passed
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    [record] = [inbox.get_nowait() for _ in range(inbox.qsize())]
    assert isinstance(record, LogRecord)
    assert (record.data, record.lines) == (b"\n".join(_TRACE[:2]), 2)


def _local_log(first: int, last: int) -> bytes:
    """Lines first..last as dockerd's `local` log holds them (the times of _frame)."""
    return b"".join(
        local_entry("stdout", parse_ts(b"2026-11-28T03:00:00.%09dZ" % n), b"line %d" % n)
        for n in range(first, last + 1)
    )


@pytest.fixture(params=["Python", "compiled"])
def local_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each reading path in turn (the compiled one when installed); the `local` readers
    made, for the test to see which ran."""
    if request.param == "Python":
        monkeypatch.setattr(native, "MODULE", None)
    elif native.MODULE is None:
        pytest.skip(native.describe())
    made: list[Any] = []
    choose = native.local_lines

    def chosen(max_line_bytes: int, tty: bool) -> Any:
        made.append(choose(max_line_bytes, tty))
        return made[-1]

    monkeypatch.setattr(native, "local_lines", chosen)
    return made


def _read_by_the_path_asked(made: list[Any]) -> None:
    assert made
    wanted = "LocalLines" if native.MODULE is None else "LocalReader"
    assert {type(reader).__name__ for reader in made} == {wanted}


async def test_the_tail_of_a_cut_stream_is_read_from_a_local_driver_log(
    tmp_path: Path, local_reader: list[Any]
) -> None:
    """A --rm container of the `local` driver (inspect gives no LogPath): its file under
    local-logs/ is taken, and the tail the cut stream left out is read from it, each
    line once, no gap; by either reading path."""
    folder = tmp_path / "containers" / CID / "local-logs"
    folder.mkdir(parents=True)
    (folder / "container.log").write_bytes(_local_log(1, LINES))
    summary = _rm_container()
    summary["log_driver"] = "local"
    files = LogFiles(str(tmp_path))
    follower, queued = await _run(_cut_docker(), summary, files=files)
    got, gaps = _split(queued)
    assert got == [b"line %d" % n for n in range(1, LINES + 1)]
    assert gaps == []
    assert follower.read_to_end
    _read_by_the_path_asked(local_reader)


async def test_a_damaged_entry_of_a_local_driver_log_is_logged_and_the_rest_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, local_reader: list[Any]
) -> None:
    """An entry of the tail damaged on disk (its two lengths differ): a warning says
    where, in the same words by either reading path; the lines before and after it are
    read."""
    folder = tmp_path / "containers" / CID / "local-logs"
    folder.mkdir(parents=True)
    damaged = bytearray(_local_log(8, 8))
    damaged[3] += 1
    (folder / "container.log").write_bytes(_local_log(1, 7) + bytes(damaged) + _local_log(9, LINES))
    summary = _rm_container()
    summary["log_driver"] = "local"
    caplog.set_level(logging.WARNING, logger="logpipe")
    _, queued = await _run(_cut_docker(), summary, files=LogFiles(str(tmp_path)))
    got, gaps = _split(queued)
    assert got == [b"line %d" % n for n in range(1, LINES + 1) if n != 8]
    assert gaps == []
    told = [r for r in caplog.records if r.getMessage() == "log file entry unreadable, skipped"]
    assert len(told) == 1
    assert told[0].reason.startswith(  # type: ignore[attr-defined]
        f"corrupt entry at byte {len(_local_log(1, 7))} ({len(damaged)} bytes skipped): "
        f"length {len(damaged) - 8 + 1} at its start, "
    )
    _read_by_the_path_asked(local_reader)


class _TwiceRotatedDocker(_RacingDocker):
    """The cut stream of a --rm container whose log rotated twice between two looks,
    each rotated file compressed (compress=true): 1-5 in the file held from the start,
    6-8 in the one between (its .gz cut short: dockerd stopped while writing it), 9-10
    in the newest. The follow stream carried 1-5 and ended."""

    def __init__(self, path: Path) -> None:
        super().__init__(rest_refused=True)
        self.path = path
        path.write_bytes(_json_log(1, 5))

    def before(self, n: int) -> None:
        if n != 4:
            return
        path = self.path
        os.replace(path, f"{path}.1")
        Path(f"{path}.1.gz").write_bytes(gzip.compress(Path(f"{path}.1").read_bytes()))
        os.unlink(f"{path}.1")
        path.write_bytes(_json_log(6, 8))
        os.replace(f"{path}.1.gz", f"{path}.2.gz")
        os.replace(path, f"{path}.1")
        packed = gzip.compress(Path(f"{path}.1").read_bytes())
        Path(f"{path}.1.gz").write_bytes(packed[: len(packed) // 2])
        os.unlink(f"{path}.1")
        path.write_bytes(_json_log(9, LINES))


async def test_a_tail_across_compressed_rotations_reports_what_a_cut_gz_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The file between the one held and the newest is only there compressed, and cut
    short: what it still has is read, then 9-10 from the newest, and what it lost is a
    gap of stdout from the last line read before it to line 9, which is logged."""
    monkeypatch.setattr(jsonfile, "CHECK_EVERY", 0.0)
    path = tmp_path / f"{CID}-json.log"
    summary = _rm_container(str(path))
    caplog.set_level(logging.WARNING, logger="logpipe")
    follower, queued = await _run(_TwiceRotatedDocker(path), summary, files=_FilesAt(path))
    got, gaps = _split(queued)
    numbers = [int(line.split()[1]) for line in got]
    assert numbers[:5] == [1, 2, 3, 4, 5]
    assert numbers[-2:] == [9, 10]
    assert numbers == sorted(set(numbers))
    assert len(numbers) < LINES
    last_before = 1795834800 * 10**9 + numbers[-3]  # 2026-11-28T03:00:00 plus n ns
    assert gaps == [("stdout", UNPACKED_SHORT_GAP, last_before)]
    told = [
        r for r in caplog.records if r.getMessage() == "rotated log file unreadable past a point"
    ]
    assert "-json.log.1.gz is cut short" in told[0].reason  # type: ignore[attr-defined]
    assert follower.read_to_end


def _records(queued: list[Record]) -> list[tuple[Any, ...]]:
    """What a follower queued, as what identifies each document and what it holds."""
    out: list[tuple[Any, ...]] = []
    for record in queued:
        if isinstance(record, GapRecord):
            out.append(("gap", record.stream, record.from_ts, record.to_ts, record.reason))
        elif isinstance(record, LogRecord):
            meta, data = record.meta, record.data
            out.append(
                ("log", meta.id, record.stream, record.ts, record.seq, data, record.truncated)
            )
    return out


def _tail_entries(tty: bool, first: int) -> list[tuple[str, int, bytes]]:
    """(stream, ns, payload) of a log file whose lines 1-5 the cut stream carried: lines
    `first`-10, then lines of stdout and stderr sharing timestamps (one repeated), each of
    a TTY's shape when `tty`."""
    end = b"\r\n" if tty else b"\n"
    entries = [
        ("stdout", parse_ts(b"2026-11-28T03:00:00.%09dZ" % n), b"line %d%s" % (n, end))
        for n in range(first, LINES + 1)
    ]
    later = parse_ts(b"2026-11-28T03:00:01.000000000Z")
    for n, payload in enumerate([b"a", b"b", b"a", b"c"]):
        entries.append(("stdout", later + n // 2, payload + end))
        entries.append(("stderr", later + n // 3, b"err " + payload + end))
    return entries


def _tail_log(driver: str, entries: list[tuple[str, int, bytes]]) -> bytes:
    if driver == "local":
        return b"".join(local_entry(s, ts, p.removesuffix(b"\n")) for s, ts, p in entries)
    return b"".join(
        orjson.dumps({"log": p.decode(), "stream": s, "time": _stamp(ts)}) + b"\n"
        for s, ts, p in entries
    )


def _stamp(ns: int) -> str:
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


@pytest.mark.parametrize("driver", ["json-file", "local"])
@pytest.mark.parametrize("tty", [False, True])
@pytest.mark.parametrize("first", [1, 7])
async def test_a_tail_gives_the_same_records_by_either_reading_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver: str, tty: bool, first: int
) -> None:
    """A removed container's tail read from its file and numbered compiled (the extension
    installed) or in Python (LOGPIPE_NATIVE=0): the same records, with the same ids
    (stream, time, sequence number among equal timestamps), the repeats dropped; a file
    that starts past the last line read (`first` 7), the same gaps up to its first line."""
    if native.MODULE is None:
        pytest.skip(native.describe())
    root = tmp_path / "containers"
    path = root / CID / f"{CID}-json.log"
    if driver == "local":
        path = root / CID / "local-logs" / "container.log"
    path.parent.mkdir(parents=True)
    path.write_bytes(_tail_log(driver, _tail_entries(tty, first)))
    summary = _rm_container(str(path) if driver == "json-file" else "")
    summary["log_driver"] = driver
    summary["tty"] = tty
    made: list[str] = []
    file_lines = native.file_lines

    def chosen(max_line_bytes: int, tty: bool, local: bool = False) -> Any:
        made.append(type(reader := file_lines(max_line_bytes, tty, local)).__module__)
        return reader

    monkeypatch.setattr(native, "file_lines", chosen)
    _, compiled = await _run(_cut_docker(), summary, files=LogFiles(str(tmp_path)))
    monkeypatch.setattr(native, "MODULE", None)
    _, python = await _run(_cut_docker(), summary, files=LogFiles(str(tmp_path)))
    assert made[0] == "logpipe_shipper_native"
    assert made[1] != "logpipe_shipper_native"
    got = _records(compiled)
    assert got == _records(python)
    logged = [r[3:5] for r in got if r[0] == "log"]
    assert len(logged) == LINES - max(first - 6, 0) + 7  # the repeated line is dropped
    assert max(seq for _, seq in logged) == 1  # numbered among equal timestamps
    gaps = sorted(r[1:4] for r in got if r[0] == "gap")
    if first == 1:
        assert gaps == []
    else:
        fifth, seventh = (parse_ts(b"2026-11-28T03:00:00.%09dZ" % n) for n in (5, 7))
        assert gaps == [("stderr", fifth, seventh), ("stdout", fifth, seventh)]


BASE = parse_ts(b"2026-11-28T03:00:00.000000000Z")
PAUSED = 1_100  # lines before the writer's pause: more than the audit's first rate needs


def _paused_at(n: int) -> str:
    """Line n's time: a µs apart, then a second's pause before line PAUSED + 2 (the
    line PAUSED + 1 half way through it)."""
    ns = n * 1_000
    if n > PAUSED:
        ns = PAUSED * 1_000 + (n - PAUSED) * 500_000_000
    return _stamp(BASE + ns)


class _PausedDocker(_RacingDocker):
    """A --rm container that ran during the poll that saw it start: its writer printed
    PAUSED lines, paused, and printed two more. The poll's stream carried all but the
    one in the pause (dockerd's follow stream skipped it) and ended; the request for the
    rest, and every later one (the rotation audit's), found the container removed."""

    def __init__(self) -> None:
        super().__init__(rest_refused=True)

    async def logs(
        self, cid: str, since: str, *, follow: bool = True, **options: object
    ) -> AsyncGenerator[bytes, None]:
        self.requests.append(follow)
        if not follow or len(self.requests) > 1:
            raise ContainerGone(f"/containers/{cid}/logs: no such container")
        frames = []
        for n in [*range(1, PAUSED + 1), PAUSED + 2]:
            payload = f"{_paused_at(n)} line {n}\n".encode()
            frames.append(struct.pack(">BxxxL", 1, len(payload)) + payload)
        on_end = options.get("on_end")
        if callable(on_end):
            on_end(sum(map(len, frames)))
        for frame in frames:
            yield frame


async def test_a_window_of_a_rm_container_removed_during_its_start_poll_is_read_from_its_file() -> (
    None
):
    """The pause is a window the rotation audit reads again. The container was removed
    while the poll that saw it start was read, so the follower ended from there: its
    audits were cancelled, the window never judged, and the line dockerd's stream skipped
    lost without a word. Finished as any follower's, the audit finds the container gone
    (dockerd answered it was, and the window was reported lost: a gap per window even
    where nothing was skipped) and reads the window from the log file held: the skipped
    line is recovered, no gap."""
    data = b"".join(
        orjson.dumps({"log": f"line {n}\n", "stream": "stdout", "time": _paused_at(n)}) + b"\n"
        for n in range(1, PAUSED + 3)
    )
    files = _HeldFile()
    files.data = data
    docker = _PausedDocker()
    follower, queued = await _run(
        docker, _rm_container(max_size="1m"), 2 * PAUSED, files=files, prestart=True
    )
    marks = [r for r in queued if isinstance(r, MarkRecord)]
    got, gaps = _split([r for r in queued if not isinstance(r, MarkRecord)])
    assert gaps == []
    # The lines after the window were held at its start: released to the log's end.
    assert [(m.stream, m.until.ts) for m in marks] == [
        ("stdout", parse_ts(_paused_at(PAUSED + 2).encode()))
    ]
    assert sorted(got, key=lambda d: int(d.split()[1])) == [
        b"line %d" % n for n in range(1, PAUSED + 3)
    ]
    assert got[-1] == b"line %d" % (PAUSED + 1)  # recovered after the stream's lines
    assert follower.stats.recovered == 1
    assert follower.stats.state == "gone"
    assert docker.requests == [True, False, False]  # the poll, the rest, the audit


class _CountedFile(io.BytesIO):
    """A log file held open that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1, /) -> bytes:
        got = super().read(size)
        self.taken += len(got)
        return got


def _holding(*files: io.BytesIO) -> Rescue:
    """The rescue of a --rm container that holds `files` (oldest first)."""
    inbox = Inbox(10, metrics.PerContainer(False, 10))
    positions = {"stdout": Position(0, 0), "stderr": Position(0, 0)}
    progress = Progress(Meta(CID, "app", "busybox"), positions, Handoff(inbox))
    gaps = Gaps(progress)
    numbering = Numbering(_RemovedDocker(), progress, gaps, 1 << 20)
    rescue = Rescue(progress, numbering, gaps, None, 1 << 20)
    held = jsonfile.HeldLog(files[0])
    held.files = list(files)
    rescue.take_over(KeptLog(held, "", False, None))
    return rescue


def _json_entries(numbers: range, step: int) -> bytes:
    """Lines `numbers` of a json-file log, `step` ns apart (line n at BASE + n * step),
    stderr for the even ones."""
    return b"".join(
        orjson.dumps(
            {
                "log": f"line {n}\n",
                "stream": "stderr" if n % 2 == 0 else "stdout",
                "time": _stamp(BASE + n * step),
            }
        )
        + b"\n"
        for n in numbers
    )


async def test_a_window_is_read_from_the_json_files_held_across_a_rotation() -> None:
    """A window that spans the rotation: its lines from both files, as dockerd gives
    them (stdout and stderr), and how far the files reach."""
    second = 10**9
    base = BASE
    rescue = _holding(
        io.BytesIO(_json_entries(range(1, 6), second)),
        io.BytesIO(_json_entries(range(6, 11), second)),
    )
    read = await rescue.read_window(base + 3 * second, base + 7 * second)
    assert read is not None
    assert [(line.stream, line.data) for line in read.lines] == [
        (1 if n % 2 else 2, b"line %d" % n) for n in range(3, 8)
    ]
    assert read.first <= base + 3 * second  # from an entry before the window's start
    assert read.last == base + 10 * second  # to the end of the newest file


async def test_a_window_is_read_from_a_held_local_log() -> None:
    """The `local` driver's file: the same lines, told by its first byte."""
    second = 10**9
    data = b"".join(
        local_entry("stdout" if n % 2 else "stderr", n * second, b"line %d" % n)
        for n in range(1, 11)
    )
    read = await _holding(io.BytesIO(data)).read_window(4 * second, 6 * second)
    assert read is not None
    assert [line.data for line in read.lines] == [b"line 4", b"line 5", b"line 6"]
    assert (read.first <= 4 * second, read.last) == (True, 10 * second)


async def test_a_windows_read_stops_past_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """An early window of a large file: read a chunk at a time up to an entry more than
    SLACK_NS past its end, never the whole file."""
    monkeypatch.setattr("shipper.follow.rescue.WINDOW_CHUNK", 4096)
    step = 10_000_000  # 10 ms
    base = BASE
    f = _CountedFile(_json_entries(range(1, 2001), step))
    read = await _holding(f).read_window(base + 100 * step, base + 110 * step)
    assert read is not None
    assert [line.data for line in read.lines] == [b"line %d" % n for n in range(100, 111)]
    assert read.last > base + 110 * step + jsonfile.SLACK_NS
    # The window and the slack after it are 1.1 s of the file's 20 s.
    assert f.taken < len(f.getvalue()) // 4


async def test_no_window_is_read_without_a_file_held() -> None:
    rescue = _holding(io.BytesIO(b""))
    rescue.let_go()
    assert await rescue.read_window(1, 2) is None
