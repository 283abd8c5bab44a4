"""Unit tests of spotting skipped rotated files and judging their re-read."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipper import metrics
from shipper.batch import encode
from shipper.cursor import CursorStore, Position
from shipper.dockerd import ServesLogs
from shipper.errors import ContainerGone
from shipper.follow.gaps import CLOSE_GAP, SKIPPED_GAP, UNREAD_GAP, Gaps
from shipper.follow.handoff import Handoff
from shipper.follow.numbering import Numbering
from shipper.follow.progress import Progress
from shipper.inbox import Inbox
from shipper.logfiles import audit, rotation
from shipper.logfiles.rotation import (
    FileRead,
    JumpDetector,
    Window,
    compressed,
    file_bytes,
    judge,
    parse_size,
)
from shipper.record import GapRecord, LogRecord, Meta, Record
from shipper.rejoin import Line

MB = 1024 * 1024


def test_sizes_read_like_docker() -> None:
    """max-size values use decimal multiples, as dockerd reads them (its files rotate
    just past 100,000 bytes with 100k); rotation is known per driver."""
    assert parse_size("1m") == 1_000_000
    assert parse_size("100k") == 100_000
    assert parse_size("10KiB") == 10_000
    assert parse_size("2g") == 2_000_000_000
    assert parse_size("500") == 500
    assert parse_size("1.5m") == 1_500_000
    assert parse_size("lots") is None
    assert file_bytes("json-file", {"max-size": "1m", "max-file": "2"}) == 1_000_000
    assert file_bytes("json-file", {}) is None
    assert file_bytes("local", {}) == 20_000_000
    assert file_bytes("journald", {"max-size": "1m"}) is None


def _steady(detector: JumpDetector, start: int, count: int, gap_ns: int) -> list[Window]:
    flagged = []
    for i in range(count):
        for stream in ("stdout", "stderr"):
            w = detector.observe(stream, start + i * gap_ns, 60)
            if w is not None:
                flagged.append(w)
    return flagged


def test_a_skipped_file_is_suspected_and_steady_writing_is_not() -> None:
    """At 20,000 entries/s a 1 MiB file lasts ~0.4 s: a 0.4 s jump is suspect, steps are not."""
    d = JumpDetector(MB)
    assert _steady(d, 0, 20000, 50_000) == []  # 50 us apart, 124 B each: ~5 MB/s
    last = 20000 * 50_000
    w = d.observe("stdout", last + 400_000_000, 60)
    assert w is not None
    assert (w.stream, w.end - w.start) == ("stdout", 400_000_000 + 50_000)
    estimate = d.estimate("stdout", w.start, w.end)
    assert estimate is not None
    assert 6000 < estimate < 10000


def _first_burst(skip_ns: int) -> list[tuple[str, int, bytes]]:
    """A probe's first 26 ms through dockerd (100 kB files, busybox printing `out i` and
    `err i` as fast as it can): 620 pairs 42 us apart, then the follow stream jumps
    over a rotated file, stdout by `skip_ns` and stderr 3 ms more."""
    entries = []
    for i in range(1, 621):
        entries += [
            ("stdout", i * 42_000, b"out %d" % i),
            ("stderr", i * 42_000 + 9_000, b"err %d" % i),
        ]
    last = 620 * 42_000
    entries.append(("stdout", last + skip_ns, b"out 1161"))
    entries.append(("stderr", last + 9_000 + skip_ns + 3_000_000, b"err 1405"))
    return entries


def _windows(detector: JumpDetector, entries: list[tuple[str, int, bytes]]) -> list[Window]:
    """The windows the detector raises, taking the entries in order."""
    return [w for s, ts, data in entries if (w := detector.observe(s, ts, len(data)))]


def test_a_file_skipped_before_the_first_rate_sample_is_suspected() -> None:
    """A burst's first rotations come before 2,048 entries or 200 ms make a whole rate
    sample: there a 48 ms jump over a skipped file raised no window (no audit, no gap:
    stdout 620-1160 and stderr 669-1404 lost without a word). The rate of the entries
    taken so far judges it: both streams' jumps are suspect."""
    windows = _windows(JumpDetector(100_000), _first_burst(47_700_000))
    last = 620 * 42_000
    assert windows == [
        Window("stdout", last, last + 47_700_000),
        Window("stderr", last + 9_000, last + 9_000 + 50_700_000),
    ]


