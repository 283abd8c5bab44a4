"""The tail of a removed ``--rm`` container's log, read from its log file held open.

dockerd ends a ``--rm`` container's follow stream as it removes the container, caught
up or not, and then refuses any request for the rest. A log file opened while the
container ran stays readable after its removal, the ``json-file`` driver's
(shipper/logfiles/jsonfile.py) as the ``local`` driver's (shipper/logfiles/localfile.py;
either read and numbered compiled when shipper/native.py enables it, as the backlog is),
so such a container's file is held from the first look at it and read from the last
line read when the API cannot give the rest (which driver wrote it is told by its first
byte: a file taken before inspection answered may be either). The files rotation begins
are held too, as the watch of the log's folder opened them when dockerd created them
(shipper/logfiles/watch.py), else as found by the log's path while lines come; after
the removal the watch is let catch up first, so that a file begun just before it is
read, and a full last file with none after it is known to be the log's end. Without a
file, or with one that cannot be the end of the log, what may have been lost is
reported as a gap.

A start that comes once the follower has left its loop is another run, which the next
follower of the container reads (shipper/source.py). If the container is removed before
that follower can ask dockerd (`docker restart` then `docker rm -f`; a restarted
``--rm`` container that exits at once), the run's lines are only in its log file: the
file is taken at that start, any container's, and handed to the next follower, which
reads the run from it as it reads a ``--rm`` container's tail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from shipper import metrics, native
from shipper.containers import ContainerSummary
from shipper.cursor import STREAMS, last_read
from shipper.demux import STREAM_NAMES
from shipper.follow.backlog import unreadable_entries
from shipper.follow.gaps import (
    NO_FILE_GAP,
    ROTATED_AWAY_GAP,
    ROTATED_BETWEEN_GAP,
    ROTATED_FULL_GAP,
    UNPACKED_SHORT_GAP,
    Gaps,
)
from shipper.follow.numbering import Numbering
from shipper.follow.progress import Progress
from shipper.logfiles import jsonfile, localfile
from shipper.logfiles.rotation import FileRead
from shipper.logfiles.watch import LogFiles
from shipper.native import NativeLines
from shipper.rejoin import Line

log = logging.getLogger("logpipe.shipper.follow")

WINDOW_CHUNK = 1 << 20  # bytes of a held file read at a time for an audit's window


@dataclass(slots=True)
class KeptLog:
    """A log file taken at a start that came as the follower ended, for the next follower
    (with what reading it needs); whoever takes `held` closes it."""

    held: jsonfile.HeldLog | None
    log_path: str
    tty: bool
    rotates_at: int | None

    def close(self) -> None:
        """Close the file unless a follower took it."""
        if self.held is not None:
            self.held.close()
            self.held = None


class Rescue:
    """Holds one ``--rm`` container's log file and reads its tail once it was removed."""

    def __init__(
        self,
        progress: Progress,
        numbering: Numbering,
        gaps: Gaps,
        files: LogFiles | None,
        max_line_bytes: int,
    ) -> None:
        self._progress = progress
        self._numbering = numbering
        self._gaps = gaps
        self._max_line_bytes = max_line_bytes
        # A --rm container's json-file log is read if the API cannot give its tail. Until
        # inspection says whether it is one, its file is taken if there is one.
        self._files = files
        self._wanted = files is not None
        self._log_path = ""  # as inspection gave it ("" before the container ran)
        self._held: jsonfile.HeldLog | None = None
        self._rotates_at: int | None = None  # bytes of a log file when dockerd rotates it
        self._tty = False
        self._kept = False  # held for the next follower: let_go() leaves it open
        # One read of the files held at a time: the tail's and an audit's (read_window)
        # would move the same files' offsets under each other, each in its thread.
        self._reading = asyncio.Lock()
        self.tail_read = False  # the removed container's tail was read, or reported lost

    @property
    def holding(self) -> bool:
        """Whether the container's log file is held open."""
        return self._held is not None

    def learn(self, summary: ContainerSummary, rotates_at: int | None) -> None:
        """Hold the file of a --rm json-file or local container; let any other's go."""
        self._tty = summary["tty"]
        driver = summary["log_driver"]
        if summary["auto_remove"] and driver in ("json-file", "", "local"):
            self._log_path = summary["log_path"]
            if driver == "local" and self._files is not None:  # inspect gives no LogPath
                self._log_path = localfile.local_log_path(self._files.root_dir, summary["id"])
            self._wanted = True
            self.take_file()
        else:
            self.let_go()
        self._rotates_at = rotates_at

    def take_file(self) -> None:
        """Take the container's log file (opened ahead, or now if it is there)."""
        if self._held is not None or not self._wanted:
            return
        cid = self._progress.cid
        if self._files is not None:
            f = self._files.open(cid, self._log_path)
        else:
            f = jsonfile.open_log(self._log_path)
        self._held = None if f is None else jsonfile.HeldLog(f)

    def let_go(self) -> None:
        """The file is not needed (not a --rm container, not shipped, or done), unless it
        is kept for the next follower."""
        self._wanted = False
        if self._held is not None and not self._kept:
            self._held.close()
            self._held = None
        if self._files is not None:
            self._files.drop(self._progress.cid)

    def keep(self) -> None:
        """A start came as the follower ended: hold the log file now, while the container
        is there (a --rm container's is held already), for the follower of that run."""
        self._kept = True
        self._wanted = True
        self.take_file()

    def hand_over(self) -> KeptLog | None:
        """The file kept for the next follower, no longer this one's (None: keep() was
        not called)."""
        if not self._kept:
            return None
        self._kept = False
        held, self._held = self._held, None
        return KeptLog(held, self._log_path, self._tty, self._rotates_at)

    def take_over(self, kept: KeptLog) -> None:
        """Hold the file the last follower kept, to read this run from if the container
        is removed before dockerd serves it (inspection, if it answers, decides)."""
        held, kept.held = kept.held, None
        if held is None:
            return
        self._held = held
        self._wanted = True
        self._log_path = kept.log_path
        self._tty = kept.tty
        self._rotates_at = kept.rotates_at

    def keep_up(self) -> None:
        """Lines came from dockerd: take the file now, or the files rotation made since
        (as the watch opened them, else by looking at the log's path)."""
        if self._held is None:
            if self._wanted:
                self.take_file()
        elif self._files is not None and self._files.follows_rotation(self._progress.cid):
            self._adopt()
        else:
            self._held.keep_up(self._log_path, time.monotonic())

    def _adopt(self) -> None:
        """Hold the files rotation began that the watch opened since the last look."""
        if self._held is not None and self._files is not None:
            newer = self._files.rotated(self._progress.cid)
            if newer:
                self._held.adopt(newer)

    async def _caught_up(self) -> bool:
        """Hold every file rotation began before now, once the watch has seen them all;
        whether the files held are known to reach the log's last (the watch opened each
        file as dockerd created it, and lost no event)."""
        if self._files is None:
            return False
        await self._files.settle()
        self._adopt()
        return self._files.follows_rotation(self._progress.cid)

    async def read_tail(self) -> None:
        """Read the tail of a removed container from the log file held open; without
        one, what it may have logged after the last line read is reported as a gap."""
        self.tail_read = True
        self.take_file()  # a file opened ahead was perhaps never taken
        if self._held is None:
            await self.unconfirmed_end()
            return
        jsonfile.RESCUES.inc()
        to_the_last = await self._caught_up()
        positions = self._progress.positions
        since = last_read(positions.values())
        held = self._held
        async with self._reading:
            read, stamps, damaged = await asyncio.to_thread(self._read_since, held, since)
        read_before = any(p.count for p in positions.values())
        if read_before and not any(ts >= since for _, ts in stamps):
            # The last line read is not in it: rotation renamed this file away (and
            # started the one the tail is in) after it was opened.
            await self._gaps.lost_after(ROTATED_AWAY_GAP)
            return
        first = min((ts for _, ts in stamps), default=since)
        if read_before and first > since:
            # The files held start after the last line read: the one it was in, and
            # perhaps more, had been rotated away before the shipper looked.
            for stream in STREAMS:
                await self._gaps.put(stream, since, first, ROTATED_BETWEEN_GAP)
        for at in damaged:
            # The lines after the damage, up to the next file, are lost: for each stream,
            # from its last line read before it to its first one after.
            for stream in STREAMS:
                earlier = [ts for s, ts in stamps[:at] if STREAM_NAMES[s] == stream]
                later = [ts for s, ts in stamps[at:] if STREAM_NAMES[s] == stream]
                if later:
                    start = earlier[-1] if earlier else since
                    await self._gaps.put(stream, start, later[0], UNPACKED_SHORT_GAP)
        self._numbering.restart(check_start=False, audit=False)
        stats = self._progress.stats
        before = stats.lines
        for lines in read:
            await self._numbering.emit(lines)
        self._progress.read_to_end = True
        if stats.lines > before:
            log.info(
                "tail read from the log file of a removed container",
                extra={"container": self._progress.cid[:12], "lines": stats.lines - before},
            )
        if to_the_last:
            return  # the newest file held is the log's last, full or not
        async with self._reading:
            full = await asyncio.to_thread(held.full, self._rotates_at)
        if full:
            # A file rotated after the last look at it ends where dockerd was about to
            # start another: its end need not be the log's.
            await self._gaps.lost_after(ROTATED_FULL_GAP)

    async def read_window(self, start: int, end: int) -> FileRead | None:
        """The lines of the log files held from `start` to `end` (both inclusive), as
        dockerd would have given them, and how far the files reach: what a rotation audit
        reads once the container was removed (shipper/logfiles/audit.py). None when no
        file is held (not a ``--rm`` container's, or not readable here)."""
        self.take_file()
        if self._held is None:
            return None
        await self._caught_up()
        held = self._held
        if held is None:  # let go meanwhile
            return None
        async with self._reading:
            return await asyncio.to_thread(self._read_window, held, start, end)

    def _read_window(self, held: jsonfile.HeldLog, start: int, end: int) -> FileRead:
        """read_window's answer (in a thread: it reads files). Only what the span needs
        is read: each file from an entry ``SLACK_NS`` before `start`, a chunk at a time,
        until an entry ``SLACK_NS`` after `end` (entries are in time order to within the
        slack), never a whole file at once (20 MB under the ``local`` driver's defaults,
        and up to ``HELD_FILES`` of them)."""
        local = localfile.is_local(held.files)
        reader: jsonfile.FileLines | localfile.LocalLines
        if local:
            reader = localfile.LocalLines(self._max_line_bytes, self._tty)
        else:
            reader = jsonfile.FileLines(self._max_line_bytes, self._tty)
        start_of = localfile.start_of if local else jsonfile.start_of
        read = FileRead([], 0, 0)
        late = end + jsonfile.SLACK_NS

        def keep(lines: list[Line]) -> bool:
            """Keep the span's lines and the reach; whether the read went past the span."""
            for line in lines:
                if start <= line.ts <= end:
                    read.lines.append(line)
                if read.first == 0 or line.ts < read.first:
                    read.first = line.ts
                read.last = max(read.last, line.ts)
            return read.last > late

        for f in held.files:
            f.seek(start_of(f, start))
            while chunk := f.read(WINDOW_CHUNK):
                if keep(reader.feed(chunk)):
                    return read
            if keep(reader.end_file()):
                return read
        keep(reader.finish())
        return read

    def _read_since(
        self, held: jsonfile.HeldLog, since: int
    ) -> tuple[list[list[Line] | NativeLines], list[tuple[int, int]], list[int]]:
        """The lines of the files held from about `since` on, whichever driver wrote them
        (in a thread: it reads files), as each read gave them (compiled ones numbered
        compiled, as the backlog's are); (stream, ts) of each line; and where a
        compressed file cut short or corrupt ended among them (how many lines came
        before its damage). A torn or corrupt ``local`` entry, and such a file, are
        logged."""
        local = localfile.is_local(held.files)
        reader = native.file_lines(self._max_line_bytes, self._tty, local)
        read_since = localfile.read_since if local else jsonfile.read_since
        read: list[list[Line] | NativeLines] = []
        stamps: list[tuple[int, int]] = []
        damaged: list[int] = []

        def took(lines: list[Line] | NativeLines) -> None:
            read.append(lines)
            stamps.extend(native.stamps(lines))

        for n, f in enumerate(held.files):
            took(reader.feed(read_since(f, since)))
            took(reader.end_file())
            where = f"file {n + 1} of {len(held.files)}: " if len(held.files) > 1 else ""
            unreadable_entries(reader, self._progress.cid, where)
            if why := jsonfile.problem(f):
                log.warning(
                    "rotated log file unreadable past a point",
                    extra={"container": self._progress.cid[:12], "reason": why},
                )
                damaged.append(len(stamps))
        took(reader.finish())
        return read, stamps, damaged

    async def unconfirmed_end(self) -> None:
        """The container was removed before the end of its log could be checked.

        A --rm container's log file would have told: without it, lines after the last
        one read may be lost, and a gap says so. Other containers' files are not held,
        and such an end is nearly always `docker rm -f`, after which dockerd still sends
        what the stream had asked for (15 quiet and 5 busy containers force-removed, the
        busy ones read 100 s late under CPU load: every line indexed). A gap document for
        each would be noise, so it is logged and counted.
        """
        if self._wanted:
            await self._gaps.lost_after(NO_FILE_GAP)
            return
        metrics.UNCHECKED_ENDS.inc()
        log.info(
            "container removed before the end of its log could be checked",
            extra={"container": self._progress.cid[:12], "lines": self._progress.stats.lines},
        )
        self._progress.read_to_end = True
