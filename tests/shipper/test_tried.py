"""Unit tests of the "tried up to" mark: which segments a restart sends as sent again."""

from __future__ import annotations

import asyncio
import errno
import gzip
import logging
import threading
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from collector.wire import PATH_LOGS, SENT_AGAIN, UNWRITTEN
from shipper import durable, metrics
from shipper import tried as tried_module
from shipper.batch import encode
from shipper.config import load_config
from shipper.cursor import CursorStore
from shipper.deliver import Sender
from shipper.inbox import Inbox
from shipper.record import LogRecord, Meta, Record
from shipper.sink import CollectorClient
from shipper.spool import Segment, Spool
from shipper.tried import NAME, TriedMark

META = Meta("c1", "app", "busybox")
AHEAD = 2


def _start(state: Path, ahead: int = AHEAD) -> Spool:
    """The spool of `state` as a start of the shipper opens it (shipper.__main__.open_state)."""
    tried = TriedMark(state / "spool", ahead)
    tried.load()
    spool = Spool(state / "spool", 10**6, tried)
    spool.open()
    return spool


async def _write(spool: Spool, *texts: str, lines: int = 3) -> list[Segment]:
    out = []
    for text in texts:
        records: list[Record] = [
            LogRecord(META, "stdout", 1, i, f"{text} {i}".encode()) for i in range(lines)
        ]
        out.append(await spool.write(encode(records, "h")))
    return out


async def _left(state: Path) -> dict[int, bool]:
    """Segment number -> whether it is sent marked, at a start of `state`."""
    spool = _start(state)
    taken = [await spool.take() for _ in range(spool.pending_batches)]
    return {s.number: s.earlier for s in taken}


def _temporary(state: Path) -> list[str]:
    return sorted(path.name for path in (state / "spool").glob("*.tmp"))


def _record(state: Path) -> Path:
    return state / "spool" / NAME


def _mark(state: Path) -> int:
    return int(orjson.loads(_record(state).read_bytes())["tried_up_to"])


async def test_segments_never_tried_are_sent_unmarked_after_a_restart(tmp_path: Path) -> None:
    """A run that wrote segments and tried none of them (the collectors away before it
    took them, say) leaves them unmarked for the next; its numbers go on above the mark,
    so no new segment is taken for one tried before."""
    spool = _start(tmp_path)
    [first] = await _write(spool, "a")
    await spool.trying(await spool.take())
    spool.acked(first)
    spool.release()
    assert _mark(tmp_path) == 1 + AHEAD
    spool = _start(tmp_path)  # a restart with the disk buffer empty
    written = await _write(spool, "b", "c", "d")
    assert [s.number for s in written] == [4, 5, 6]
    assert await _left(tmp_path) == {4: False, 5: False, 6: False}


async def test_segments_tried_or_covered_ahead_are_sent_marked_after_a_restart(
    tmp_path: Path,
) -> None:
    """Segments tried (acknowledged and not yet deleted, or not acknowledged) are marked;
    so is one the mark covers ahead of the last tried (over-marking costs a lookup);
    those past the mark are not."""
    spool = _start(tmp_path)
    segments = await _write(spool, "a", "b", "c", "d", "e", "f")
    for _ in range(2):
        await spool.trying(await spool.take())
    spool.acked(segments[0])  # acknowledged, not deleted: tried
    assert _mark(tmp_path) == 1 + AHEAD
    assert await _left(tmp_path) == {1: True, 2: True, 3: True, 4: False, 5: False, 6: False}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (None, "none in this state folder (written by an older shipper, or none sent yet)"),
        (b'{"version":1,"tried_up', "not JSON: unexpected end of data: line 1 column 23 (char 22)"),
        (b'{"version":2,"tried_up_to":1}', "not a version 1 record"),
        (b"[1]", "not a version 1 record"),
        (b'{"version":1,"tried_up_to":-1}', "tried_up_to is -1, not a segment number"),
        (b'{"version":1,"tried_up_to":true}', "tried_up_to is True, not a segment number"),
        (b'{"version":1,"tried_up_to":"9"}', "tried_up_to is '9', not a segment number"),
        (
            b'{"version":1,"tried_up_to":10000000000000000}',
            "tried_up_to is 10000000000000000, not a segment number",
        ),
    ],
)
async def test_without_a_usable_record_every_segment_left_counts_as_tried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, record: bytes | None, reason: str
) -> None:
    """A state folder of an older shipper (no record) or a corrupt record: every segment
    left is marked, as before the record existed, and the start says why, once. The
    first mark written then covers every one of them, not only the one tried."""
    spool = _start(tmp_path)
    await _write(spool, "a", "b", "c", "d", "e")
    _record(tmp_path).unlink(missing_ok=True)
    if record is not None:
        _record(tmp_path).write_bytes(record)
    caplog.set_level(logging.INFO, logger="logpipe.shipper.spool")
    spool = _start(tmp_path)
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.getMessage() == (
        "no usable record of the batches tried: every batch left in the disk buffer is "
        "sent marked as sent again"
    )
    assert warning.reason == reason  # type: ignore[attr-defined]
    assert warning.batches == 5  # type: ignore[attr-defined]
    [found] = [r for r in caplog.records if r.getMessage().startswith("disk buffer found")]
    assert found.sent_again == 5  # type: ignore[attr-defined]
    taken = [await spool.take() for _ in range(5)]
    assert all(s.earlier for s in taken)
    await spool.trying(taken[0])
    assert _mark(tmp_path) == 5
    [new] = await _write(spool, "f")
    assert new.number == 6
    assert await _left(tmp_path) == {1: True, 2: True, 3: True, 4: True, 5: True, 6: False}


