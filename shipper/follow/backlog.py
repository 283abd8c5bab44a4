"""A container's json-file or ``local`` backlog read from its files instead of through dockerd.

dockerd serves a log by decoding its json-file entries and framing each again, which the
shipper then undoes: for a backlog (a container that logged before the shipper read it:
a first start on a busy host, a shipper that was down), dockerd spent about as much CPU
per line as the shipper (5-6 µs of the 46-52 a line costs every process in
`python -m bench.sidebyside`), and a request with `since` makes it decode the log from
its start even to return one line. Where the shipper can read the files (dockerd's
``containers`` folder mounted read-only at the same path, as for a ``--rm``
container's rescue), it reads them itself. Every entry becomes the frame dockerd would
have sent (shipper/logfiles/jsonfile.py), so the lines are numbered from the same
positions to the same sequence numbers and repeats are dropped as ever.

A ``local`` driver's log (its files under ``local-logs/``, inspect gives no path) is read
the same way by shipper/logfiles/localfile.py's LocalLines (compiled, the extension's
LocalReader, when shipper/native.py enables it): each entry becomes the frame dockerd
would send for it (docs/docker-logs.md: the partial and 16 KiB rules), so its lines too
are those of the API; a torn or corrupt entry is logged and skipped, the entries around
it read.

Only where the outcome cannot differ from dockerd's: a json-file or ``local`` log, not a TTY's
(dockerd sends a TTY's entries unframed and the shipper splits them again by their
shape, which need not cut them where the file does), not a ``--rm`` container's (its
file is the rescue's). Rotated files that dockerd compressed (``compress=true``) are
unpacked, as dockerd does to serve them (jsonfile.open_rotated), but not those whose
header says they end before the positions (jsonfile.open_chain); one cut short or
corrupt is read as far as it goes, and a gap reports the rest of it.

- A stopped container (found by a listing, read when its turn comes) is read to the end
  of its files. The container must then still be the stopped one the listing found and
  its file the one read, no longer than read; else (it started meanwhile) the follower
  goes on through dockerd from the positions reached, and nothing comes twice.
- A running container's files are read as far as they go, once, when its follower
  starts; dockerd is then asked only for the last TAIL_BACK entries and what follows
  (stream.py), and that answer must begin with a line already read, else the follower
  asks from the positions (nothing lies between: entries are in the order logged).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import BinaryIO

from prometheus_client import Counter

from shipper import native
from shipper.containers import ContainerSummary
from shipper.docker_api import READ_BUFFER
from shipper.dockerd import Inspects
from shipper.errors import DockerError
from shipper.follow.gaps import UNPACKED_SHORT_GAP
from shipper.follow.numbering import Numbering
from shipper.follow.progress import Progress
from shipper.logfiles import jsonfile, localfile
from shipper.logfiles.watch import LogFiles

log = logging.getLogger("logpipe.shipper.follow")

# Bytes read from a file at a time: what a read of dockerd's answer holds too, so a
# follower's lines in flight weigh no more (1 MiB chunks, read into bytes a thread made,
# took the drain's shipper to 105-109 MB of RSS; this, read as below, 77-78).
CHUNK = READ_BUFFER
# Entries asked of dockerd from the end of a running container's log just read from its
# files: enough that the response begins within what was read (it must: stream.py),
# unless the container wrote more than this meanwhile.
TAIL_BACK = 1000

READS = Counter(
    "logpipe_shipper_backlog_file_reads_total",
    "Stopped containers' logs read from their json-file or local files, by outcome: read to the"
    " end, or handed to dockerd part way (the container started meanwhile).",
    ["outcome"],
)

CATCH_UPS = Counter(
    "logpipe_shipper_backlog_file_catch_ups_total",
    "Running containers' logs read from their json-file or local files up to their end, before"
    " dockerd was asked for what follows.",
)


def readable(summary: ContainerSummary) -> bool:
    """Whether the container's log reads from its files as dockerd would serve it: a
    json-file or ``local`` log (rotated files compressed or not), not a TTY's, not a
    ``--rm`` container's (its file is the rescue's, rescue.py)."""
    return (
        summary["log_driver"] in ("json-file", "local")
        and not summary["tty"]
        and not summary["auto_remove"]
    )


async def unpacked_short(f: BinaryIO, numbering: Numbering, cid: str) -> None:
    """After a file read to its end: if it was a compressed one cut short or corrupt,
    say so, and have the first line of each stream read next, later than its position,
    end a gap (what lay between is lost; dockerd could not read it either)."""
    why = jsonfile.problem(f)
    if not why:
        return
    log.warning(
        "rotated log file unreadable past a point", extra={"container": cid[:12], "reason": why}
    )
    numbering.restart(check_start=True, audit=False, reason=UNPACKED_SHORT_GAP)


def unreadable_entries(reader: object, cid: str, where: str = "") -> None:
    """Log the `local` entries `reader` could not read since the last call (skipped;
    those around them are read), each with `where` it was (e.g. which file): a `local`
    reader's `problems`, compiled or not (a json-file reader has none)."""
    problems: list[str] | None = getattr(reader, "problems", None)
    if problems:
        for problem in problems:
            log.warning(
                "log file entry unreadable, skipped",
                extra={"container": cid[:12], "reason": where + problem},
            )
        problems.clear()