def test_steady_steps_before_the_first_rate_sample_are_not_suspected() -> None:
    """The same burst without a skip, and a pause a quarter of a file's time would not
    fill, raise no window before the first whole sample."""
    assert _windows(JumpDetector(100_000), _first_burst(42_000)) == []
    assert _windows(JumpDetector(100_000), _first_burst(6_000_000)) == []


def test_a_writers_first_batches_and_pauses_raise_no_window() -> None:
    """A writer printing 100 pairs at once, then pausing 50 ms (about 4,000 lines/s, a
    quarter of a 100 kB file every 170 ms): the rate of its first batch alone, taken in
    a millisecond, made the first pause look like a whole file skipped, and an audit
    read late, its file rotated away, reported lines lost that had all arrived."""
    entries = []
    t = 0
    for batch in range(10):
        for i in range(100):
            n = batch * 100 + i
            entries += [("stdout", t + i * 50_000, b"out %d" % n)]
            entries += [("stderr", t + i * 50_000 + 20_000, b"err %d" % n)]
        t += 100 * 50_000 + 50_000_000
    assert _windows(JumpDetector(100_000), entries) == []


def _after_jump(settle: int, short_ns: int) -> tuple[list[tuple[str, int, bytes]], int]:
    """A probe's run under load (100 kB files, ~4 MB/s): 0.3 s of pairs 40 us apart, a
    64 ms jump of both streams over a skipped file, `settle` pairs, then stdout steps
    `short_ns` (the follower, left a rename event, skipped the rest of the file it had
    entered: 202 stdout lines stamped within 2.7 ms). The short step's start."""
    entries = []
    for i in range(7_500):
        entries += [
            ("stdout", i * 40_000, b"out %d" % i),
            ("stderr", i * 40_000 + 9_000, b"err %d" % i),
        ]
    t = 7_500 * 40_000 + 64_000_000
    for i in range(settle):
        entries += [
            ("stdout", t + i * 40_000, b"out x"),
            ("stderr", t + i * 40_000 + 9_000, b"err x"),
        ]
    start = t + (settle - 1) * 40_000
    entries.append(("stdout", start + short_ns, b"out 1366"))
    return entries, start


def test_a_short_step_soon_after_a_jump_is_suspected() -> None:
    """Within two files after a jump, a stdout step of 2.7 ms (a run of 202 lines that
    one pipe read had stamped close together, skipped at the next rotation) raised no
    window: a quarter of a file takes 6 ms at the mean rate, and 5 ms is the floor.
    Now any step over 1 ms there is suspect; past the two files, only the usual ones."""
    entries, start = _after_jump(10, 2_700_000)
    windows = _windows(JumpDetector(100_000), entries)
    assert [w.end - w.start for w in windows] == [64_040_000, 64_040_000, 2_700_000]
    assert windows[-1] == Window("stdout", start, start + 2_700_000, close=True)
    assert not windows[0].close
    # 1,500 pairs (two files and more) after the jump: the same step is noise again.
    entries, _ = _after_jump(1_500, 2_700_000)
    assert len(_windows(JumpDetector(100_000), entries)) == 2
    entries, _ = _after_jump(10, 900_000)  # under CLOSE_STEP_NS
    assert len(_windows(JumpDetector(100_000), entries)) == 2


@given(st.integers(min_value=10_000_000, max_value=10_000_000_000))
def test_a_slow_writer_never_causes_audits(step: int) -> None:
    """A container writing a line every 10 ms or slower is never suspected."""
    d = JumpDetector(MB)
    for i in range(300):
        assert d.observe("stdout", i * step, 100) is None