async def test_a_first_start_says_nothing_of_a_missing_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No record and nothing in the disk buffer (a new state folder): nothing to warn of."""
    caplog.set_level(logging.INFO, logger="logpipe.shipper.spool")
    spool = _start(tmp_path)
    assert spool.tried is not None
    assert spool.tried.mark is None
    assert not caplog.records


async def test_a_write_of_the_mark_cut_short_is_cleaned_up(tmp_path: Path) -> None:
    """The temporary file of a write that a kill -9 cut short is deleted at start; the
    record written before it stands."""
    spool = _start(tmp_path)
    await spool.trying((await _write(spool, "a"))[0])
    (tmp_path / "spool" / f"{NAME}.123.456.tmp").write_bytes(b'{"version":1,"tried_')
    assert _start(tmp_path).tried is not None
    assert _temporary(tmp_path) == [NAME]
    assert await _left(tmp_path) == {1: True}


def _collector(
    requests: list[tuple[bytes, int | None, str | None]],
    state: Path,
    hang_at: int = 0,
    release: asyncio.Event | None = None,
    arrived: asyncio.Event | None = None,
) -> web.RouteDef:
    """A collector that takes at most 2 lines a body (413 above), noting for each request
    its body, the mark on disk as it came, and its SENT_AGAIN; request number `hang_at`
    (from 1) sets `arrived` and is answered only once `release` is set."""

    async def logs(request: web.Request) -> web.Response:
        data = await request.read()  # aiohttp may have inflated it already
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        record = _record(state)
        mark = _mark(state) if record.exists() else None
        requests.append((data, mark, request.headers.get(SENT_AGAIN)))
        lines = [line for line in data.splitlines() if b'"kind":"source"' not in line]
        if len(lines) > 2:
            # As the collector answers a body it refused before writing any of it.
            return web.json_response(
                {"error": "over the limit"}, status=413, headers={UNWRITTEN: "1"}
            )
        if len(requests) == hang_at and release is not None and arrived is not None:
            arrived.set()
            await release.wait()
        count = len(data.splitlines())
        answer = {"received": count, "indexed": len(lines), "duplicates": 0, "dead_lettered": 0}
        return web.json_response(answer)

    return web.post(PATH_LOGS, logs)


async def test_the_mark_is_on_disk_before_each_first_try_and_written_in_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every body a collector receives, the halves of a segment too large included, finds
    the mark on disk at or past its segment; the mark moves AHEAD at a time, so five
    segments cost two writes, each in a thread off the event loop."""
    writes: list[int] = []
    real = durable.write_durably

    def counted(path: Path, data: bytes) -> None:
        writes.append(threading.get_ident())
        real(path, data)

    monkeypatch.setattr(tried_module, "write_durably", counted)
    requests: list[tuple[bytes, int | None, str | None]] = []
    app = web.Application()
    app.add_routes([_collector(requests, tmp_path)])
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        config = load_config(state_dir=tmp_path, collector_url=url, max_in_flight=1)
        spool = _start(tmp_path)
        await _write(spool, "seg1")  # 3 lines: sent in halves
        await _write(spool, "seg2", "seg3", "seg4", "seg5", lines=1)
        async with CollectorClient(config) as client:
            queue = Inbox(100, metrics.PerContainer(False, 1))
            sender = Sender(config, queue, spool, client, CursorStore(tmp_path))
            task = asyncio.create_task(sender.run())
            assert await sender.drain(10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await server.close()
    assert len(requests) == 7  # segment 1 refused whole, then its two halves
    for body, mark, again in requests:
        number = int(body.split(b"seg")[1][:1])
        assert mark is not None
        assert mark >= number, (number, mark)
        assert again is None  # first tries
    assert len(writes) == 2
    assert threading.get_ident() not in writes
    assert _mark(tmp_path) == 4 + AHEAD


async def test_a_segment_whose_first_half_was_taken_is_sent_marked_after_a_kill(
    tmp_path: Path,
) -> None:
    """A segment too large for the collector whose first half was taken when the shipper
    died is marked at the restart: that half may be indexed."""
    requests: list[tuple[bytes, int | None, str | None]] = []
    release, arrived = asyncio.Event(), asyncio.Event()
    app = web.Application()
    app.add_routes([_collector(requests, tmp_path, 3, release, arrived)])
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        config = load_config(state_dir=tmp_path, collector_url=url, max_in_flight=1)
        spool = _start(tmp_path, ahead=0)
        await _write(spool, "seg1")
        await _write(spool, "seg2", lines=1)
        async with CollectorClient(config) as client:
            queue = Inbox(100, metrics.PerContainer(False, 1))
            sender = Sender(config, queue, spool, client, CursorStore(tmp_path))
            task = asyncio.create_task(sender.run())
            # The whole refused, the first half taken, the second not answered.
            await asyncio.wait_for(arrived.wait(), 10)
            task.cancel()  # the shipper dies
            await asyncio.gather(task, return_exceptions=True)
    finally:
        release.set()
        await server.close()
    assert await _left(tmp_path) == {1: True, 2: False}


async def test_a_mark_the_disk_refuses_is_removed_so_every_segment_counts_as_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A mark that cannot be written (a full disk) must not hold sending up while a file
    says the segment was not tried: the file is removed (which needs no room), sending
    goes on, and the next start marks every segment left."""
    spool = _start(tmp_path)
    segments = await _write(spool, "a", "b", "c", "d", "e")
    await spool.trying(await spool.take())
    assert _mark(tmp_path) == 3

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tried_module, "write_durably", full)
    caplog.set_level(logging.ERROR, logger="logpipe.shipper.tried")
    for _ in range(2):  # segments 2 and 3: covered
        await spool.trying(await spool.take())
    await spool.trying(await spool.take())  # segment 4, past the mark: the write fails
    await spool.trying(await spool.take())  # segment 5: no record kept any more
    assert not _record(tmp_path).exists()
    assert spool.tried is not None
    assert spool.tried.mark is None
    [error] = caplog.records
    assert error.getMessage().startswith("cannot write the record of the batches tried")
    assert error.errno == "ENOSPC"  # type: ignore[attr-defined]
    monkeypatch.undo()
    assert await _left(tmp_path) == {s.number: True for s in segments}


async def test_a_mark_that_can_be_neither_written_nor_removed_holds_the_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the record can be neither written nor removed, the segment waits (a send
    would leave a record saying it was never tried) until the write works."""
    spool = _start(tmp_path)
    await _write(spool, "a")
    _record(tmp_path).write_bytes(b'{"version":1,"tried_up_to":0}')
    spool = _start(tmp_path)
    tries: list[int] = []
    real = durable.write_durably

    def flaky(path: Path, data: bytes) -> None:
        tries.append(1)
        if len(tries) < 3:
            raise OSError(errno.EIO, "Input/output error")
        real(path, data)

    def stuck(path: Path) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tried_module, "write_durably", flaky)
    monkeypatch.setattr(tried_module, "_remove_durably", stuck)
    monkeypatch.setattr(tried_module, "RETRY_EVERY", 0.01)
    await spool.trying(await spool.take())
    assert len(tries) == 3
    assert _mark(tmp_path) == 1 + AHEAD


async def test_an_older_shipper_started_in_between_leaves_no_mark_to_trust(
    tmp_path: Path,
) -> None:
    """A downgrade: a shipper that keeps no record may send segments above the mark. Its
    start deletes every *.tmp of the disk buffer's folder (shipper.spool.Spool.open has
    always done so, before anything is sent), the record among them, so the next start of
    this version marks every segment left instead of trusting a mark it outlived."""
    spool = _start(tmp_path)
    await _write(spool, "a", "b", "c", "d", "e")
    await spool.trying(await spool.take())
    assert await _left(tmp_path) == {1: True, 2: True, 3: True, 4: False, 5: False}
    assert NAME.endswith(".tmp")
    for tmp in (tmp_path / "spool").glob("*.tmp"):  # as an older shipper's start does
        tmp.unlink()
    assert await _left(tmp_path) == {1: True, 2: True, 3: True, 4: True, 5: True}
