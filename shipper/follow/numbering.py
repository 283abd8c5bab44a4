"""One container's lines numbered, stripped of repeats, and queued as records in order.

Each line gets its sequence number among the lines of its stream with the same
timestamp (shipper/cursor.py); a line dockerd sends again is dropped. The first line of
a response later than the position it resumes from means lines were lost (a gap). The
steps between lines of a rotating log are watched for files dockerd's follow stream
skipped, which the rotation audit reads again (shipper/logfiles/audit.py). A read from
dockerd whose first line is later than its position in a log whose rotated files are
compressed has the span dockerd skipped read first, from the log's start (reread.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from shipper import metrics, native
from shipper.cursor import STREAMS, Position, Sequencer
from shipper.demux import STREAM_NAMES
from shipper.dockerd import ServesLogs
from shipper.follow.gaps import CLOSE_GAP, RESUME_GAP, SKIPPED_GAP, UNREAD_GAP, Gaps
from shipper.follow.progress import Progress
from shipper.follow.reread import after_positions, late_start, reread
from shipper.logfiles.audit import Auditor, FromFiles
from shipper.logfiles.rotation import JumpDetector, Window
from shipper.native import NativeLines
from shipper.record import GapRecord, LogRecord, MarkRecord
from shipper.rejoin import Line

log = logging.getLogger("logpipe.shipper.follow")

YIELD_EVERY = 256  # lines between two yields: events (a new container) must not wait


def firsts(lines: list[Line] | NativeLines) -> list[tuple[str, int]]:
    """(stream, ts) of each stream's first line among `lines`, in the order they come:
    all that reread.late_start looks at (the read's first line, each stream's first)."""
    out: list[tuple[str, int]] = []
    for stream, ts in native.stamps(lines):
        name = STREAM_NAMES[stream]
        if all(seen != name for seen, _ in out):
            out.append((name, ts))
            if len(out) == len(STREAMS):
                break
    return out


class Numbering:
    """Numbers and queues the lines of one container's reads, from its positions."""

    def __init__(
        self, docker: ServesLogs, progress: Progress, gaps: Gaps, max_line_bytes: int
    ) -> None:
        self._docker = docker
        self._progress = progress
        self._gaps = gaps
        self._max_line_bytes = max_line_bytes
        self._expect: dict[str, Position] = {}
        self._sequencers: dict[str, Sequencer] = {}
        self._native: Any = None  # the compiled numbering, for the compiled reader's lines
        self._jumps: JumpDetector | None = None
        self._auditing = False  # the read now is a follow stream's, whose steps are watched
        self._auditor: Auditor | None = None
        # What audits and re-reads of a span read once the container was removed.
        self._from_files: FromFiles | None = None
        self._held: set[str] = set()  # streams whose records were held at a window
        self._gap_reason = RESUME_GAP
        self._compressed = False  # the log's rotated files are gzipped
        self._from_dockerd = False  # the read now is dockerd's, not yet begun: see reread.py
        self.generation = 0  # restarts so far: a read that goes on needs the same one

    def restart(
        self, check_start: bool, audit: bool, reason: str = RESUME_GAP, dockerd: bool = False
    ) -> None:
        """A new read begins at the positions reached now. `check_start`: its first line
        of each stream is checked for a gap (a response from dockerd, or a read of every
        file of the log), which says `reason`. `audit`: the steps between its lines are
        watched for files a follow stream skipped (only dockerd's streams skip any).
        `dockerd`: the read is a response from dockerd, which skips a compressed log's
        rotated files after a position inside them: a late start is read again first."""
        self.generation += 1
        positions = self._progress.positions
        self._sequencers = {s: Sequencer(positions[s]) for s in STREAMS}
        self._native = native.sequencers(positions) if native.enabled() else None
        self._expect = (
            {s: p for s, p in positions.items() if self._read_to(s, p)} if check_start else {}
        )
        self._gap_reason = reason
        self._from_dockerd = dockerd and check_start
        self._auditing = audit
        if audit and self._jumps is not None:
            self._jumps.restart()

    def _read_to(self, stream: str, position: Position) -> bool:
        """Whether the log was read up to this position, so that a read beginning later
        began late: a line was taken there, or it is the saved position held at a
        window's start behind lines read already (which has no line counted, as the
        position of a stream never read has none)."""
        return position.count > 0 or self._progress.held.get(stream) == position

    def go_on(self) -> None:
        """The next read goes on from where the last one of this generation ended (the
        same file, from its end): numbered on among equal timestamps, with no gap check
        (its first line is later than the positions by nature)."""
        self._expect = {}
        self._from_dockerd = False

    def read_held_files_with(self, from_files: FromFiles) -> None:
        """Audits, and reads of a span dockerd skipped (reread.py), that find the
        container removed read it with `from_files`: the log files held for a ``--rm``
        container's tail (rescue.py)."""
        self._from_files = from_files

    def watch_rotation(self, file_bytes: int | None, compressed: bool = False) -> None:
        """Audit the steps between lines of a log rotated every `file_bytes` (None: never),
        whose rotated files are gzipped when `compressed`."""
        self._jumps = JumpDetector(file_bytes) if file_bytes else None
        self._compressed = compressed and file_bytes is not None
        self._auditor = None
        if self._jumps is not None:
            self._auditor = Auditor(
                self._docker,
                self._progress.cid,
                self._max_line_bytes,
                self._jumps,
                self._recovered,
                self._skipped_gap,
                compressed,
                self._from_files,
            )

    async def finish_audits(self) -> None:
        """Wait until every suspect step was read again."""
        if self._auditor is not None:
            await self._auditor.finish()

    def released(self) -> list[MarkRecord]:
        """Once every window was read again (:meth:`finish_audits`) and every line read
        is queued: a mark per stream whose records were held, at the position it was read
        to, so that the saved cursor reaches the log's end when they are acknowledged.
        Without them it stays at the window's start, the next start reads the window's
        lines again and sends them marked as sent again, and /status never shows the
        container read to its end."""
        positions = self._progress.positions
        marks = [
            MarkRecord(self._progress.meta, s, positions[s])
            for s in sorted(self._held)
            if s in positions
        ]
        self._held.clear()
        return marks

    def cancel_audits(self) -> None:
        """Stop auditing (the follower ends)."""
        if self._auditor is not None:
            self._auditor.cancel()

    async def emit(self, lines: list[Line] | NativeLines) -> None:
        """Number the lines of one read and queue them, a slice at a time, in order; at
        the first lines of a read from dockerd that began late in a compressed log, the
        span it skipped first."""
        if self._from_dockerd and len(lines):
            self._from_dockerd = False
            if not self._progress.decided.is_set():
                await self._progress.decided.wait()  # it tells whether the log is compressed
            if self._compressed and self._expect and not self._progress.skip:
                await self._reread_span(lines)
        await self._emit(lines)

    async def _reread_span(self, lines: list[Line] | NativeLines) -> None:
        """Read what dockerd skipped before these first lines of a read (reread.py)."""
        first = firsts(lines)
        if not late_start(first, self._expect):
            return
        positions = self._progress.positions
        expect = self._expect
        try:
            found = await reread(
                self._docker,
                self._progress.cid,
                self._max_line_bytes,
                first[0],
                lambda got: after_positions(got, positions, expect),
                self._emit,
                self._from_files,
                min(p.ts for p in expect.values()),
            )
        finally:
            # Numbered in Python: the compiled numbering goes on from where it ended.
            if self._native is not None:
                self._native = native.sequencers(positions)
        log.info(
            "read resumed past its position in a compressed log: the span read again",
            extra={"container": self._progress.cid[:12], "lines": found},
        )

    async def _emit(self, lines: list[Line] | NativeLines) -> None:
        decided = self._progress.decided
        for start in range(0, len(lines), YIELD_EVERY):
            if start:
                await asyncio.sleep(0)  # a long read must not hold up other containers
            if not decided.is_set():
                await decided.wait()
            if not isinstance(lines, list):
                records = self._numbered_natively(lines, start, start + YIELD_EVERY)
            elif len(lines) <= YIELD_EVERY:
                records = self._numbered(lines)
            else:
                records = self._numbered(lines[start : start + YIELD_EVERY])
            await self._progress.out.put_many(records)

    def _numbered_natively(
        self, lines: NativeLines, start: int, stop: int
    ) -> list[LogRecord | GapRecord]:
        """What _numbered does, for the compiled reader's lines[start:stop], in one call."""
        progress = self._progress
        jumps = self._jumps if self._auditing else None
        ship = not progress.skip
        out: list[LogRecord | GapRecord]
        out, shipped, size, truncated, dropped, last_ts, touched = self._native.number(
            lines,
            start,
            stop,
            progress.meta,
            LogRecord,
            ship or jumps is not None,
            self._expect,
            self._resume_gap,
            progress.stats.last_ts,
        )
        if dropped:
            metrics.DUPLICATES_DROPPED.inc(dropped)
        if jumps is not None:
            for record in out:
                if isinstance(record, LogRecord):
                    window = jumps.observe(record.stream, record.ts, len(record.data))
                    if window is not None and self._auditor is not None:
                        self._auditor.suspect(window)
            if not ship:
                out = [r for r in out if not isinstance(r, LogRecord)]
                shipped = size = truncated = 0
        for stream in touched:
            progress.positions[stream] = Position(*self._native.reached(stream))
        self._counted(shipped, size, truncated)
        progress.stats.last_ts = last_ts
        if self._auditor is not None and self._auditor.pending:
            self._hold(out, self._auditor.holds())
        return out

    def _resume_gap(self, stream: str, from_ts: int, to_ts: int) -> GapRecord:
        return self._gaps.record(stream, from_ts, to_ts, self._gap_reason)

    def _numbered(self, lines: list[Line]) -> list[LogRecord | GapRecord]:
        """The slice's lines numbered, as records (repeats dropped, gaps reported).

        One loop for the slice: the positions, stats and counters are updated once at
        its end (no await comes in between), as per line they cost more than the line.
        """
        progress = self._progress
        sequencers = self._sequencers
        expect = self._expect
        jumps = self._jumps if self._auditing else None
        ship = not progress.skip
        meta = progress.meta
        out: list[LogRecord | GapRecord] = []
        touched: set[str] = set()
        last_ts = progress.stats.last_ts
        shipped = size = truncated = 0
        for line in lines:
            stream = STREAM_NAMES[line.stream]
            ts = line.ts
            data = line.data
            if expect:
                wanted = expect.pop(stream, None)
                if wanted is not None and ts > wanted.ts:
                    out.append(self._gaps.record(stream, wanted.ts, ts, self._gap_reason))
            seq = sequencers[stream].number(ts, hash(data))
            if seq is None:
                metrics.DUPLICATES_DROPPED.inc()
                continue
            touched.add(stream)
            if jumps is not None:
                window = jumps.observe(stream, ts, len(data))
                if window is not None and self._auditor is not None:
                    self._auditor.suspect(window)
            if ts > last_ts:
                last_ts = ts
            if ship:
                out.append(LogRecord(meta, stream, ts, seq, data, line.truncated))
                shipped += 1
                size += len(data)
                truncated += line.truncated
        for stream in touched:
            progress.positions[stream] = sequencers[stream].reached
        self._counted(shipped, size, truncated)
        progress.stats.last_ts = last_ts
        if self._auditor is not None and self._auditor.pending:
            self._hold(out, self._auditor.holds())
        return out

    def _hold(self, out: list[LogRecord | GapRecord], holds: dict[str, int]) -> None:
        """Hold the position each record lets the saved cursor reach at the start of
        its stream's earliest window not read again yet (shipper/logfiles/audit.py):
        stopped before that audit, the shipper reads the window again at its next start.
        A held record keeps its own end in `written`: how far the lines in the disk
        buffer go, which the next start marks as sent again (shipper/cursor.py)."""
        for record in out:
            if type(record) is LogRecord and (start := holds.get(record.stream)) is not None:
                end = record.end()
                if (end.ts, end.count) > (start, 0):
                    record.written = end
                    record.until = Position(start, 0)
                    self._held.add(record.stream)

    def _counted(self, lines: int, size: int, truncated: int) -> None:
        stats = self._progress.stats
        stats.lines += lines
        stats.bytes += size
        metrics.READ.add_many(lines, size)
        if truncated:
            metrics.LINES_TRUNCATED.inc(truncated)

    def _record(self, stream: str, line: Line, seq: int) -> LogRecord | None:
        """The line as a record, counted; None when the container is not shipped."""
        if self._progress.skip:
            return None
        self._counted(1, len(line.data), line.truncated)
        return LogRecord(self._progress.meta, stream, line.ts, seq, line.data, line.truncated)

    async def _recovered(self, stream: str, line: Line, seq: int) -> None:
        if not self._progress.decided.is_set():
            await self._progress.decided.wait()
        self._progress.stats.recovered += 1
        record = self._record(stream, line, seq)
        if record is not None:
            # A line of the window, behind those read after it, whose positions are held
            # (_hold): it notes how far they go, as the last record of its stream in a
            # batch must for the lines before it (a batch keeps the last one's only).
            reached = self._progress.positions.get(stream)
            if reached is not None and reached.passes(record.end()):
                record.written = Position(reached.ts, reached.count)
            await self._progress.out.put(record)

    async def _skipped_gap(self, gap: Window, estimate: int | None) -> None:
        if gap.unread:  # the container removed, no file held reaches it: nobody can tell
            await self._gaps.put(gap.stream, gap.start, gap.end, UNREAD_GAP)
        elif gap.close:  # a short step, which may have skipped nothing: no estimate either
            await self._gaps.put(gap.stream, gap.start, gap.end, CLOSE_GAP)
        else:
            await self._gaps.put(gap.stream, gap.start, gap.end, SKIPPED_GAP, estimate)
