"""Notice where dockerd's follow stream skipped rotated log files, and read them back.

With ``max-size`` rotation (always on under the ``local`` driver) a follower that falls
behind a fast writer loses whole rotated files without any error (docs/docker-logs.md): the
stream jumps from the end of one file to the start of a later one. Such a jump is at
least the time the container needed to fill the skipped file, so a step between two
entries of a stream that is a good part of the time to fill one file (measured from the
bytes the container wrote lately) makes its window suspect. The window is then read
again without following (``since``/``until``, both inclusive): entries strictly inside
it were never taken, so they are emitted now; and when dockerd no longer has the entry
the window starts at, the files that held the window are gone and what was between is
reported as a gap. Steps of a slow writer never reach the threshold, so idle containers
cost nothing; the audit reads at most the few files rotation keeps.

Until the first rate sample is whole (``SAMPLE_ENTRIES`` or ``SAMPLE_NS``), the rate is
that of the entries taken so far, up to the one before the step, once they are half a
sample (``EARLY_ENTRIES``; a first batch alone overstates the rate): a burst's first
rotations come within that sample (a 100 kB file holds about 1,300 of busybox's short
entries), and files skipped there went unsuspected, without a window or a gap.

A jump is where dockerd's follower, a rotation or more behind, opened the log's current
file; the rename events it had not read yet then make it skip again at the next
rotation, the rest of the file it is in: often a run of one stream's entries that
dockerd stamped within a few ms from one read of the container's pipe (430 lines over a
4.4 ms step), far shorter than a quarter of a file's time at the mean rate. So for two
files' worth of entries after a jump (``CLOSE_FILES``), every step longer than ``CLOSE_STEP_NS`` is
suspect too (:meth:`JumpDetector.observe`); its windows join the jump's in the same
audits (``AUDIT_EVERY``), which read the span once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shipper.cursor import Position, Sequencer
from shipper.demux import STREAM_NAMES
from shipper.rejoin import Line

OVERHEAD = 64  # bytes an entry takes on disk beyond its line (JSON or protobuf framing)
MIN_STEP_NS = 5_000_000  # shorter steps are scheduling noise, never a whole file
FRACTION = 4  # suspect a step longer than a quarter of the time to fill one file
CLOSE_STEP_NS = 1_000_000  # ... and for two files after a jump, any step longer than this
CLOSE_FILES = 2
SAMPLE_NS = 200_000_000  # the write rate is measured over spans of about this
SAMPLE_ENTRIES = 2048  # ... or of this many entries, whichever comes first
EARLY_ENTRIES = SAMPLE_ENTRIES // 2  # before a first whole sample, its rate counts from this
LOCAL_DEFAULT_SIZE = "20m"  # the `local` driver's default max-size
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int | None:
    """Bytes of a Docker size such as ``1m`` or ``10k``, or None. dockerd reads ``max-size``
    with decimal multiples (``k`` is 1000, with or without ``i``): with ``max-size=100k``
    its files rotated at 100,008 to 100,037 bytes, under ``json-file`` and ``local``."""
    match = _SIZE.match(text)
    if match is None:
        return None
    power = " kmgtp".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * 1000**power)


def file_bytes(driver: str, opts: dict[str, str]) -> int | None:
    """How many bytes one log file holds before rotation, or None if the log never rotates."""
    if driver == "local":
        size = parse_size(opts.get("max-size", LOCAL_DEFAULT_SIZE))
    elif driver in ("json-file", "") and "max-size" in opts:
        size = parse_size(opts["max-size"])
    else:
        return None
    return size if size and size > 0 else None


def compressed(driver: str, opts: dict[str, str]) -> bool:
    """Whether rotation gzips the files it renames: ``compress=true`` under ``json-file``,
    on unless ``compress=false`` under ``local`` (dockerd reads the option as a Go bool)."""
    default = "true" if driver == "local" else "false"
    return opts.get("compress", default).strip().lower() in ("1", "t", "true")


@dataclass(slots=True)
class Window:
    """Two consecutive entries of one stream, with possibly skipped entries between;
    `close`: a step suspect only for coming soon after a jump (``CLOSE_STEP_NS``), which
    may as well have skipped nothing."""

    stream: str
    start: int
    end: int
    close: bool = False
    unread: bool = False  # a gap only: the container removed, no file held reaches it


@dataclass(slots=True)
class _Sample:
    first: int = -1
    last: int = 0
    bytes: int = 0
    entries: dict[str, int] = field(default_factory=dict)


class JumpDetector:
    """Watches the entries taken from a rotating log and flags suspect steps. Pure."""

    def __init__(self, file_size: int) -> None:
        self._file = file_size
        self._last: dict[str, int] = {}
        self._rate = 0.0  # bytes written per ns, both streams together
        self._line_rate: dict[str, float] = {}  # entries per ns, per stream
        self._sample = _Sample()
        self._close = 0  # bytes still watched closely after a jump (module docstring)

    def restart(self) -> None:
        """A new request starts: steps across requests are covered by the resume check."""
        self._last.clear()

    def observe(self, stream: str, ts: int, size: int) -> Window | None:
        """Note an entry taken; return the window before it when that step is suspect."""
        prev = self._last.get(stream)
        if prev is not None and ts < prev:
            return None  # a repeat that the sequencer let through cannot happen; ignore
        self._last[stream] = ts
        suspect = None
        jump = False
        rate = self._rate or self._first_rate()
        if prev is not None:
            step = ts - prev
            jump = rate > 0 and step > MIN_STEP_NS and step * rate * FRACTION > self._file
            if jump:
                # The sample starts again after a jump: the rate that exposed it stays
                # in use, so the other stream's jump over the same file is judged too.
                self._rate = rate
                self._close = CLOSE_FILES * self._file
            if jump or (self._close > 0 and step > CLOSE_STEP_NS):
                suspect = Window(stream, prev, ts, close=not jump)
        self._close = max(0, self._close - size - OVERHEAD)
        self._measure(stream, ts, size + OVERHEAD, restart=jump)
        return suspect

    def _first_rate(self) -> float:
        """Before any sample was whole: bytes per ns of the entries taken so far, once
        there are ``EARLY_ENTRIES`` of them (0 before). The step under judgement is left
        out: a skipped file's step would lower the rate that must expose it. Fewer
        entries are a writer's first batch, whose rate says nothing of its pauses: 200
        lines printed in 10 ms, then 50 ms of pause, made that pause a whole 100 kB file
        skipped, and its audit, read after the file rotated away, a gap of lines that had
        all arrived."""
        s = self._sample
        span = s.last - s.first
        if span <= 0 or sum(s.entries.values()) < EARLY_ENTRIES:
            return 0.0
        return s.bytes / span

    def _measure(self, stream: str, ts: int, size: int, restart: bool) -> None:
        s = self._sample
        if restart or s.first < 0:
            self._sample = s = _Sample(first=ts, last=ts)
        s.last = max(s.last, ts)
        s.bytes += size
        s.entries[stream] = s.entries.get(stream, 0) + 1
        span = s.last - s.first
        if span <= 0 or (span < SAMPLE_NS and sum(s.entries.values()) < SAMPLE_ENTRIES):
            return
        rate = s.bytes / span
        # React at once to a faster writer (that is when files are skipped), slowly to calm.
        self._rate = rate if rate > self._rate else 0.7 * self._rate + 0.3 * rate
        for name, count in s.entries.items():
            self._line_rate[name] = count / span
        self._sample = _Sample(first=ts, last=ts)

    def estimate(self, stream: str, start: int, end: int) -> int | None:
        """About how many entries of `stream` fit between two times at the recent rate."""
        rate = self._line_rate.get(stream)
        if not rate:
            return None
        return max(0, round((end - start) * rate) - 1)


@dataclass(slots=True)
class Verdict:
    """What an audit found: entries to emit now, and gaps (stream, from, to) to report."""

    recovered: list[tuple[str, Line, int]] = field(default_factory=list)
    gaps: list[Window] = field(default_factory=list)


def judge(windows: list[Window], lines: list[Line]) -> Verdict:
    """Compare suspect windows with what dockerd still has for them. Pure.

    `lines` is everything dockerd returned from the earliest window start to the latest
    window end. Entries strictly inside a window were skipped by the follow stream; if
    the entry a window starts at is no longer there, its files are gone and the part
    before the first entry still there is a gap.
    """
    by_stream: dict[str, list[tuple[Line, int]]] = {}
    sequencers: dict[str, Sequencer] = {}
    for line in lines:
        stream = STREAM_NAMES[line.stream]
        seq = sequencers.setdefault(stream, Sequencer(Position())).number(line.ts, hash(line.data))
        if seq is not None:
            by_stream.setdefault(stream, []).append((line, seq))
    verdict = Verdict()
    for window in windows:
        entries = by_stream.get(window.stream, [])
        inside = [(ln, seq) for ln, seq in entries if window.start < ln.ts < window.end]
        verdict.recovered += [(window.stream, ln, seq) for ln, seq in inside]
        if not any(ln.ts == window.start for ln, _ in entries):
            first = inside[0][0].ts if inside else window.end
            verdict.gaps.append(Window(window.stream, window.start, first, window.close))
    return verdict


@dataclass(slots=True)
class FileRead:
    """What the log files the shipper holds gave for a span: its lines, and the times of
    the first and the last entry read from them (the stretch they can tell about)."""

    lines: list[Line]
    first: int
    last: int

    def tells(self, window: Window) -> bool:
        """Whether the files reach over the whole window: only then does a start entry
        missing from them mean its file is gone."""
        return self.first <= window.start and window.end <= self.last


def unread(windows: list[Window]) -> list[Window]:
    """The gaps to report for windows that can no longer be read again, neither from
    dockerd (the container was removed) nor from the log files held (none, or none that
    reaches over them: FileRead.tells): one per stream, from its earliest window's start
    to its latest one's end. Pure. Whether anything was skipped there is not known (under
    load most suspect steps skip nothing), so a gap each would say more than is known,
    and say it many times over."""
    spans: dict[str, Window] = {}
    for w in windows:
        span = spans.setdefault(w.stream, Window(w.stream, w.start, w.end, unread=True))
        span.start = min(span.start, w.start)
        span.end = max(span.end, w.end)
    return list(spans.values())


def merge(windows: list[Window]) -> tuple[int, int]:
    """The one `since`/`until` range that covers every window."""
    return min(w.start for w in windows), max(w.end for w in windows)
