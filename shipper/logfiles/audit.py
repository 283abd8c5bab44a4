"""Re-read the windows where dockerd's follow stream may have skipped rotated files.

One container's suspect windows (:mod:`shipper.logfiles.rotation`) are merged and read again
without following, at most one request at a time and one every ``AUDIT_EVERY``
seconds, beside the follow stream (which must not fall further behind meanwhile).
What the re-read finds goes back to the follower through two callbacks.

Until a window was read again, the lines after its start that the follower read go to
the disk buffer with the stream's saved position held at the window's start
(:meth:`Auditor.holds`, shipper/follow/numbering.py): a shipper stopped meanwhile (a
SIGTERM, a kill -9) resumes from there and reads the window again, instead of from past
it, which lost the lines the stream had skipped without a word. The lines read again
are the same lines, with the same ids, which the collector indexes once.

A log whose rotated files are compressed is read again from its start (``since=0``), up
to the window's end: dockerd (20.10) decompresses the rotated files oldest first and
stops at the first whose last entry is older than ``since``, so a ``since`` inside the
log skips every compressed file, the newer ones too. Such a window came back empty,
its lines, still in the files, were reported as a gap and never shipped (of 60,000
lines written with ``max-size=500k``, ``max-file=10``, ``compress=true``, 37,571).

A container removed before its windows were read again (a ``--rm`` one that exits, a
``docker rm -f``) has no log dockerd still serves. Judged with nothing, every window was
a gap, also when the follow stream had skipped nothing (under load, 14 gaps for a log
whose every line was shipped). The windows are read from the log files the shipper holds
for a ``--rm`` container's tail (shipper/follow/rescue.py) and judged as dockerd's answer
would be. Where those files do not reach (none are held, or the window's file was never
taken) nobody can tell whether anything was skipped: one gap per stream says that lines
may be missing over those windows' span.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, Awaitable, Callable

from prometheus_client import Counter

from shipper.demux import format_since
from shipper.dockerd import ServesLogs
from shipper.errors import ContainerGone, DemuxError, DockerUnavailable
from shipper.logfiles.rotation import FileRead, JumpDetector, Window, judge, merge, unread
from shipper.rejoin import Line, LineReader

AUDIT_EVERY = 0.5  # seconds between two audits of one container (windows wait and merge)

# For tests only, never set in a deployment: seconds each audit waits, once counted,
# before it reads, so that an integration test can stop the shipper while a window waits
# (tests/integration/test_capture_held_window.py; a real audit takes milliseconds).
# LOGPIPE_TEST_* names are tooling's, not settings (collector/envnames.py).
TEST_DELAY_ENV = "LOGPIPE_TEST_AUDIT_DELAY"


def _test_delay() -> float:
    try:
        return max(0.0, float(os.environ.get(TEST_DELAY_ENV, "0")))
    except ValueError:
        return 0.0


AUDITS = Counter(
    "logpipe_shipper_rotation_audits_total",
    "Re-reads of windows where dockerd's follow stream may have skipped rotated files.",
)
RECOVERED = Counter(
    "logpipe_shipper_lines_recovered_total",
    "Lines dockerd's follow stream skipped after a rotation that a re-read recovered.",
)


async def read_lines(
    docker: ServesLogs, cid: str, since: str, until: str, max_line_bytes: int
) -> AsyncGenerator[list[Line], None]:
    """The lines of each response chunk of a read without following, from `since` to
    `until`. ContainerGone ends it (raised to the caller, which decides what the lines
    already read are worth); an unreadable response is DockerUnavailable. The response
    is closed however the read ends: close this generator when leaving it early."""
    reader = LineReader(max_line_bytes)
    chunks = docker.logs(cid, since, follow=False, until=until)
    try:
        async for chunk in chunks:
            yield reader.feed(chunk)
    except DemuxError as exc:
        raise DockerUnavailable(str(exc)) from exc
    finally:
        await chunks.aclose()


Recover = Callable[[str, Line, int], Awaitable[None]]  # stream, line, seq
Report = Callable[[Window, int | None], Awaitable[None]]  # gap, estimated lines
# What the log files the shipper holds give from one time to another (both inclusive),
# or None when it holds none: shipper/follow/rescue.py.
FromFiles = Callable[[int, int], Awaitable[FileRead | None]]


class Auditor:
    """Audits one container's suspect windows; ``finish()`` before the follower ends."""

    def __init__(
        self,
        docker: ServesLogs,
        cid: str,
        max_line_bytes: int,
        jumps: JumpDetector,
        recover: Recover,
        report: Report,
        compressed: bool = False,
        from_files: FromFiles | None = None,
    ) -> None:
        self._docker = docker
        self._compressed = compressed
        self._from_files = from_files
        self._cid = cid
        self._max = max_line_bytes
        self._jumps = jumps
        self._recover = recover
        self._report = report
        self._windows: list[Window] = []
        self._reading: list[Window] = []  # the windows of the audit under way
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> bool:
        """Whether a window waits to be read again, or is being read."""
        return bool(self._windows or self._reading)

    def holds(self) -> dict[str, int]:
        """Per stream, the earliest start of its windows not read again yet: the saved
        position must not pass it."""
        held: dict[str, int] = {}
        for window in (*self._reading, *self._windows):
            if window.start < held.get(window.stream, window.start + 1):
                held[window.stream] = window.start
        return held

    def suspect(self, window: Window) -> None:
        """Queue a window; an audit starts unless one is running."""
        self._windows.append(window)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=f"audit-{self._cid[:12]}")

    async def finish(self) -> None:
        """Wait until every queued window was audited."""
        if self._windows and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._loop())
        if self._task is not None:
            await self._task

    def cancel(self) -> None:
        """Stop auditing (the follower is cancelled)."""
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        while self._windows:
            windows, self._windows = self._windows, []
            self._reading = windows
            try:
                await self._once(windows)
            except DockerUnavailable:
                self._windows = windows + self._windows  # dockerd is away: try again later
            finally:
                self._reading = []
            await asyncio.sleep(AUDIT_EVERY)

    async def _once(self, windows: list[Window]) -> None:
        start, end = merge(windows)
        lines: list[Line] = []
        AUDITS.inc()
        if delay := _test_delay():
            await asyncio.sleep(delay)
        since = "0" if self._compressed else format_since(start)  # module docstring
        read = read_lines(self._docker, self._cid, since, format_since(end), self._max)
        try:
            async with contextlib.aclosing(read):
                async for got in read:
                    # Read from the log's start (compressed), only the window's lines are
                    # kept: a whole log held at once is what a shipper must never weigh.
                    lines += [line for line in got if line.ts >= start]
        except ContainerGone:
            lines, windows = await self._read_held(windows, start, end)
        verdict = judge(windows, lines)
        for stream, line, seq in verdict.recovered:
            RECOVERED.inc()
            await self._recover(stream, line, seq)
        for gap in verdict.gaps:
            await self._report(gap, self._jumps.estimate(gap.stream, gap.start, gap.end))

    async def _read_held(
        self, windows: list[Window], start: int, end: int
    ) -> tuple[list[Line], list[Window]]:
        """The container was removed: the lines the log files held give for the windows,
        and the windows they reach over, to be judged; the others are reported as
        unread (module docstring)."""
        read = None if self._from_files is None else await self._from_files(start, end)
        told = [] if read is None else [w for w in windows if read.tells(w)]
        untold = [w for w in windows if read is None or not read.tells(w)]
        for gap in unread(untold):
            await self._report(gap, None)
        return ([] if read is None else read.lines), told