class Backlog:
    """Reads one container's json-file backlog from its files, when it may: a stopped
    one's to its end (read), a running one's as far as its files go (catch_up)."""

    def __init__(
        self,
        docker: Inspects,
        progress: Progress,
        numbering: Numbering,
        max_line_bytes: int,
        catch_ups: asyncio.Semaphore | None = None,
    ) -> None:
        self._docker = docker
        # Shared by the followers: running containers caught up at once. Each holds a
        # chunk's lines while the queue is full; at a start with hundreds of backlogs,
        # all of them would.
        self._catch_ups = catch_ups or asyncio.Semaphore(1)
        self._progress = progress
        self._numbering = numbering
        self._max_line_bytes = max_line_bytes
        self._path = ""  # "": read through dockerd
        self._local = False  # the `local` driver's log, not a json-file one
        self._running = True
        self._finished_ns = 0

    def learn(self, summary: ContainerSummary, files: LogFiles | None) -> None:
        """Whether its log can be read from its files (None: they are not visible here;
        a ``local`` log's path needs dockerd's data root, inspect gives none)."""
        self._local = summary["log_driver"] == "local"
        self._path = ""
        if files is not None and readable(summary):
            if self._local:
                self._path = files.local_path(summary["id"])
            else:
                self._path = summary["log_path"]
        self._running = summary["running"]
        self._finished_ns = summary["finished_ns"]

    async def read(self) -> bool:
        """Read a stopped container's log from its files; True when that read it to its
        end, False when dockerd must give the rest (or all of it: the files could not be
        opened)."""
        if self._running:
            return False
        return await self._with_files(self._read_whole)

    async def catch_up(self) -> bool:
        """Read a running container's log from its files as far as they go now, once;
        True when read (dockerd is then asked only for the log's end: see
        stream.LiveStream.follow). An empty log is not: its first line, when it comes,
        could not be one read already."""
        if not self._running or not self._path:
            return False
        async with self._catch_ups:
            read = await self._with_files(self._read_some)
        self._path = ""  # a later follow (a reconnect) asks from the positions
        return read

    async def _with_files(self, read: Callable[[list[BinaryIO]], Awaitable[bool]]) -> bool:
        """`read` of the log's files, opened (False when they cannot be)."""
        if not self._path:
            return False
        # From the newest file that may hold a line not read yet: older compressed ones
        # are not unpacked (jsonfile.open_chain).
        since = min((p.ts for p in self._progress.positions.values()), default=0)
        files = await asyncio.to_thread(jsonfile.open_all, self._path, since)
        if files is None:
            return False
        try:
            return await read(files)
        finally:
            for f in files:
                f.close()

    async def _read_some(self, files: list[BinaryIO]) -> bool:
        """A running container's files, as far as they go (not if they are empty)."""
        if not any(os.fstat(f.fileno()).st_size for f in files):
            return False
        await self._lines(files, state="following")
        CATCH_UPS.inc()
        return True

    async def _read_whole(self, files: list[BinaryIO]) -> bool:
        """A stopped container's files to their end, if they are all of its log."""
        reader = await self._lines(files, state="draining")
        if not await self._still_stopped(files[-1]):
            # What is held unfinished may go on: dockerd gives it again, from the positions.
            READS.labels("handed to dockerd").inc()
            return False
        await self._numbering.emit(reader.finish())
        READS.labels("read to the end").inc()
        return True

    async def _lines(self, files: list[BinaryIO], state: str) -> native.FileLinesReader:
        """Number and queue the files' lines from the positions; the reader, with the
        last line's pieces held if it may go on."""
        progress = self._progress
        numbering = self._numbering
        progress.stats.state = state
        since = min(p.ts for p in progress.positions.values())
        # Of a log that is not a TTY's.
        reader = native.file_lines(self._max_line_bytes, tty=False, local=self._local)
        start_of = localfile.start_of if self._local else jsonfile.start_of
        numbering.restart(check_start=True, audit=False)
        # Read by a thread into memory of the event loop's: bytes made in the thread
        # would come from an allocator arena of its own (measured: +8 MB of RSS).
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        for f in files:
            await asyncio.to_thread(f.seek, await asyncio.to_thread(start_of, f, since))
            while size := await asyncio.to_thread(f.readinto, buffer):  # type: ignore[attr-defined]
                await numbering.emit(reader.feed(bytes(view[:size])))
            await numbering.emit(reader.end_file())
            unreadable_entries(reader, progress.cid)
            await unpacked_short(f, numbering, progress.cid)
        return reader

    async def _still_stopped(self, newest: BinaryIO) -> bool:
        """Whether the log read is all there is: the container did not start since the
        listing, and its file is the one read, with nothing written after."""
        try:
            summary = await self._docker.inspect(self._progress.cid)
        except DockerError:
            return False  # removed meanwhile, or dockerd away: the follower finds out
        if summary["running"] or summary["finished_ns"] != self._finished_ns:
            return False
        return await asyncio.to_thread(jsonfile.unchanged, self._path, newest, newest.tell())
