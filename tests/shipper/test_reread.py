"""Unit tests of reading again the span a resume through dockerd skipped in a compressed log."""

from __future__ import annotations

import struct
from collections.abc import AsyncGenerator

import pytest
from prometheus_client import REGISTRY

from shipper import metrics, native
from shipper.cursor import Position
from shipper.errors import ContainerGone
from shipper.follow.gaps import RESUME_GAP, Gaps
from shipper.follow.handoff import Handoff
from shipper.follow.numbering import Numbering
from shipper.follow.progress import Progress
from shipper.follow.reread import SKEW_SLACK_NS, after_positions, late_start
from shipper.inbox import Inbox
from shipper.logfiles.audit import FromFiles
from shipper.logfiles.rotation import FileRead
from shipper.record import GapRecord, LogRecord, Meta, Record
from shipper.rejoin import Line, LineReader

MB = 1_000_000
STEP = 1_000  # ns between two entries of the fake log
LIVE = 600  # the first entry of the file being written; those before are compressed
LAST = 800


def _ts(n: int, stream: int) -> int:
    """Entry `n` of a stream: stdout's first, stderr's 1 ns after it."""
    return n * STEP + stream - 1


def _frame(n: int, stream: int) -> bytes:
    ns = _ts(n, stream)
    payload = b"1970-01-01T00:00:%02d.%09dZ %s %d\n" % (
        ns // 10**9,
        ns % 10**9,
        b"out" if stream == 1 else b"err",
        n,
    )
    return struct.pack(">BxxxL", stream, len(payload)) + payload


LAG = 3  # stderr's entries reach the file this many stdout entries late


def _file_order() -> list[tuple[int, int]]:
    """The log's entries, (number, stream), in the order of its files: each stderr entry
    is written LAG stdout entries after its stdout twin, though stamped 1 ns after it
    (dockerd copies the two streams apart)."""
    order = []
    for n in range(1, LAST + LAG + 1):
        if n <= LAST:
            order.append((n, 1))
        if n > LAG:
            order.append((n - LAG, 2))
    return order


class _CompressedLog:
    """dockerd serving a log whose entries before stderr's LIVE are in compressed rotated
    files: asked with a `since` inside the log it skips them (from stderr's LIVE on);
    asked from the log's start (`since=0`) it sends its entries in the files' order, and
    ends at the first one stamped after `until`. Entries before `first` were rotated
    away for good. `gone`: the container is removed by the time a read from the start is
    asked for."""

    def __init__(self, first: int = 1, gone: bool = False) -> None:
        self.first = first
        self.gone = gone
        self.asked: list[tuple[str, str | None]] = []

    async def logs(
        self, cid: str, since: str, follow: bool = True, until: str | None = None, **kw: object
    ) -> AsyncGenerator[bytes, None]:
        self.asked.append((since, until))
        if since == "0" and self.gone:
            raise ContainerGone(f"/containers/{cid}/logs: no such container")
        order = _file_order()
        if since == "0":
            order = [(n, stream) for n, stream in order if n >= self.first]
        else:
            order = order[order.index((LIVE, 2)) :]
        for n, stream in order:
            if until is not None and _ts(n, stream) > _ns(until):
                return
            yield _frame(n, stream)


def _ns(since: str) -> int:
    """Docker's `seconds.nanoseconds` as nanoseconds."""
    secs, _, frac = since.partition(".")
    return int(secs) * 10**9 + int(frac.ljust(9, "0"))


def _positions(n: int, count: int = 1) -> dict[str, Position]:
    """Both streams read up to entry `n` (`count` 0: to just before it)."""
    return {"stdout": Position(_ts(n, 1), count), "stderr": Position(_ts(n, 2), count)}


async def _resume(
    docker: _CompressedLog,
    read_to: int,
    compressed: bool = True,
    compiled: bool = False,
    count: int = 1,
    held: bool = False,
    from_files: FromFiles | None = None,
) -> list[Record]:
    """A read resumed through dockerd from entry `read_to` (`count` 0: from just before
    it; `held`: positions a stop saved held there, at a window's start), its response
    fed to the numbering as the follow stream does (by the compiled reader when
    `compiled`; the log files held read with `from_files` once the container is
    removed); what it queued."""
    inbox = Inbox(100_000, metrics.PerContainer(False, 10))
    positions = _positions(read_to, count)
    meta = Meta("c" * 64, "app", "busybox")
    progress = Progress(meta, positions, Handoff(inbox), held=dict(positions) if held else {})
    progress.decided.set()
    numbering = Numbering(docker, progress, Gaps(progress), 1 << 20)
    if from_files is not None:
        numbering.read_held_files_with(from_files)
    numbering.watch_rotation(MB, compressed)
    numbering.restart(check_start=True, audit=False, dockerd=True)
    reader: native.LinesReader = native.reader(1 << 20) if compiled else LineReader(1 << 20)
    since = f"0.{min(p.ts for p in progress.positions.values()):09d}"
    async for chunk in docker.logs(progress.cid, since, follow=False):
        await numbering.emit(reader.feed(chunk))
    queued = []
    while not inbox.empty():
        queued.append(inbox.get_nowait())
    return queued


