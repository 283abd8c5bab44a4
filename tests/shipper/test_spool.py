"""Unit tests of the disk buffer: durable ordered segments, restart, corruption, bound."""

from __future__ import annotations

import asyncio
import errno
import gzip
import os
import signal
import stat
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import orjson
import pytest

from shipper import metrics
from shipper.__main__ import open_state
from shipper.batch import encode
from shipper.config import load_config
from shipper.cursor import CursorStore, Position
from shipper.deliver import Sender
from shipper.encoded import Batch
from shipper.errors import ConfigError
from shipper.record import LogRecord, Meta
from shipper.spool import MAGIC, Spool, _split
from shipper.tried import TriedMark

META = Meta("c1", "app", "busybox")


def _batch(ts: int, n: int = 3, stream: str = "stdout") -> Batch:
    return encode([LogRecord(META, stream, ts + i, 0, b"line %d" % i) for i in range(n)], "h")


async def test_segments_come_back_in_order_with_their_positions_after_a_restart(
    tmp_path: Path,
) -> None:
    """Segments written by one run are sent first, oldest first, by the next run, which
    knows they may have been sent (and indexed) before: a first try of its own is marked
    sent again (collector.wire.SENT_AGAIN)."""
    spool = Spool(tmp_path, 10**6)
    spool.open()
    for ts in (100, 200, 300):
        await spool.write(_batch(ts))
    assert not (await spool.take()).earlier
    again = Spool(tmp_path, 10**6)
    positions = again.open()
    assert positions == [
        ("c1", "stdout", Position(102, 1)),
        ("c1", "stdout", Position(202, 1)),
        ("c1", "stdout", Position(302, 1)),
    ]
    taken = [await again.take() for _ in range(3)]
    assert [s.first_ts for s in taken] == [100, 200, 300]
    assert all(s.earlier for s in taken)
    body = await again.read(taken[0])
    assert body is not None
    assert gzip.decompress(body) == _batch(100).body
    assert again.used == spool.used


async def test_a_disk_buffer_that_is_no_folder_is_a_config_error(tmp_path: Path) -> None:
    """A file where the spool folder belongs stops the start, naming it, with no traceback."""
    (tmp_path / "spool").write_bytes(b"")
    with pytest.raises(ConfigError) as info:
        Spool(tmp_path / "spool", 10**6).open()
    assert str(info.value) == (
        f"LOGPIPE_STATE_DIR: cannot use the disk buffer {tmp_path / 'spool'} (not a directory); "
        "it must be a folder the shipper may read and write"
    )


async def test_an_interrupted_write_leaves_nothing_behind(tmp_path: Path) -> None:
    """A temporary file from a write cut short is deleted at start and not sent."""
    spool = Spool(tmp_path, 10**6)
    spool.open()
    await spool.write(_batch(100))
    (tmp_path / "0000000000000002.seg.tmp").write_bytes(b"logpipe-segment 1\n{half")
    again = Spool(tmp_path, 10**6)
    assert len(again.open()) == 1
    assert again.pending_batches == 1
    assert not (tmp_path / "0000000000000002.seg.tmp").exists()


async def test_a_corrupt_segment_is_set_aside_and_reported(tmp_path: Path) -> None:
    """A segment whose body fails its checksum becomes *.bad, is counted, and the next one goes."""
    spool = Spool(tmp_path, 10**6)
    spool.open()
    first = await spool.write(_batch(100))
    await spool.write(_batch(200))
    data = bytearray(first.path.read_bytes())
    data[-5] ^= 0xFF
    first.path.write_bytes(bytes(data))
    before = metrics.BUFFER_CORRUPT._value.get()
    again = Spool(tmp_path, 10**6)
    again.open()
    assert await again.read(await again.take()) is None
    assert metrics.BUFFER_CORRUPT._value.get() == before + 1
    assert (tmp_path / "0000000000000001.bad").exists()
    assert await again.read(await again.take()) is not None
    assert again.pending_batches == 1


async def test_the_checksum_is_zlibs_crc32_so_segments_of_earlier_versions_still_read(
    tmp_path: Path,
) -> None:
    """The header's checksum is the standard CRC-32 of the body (as computed by Python's
    zlib), whatever computes it: a segment left by a shipper of an earlier version, and
    one written now, read back whole after an upgrade."""
    spool = Spool(tmp_path, 10**6)
    spool.open()
    segment = await spool.write(_batch(100))
    split = _split(segment.path.read_bytes())
    assert split is not None
    header, body = split
    assert header["crc"] == zlib.crc32(body)
    # As an earlier version wrote it: header by hand, checksum by zlib.
    older = gzip.compress(_batch(200).body)
    header = {**header, "first_ts": 200, "crc": zlib.crc32(older), "length": len(older)}
    (tmp_path / "0000000000000002.seg").write_bytes(MAGIC + orjson.dumps(header) + b"\n" + older)
    again = Spool(tmp_path, 10**6)
    again.open()
    assert await again.read(await again.take()) == body
    assert await again.read(await again.take()) == older


