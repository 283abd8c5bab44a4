"""A running container's log followed from its json-file or ``local`` files, not through dockerd.

dockerd writes every line of a json-file log to its file whoever reads it. For a
follower through the Docker Engine API it then reads each line back, decodes it and
frames it again: at 5,000 lines/s that cost dockerd about 10 CPU-µs a line beyond
writing it, at 1,000 lines/s about 17 (docs/BENCHMARKS.md), more than the shipper's own
work on the line. Where the shipper can read the files (dockerd's ``containers`` folder
mounted read-only at the same path, as for the backlog and a ``--rm`` container's
rescue), it follows them itself. Every entry becomes the frame dockerd would have sent
(shipper/logfiles/jsonfile.py; a ``local`` log's by localfile.LocalLines, or compiled
by shipper/native.py's local_lines, which logs and skips a torn or corrupt entry as for
its backlog), so the lines are numbered from
the same positions to the same sequence numbers, and a follow may switch between the
files and dockerd (a reconnect, a shipper restart) without a line lost or repeated.

- The files are read from the positions (a backlog first, a few containers at a time;
  a compressed rotated file whose header says it ends before them is not unpacked),
  then the newest one is read again every ``poll`` seconds (``LOGPIPE_READ_PACE``) while
  it grows, at once while a read fills a chunk. A file that had nothing new QUIET_AFTER
  times in a row waits for its next write (inotify, shipper/logfiles/watch.py) instead:
  polling every quiet file cost 21 ms of CPU a second for 50 idle containers (2 through
  dockerd). Without inotify, quiet files are polled too.
- Rotation (``max-size``): dockerd closes the file it writes, renames it ``.1`` (the
  older ones one number up) and starts a new one. When the log's path names another
  file than the one read, that one is read to its end (closed: nothing more comes to
  it), then the newer ones, oldest first (one that dockerd compressed meanwhile,
  ``compress=true``, unpacked: jsonfile.open_rotated; one cut short or corrupt read as
  far as it goes, then a gap says the rest is lost). Had rotation removed files
  between them before they could be opened (the shipper was held back longer than
  ``max-file`` files took to fill), a gap says so: for each stream, from its position to its first
  line read next. (When exactly ``max-file`` rotations came, only the file read is gone,
  and it was held open: then nothing is lost, but the files cannot tell the two apart.)
- The end: one idle ``wait`` request per container returns once it is not running,
  after dockerd closed its log. The files are read to their end; if the container is
  still stopped and its file is the one read, no longer than read, the lines held
  unfinished go out and the log was read to its end. If it started again, the same
  file goes on.

Only where the outcome cannot differ from dockerd's, as for the backlog: a json-file
or ``local`` log, not a TTY's, not a ``--rm`` container's (its file is the rescue's),
and rotation that renames files (``max-file`` of 2 or more: with one file dockerd
truncates it in place, which a reader cannot tell from a rewrite). Under ``local``
rotation is always on (``max-size`` 20m unless given) and ``max-file`` is 5 unless
given; its file is ``local-logs/container.log`` (inspect gives no path), rotated to
``container.log.1`` and compressed to ``.1.gz`` unless ``compress=false``.
Everywhere else, and with ``LOGPIPE_FOLLOW_FILES=false``, dockerd serves the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import BinaryIO

from prometheus_client import Counter

from shipper import native
from shipper.containers import ContainerSummary
from shipper.dockerd import Following
from shipper.errors import ContainerGone, DockerError, DockerUnavailable
from shipper.follow.backlog import CHUNK, readable, unpacked_short, unreadable_entries
from shipper.follow.numbering import Numbering
from shipper.follow.progress import Progress
from shipper.logfiles import jsonfile, localfile
from shipper.logfiles.watch import LogFiles

log = logging.getLogger("logpipe.shipper.follow")

MIN_POLL = 0.05  # seconds between two reads of a file being written, at least
QUIET_CHECK = 5.0  # seconds a quiet file waits for inotify before it is read anyway
# Polls in a row that found nothing before a file counts as quiet. A file written now and
# then stays polled: woken at its first write, a follower reads a few lines and then the
# rest after its pace, twice the reads (the shipper went from 9 to 15 µs a line with
# 10 containers printing a chunk every 0.25 s).
QUIET_AFTER = 5
CHECK_EVERY = 1.0  # seconds between two looks for rotation while the file read still grows
LOCAL_MAX_FILE = 5  # files the `local` driver keeps when its max-file is not given

ROTATED_AWAY_GAP = (
    "the log was rotated more often than the shipper read it: files between the one it"
    " read and the oldest one left may have been removed before it could open them"
)

FOLLOWS = Counter(
    "logpipe_shipper_file_follows_total",
    "Running containers' logs followed from their json-file or local files instead of through"
    " dockerd, by how the follow ended: read to the log's end (the container stopped),"
    " handed back because dockerd went away, or not begun because the files could not"
    " be opened here (dockerd serves the log).",
    ["outcome"],
)


def followable(summary: ContainerSummary) -> bool:
    """Whether the container's log may be followed from its files (see the module)."""
    opts = summary["log_opts"]
    local = summary["log_driver"] == "local"
    try:
        max_file = int(opts.get("max-file", str(LOCAL_MAX_FILE) if local else "1"))
    except ValueError:
        return False
    if not readable(summary):
        return False
    if local:
        return max_file >= 2  # `local` always rotates
    return summary["log_driver"] == "json-file" and ("max-size" not in opts or max_file >= 2)