def _lines(records: list[Record], stream: str) -> list[int]:
    """The entry numbers of a stream's log records, in the order queued."""
    return [
        int(r.data.split()[1]) for r in records if isinstance(r, LogRecord) and r.stream == stream
    ]


def test_a_read_that_began_at_its_positions_is_not_late() -> None:
    """A response whose first line of each stream is its position (since is inclusive)
    began where it was asked to: nothing to read again."""
    expect = {"stdout": Position(100, 1), "stderr": Position(101, 1)}
    assert not late_start([("stdout", 100), ("stderr", 101), ("stdout", 200)], expect)
    assert not late_start([("stdout", 100), ("stdout", 110)], {"stdout": Position(100, 1)})
    assert not late_start([("stdout", 500)], {})  # nothing read before: nothing checked


def test_a_streams_first_line_after_its_position_is_a_late_start() -> None:
    """The first line of a stream later than its position: the read began late."""
    expect = {"stdout": Position(100, 1), "stderr": Position(101, 1)}
    assert late_start([("stdout", 100), ("stderr", 700), ("stdout", 701)], expect)
    assert late_start([("stderr", 600), ("stdout", 601)], expect)


def test_a_stream_not_among_the_first_lines_is_late_if_the_read_began_after_it() -> None:
    """A stream that has no line among the first ones: the read began past its position
    when its first line is already later; not when it is earlier (the position's line
    may come further on)."""
    assert late_start([("stdout", 600), ("stdout", 610)], {"stderr": Position(101, 1)})
    assert not late_start([("stdout", 90), ("stdout", 95)], {"stderr": Position(101, 1)})


def test_only_the_lines_from_the_positions_on_are_kept() -> None:
    """Of a read from the log's start, the lines from each stream's position on are
    kept; a checked stream whose first line is at or before its position needs no
    check any more, one whose first line is later stays checked (a gap before it)."""
    positions = {"stdout": Position(300, 1), "stderr": Position(100, 1)}
    expect = dict(positions)
    lines = [Line(1, 200, b"a"), Line(2, 250, b"b"), Line(1, 300, b"c"), Line(1, 400, b"d")]
    kept = after_positions(lines, positions, expect)
    assert [line.data for line in kept] == [b"b", b"c", b"d"]
    assert expect == {"stderr": Position(100, 1)}  # its first line came after it


@pytest.mark.parametrize("compiled", [False, True])
async def test_a_resume_past_compressed_files_reads_them_from_the_logs_start(
    compiled: bool,
) -> None:
    """Resumed from entry 100 of a log whose entries before stderr's 600 are compressed,
    dockerd answers from there: the entries between are read from the log's start, up
    to that first line in the files' order (stdout's 601 to 603 come before it there,
    stamped after it, and stderr's 598 and 599 after those), queued in order before it,
    each once, and no gap is reported."""
    if compiled and not native.enabled():
        pytest.skip(f"no compiled path: {native.describe()}")
    docker = _CompressedLog()
    sample = "logpipe_shipper_resume_lines_reread_total"
    reread_before = REGISTRY.get_sample_value(sample) or 0.0
    records = await _resume(docker, 100, compiled=compiled)
    assert not [r for r in records if isinstance(r, GapRecord)]
    assert _lines(records, "stdout") == list(range(101, LAST + 1))
    assert _lines(records, "stderr") == list(range(101, LAST + 1))
    # Read from the start: the lines after the positions up to the first line, no more.
    until = _ts(LIVE, 2) + SKEW_SLACK_NS
    assert docker.asked[1:] == [("0", f"{until // 10**9}.{until % 10**9:09d}")]
    # Each stream's 100 to its last before the first line (the 100s, read already, are
    # dropped by the numbering).
    span = (LIVE + LAG - 99) + (LIVE - 1 - 99)
    assert REGISTRY.get_sample_value(sample) == reread_before + span


async def test_what_the_read_from_the_start_lacks_too_is_still_a_gap() -> None:
    """Entries before 400 were rotated away for good: the read from the log's start
    gives 400 on, and only the span from the position to it is reported, per stream."""
    records = await _resume(_CompressedLog(first=400), 100)
    gaps = [(r.stream, r.from_ts, r.to_ts, r.reason) for r in records if isinstance(r, GapRecord)]
    assert sorted(gaps) == [
        ("stderr", _ts(100, 2), _ts(400, 2), RESUME_GAP),
        ("stdout", _ts(100, 1), _ts(400, 1), RESUME_GAP),
    ]
    assert _lines(records, "stdout") == list(range(400, LAST + 1))
    assert isinstance(records[0], GapRecord)  # before the lines after it


