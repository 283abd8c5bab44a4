"""Unit tests of batch encoding, batch bounds, and the batcher's cursor rule."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import orjson
import pytest

from collector.wire import LINE, Log
from shipper import durable, metrics
from shipper import spool as spool_module
from shipper.batch import Batcher, collect, encode
from shipper.config import load_config
from shipper.cursor import CursorStore, Position
from shipper.inbox import Inbox, record_size
from shipper.record import DoneRecord, EventRecord, LogRecord, MarkRecord, Meta, Record
from shipper.spool import Spool
from tests.conftest import extra

META = Meta("c1", "app", "busybox", parser="json", dataset="shop")


def _lines(batch_body: bytes) -> list[object]:
    return [LINE.validate_json(line) for line in batch_body.splitlines()]


def test_a_joined_record_is_sent_as_its_first_line_and_completes_its_last() -> None:
    """A joined record goes out as its first line's ts/seq; the cursor goes past its last."""
    joined = LogRecord(META, "stderr", 100, 2, b"a\n  b", lines=2, until=Position(105, 1))
    batch = encode([joined], "host")
    logs = [x for x in _lines(batch.body) if isinstance(x, Log)]
    assert [(x.ts, x.seq, x.lines, x.message) for x in logs] == [(100, 2, 2, "a\n  b")]
    assert batch.positions == {("c1", "stderr"): Position(105, 1)}
    assert batch.first_ts == 100


def test_marks_move_positions_without_sending_anything() -> None:
    """Excluded lines' marks add no wire line but do move the stream's position."""
    batch = encode([MarkRecord(META, "stdout", Position(7, 3))], "host")
    assert batch.lines == 0
    assert batch.body == b""
    assert batch.positions == {("c1", "stdout"): Position(7, 3)}
    mixed = encode(
        [LogRecord(META, "stdout", 5, 0, b"x"), MarkRecord(META, "stdout", Position(7, 3))], "h"
    )
    assert mixed.lines == 1
    assert mixed.positions == {("c1", "stdout"): Position(7, 3)}


def test_container_metadata_crosses_the_wire_once_per_batch() -> None:
    """Lines and events of one container share one source line with its hints."""
    records: list[Record] = [
        LogRecord(META, "stdout", 1, 0, b"one"),
        EventRecord(META, 2, "die", exit_code=0),
        LogRecord(META, "stdout", 3, 0, b"two"),
    ]
    body = encode(records, "host").body
    sources = [orjson.loads(x) for x in body.splitlines() if b'"source"' in x]
    assert len(sources) == 1
    assert sources[0]["hints"] == {"parser": "json", "dataset": "shop"}


def _inbox() -> Inbox:
    return Inbox(10**6, metrics.PerContainer(False, 10))


async def _batcher(
    tmp_path: Path, room: bool = True, **settings: float
) -> tuple[Batcher, Inbox, Spool, CursorStore]:
    """A Batcher (`settings` for its configuration) with its queue, its disk buffer under
    `tmp_path` and its cursors; with `room=False` the buffer holds one batch of 3,000
    bytes and has room for one byte more."""
    config = load_config(state_dir=tmp_path, collector_url="http://x", **settings)
    size = 10**6
    if not room:
        full = Spool(tmp_path / "spool", size)
        full.open()
        await full.write(encode([LogRecord(META, "stdout", 1, 0, b"x" * 3000)], "h"))
        size = full.used + 1
    spool = Spool(tmp_path / "spool", size)
    spool.open()
    store = CursorStore(tmp_path)
    queue = _inbox()
    return Batcher(config, queue, spool, store, "h"), queue, spool, store


async def test_collect_stops_at_the_line_and_byte_bounds() -> None:
    """A batch holds at most max_lines records and stops once max_bytes is passed."""
    inbox = _inbox()
    await inbox.put_many([LogRecord(META, "stdout", i, 0, b"x" * 100) for i in range(10)])
    assert len(await collect(inbox, 4, 10**6, 5.0)) == 4
    assert len(await collect(inbox, 100, 300, 5.0)) == 2  # 2 x (100 + 64) > 300
    last = await collect(inbox, 100, 10**6, 0.0)
    assert [r.ts for r in last if isinstance(r, LogRecord)] == [6, 7, 8, 9]
    assert len(last) == 4