def line(stream: int, ts: int, text: bytes) -> Line:
    return Line(stream, ts, text)


def test_judge_recovers_what_is_inside_a_window() -> None:
    """Entries strictly inside a window were skipped: they are recovered, no gap."""
    window = Window("stdout", 10, 50)
    found = [line(1, 10, b"a"), line(1, 20, b"b"), line(1, 30, b"c"), line(2, 25, b"x")]
    found.append(line(1, 50, b"d"))
    verdict = judge([window], found)
    assert [(s, ln.data, seq) for s, ln, seq in verdict.recovered] == [
        ("stdout", b"b", 0),
        ("stdout", b"c", 0),
    ]
    assert verdict.gaps == []


def test_judge_reports_a_gap_where_the_files_are_gone() -> None:
    """Without the window's first entry, what lies before the first entry found is a gap."""
    verdict = judge([Window("stderr", 10, 50)], [line(2, 30, b"c"), line(2, 50, b"d")])
    assert [ln.data for _, ln, _ in verdict.recovered] == [b"c"]
    assert verdict.gaps == [Window("stderr", 10, 30)]
    verdict = judge([Window("stderr", 10, 50)], [])
    assert verdict.gaps == [Window("stderr", 10, 50)]


@pytest.mark.parametrize(
    ("driver", "opts", "gzipped"),
    [
        ("json-file", {"max-size": "1m"}, False),
        ("json-file", {"max-size": "1m", "compress": "true"}, True),
        ("json-file", {"compress": "1"}, True),
        ("json-file", {"compress": "false"}, False),
        ("local", {}, True),
        ("local", {"compress": "false"}, False),
    ],
)
def test_which_rotated_files_are_gzipped(driver: str, opts: dict[str, str], gzipped: bool) -> None:
    assert compressed(driver, opts) is gzipped


class _WholeLogDocker:
    """dockerd asked for a compressed log's window: from the log's start (`since=0`) it
    sends every entry up to `until`, 1,000 before the window and 3 inside it."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []

    async def logs(
        self, cid: str, since: str, follow: bool = True, until: str | None = None, **kw: object
    ) -> AsyncGenerator[bytes, None]:
        self.asked.append((since, until))
        for n in [*range(1, 1_001), 2_000, 2_001, 2_002, 2_003]:
            payload = b"1970-01-01T00:00:00.%09dZ line %d\n" % (n, n)
            yield struct.pack(">BxxxL", 1, len(payload)) + payload


async def test_an_audit_of_a_compressed_log_keeps_only_its_windows_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read from the log's start (dockerd skips compressed files after a `since` inside
    the log), the audit held every line of the log up to the window in memory at once:
    up to every kept file of the log (100 MB under the `local` driver's defaults). Only
    the lines from the window's start on are kept; the window's are recovered."""
    judged: list[list[Line]] = []
    real_judge = rotation.judge

    def judge_spy(windows: list[Window], lines: list[Line]) -> rotation.Verdict:
        judged.append(list(lines))
        return real_judge(windows, lines)

    monkeypatch.setattr(audit, "judge", judge_spy)
    recovered: list[bytes] = []

    async def recover(stream: str, line: Line, seq: int) -> None:
        recovered.append(line.data)

    async def report(window: Window, estimate: int | None) -> None:
        raise AssertionError(f"no gap expected: {window}")

    docker = _WholeLogDocker()
    auditor = audit.Auditor(
        docker,
        "c" * 64,
        1 << 20,
        JumpDetector(MB),
        recover,
        report,
        compressed=True,
    )
    auditor.suspect(Window("stdout", 2_000, 2_003))
    await auditor.finish()
    assert docker.asked == [("0", "0.000002003")]
    assert recovered == [b"line 2001", b"line 2002"]
    assert [line.ts for line in judged[0]] == [2_000, 2_001, 2_002, 2_003]