class FileFollow:
    """Follows one running container's json-file or ``local`` log from its files until it
    stops."""

    def __init__(
        self,
        docker: Following,
        progress: Progress,
        numbering: Numbering,
        max_line_bytes: int,
        poll: float,
        catch_ups: asyncio.Semaphore,
        wakes: LogFiles | None = None,
    ) -> None:
        self._docker = docker
        self._progress = progress
        self._numbering = numbering
        self._max_line_bytes = max_line_bytes
        self._poll = max(poll, MIN_POLL)
        self._catch_ups = catch_ups
        self._wakes = wakes  # tells when a quiet file is written (None: it is polled)
        self.path = ""  # "": dockerd serves the log
        self._local = False  # the `local` driver's log, not a json-file one
        self._files: list[BinaryIO] = []  # oldest first; the last one is read now
        self._reader: native.FileLinesReader | None = None
        self._buffer = bytearray(CHUNK)
        self._checked = 0.0  # when the log's path was last compared with the file read
        self._held = (0, 0)  # the file read now: inode, device
        # Read to its end by the last follow: the file, its size, the numbering's generation.
        self._ended: tuple[tuple[int, int], int, int] | None = None

    def learn(self, summary: ContainerSummary, files: LogFiles | None) -> None:
        """Whether its log may be followed from the files (`files` None: they are not
        visible, or following them is turned off)."""
        self._local = summary["log_driver"] == "local"
        self.path = ""
        if files is not None and followable(summary):
            cid = summary["id"]
            self.path = files.local_path(cid) if self._local else files.path(cid)

    def started(self) -> bool | None:
        """Whether its log file was created (dockerd does at the container's start); None
        when its log is not followed from its files."""
        return os.path.exists(self.path) if self.path else None

    async def follow(self) -> bool | None:
        """Follow from the positions until the container stopped and its log was read to
        its end (True); None when the files cannot be opened (dockerd must serve).
        Raises DockerUnavailable when dockerd cannot say whether the container stopped:
        the follower resumes from the positions reached."""
        if not self.path:
            return None
        since = min((p.ts for p in self._progress.positions.values()), default=0)
        files = await asyncio.to_thread(jsonfile.open_all, self.path, since)
        if files is None:
            FOLLOWS.labels("files unreadable").inc()
            return None
        self._files = files
        waiter = asyncio.create_task(self._docker.wait_stopped(self._progress.cid))
        try:
            async with self._catch_ups:
                await self._backlog()
            loop = asyncio.get_running_loop()
            empty = 0  # polls in a row that found nothing
            while True:
                if waiter.done():
                    if await self._stopped(waiter):
                        FOLLOWS.labels("read to the end").inc()
                        return True
                    waiter = asyncio.create_task(self._docker.wait_stopped(self._progress.cid))
                size = await self._read_current()
                full = size == CHUNK
                if full and loop.time() - self._checked < CHECK_EVERY:
                    continue  # more may wait
                if await self._rotated() or full:
                    continue
                empty = 0 if size else empty + 1
                if empty < QUIET_AFTER:
                    await asyncio.wait({waiter}, timeout=self._poll)  # what comes meanwhile
                else:
                    await self._quiet(waiter)
        except DockerUnavailable:
            FOLLOWS.labels("dockerd away").inc()
            raise
        finally:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError, DockerError):
                await waiter
            for f in self._files:
                f.close()
            self._files = []
            self._reader = None

    async def _backlog(self) -> None:
        """Every file from the positions: older ones to their ends (then closed), the
        newest as far as it goes, by a thread (a backlog may be cold on disk)."""
        progress = self._progress
        progress.stats.state = "following"
        self._reader = native.file_lines(self._max_line_bytes, tty=False, local=self._local)
        newest = self._files[-1]
        ended, self._ended = self._ended, None
        if (
            ended is not None
            and ended[0] == jsonfile.identity(os.fstat(newest.fileno()))
            and ended[2] == self._numbering.generation
        ):
            # The last follow read this file to its end at `ended[1]` (the container
            # stopped; a start brought it back), and nothing was numbered since: what
            # follows is new, numbered on from the last line (a new sequencer would
            # take lines of the last timestamp read for repeats).
            for f in self._files[:-1]:
                f.close()
            self._files = [newest]
            newest.seek(ended[1])
            self._numbering.go_on()
        else:
            self._numbering.restart(check_start=True, audit=False)
            since = min(p.ts for p in progress.positions.values())
            start_of = localfile.start_of if self._local else jsonfile.start_of
            for f in self._files:
                offset = await asyncio.to_thread(start_of, f, since)
                await asyncio.to_thread(f.seek, offset)
        while len(self._files) > 1:
            await self._to_end(self._files[0])
            self._files.pop(0).close()
        current = self._files[-1]
        self._held = jsonfile.identity(os.fstat(current.fileno()))
        while await self._read(current, threaded=True) == CHUNK:
            pass
        self._checked = asyncio.get_running_loop().time()

    async def _quiet(self, waiter: asyncio.Task[None]) -> None:
        """Wait while the file read has nothing new: until it is written (inotify), the
        container stops, or QUIET_CHECK at most; without inotify, `poll` seconds."""
        f = self._files[-1]
        wake = self._wakes.on_write(f.fileno()) if self._wakes is not None else None
        if wake is None:
            await asyncio.wait({waiter}, timeout=self._poll)
            return
        wd, written = wake
        try:
            if os.fstat(f.fileno()).st_size > f.tell():
                return  # written between the read and the watch
            await asyncio.wait(
                {waiter, written}, timeout=QUIET_CHECK, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            assert self._wakes is not None
            self._wakes.forget(wd)

    async def _read_current(self) -> int:
        """Read what the newest file holds past the last read; the bytes read. Read on
        the event loop: what was just written is in the page cache, and a read by a
        thread would cost more than the read."""
        return await self._read(self._files[-1], threaded=False)

    async def _read(self, f: BinaryIO, threaded: bool) -> int:
        """One chunk of `f`, numbered and queued; the bytes read (CHUNK: there may be more)."""
        assert self._reader is not None
        buffer = self._buffer
        size: int
        if threaded:
            size = await asyncio.to_thread(f.readinto, buffer)  # type: ignore[attr-defined]
        else:
            size = f.readinto(buffer)  # type: ignore[attr-defined]
        if size:
            await self._numbering.emit(self._reader.feed(bytes(memoryview(buffer)[:size])))
            unreadable_entries(self._reader, self._progress.cid)
        return size

    async def _to_end(self, f: BinaryIO) -> None:
        """Read `f` to its end (it no longer grows), then end its last entry."""
        assert self._reader is not None
        while await self._read(f, threaded=True) == CHUNK:
            pass
        await self._read(f, threaded=False)  # what a short read may have left (none, or little)
        await self._numbering.emit(self._reader.end_file())
        unreadable_entries(self._reader, self._progress.cid)
        await unpacked_short(f, self._numbering, self._progress.cid)

    async def _rotated(self) -> bool:
        """Take the files rotation started since the file read now; True if it did.

        Looked for when the file read has no more, and at most every CHECK_EVERY seconds
        while it still grows (files rotation starts then are opened, so held, at once)."""
        self._checked = asyncio.get_running_loop().time()
        try:
            if jsonfile.identity(os.stat(self.path)) == self._held:
                return False
        except OSError:
            return False  # removed with its container, or between rotation's rename and create
        newer = await asyncio.to_thread(jsonfile.open_chain, self.path, self._files[-1])
        if newer is None:
            return False
        opened, whole = newer
        await self._to_end(self._files[-1])  # closed by dockerd before it was renamed
        self._files.pop().close()
        self._files += opened
        if not whole:
            # Files between the one read and the oldest left may have been removed: the
            # first line of each stream read next, if later than its position, ends a gap.
            self._numbering.restart(check_start=True, audit=False, reason=ROTATED_AWAY_GAP)
        while len(self._files) > 1:
            await self._to_end(self._files[0])
            self._files.pop(0).close()
        self._held = jsonfile.identity(os.fstat(self._files[-1].fileno()))
        return True

    async def _stopped(self, waiter: asyncio.Task[None]) -> bool:
        """The wait returned: read the files to their end; True when the container is still
        stopped and the files hold no more (the log was read to its end)."""
        gone = False
        try:
            waiter.result()
        except ContainerGone:
            gone = True  # removed: the files held are all there is
        except DockerError as exc:
            raise DockerUnavailable(f"cannot wait for the container to stop: {exc}") from exc
        while await self._read_current() == CHUNK or await self._rotated():
            pass
        summary: ContainerSummary | None = None
        if not gone:
            try:
                summary = await self._docker.inspect(self._progress.cid)
            except ContainerGone:
                pass
            except DockerError as exc:
                raise DockerUnavailable(f"cannot inspect after it stopped: {exc}") from exc
        if summary is not None:
            if summary["running"]:
                return False  # started again: its lines go on in the same file
            current = self._files[-1]
            if not await asyncio.to_thread(jsonfile.unchanged, self.path, current, current.tell()):
                return False  # written or rotated since the read: read on
        assert self._reader is not None
        await self._numbering.emit(self._reader.finish())
        unreadable_entries(self._reader, self._progress.cid)
        self._progress.read_to_end = True
        current = self._files[-1]
        self._ended = (self._held, current.tell(), self._numbering.generation)
        return True