async def test_collect_sends_a_lone_line_once_its_age_is_reached() -> None:
    """At a low rate, a batch goes out with what it has when the age limit passes."""
    inbox = _inbox()
    first = LogRecord(META, "stdout", 1, 0, b"alone")
    await inbox.put(first)
    assert await asyncio.wait_for(collect(inbox, 5000, 10**6, 0.05), 10) == [first]


async def test_collect_takes_records_across_hand_offs_as_they_came() -> None:
    """Reads of other sizes than the batches: every record once, in order, within bounds,
    a read split where a batch ends and its rest first in the next."""
    inbox = _inbox()
    records: list[Record] = []
    for n, size in enumerate([3, 1, 7, 2, 5, 11, 4]):
        read: list[Record] = [
            LogRecord(META, "stdout", len(records) + i, 0, b"x" * (10 * n + i)) for i in range(size)
        ]
        read.append(MarkRecord(META, "stdout", Position(len(records) + size, 0)))
        records += read
        await inbox.put_many(read)
    batches = []
    while not inbox.empty():
        batches.append(await collect(inbox, 5, 400, 0.0))
    assert [r for batch in batches for r in batch] == records
    for batch in batches:
        assert len(batch) <= 5
        sizes = [record_size(r) for r in batch]
        assert sum(sizes[:-1]) < 400  # the record that passes the bound ends the batch


async def test_a_shutdown_writes_the_batch_already_filling_at_once(tmp_path: Path) -> None:
    """With LOGPIPE_BATCH_MAX_AGE longer than the shutdown timeout, the batch that had
    begun to fill waited out its age and the lines read were never written (those of a
    --rm container lost): finish() ends its wait too."""
    batcher, queue, spool, _ = await _batcher(tmp_path, batch_max_age=60)
    task = asyncio.create_task(batcher.run())
    await queue.put(LogRecord(META, "stdout", 50, 0, b"read before the stop"))
    await asyncio.sleep(0.2)  # the batch is filling, 60 s to go
    assert spool.pending_batches == 0
    assert await batcher.finish(2)
    task.cancel()
    assert spool.pending_batches == 1


async def test_the_cursor_moves_only_once_the_batch_is_on_disk(tmp_path: Path) -> None:
    """While the disk buffer has no room, the batch waits and the cursor stays."""
    batcher, queue, spool, store = await _batcher(tmp_path, room=False, batch_max_age=0.01)
    task = asyncio.create_task(batcher.run())
    await queue.put(LogRecord(META, "stdout", 50, 0, b"y" * 3000))
    await asyncio.sleep(0.3)
    assert store.get("c1") is None
    spool.acked(await spool.take())
    spool.release()
    assert await batcher.finish(10)
    task.cancel()
    cursor = store.get("c1")
    assert cursor is not None
    assert cursor.streams["stdout"] == Position(50, 1)
    assert spool.pending_batches == 1


async def test_a_container_is_done_only_once_its_last_lines_are_on_disk(tmp_path: Path) -> None:
    """A done record marks the cursor done after the batch holding the lines before it."""
    batcher, queue, spool, store = await _batcher(tmp_path, batch_max_age=0.01)
    store.ensure("c1", 0)
    await queue.put_many([LogRecord(META, "stdout", 9, 0, b"last"), DoneRecord(META)])
    task = asyncio.create_task(batcher.run())
    assert await batcher.finish(10)
    task.cancel()
    cursor = store.get("c1")
    assert cursor is not None
    assert cursor.done
    assert cursor.streams["stdout"] == Position(9, 1)
    assert spool.pending_batches == 1


