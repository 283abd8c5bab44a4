"""Follow one container's log stream from its position until the container is done.

The request for the logs goes out first and the container is inspected after: a
``--rm`` container may be removed within milliseconds of its start, and a request
already accepted keeps streaming after removal (docs/docker-logs.md). Lines wait for that
inspection before they are queued, so an opt-out only visible there is honoured.

A container seen on its ``create`` event is asked for its logs again and again until it
runs (a request made then stays open): the ``start`` event comes later than the start
itself, too late for a container that exits and is removed within tens of ms. When
such a request carried lines, its end is handled like any follow stream's end below.

dockerd ends a follow stream when the container stops even if its reader was behind,
so each stream end is followed by a read without ``follow`` from the position reached,
and only then by an inspection that tells whether the container is done: a stream that
ended while the container runs (dockerd restarting, a silent stream cut) is resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

from shipper import metrics
from shipper.cursor import STREAMS, Position, Sequencer, last_read
from shipper.demux import STREAM_NAMES, format_since
from shipper.docker_api import ContainerSummary, DockerClient, Pace, ReadAhead
from shipper.errors import ContainerGone, DemuxError, DockerError, DockerUnavailable
from shipper.inbox import Inbox
from shipper.logfiles import jsonfile
from shipper.logfiles.audit import Auditor
from shipper.logfiles.rotation import JumpDetector, Window, file_bytes
from shipper.logfiles.watch import LogFiles
from shipper.record import GapRecord, LogRecord, Meta
from shipper.rejoin import Line, LineReader

log = logging.getLogger("logpipe.shipper.follow")

RECONNECT_INITIAL = 0.2
RECONNECT_MAX = 10.0
PRESTART_FOR = 5.0  # seconds a created container is polled for its start
PRESTART_POLL = (0.002, 0.05)  # first and longest pause between two polls
YIELD_EVERY = 256  # lines between two yields: events (a new container) must not wait
RESUME_GAP = "lines before the resume point were no longer in Docker's log (rotated or removed)"
SKIPPED_GAP = "dockerd's follow stream skipped rotated log files and they were gone when re-read"
REMOVED_GAP = "the container was removed before its logs could be read"
REMOVED_EARLY_GAP = "the container was removed before the rest of its log could be read"
_UNCONFIRMED = (
    "the container was removed before the end of its log could be read: lines after this"
    " may be missing"
)
NO_FILE_GAP = _UNCONFIRMED + " (the shipper could not read its log file)"
ROTATED_AWAY_GAP = _UNCONFIRMED + " (the log file the shipper held had been rotated away)"
ROTATED_BETWEEN_GAP = (
    "the log file of these lines was rotated away before the shipper took it, and the"
    " container was removed before they could be read"
)
ROTATED_FULL_GAP = (
    _UNCONFIRMED + " (the log file the shipper held was full: rotation may have begun another)"
)


@dataclass(slots=True)
class Stats:
    """What /status shows for one container."""

    state: str = "starting"
    lines: int = 0
    bytes: int = 0
    last_ts: int = 0
    recovered: int = 0
    gaps: int = 0
    started: float = field(default_factory=time.time)


class Follower:
    """Reads one container's logs, numbers and de-duplicates them, and queues records."""

    def __init__(
        self,
        docker: DockerClient,
        meta: Meta,
        positions: dict[str, Position],
        out: Inbox,
        max_line_bytes: int,
        prestart: bool = False,
        complete: bool = False,
        pace: float = 0.0,
        files: LogFiles | None = None,
    ) -> None:
        self.docker = docker
        self.prestart = prestart  # created, not started yet: poll until it runs
        self.meta = meta
        self.positions = positions  # shared with the supervisor: survives this follower
        self.out = out
        self.max_line_bytes = max_line_bytes
        self.stats = Stats()
        self.again = False  # a start event came while we were finishing
        self.wake = asyncio.Event()  # set to retry at once (dockerd is back)
        self.read_to_end = False  # it stopped and its whole log was read (or reported lost)
        self._fresh = all(p.count == 0 for p in positions.values())  # never read before
        self._unread = not complete  # its log may hold lines past the positions
        self._decided = asyncio.Event()
        self._skip = False
        self._jumps: JumpDetector | None = None
        self._auditor: Auditor | None = None
        self._expect: dict[str, Position] = {}
        self._sequencers: dict[str, Sequencer] = {}
        self._received = 0  # bytes of the last response
        self._tty = False
        # A --rm container's json-file log is read if the API cannot give its tail. Until
        # inspection says whether it is one, its file is taken if there is one.
        self._files = files
        self._want_file = files is not None
        self._log_path = ""  # as inspection gave it ("" before the container ran)
        self._logfile: jsonfile.HeldLog | None = None
        self._rotates_at: int | None = None  # bytes of a log file when dockerd rotates it
        self._pace_after_inspection = pace  # seconds; 0: never paced
        self._pace = Pace()  # follow streams read at once until inspection says otherwise

    @property
    def cid(self) -> str:
        """The container id."""
        return self.meta.id

    def learn(self, summary: ContainerSummary | None, meta: Meta, skip: bool) -> None:
        """Take what inspecting the container told (None: it was gone); lines may flow."""
        self.meta = meta
        self._skip = skip
        # A --rm container's stream end must be seen at once (the rest of its log is
        # asked for before it is removed): only other containers' streams are paced.
        paced = summary is not None and not summary["auto_remove"]
        self._pace.seconds = self._pace_after_inspection if paced else 0.0
        if summary is not None:
            self._tty = summary["tty"]
            if summary["auto_remove"] and summary["log_driver"] in ("json-file", ""):
                self._log_path = summary["log_path"]
                self._want_file = True
                self._open_file()
            else:
                self._let_file_go()
            size = file_bytes(summary["log_driver"], summary["log_opts"])
            self._rotates_at = size
            self._jumps = JumpDetector(size) if size else None
            self._auditor = None
            if self._jumps is not None:
                self._auditor = Auditor(
                    self.docker,
                    self.cid,
                    self.max_line_bytes,
                    self._jumps,
                    self._recovered,
                    self._skipped_gap,
                )
        if skip:
            self._let_file_go()
        self._decided.set()

    @property
    def decided(self) -> bool:
        """Whether inspecting the container (or its end) has said if it is shipped."""
        return self._decided.is_set()

    async def skipped(self, wait: float) -> bool:
        """Whether inspecting the container said not to ship it (waits for the answer)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._decided.wait(), wait)
        return self._skip

    async def run(self) -> None:
        """Follow until the container has stopped (or is gone) and its lines are queued."""
        delay = RECONNECT_INITIAL
        try:
            if self.prestart and not await self._await_start():
                return
            while True:
                self.again = False
                try:
                    done = await self._cycle()
                except DockerUnavailable as exc:
                    self._interrupted(exc)
                    await self._sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX)
                    continue
                if done and not self.again:
                    break
                delay = RECONNECT_INITIAL
                await asyncio.sleep(0.05)
            if self._auditor is not None:
                await self._auditor.finish()
            self.stats.state = "gone"
        finally:
            if self._auditor is not None:
                self._auditor.cancel()
            self._let_file_go()

    def _open_file(self) -> None:
        """Take the container's log file (opened ahead, or now if it is there)."""
        if self._logfile is not None or not self._want_file:
            return
        if self._files is not None:
            f = self._files.open(self.cid, self._log_path)
        else:
            f = jsonfile.open_log(self._log_path)
        self._logfile = None if f is None else jsonfile.HeldLog(f)

    def _let_file_go(self) -> None:
        self._want_file = False
        if self._logfile is not None:
            self._logfile.close()
            self._logfile = None
        if self._files is not None:
            self._files.drop(self.cid)

    def _interrupted(self, exc: Exception) -> None:
        self.stats.state = "reconnecting"
        metrics.RECONNECTS.inc()
        log.warning(
            "log stream interrupted", extra={"container": self.cid[:12], "reason": str(exc)}
        )

    async def _sleep(self, delay: float) -> None:
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), delay)

    async def _await_start(self) -> bool:
        """Poll the logs of a created container until it runs; False if it never did here."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PRESTART_FOR
        pause, longest = PRESTART_POLL
        answered = 0.0
        self.stats.state = "created"
        while loop.time() < deadline:
            rest: list[ReadAhead] = []  # asked for if the poll's stream ends with lines
            try:
                await self._follow(rest, only_after_lines=True)
            except BaseException as exc:
                _close(rest)
                if isinstance(exc, DockerUnavailable):
                    return True  # the ordinary loop retries with backoff
                if not isinstance(exc, ContainerGone):
                    raise
                # Polls answer every few ms; removal comes tens of ms after exit. If the
                # last answer is older than that, the container may have come and gone.
                if self._unread and loop.time() - answered > 0.025:
                    await self._removed_unread()
                return False
            answered = loop.time()
            if self._received:
                # It started during this poll, whose stream ended if it stopped, read or
                # not: what was left is asked for already, before a --rm container goes.
                with contextlib.suppress(DockerUnavailable):  # the ordinary loop retries
                    await self._drain(rest)
                return True
            if self.again:
                return True
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, longest)
        self.stats.state = "created"
        return False

    async def _cycle(self) -> bool:
        """Follow, then read what the follow stream left; True when the container is done."""
        finished = self.read_to_end  # the last cycle read it to its end (then a start came)
        self.read_to_end = False
        rest: list[ReadAhead] = []  # asked for the moment the follow stream ends
        try:
            await self._follow(rest)
        except BaseException as exc:
            _close(rest)
            if not isinstance(exc, ContainerGone):
                raise
            self._open_file()
            if self._logfile is not None:
                # Removed while we were away (a broken stream, a reconnect): the file
                # held open has what its log held.
                await self._rescue()
            elif self._unread:
                await self._removed_unread()
            elif finished:
                self.read_to_end = True
            else:
                await self._unconfirmed_end()
            return True
        return await self._drain(rest)

    async def _follow(self, rest: list[ReadAhead], only_after_lines: bool = False) -> None:
        """Follow from the positions; the moment the stream ends, ask for the rest (a start
        poll only if its stream carried lines: an empty one just means not started yet)."""

        def ended(received: int) -> None:
            if received or not only_after_lines:
                rest.append(ReadAhead(self._logs(follow=False)))

        stream = self._logs(follow=True, on_end=ended)
        try:
            await self._consume(stream, follow=True)
        finally:
            await stream.aclose()

    async def _drain(self, rest: list[ReadAhead]) -> bool:
        """Read what a follow stream left out; True when the container is done."""
        if not rest:
            return False
        self.stats.state = "draining"
        try:
            reader = await self._consume(rest[0].chunks(), follow=False)
        except ContainerGone:
            # A --rm container is being removed by the time its follow stream ends
            # (measured: ~30 ms after die, 3-7 ms before destroy): its file, if we
            # could open it, holds what the stream may have left out.
            await self._rescue()
            return True
        finally:
            _close(rest)
        if await self._running():
            return False
        await self._emit(reader.finish())
        self.read_to_end = True
        return True

    def _logs(
        self, follow: bool, on_end: Callable[[int], None] | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The logs from the positions reached now (asked for when first iterated)."""
        since = format_since(min(p.ts for p in self.positions.values()))
        pace = self._pace if follow else None
        return self.docker.logs(self.cid, since, follow=follow, pace=pace, on_end=on_end)

    async def _consume(self, chunks: AsyncIterator[bytes], follow: bool) -> LineReader:
        """Lines of a response, numbered from the positions reached now."""
        self._sequencers = {s: Sequencer(self.positions[s]) for s in STREAMS}
        self._expect = {s: p for s, p in self.positions.items() if p.count > 0}
        reader = LineReader(self.max_line_bytes)
        self.stats.state = "following" if follow else "draining"
        if self._jumps is not None:
            self._jumps.restart()
        self._received = 0
        try:
            async for chunk in chunks:
                self._received += len(chunk)
                self._unread = False
                if self._logfile is not None:
                    self._logfile.keep_up(self._log_path, time.monotonic())
                elif self._want_file:
                    self._open_file()
                await self._emit(reader.feed(chunk))
        except DemuxError as exc:
            log.error(
                "log stream unreadable, reconnecting",
                extra={"container": self.cid[:12], "reason": str(exc)},
            )
            raise DockerUnavailable(str(exc)) from exc
        return reader

    async def _rescue(self) -> None:
        """Read the tail of a removed container from the log file held open; without
        one, what it may have logged after the last line read is reported as a gap."""
        self._open_file()  # a file opened ahead was perhaps never taken
        if self._logfile is None:
            await self._unconfirmed_end()
            return
        jsonfile.RESCUES.inc()
        since = last_read(self.positions.values())
        held = self._logfile
        data = await asyncio.to_thread(held.read_since, since)
        found = jsonfile.lines(data, self.max_line_bytes, self._tty)
        read_before = any(p.count for p in self.positions.values())
        if read_before and not any(line.ts >= since for line in found):
            # The last line read is not in it: rotation renamed this file away (and
            # started the one the tail is in) after it was opened.
            await self._lost_after(ROTATED_AWAY_GAP)
            return
        first = min((line.ts for line in found), default=since)
        if read_before and first > since:
            # The files held start after the last line read: the one it was in, and
            # perhaps more, had been rotated away before the shipper looked.
            for stream in STREAMS:
                await self._gap(stream, since, first, ROTATED_BETWEEN_GAP)
        self._sequencers = {s: Sequencer(self.positions[s]) for s in STREAMS}
        self._expect = {}
        before = self.stats.lines
        await self._emit(found)
        self.read_to_end = True
        if self.stats.lines > before:
            log.info(
                "tail read from the log file of a removed container",
                extra={"container": self.cid[:12], "lines": self.stats.lines - before},
            )
        if await asyncio.to_thread(held.full, self._rotates_at):
            # A file rotated after the last look at it ends where dockerd was about to
            # start another: its end need not be the log's.
            await self._lost_after(ROTATED_FULL_GAP)

    async def _running(self) -> bool:
        try:
            info = await self.docker.inspect(self.cid)
        except ContainerGone:
            return False
        except DockerError as exc:
            raise DockerUnavailable(f"cannot inspect after stream end: {exc}") from exc
        return info["running"]

    async def _emit(self, lines: list[Line]) -> None:
        """Number the lines of one read and queue them, a slice at a time, in order."""
        for start in range(0, len(lines), YIELD_EVERY):
            if start:
                await asyncio.sleep(0)  # a long read must not hold up other containers
            if not self._decided.is_set():
                await self._decided.wait()
            part = lines if len(lines) <= YIELD_EVERY else lines[start : start + YIELD_EVERY]
            records: list[LogRecord | GapRecord] = []
            for line in part:
                self._number(line, records)
            await self.out.put_many(records)

    def _number(self, line: Line, out: list[LogRecord | GapRecord]) -> None:
        stream = STREAM_NAMES[line.stream]
        wanted = self._expect.pop(stream, None)
        if wanted is not None and line.ts > wanted.ts:
            out.append(self._gap_record(stream, wanted.ts, line.ts, RESUME_GAP))
        seq = self._sequencers[stream].number(line.ts, hash(line.data))
        if seq is None:
            metrics.DUPLICATES_DROPPED.inc()
            return
        if self._jumps is not None:
            window = self._jumps.observe(stream, line.ts, len(line.data))
            if window is not None and self._auditor is not None:
                self._auditor.suspect(window)
        record = self._record(stream, line, seq)
        if record is not None:
            out.append(record)
        self.positions[stream] = Position(line.ts, seq + 1)
        if line.ts > self.stats.last_ts:
            self.stats.last_ts = line.ts

    def _record(self, stream: str, line: Line, seq: int) -> LogRecord | None:
        """The line as a record, counted; None when the container is not shipped."""
        if self._skip:
            return None
        self.stats.lines += 1
        self.stats.bytes += len(line.data)
        metrics.READ.add(len(line.data))
        if line.truncated:
            metrics.LINES_TRUNCATED.inc()
        return LogRecord(self.meta, stream, line.ts, seq, line.data, line.truncated)

    async def _gap(
        self, stream: str, from_ts: int, to_ts: int, reason: str, estimate: int | None = None
    ) -> None:
        await self.out.put(self._gap_record(stream, from_ts, to_ts, reason, estimate))

    def _gap_record(
        self, stream: str, from_ts: int, to_ts: int, reason: str, estimate: int | None = None
    ) -> GapRecord:
        metrics.GAPS.inc()
        self.stats.gaps += 1
        log.warning(
            "gap: lines lost before they could be read",
            extra={
                "container": self.cid[:12],
                "stream": stream,
                "from_ts": from_ts,
                "to_ts": to_ts,
                "reason": reason,
            },
        )
        return GapRecord(self.meta, stream, from_ts, to_ts, reason, estimate)

    async def _unconfirmed_end(self) -> None:
        """The container was removed before the end of its log could be checked.

        A --rm container's log file would have told: without it, lines after the last
        one read may be lost, and a gap says so. Other containers' files are not held,
        and such an end is nearly always `docker rm -f`, after which dockerd still sends
        what the stream had asked for (15 quiet and 5 busy containers force-removed, the
        busy ones read 100 s late under CPU load: every line indexed). A gap document for
        each would be noise, so it is logged and counted.
        """
        if self._want_file:
            await self._lost_after(NO_FILE_GAP)
            return
        metrics.UNCHECKED_ENDS.inc()
        log.info(
            "container removed before the end of its log could be checked",
            extra={"container": self.cid[:12], "lines": self.stats.lines},
        )
        self.read_to_end = True

    async def _removed_unread(self) -> None:
        """The container was gone before its log could be read: say so for each stream."""
        await self._lost_after(REMOVED_GAP if self._fresh else REMOVED_EARLY_GAP)

    async def _lost_after(self, reason: str) -> None:
        """Lines after the last one read may be lost: a gap for each stream until now."""
        since = last_read(self.positions.values())
        now = time.time_ns()
        for stream in STREAMS:
            await self._gap(stream, since, now, reason)
        # Accounted for to its end: saved as done, so that a listing that no longer finds
        # the container does not report the same loss again.
        self.read_to_end = True

    async def _recovered(self, stream: str, line: Line, seq: int) -> None:
        if not self._decided.is_set():
            await self._decided.wait()
        self.stats.recovered += 1
        record = self._record(stream, line, seq)
        if record is not None:
            await self.out.put(record)

    async def _skipped_gap(self, gap: Window, estimate: int | None) -> None:
        await self._gap(gap.stream, gap.start, gap.end, SKIPPED_GAP, estimate)


def _close(responses: list[ReadAhead]) -> None:
    for response in responses:
        response.close()