def _stamp(ns: int) -> bytes:
    """A Docker timestamp `ns` after the epoch (under a minute)."""
    return b"1970-01-01T00:00:%02d.%09dZ" % (ns // 10**9, ns % 10**9)


class _HeldAuditDocker:
    """dockerd whose answer to an audit waits for `answer`, then gives the window's
    entries: its start, the one the follow stream skipped, its end."""

    def __init__(self, window: tuple[int, int]) -> None:
        self.answer = asyncio.Event()
        self.window = window

    async def logs(self, cid: str, since: str, **kw: object) -> AsyncGenerator[bytes, None]:
        await self.answer.wait()
        start, end = self.window
        for ts, text in ((start, b"before"), (start + 1_000, b"skipped"), (end, b"after")):
            payload = _stamp(ts) + b" " + text + b"\n"
            yield struct.pack(">BxxxL", 1, len(payload)) + payload


def _audited(
    docker: ServesLogs, file_bytes: int, from_files: audit.FromFiles | None = None
) -> tuple[Inbox, Progress, Numbering]:
    """A container's numbering, from the start of its log, whose follow stream's steps are
    watched (its log rotated every `file_bytes`, audits asked of `docker`, and of
    `from_files` once the container is gone); what it queues goes to the inbox."""
    inbox = Inbox(100_000, metrics.PerContainer(False, 10))
    positions = {"stdout": Position(0, 0), "stderr": Position(0, 0)}
    progress = Progress(Meta("c" * 64, "app", "busybox"), positions, Handoff(inbox))
    progress.decided.set()
    numbering = Numbering(docker, progress, Gaps(progress), 1 << 20)
    if from_files is not None:
        numbering.read_held_files_with(from_files)
    numbering.watch_rotation(file_bytes)
    numbering.restart(check_start=False, audit=True)
    return inbox, progress, numbering


async def test_the_saved_position_waits_at_a_window_until_it_was_read_again() -> None:
    """A window where the follow stream may have skipped a rotated file is read again
    beside the stream. The lines read after it went to the disk buffer with their own
    positions, so a shipper stopped before the audit (a SIGTERM cancels it, a kill -9)
    resumed past the window: the skipped lines were lost without a word. Until the
    window was read again, those lines let the saved position reach only its start;
    after, lines move it on as ever."""
    step, count = 50_000, 6_000  # 0.3 s of lines: the writer's rate is known
    start = count * step  # the last line before the jump
    end = start + 400_000_000
    docker = _HeldAuditDocker((start, end))
    inbox, _progress, numbering = _audited(docker, MB)
    steady = [line(1, n * step, b"x" * 120) for n in range(1, count + 1)]
    await numbering.emit([*steady, line(1, end, b"after"), line(1, end + step, b"next")])
    records = _taken(inbox)
    assert records[-4].end() == Position(start - step, 1)  # before the window: its own
    # The window's first line and those after it: held at its start (the first one is
    # read again too, which costs a line sent twice, indexed once).
    assert [r.end() for r in records[-3:]] == [Position(start, 0)] * 3
    assert encode(list[Record](records), "host").positions[("c" * 64, "stdout")] == Position(
        start, 0
    )
    # How far the lines held went: the next start marks them as sent again.
    assert records[-4].written is None
    ends = [Position(start, 1), Position(end, 1), Position(end + step, 1)]
    assert [r.written for r in records[-3:]] == ends
    assert encode(list[Record](records), "host").written == {
        ("c" * 64, "stdout"): Position(end + step, 1)
    }
    docker.answer.set()
    await numbering.finish_audits()
    await numbering.emit([line(1, end + 2 * step, b"later")])
    records = _taken(inbox)
    assert [(r.data, r.end()) for r in records] == [
        (b"skipped", Position(start + 1_000, 1)),  # recovered
        (b"later", Position(end + 2 * step, 1)),  # no window pending: its own again
    ]
    # The recovered line, behind the lines read after the window, says how far they went.
    assert [r.written for r in records] == [Position(end + step, 1), None]


def _queued(inbox: Inbox) -> list[Record]:
    """Every record queued so far, in order (taken from the inbox)."""
    out = []
    while not inbox.empty():
        out.append(inbox.get_nowait())
    return out


def _taken(inbox: Inbox) -> list[LogRecord]:
    """The log records queued so far."""
    return [r for r in _queued(inbox) if isinstance(r, LogRecord)]


def _queued_gaps(inbox: Inbox) -> list[GapRecord]:
    """The gap records queued so far."""
    return [r for r in _queued(inbox) if isinstance(r, GapRecord)]


class _GoneDocker:
    """dockerd whose log no longer holds anything the audits ask for (rotated away)."""

    async def logs(self, cid: str, since: str, **kw: object) -> AsyncGenerator[bytes, None]:
        for _ in ():
            yield b""


async def test_a_short_step_after_a_jump_whose_files_are_gone_says_lines_may_be_missing() -> None:
    """The jump's files gone, its gap says they were skipped, with an estimate; a short
    step after it, read again too late, may have skipped nothing: its gap says lines
    may be missing, without an estimate."""
    inbox, _progress, numbering = _audited(_GoneDocker(), 100_000)
    entries, start = _after_jump(10, 2_700_000)
    lines = [line(1 if s == "stdout" else 2, ts, data) for s, ts, data in entries]
    await numbering.emit(lines)
    await numbering.finish_audits()
    gaps = _queued_gaps(inbox)
    assert [(g.stream, g.reason) for g in gaps] == [
        ("stdout", SKIPPED_GAP),
        ("stderr", SKIPPED_GAP),
        ("stdout", CLOSE_GAP),
    ]
    assert all(g.estimated_lines for g in gaps[:2])
    assert (gaps[2].from_ts, gaps[2].to_ts, gaps[2].estimated_lines) == (
        start,
        start + 2_700_000,
        None,
    )


async def test_a_log_read_to_its_end_releases_the_positions_held_at_its_windows(
    tmp_path: Path,
) -> None:
    """A container that exits while a window of its log is audited has every line queued
    held at the window's start. Once the window was read again nothing more comes to move
    the position on: the saved cursor stayed at the window's start for good (the next
    start read those lines again and sent them marked as sent again, and /status never
    showed the log read to its end). The follower's end queues a mark per held stream, at
    the position it was read to, after everything else."""
    step, count = 50_000, 6_000
    start = count * step
    end = start + 400_000_000
    docker = _HeldAuditDocker((start, end))
    inbox, progress, numbering = _audited(docker, MB)
    steady = [line(1, n * step, b"x" * 120) for n in range(1, count + 1)]
    await numbering.emit([*steady, line(1, end, b"after"), line(1, end + step, b"last")])
    docker.answer.set()
    await numbering.finish_audits()
    marks = numbering.released()
    assert [(m.stream, m.until) for m in marks] == [("stdout", Position(end + step, 1))]
    assert numbering.released() == []  # given once
    await progress.out.release(marks)
    queued = _queued(inbox)
    assert queued[-1] is marks[0]  # behind the held lines and the line read again
    batch = encode(queued, "host")
    store = CursorStore(tmp_path)
    key = ("c" * 64, "stdout")
    for (cid, stream), pos in batch.positions.items():
        store.advance(cid, stream, pos)
    for (cid, stream), pos in batch.written.items():
        store.wrote(cid, stream, pos)
    cursor = store.get("c" * 64)
    assert cursor is not None
    assert batch.positions[key] == Position(end + step, 1)
    assert cursor.position("stdout") == Position(end + step, 1)
    assert cursor.held() == {}  # nothing for the next start to read again


async def test_a_log_never_held_at_a_window_needs_no_release() -> None:
    """No window, no hold: nothing to release (a mark per container would cost a batch
    entry each for nothing)."""
    _inbox, _progress, numbering = _audited(_GoneDocker(), MB)
    await numbering.emit([line(1, n * 50_000, b"x" * 120) for n in range(1, 100)])
    await numbering.finish_audits()
    assert numbering.released() == []


def test_unread_windows_make_one_gap_per_stream_over_their_span() -> None:
    """Windows nobody can read again any more: one gap per stream, from its first
    window's start to its last one's end, marked unread."""
    windows = [
        Window("stdout", 10, 20),
        Window("stderr", 15, 18, close=True),
        Window("stdout", 40, 55, close=True),
        Window("stdout", 30, 35),
    ]
    assert rotation.unread(windows) == [
        Window("stdout", 10, 55, unread=True),
        Window("stderr", 15, 18, unread=True),
    ]
    assert rotation.unread([]) == []


def test_files_tell_only_about_windows_they_reach_over() -> None:
    read = FileRead([], 100, 200)
    assert read.tells(Window("stdout", 100, 200))
    assert read.tells(Window("stdout", 150, 160))
    assert not read.tells(Window("stdout", 99, 150))  # its start's file was not held
    assert not read.tells(Window("stdout", 150, 201))  # its end is past the files
    assert not FileRead([], 0, 0).tells(Window("stdout", 10, 20))  # nothing read


class _RemovedDocker:
    """dockerd once the container was removed: every audit is answered "no such container"."""

    def __init__(self) -> None:
        self.asked = 0

    async def logs(self, cid: str, since: str, **kw: object) -> AsyncGenerator[bytes, None]:
        self.asked += 1
        raise ContainerGone(f"/containers/{cid}/logs: no such container")
        yield b""  # an async generator, like the real one


async def test_windows_of_a_removed_container_without_files_are_one_unread_gap_a_stream() -> None:
    """Removed before the audit, nothing held: each window was a gap saying its files
    were gone when re-read (which nobody looked at) and how many lines were skipped. One
    gap per stream says lines may be missing over the windows' span, without an estimate."""
    docker = _RemovedDocker()
    inbox, _progress, numbering = _audited(docker, 100_000)
    entries, start = _after_jump(10, 2_700_000)
    lines = [line(1 if s == "stdout" else 2, ts, data) for s, ts, data in entries]
    await numbering.emit(lines)
    await numbering.finish_audits()
    assert docker.asked >= 1
    gaps = _queued_gaps(inbox)
    assert sorted((g.stream, g.reason, g.estimated_lines) for g in gaps) == [
        ("stderr", UNREAD_GAP, None),
        ("stdout", UNREAD_GAP, None),
    ]
    stdout = next(g for g in gaps if g.stream == "stdout")
    assert stdout.to_ts == start + 2_700_000  # up to the end of its last window


async def test_a_removed_containers_windows_are_judged_from_the_files_that_reach_them() -> None:
    """The files held reach over the first window only: it is judged from them (its
    skipped line recovered, nothing lost); the later one, past the files' end (in a file
    rotation began after the last look), is unread."""
    step, count = 50_000, 6_000
    start = count * step
    end = start + 400_000_000
    later = end + 400_000_000
    asked: list[tuple[int, int]] = []

    async def from_files(since: int, until: int) -> FileRead:
        asked.append((since, until))
        held = [line(1, start, b"x" * 120), line(1, start + 1_000, b"skipped"), line(1, end, b"a")]
        return FileRead(held, start - step, end + step)

    inbox, progress, numbering = _audited(_RemovedDocker(), MB, from_files)
    steady = [line(1, n * step, b"x" * 120) for n in range(1, count + 1)]
    lines = [*steady, line(1, end, b"a"), line(1, end + step, b"b"), line(1, later, b"c")]
    await numbering.emit(lines)
    await numbering.finish_audits()
    assert [since for since, _ in asked] == [start]  # one audit of both windows
    records = _queued(inbox)
    recovered = [r for r in records if isinstance(r, LogRecord) and r.data == b"skipped"]
    assert len(recovered) == 1
    assert progress.stats.recovered == 1
    gaps = [(g.stream, g.from_ts, g.to_ts, g.reason) for g in records if isinstance(g, GapRecord)]
    assert gaps == [("stdout", end + step, later, UNREAD_GAP)]