async def test_a_failed_disk_buffer_write_is_retried_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk stops the batcher only until there is room: the failure is logged with
    the path and errno, counted and shown, and the batches reach the buffer in order."""
    monkeypatch.setattr("shipper.batch.WRITE_RETRY_INITIAL", 0.01)
    monkeypatch.setattr("shipper.batch.WRITE_RETRY_MAX", 0.05)
    batcher, queue, spool, store = await _batcher(tmp_path, batch_max_lines=1)
    write = durable.write_durably
    full = True

    def full_disk(path: Path, data: bytes) -> None:
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(path, data)

    monkeypatch.setattr(spool_module, "write_durably", full_disk)
    errors = metrics.BUFFER_WRITE_ERRORS._value.get()
    await queue.put_many([LogRecord(META, "stdout", ts, 0, b"x") for ts in (1, 2)])
    task = asyncio.create_task(batcher.run())
    for _ in range(1000):
        if metrics.BUFFER_WRITE_ERRORS._value.get() >= errors + 3:
            break
        await asyncio.sleep(0.005)
    # Not narrowed to a str: mypy would then take the check after finish() as unreachable.
    assert "ENOSPC" in (batcher.write_error or "")
    assert store.get("c1") is None
    full = False
    assert await batcher.finish(10)
    task.cancel()
    assert batcher.write_error is None
    failed = [r for r in caplog.records if r.message.startswith("cannot write the disk buffer")]
    assert extra(failed[0], "errno") == "ENOSPC"
    assert extra(failed[0], "path") == str(tmp_path / "spool")
    segments = [await spool.take(), await spool.take()]
    assert [s.first_ts for s in segments] == [1, 2]
    assert segments[0].number < segments[1].number
    cursor = store.get("c1")
    assert cursor is not None
    assert cursor.streams["stdout"] == Position(2, 1)


async def test_a_second_stop_signal_ends_the_wait_for_room_in_the_disk_buffer(
    tmp_path: Path,
) -> None:
    """With the disk buffer full (the collectors away), finish() waited out the whole
    shutdown timeout even after a second stop signal; `hurry` ends it (the lines still
    queued are read again at the next start)."""
    batcher, queue, _, _ = await _batcher(tmp_path, room=False, batch_max_age=0.01)
    task = asyncio.create_task(batcher.run())
    await queue.put(LogRecord(META, "stdout", 50, 0, b"y" * 3000))
    hurry = asyncio.Event()
    finishing = asyncio.create_task(batcher.finish(600, hurry))
    await asyncio.sleep(0.2)
    assert not finishing.done()  # waiting for room
    hurry.set()
    assert await asyncio.wait_for(finishing, 10) is False
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_a_held_position_comes_with_how_far_the_lines_go() -> None:
    """A batch whose last line of a stream is held at a window's start says, beside that
    position, how far its lines go; one of lines with their own positions says nothing."""
    free = LogRecord(META, "stderr", 5, 0, b"free")
    held = LogRecord(META, "stdout", 20, 0, b"held", until=Position(10, 0))
    held.written = Position(20, 1)
    batch = encode([LogRecord(META, "stdout", 15, 0, b"held too"), held, free], "h")
    assert batch.positions == {("c1", "stdout"): Position(10, 0), ("c1", "stderr"): Position(5, 1)}
    assert batch.written == {("c1", "stdout"): Position(20, 1)}
    mark = MarkRecord(META, "stdout", Position(10, 0), Position(30, 1))  # excluded, held too
    assert encode([held, mark], "h").written == {("c1", "stdout"): Position(30, 1)}


async def test_a_batch_of_lines_an_earlier_run_wrote_is_sent_marked(tmp_path: Path) -> None:
    """Lines read again from Docker up to where the earlier run's held position had
    written them go in a batch marked as sent again; the lines past it do not, and the
    batcher notes how far its own held lines go for the next start."""
    (tmp_path / "cursors.json").write_bytes(
        b'{"version":1,"containers":{"c1":{"streams":{"stdout":[10,0]},"written":{"stdout":[20,1]}}}}'
    )
    batcher, queue, spool, store = await _batcher(tmp_path, batch_max_age=0.01)
    store.load()
    task = asyncio.create_task(batcher.run())
    await queue.put_many([LogRecord(META, "stdout", ts, 0, b"again") for ts in (10, 15, 20)])
    assert await batcher.finish(10)
    first = await spool.take()
    held = LogRecord(META, "stdout", 40, 0, b"new, held", until=Position(30, 0))
    held.written = Position(40, 1)
    await queue.put_many([LogRecord(META, "stdout", 30, 0, b"new"), held])
    assert await batcher.finish(10)
    task.cancel()
    second = await spool.take()
    assert (first.earlier, second.earlier) == (True, False)
    assert [p for _, _, p in first.positions] == [Position(20, 1)]
    cursor = store.get("c1")
    assert cursor is not None
    assert cursor.streams["stdout"] == Position(30, 0)
    assert cursor.written == {"stdout": Position(40, 1)}
    assert not store.sent_before([("c1", "stdout")], 15)  # passed: nothing marked any more