async def test_acknowledged_segments_are_deleted_only_on_release(tmp_path: Path) -> None:
    """Acknowledging keeps the file until release; release frees its bytes."""
    spool = Spool(tmp_path, 10**6)
    spool.open()
    segment = await spool.write(_batch(100))
    spool.acked(await spool.take())
    assert segment.path.exists()
    assert spool.has_acked
    assert spool.release() == 1
    assert not segment.path.exists()
    assert spool.used == 0
    assert spool.empty


async def test_a_full_buffer_makes_the_writer_wait_for_room(tmp_path: Path) -> None:
    """At the bound, the next write waits until acknowledged segments are released."""
    first = Spool(tmp_path, 10**6)
    first.open()
    await first.write(_batch(100, n=50))
    spool = Spool(tmp_path, first.used + 10)  # room for exactly the one segment
    spool.open()
    write = asyncio.create_task(spool.write(_batch(200, n=50)))
    await asyncio.sleep(0.2)
    assert not write.done()
    spool.acked(await spool.take())
    spool.release()
    segment = await asyncio.wait_for(write, 10)
    assert segment.first_ts == 200
    assert spool.pending_batches == 1


async def test_cursors_at_start_include_what_the_buffer_holds(tmp_path: Path) -> None:
    """The cursor after a restart is the saved one moved past every buffered batch."""
    store = CursorStore(tmp_path)
    store.advance("c1", "stdout", Position(50, 1))
    store.advance("c1", "stderr", Position(500, 1))
    store.save()
    spool = Spool(tmp_path / "spool", 10**6)
    spool.open()
    await spool.write(_batch(100))
    config = load_config(state_dir=tmp_path, collector_url="http://x")
    again, _ = open_state(config)
    cursor = again.get("c1")
    assert cursor is not None
    assert cursor.streams["stdout"] == Position(102, 1)
    assert cursor.streams["stderr"] == Position(500, 1)  # never moved back


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from shipper.batch import encode
    from shipper.record import LogRecord, Meta
    from shipper.spool import Spool

    async def main():
        spool = Spool(Path(sys.argv[1]), 10**9)
        spool.open()
        meta = Meta("c1", "app", "busybox")
        ts = 0
        while True:
            records = [LogRecord(meta, "stdout", ts + i, 0, b"x" * 2000) for i in range(200)]
            ts += 200
            await spool.write(encode(records, "h"))
            print(ts, flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_kill_9_during_writes_leaves_only_whole_segments(tmp_path: Path) -> None:
    """A writer killed -9 mid-stream leaves segments that all read back whole, in order."""
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    ) as proc:
        assert proc.stdout is not None
        for _ in range(30):
            proc.stdout.readline()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    spool = Spool(tmp_path, 10**9)
    positions = spool.open()
    assert len(positions) >= 30

    async def read_all() -> list[int]:
        ends = []
        for _ in range(spool.pending_batches):
            segment = await spool.take()
            assert await spool.read(segment) is not None
            ends.append(segment.positions[0][2].ts)
        return ends

    ends = asyncio.run(read_all())
    assert ends == [200 * (i + 1) - 1 for i in range(len(ends))]


async def test_release_deletes_only_the_segments_the_saved_cursors_cover(tmp_path: Path) -> None:
    """A segment acknowledged while the cursor save runs waits for the next release."""
    spool = Spool(tmp_path, 10**6)
    spool.open()
    first = await spool.write(_batch(100))
    second = await spool.write(_batch(200))
    spool.acked(await spool.take())
    covered = spool.acknowledged()
    spool.acked(await spool.take())  # during the save
    assert spool.release(covered) == 1
    assert not first.path.exists()
    assert second.path.exists()
    assert spool.has_acked
    assert spool.used == second.size
    assert spool.release() == 1
    assert not second.path.exists()
    assert spool.empty


async def test_the_delivery_loop_saves_cursors_before_it_deletes_segments(tmp_path: Path) -> None:
    """The cursor file on disk covers a segment by the time that segment is deleted."""
    store = CursorStore(tmp_path)
    store.load()
    spool = Spool(tmp_path / "spool", 10**6)
    spool.open()
    segment = await spool.write(_batch(100))
    store.advance("c1", "stdout", Position(102, 1))
    seen: list[tuple[bool, bytes]] = []
    save = store.save_in_thread

    async def watched_save() -> None:
        await save()
        seen.append((segment.path.exists(), (tmp_path / "cursors.json").read_bytes()))

    store.save_in_thread = watched_save  # type: ignore[method-assign]
    config = load_config(state_dir=tmp_path, collector_url="http://x")
    sender = Sender(config, asyncio.Queue(), spool, None, store)  # type: ignore[arg-type]
    spool.acked(await spool.take())
    await sender.drain(5)
    assert not segment.path.exists()
    assert len(seen) == 1
    existed, saved = seen[0]
    assert existed
    assert orjson.loads(saved)["containers"]["c1"]["streams"]["stdout"] == [102, 1]