async def test_a_resume_in_an_uncompressed_log_is_not_read_again() -> None:
    """Where rotated files are not compressed, dockerd skips none: a late first line is
    a loss, reported as before, and nothing is read from the log's start."""
    docker = _CompressedLog()
    records = await _resume(docker, 100, compressed=False)
    assert sorted(r.stream for r in records if isinstance(r, GapRecord)) == ["stderr", "stdout"]
    assert _lines(records, "stdout") == list(range(LIVE + LAG + 1, LAST + 1))
    assert len(docker.asked) == 1


async def test_a_container_removed_before_the_read_again_leaves_the_gap() -> None:
    """The container was removed before the read from the start could be made: the
    span is reported as a gap, as without it, and the rest is read."""
    records = await _resume(_CompressedLog(gone=True), 100)
    assert sorted(r.stream for r in records if isinstance(r, GapRecord)) == ["stderr", "stdout"]
    assert _lines(records, "stderr") == list(range(LIVE, LAST + 1))


class _HeldFiles:
    """The log files the shipper holds for a --rm container's tail: its entries from
    `first` on, in the files' order (rescue.read_window)."""

    def __init__(self, first: int = 1) -> None:
        self.first = first
        self.asked: list[tuple[int, int]] = []

    async def __call__(self, start: int, end: int) -> FileRead:
        self.asked.append((start, end))
        entries = [(n, stream) for n, stream in _file_order() if n >= self.first]
        reader = LineReader(1 << 20)
        lines = reader.feed(b"".join(_frame(n, stream) for n, stream in entries))
        kept = [line for line in lines if start <= line.ts <= end]
        return FileRead(kept, _ts(self.first, 1), _ts(LAST, 2))


@pytest.mark.parametrize("compiled", [False, True])
async def test_a_span_dockerd_no_longer_gives_is_read_from_the_files_held(compiled: bool) -> None:
    """A --rm container is removed ~30 ms after it stops, and the request for the rest
    of its stream is a resumed read: the read from the log's start found it removed, and
    the span, still in the file held for its tail, was reported as a gap. It is read
    from that file: each line once, in order, no gap."""
    if compiled and not native.enabled():
        pytest.skip(f"no compiled path: {native.describe()}")
    files = _HeldFiles()
    records = await _resume(_CompressedLog(gone=True), 100, compiled=compiled, from_files=files)
    assert not [r for r in records if isinstance(r, GapRecord)]
    assert _lines(records, "stdout") == list(range(101, LAST + 1))
    assert _lines(records, "stderr") == list(range(101, LAST + 1))
    # From the positions to a second past the stop: the files' order ends the span there.
    assert files.asked == [(_ts(100, 1), _ts(LIVE, 2) + SKEW_SLACK_NS)]


async def test_what_the_files_held_lack_too_is_still_a_gap() -> None:
    """The files held begin at entry 400 (the file before was rotated away before the
    shipper took it): the span from the position to it is a gap, the rest is read."""
    records = await _resume(_CompressedLog(gone=True), 100, from_files=_HeldFiles(first=400))
    gaps = [(r.stream, r.from_ts, r.to_ts, r.reason) for r in records if isinstance(r, GapRecord)]
    assert sorted(gaps) == [
        ("stderr", _ts(100, 2), _ts(400, 2), RESUME_GAP),
        ("stdout", _ts(100, 1), _ts(400, 1), RESUME_GAP),
    ]
    assert _lines(records, "stdout") == list(range(400, LAST + 1))


@pytest.mark.parametrize("compiled", [False, True])
async def test_a_resume_from_positions_held_at_a_window_reads_the_span_too(
    compiled: bool,
) -> None:
    """A shipper stopped while its positions were held at a window's start (no line of
    that stamp counted, the lines read past it in the disk buffer: cursor.py) resumes
    from them through dockerd, which answers from past the compressed files: the span
    is read from the log's start as from any position, entry 100 on (its stamp is held,
    so it is sent again), each once, no gap. Before, such positions were taken for
    those of a stream never read, nothing was checked, and entries 100 to 599 were
    left out without a word."""
    if compiled and not native.enabled():
        pytest.skip(f"no compiled path: {native.describe()}")
    docker = _CompressedLog()
    records = await _resume(docker, 100, compiled=compiled, count=0, held=True)
    assert not [r for r in records if isinstance(r, GapRecord)]
    assert _lines(records, "stdout") == list(range(100, LAST + 1))
    assert _lines(records, "stderr") == list(range(100, LAST + 1))
    assert [since for since, _ in docker.asked[1:]] == ["0"]


async def test_a_position_of_a_stream_never_read_is_not_checked() -> None:
    """Positions with no line counted that are not held (a container's streams never
    read, at its floor): a read that begins later is no gap, and nothing is read again."""
    docker = _CompressedLog()
    records = await _resume(docker, 100, count=0)
    assert not [r for r in records if isinstance(r, GapRecord)]
    assert _lines(records, "stderr") == list(range(LIVE, LAST + 1))
    assert len(docker.asked) == 1