async def test_a_write_that_fails_after_the_rename_is_retried_over_the_same_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder fsync that fails once the segment is renamed in place leaves, after the
    retry, one segment on disk: a restart sends the batch once, and loses none of it."""
    spool = Spool(tmp_path, 10**6)
    spool.open()
    fsync = os.fsync
    failures = [OSError(errno.EIO, "Input/output error")]

    def folder_fsync_fails_once(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode) and failures:
            raise failures.pop()
        fsync(fd)

    monkeypatch.setattr(os, "fsync", folder_fsync_fails_once)
    batch = _batch(100)
    with pytest.raises(OSError, match="Input/output error"):
        await spool.write(batch)
    assert os.listdir(tmp_path) == ["0000000000000001.seg"]  # the rename had happened
    await spool.write(batch)
    await spool.write(_batch(200))
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == [
        "0000000000000001.seg",
        "0000000000000002.seg",
    ]
    again = Spool(tmp_path, 10**6)
    assert again.open() == [
        ("c1", "stdout", Position(102, 1)),
        ("c1", "stdout", Position(202, 1)),
    ]
    taken = [await again.take(), await again.take()]
    assert [s.lines for s in taken] == [3, 3]
    assert again.used == spool.used


async def test_a_full_buffer_is_counted_each_time_and_logged_once_a_while(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every batch that waits for room counts in buffer_full_total; the warning comes at
    most every 30 s (it came several times a second with a small buffer)."""
    spool = Spool(tmp_path, 1)
    spool.open()
    await spool.write(_batch(1))  # an empty buffer takes any batch
    before = metrics.BUFFER_FULL._value.get()
    waiting = [asyncio.create_task(spool.write(_batch(ts))) for ts in (10, 20, 30)]
    await asyncio.sleep(0.1)
    assert metrics.BUFFER_FULL._value.get() - before == 3
    assert caplog.text.count("disk buffer full") == 1
    for _ in range(4):  # each segment taken and released makes room for the next
        spool.acked(await spool.take())
        spool.release()
        await asyncio.sleep(0.02)
    await asyncio.gather(*waiting)


async def test_a_batch_of_lines_sent_by_an_earlier_run_stays_marked_in_the_next(
    tmp_path: Path,
) -> None:
    """A segment whose batch may hold lines an earlier run sent is marked so on disk: a
    run that leaves it untried hands it on marked, though the record of the segments
    tried says it was never sent; one without the mark is not marked. The positions
    its lines are held behind come back too, for the cursors."""
    tried = TriedMark(tmp_path / "spool", ahead=0)
    spool = Spool(tmp_path / "spool", 10**6, tried)
    spool.open()
    await tried.cover(0)  # nothing tried yet: every segment written from here is above
    plain = _batch(100)
    again = _batch(200)
    again.again = True
    again.written = {("c1", "stdout"): Position(400, 1)}
    assert not (await spool.write(plain)).earlier
    assert (await spool.write(again)).earlier
    reopened = TriedMark(tmp_path / "spool", ahead=0)
    reopened.load()
    later = Spool(tmp_path / "spool", 10**6, reopened)
    later.open()
    taken = [await later.take() for _ in range(2)]
    assert [(s.first_ts, s.earlier) for s in taken] == [(100, False), (200, True)]
    assert later.written() == [("c1", "stdout", Position(400, 1))]


async def test_the_cursors_at_start_mark_what_the_buffer_held_beyond_them(
    tmp_path: Path,
) -> None:
    """A segment left in the buffer with its positions held behind its lines makes the
    next start mark the lines up to its end, read again from Docker, as sent again."""
    spool = Spool(tmp_path / "spool", 10**6)
    spool.open()
    held = _batch(100)
    held.positions = {("c1", "stdout"): Position(90, 0)}  # held at a window's start
    held.written = {("c1", "stdout"): Position(102, 1)}
    await spool.write(held)
    config = load_config(state_dir=tmp_path, collector_url="http://x")
    store, _ = open_state(config)
    cursor = store.get("c1")
    assert cursor is not None
    assert cursor.streams["stdout"] == Position(90, 0)
    assert cursor.written == {"stdout": Position(102, 1)}
    assert store.sent_before([("c1", "stdout")], 95)
    assert not store.sent_before([("c1", "stdout")], 103)
