"""The disk buffer: every batch is written here before it is sent; cursors move on that write.

Exactly-once rests on one rule: **a stream's cursor moves past a line once the line is
in a durable segment** (or was acknowledged by a collector), never before. Step by step:

1. A batch becomes one segment file under ``<state_dir>/spool``: a header (the stream
   positions the batch completes, its line count, the CRC-32 of the body) then the
   gzip body that is POSTed as it is. The file is written under a temporary name,
   fsynced, renamed, and the folder fsynced: after a crash (kill -9, power loss) a
   segment exists whole or not at all; temporary files are deleted at start. A write
   that failed is retried under the same name, so a failure after the rename (the
   folder's fsync) leaves one copy of the batch on disk, not two.
2. Only after that write does the batcher move the cursors (in memory) past the batch.
3. At start, each cursor is the saved one moved forward by the positions of every
   segment on disk. So a line in a segment is never read from Docker again (a ``--rm``
   container's lines survive its removal and a shipper restart), and a line in no
   segment was never passed by the cursor, so it is read from Docker again.
4. Segments are sent oldest first. One is deleted only after a collector acknowledged
   it **and** the cursor file covering it was saved; a segment acknowledged but not
   yet deleted at a crash is sent again, and the collector answers "already there"
   for each document, whose ``_id`` is deterministic: nothing is indexed twice.
5. A segment left by an earlier run is sent marked as sent again (its ids are looked
   up in their whole streams) only when that run may have sent it: the state folder's
   "tried up to" mark (:mod:`shipper.tried`) says which. Without a usable mark every
   segment left counts as tried. A batch that may hold lines an earlier run sent (read
   again from Docker because that run's positions were held, shipper/cursor.py) is
   marked so in its header (``again``), and sent marked whichever run sends it.

The buffer is bounded (``buffer_max_bytes``): the inbox pauses the busiest containers
when it nears the bound, and at the bound the batcher waits for room, so reading stops
while Docker's own log files keep the rest. A segment that fails its checks (disk
corruption) is renamed ``*.bad`` and reported in the log and a metric, never skipped
silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from isal import igzip
from zlib_ng import zlib_ng

from shipper import metrics
from shipper.cursor import Position
from shipper.durable import write_durably
from shipper.encoded import Batch
from shipper.errors import ConfigError
from shipper.tried import NAME as TRIED_NAME
from shipper.tried import TriedMark

log = logging.getLogger("logpipe.shipper.spool")

MAGIC = b"logpipe-segment 1\n"
SUFFIX = ".seg"
FULL_LOG_EVERY = 30.0  # seconds between two "disk buffer full" warnings

StreamPosition = tuple[str, str, Position]


@dataclass(slots=True)
class Segment:
    """One batch on disk, as the spool indexes it."""

    number: int
    path: Path
    size: int
    lines: int
    first_ts: int
    positions: list[StreamPosition]
    # Left by an earlier run that may have sent it, or holding lines an earlier run sent.
    earlier: bool = False
    # Past the lines it holds, where its positions are held behind them (Batch.written).
    written: list[StreamPosition] = field(default_factory=list)


class Spool:
    """The ordered segments of one state folder, and the room left for more."""

    def __init__(self, folder: Path, max_bytes: int, tried: TriedMark | None = None) -> None:
        self.folder = folder
        # Which segments the earlier run may have sent; None: all of them (no record kept).
        self.tried = tried
        self.max_bytes = max_bytes
        self.used = 0
        self._next = 1
        self._unacked: dict[int, Segment] = {}
        self._acked: list[Segment] = []
        self._unsent: asyncio.Queue[Segment] = asyncio.Queue()
        self._room = asyncio.Event()
        self._failed: tuple[Batch, int] | None = None  # a batch whose write raised, its number
        self._full_logged_at = -math.inf  # when "disk buffer full" was last logged
        self.on_change: Callable[[int, int], None] = lambda used, limit: None

    def open(self) -> list[StreamPosition]:
        """Index the segments left by an earlier run; their positions move the cursors.

        A folder that cannot be listed or cleaned is a ConfigError: starting without the
        segments in it would read their lines again, or lose those of removed containers.
        """
        try:
            if self.folder.exists() and not self.folder.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            self.folder.mkdir(parents=True, exist_ok=True)
            for tmp in self.folder.glob("*.tmp"):
                if tmp.name != TRIED_NAME:  # the record of the segments tried stays
                    tmp.unlink()  # a write that never completed: its lines were never passed
            names = sorted(self.folder.glob("*" + SUFFIX))
        except OSError as exc:
            why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise ConfigError(
                f"LOGPIPE_STATE_DIR: cannot use the disk buffer {self.folder} ({why}); it must "
                "be a folder the shipper may read and write"
            ) from None
        positions: list[StreamPosition] = []
        for path in names:
            segment = _load_header(path)
            if segment is None:
                metrics.BUFFER_CORRUPT.inc()
                log.error(
                    "disk buffer segment unreadable: set aside as .bad, its lines are lost",
                    extra={"segment": str(path)},
                )
                _quarantine(path)
                continue
            if self.tried is not None:
                self.tried.note_left(segment.number)
            # Marked when the earlier run may have sent it, or its lines an even earlier one.
            tried = self.tried is None or self.tried.tried(segment.number)
            segment.earlier = segment.earlier or tried
            self._add(segment)
            positions += segment.positions
            self._next = segment.number + 1
        if self.tried is not None:
            # Numbers go on above the mark: a new segment is never taken for a tried one.
            self._next = max(self._next, self.tried.first_free())
        if self._unacked:
            log.info(
                "disk buffer found from an earlier run: sending it first",
                extra={
                    "batches": len(self._unacked),
                    "bytes": self.used,
                    "sent_again": sum(s.earlier for s in self._unacked.values()),
                },
            )
        if self.tried is not None and self.tried.known is None:
            self._unknown(self.tried)
        return positions

    def written(self) -> list[StreamPosition]:
        """How far the lines of the segments not yet acknowledged go where their
        positions are held behind them (CursorStore.wrote)."""
        return [p for segment in self._unacked.values() for p in segment.written]

    def _unknown(self, tried: TriedMark) -> None:
        """Say once, at start, why every segment left counts as tried."""
        if tried.why_unknown == "missing" and not self._unacked:
            return  # a first start, or nothing left: nothing is marked for want of it
        reason = (
            "none in this state folder (written by an older shipper, or none sent yet)"
            if tried.why_unknown == "missing"
            else tried.why_unknown
        )
        log.warning(
            "no usable record of the batches tried: every batch left in the disk buffer "
            "is sent marked as sent again",
            extra={"path": str(tried.path), "reason": reason, "batches": len(self._unacked)},
        )

    async def trying(self, segment: Segment) -> None:
        """Return once the state folder records that `segment` may have been sent: call
        before any byte of its first try goes out."""
        if self.tried is not None:
            await self.tried.cover(segment.number)

    def _add(self, segment: Segment) -> None:
        self._unacked[segment.number] = segment
        self._unsent.put_nowait(segment)
        self.used += segment.size
        self._changed()

    async def write(self, batch: Batch) -> Segment:
        """Write `batch` durably as the next segment, waiting for room when the buffer is full."""
        # ISA-L's level 1: plain gzip in two thirds of zlib-ng's level 1 CPU (0.42 against
        # 0.63 µs a line), a fifth smaller (BENCHMARKS).
        body = await asyncio.to_thread(igzip.compress, batch.body, 1)
        fields: dict[str, object] = {
            "lines": batch.lines,
            "first_ts": batch.first_ts,
            "crc": zlib_ng.crc32(body),  # the same CRC-32 as zlib's, 20 times as fast
            "length": len(body),
            "positions": _listed(batch.positions),
        }
        if batch.written:  # only while a position is held: older shippers ignore both
            fields["written"] = _listed(batch.written)
        if batch.again:
            fields["again"] = True
        header = orjson.dumps(fields)
        data = MAGIC + header + b"\n" + body
        # Judge the pressure with this segment counted: one segment can be a large share
        # of a small buffer, and pausing only after it is written may be too late.
        self.on_change(self.used + len(data), self.max_bytes)
        await self._wait_for_room(len(data))
        number = self._number(batch)
        path = self.folder / f"{number:016d}{SUFFIX}"
        try:
            await asyncio.to_thread(write_durably, path, data)
        except BaseException:
            # The write may have failed after the rename (the folder's fsync): the file
            # can be there whole. The retry of this batch writes over it, not beside it.
            self._failed = (batch, number)
            raise
        self._failed = None
        positions = [(c, s, p) for (c, s), p in batch.positions.items()]
        segment = Segment(number, path, len(data), batch.lines, batch.first_ts, positions)
        segment.earlier = batch.again
        segment.written = [(c, s, p) for (c, s), p in batch.written.items()]
        self._add(segment)
        return segment

    def _number(self, batch: Batch) -> int:
        """The segment number for `batch`: the one its failed write took, else the next."""
        if self._failed is not None and self._failed[0] is batch:
            return self._failed[1]
        number, self._next = self._next, self._next + 1
        return number

    async def _wait_for_room(self, size: int) -> None:
        counted = False
        while self._unacked and self.used + size > self.max_bytes:
            if not counted:
                metrics.BUFFER_FULL.inc()
                counted = True
                # Once a while, not for each batch that waits (several a second when the
                # buffer is small against the batches and a collector is slow).
                now = time.monotonic()
                if now - self._full_logged_at >= FULL_LOG_EVERY:
                    self._full_logged_at = now
                    log.warning(
                        "disk buffer full: reading stops until a collector takes batches",
                        extra={
                            "buffer_bytes": self.used,
                            "batch_bytes": size,
                            "limit_bytes": self.max_bytes,
                        },
                    )
            self._room.clear()
            await self._room.wait()

    async def take(self) -> Segment:
        """The oldest segment not yet handed out for sending (waits for one)."""
        return await self._unsent.get()

    async def read(self, segment: Segment) -> bytes | None:
        """The segment's gzip body, or None when it is corrupt (then it is set aside)."""
        try:
            data = await asyncio.to_thread(segment.path.read_bytes)
        except OSError as exc:
            self._lost(segment, f"unreadable: {exc}")
            return None
        parsed = _split(data)
        if parsed is None or not _intact(*parsed):
            self._lost(segment, "checksum mismatch")
            return None
        body = parsed[1]
        return body

    def _lost(self, segment: Segment, reason: str) -> None:
        metrics.BUFFER_CORRUPT.inc()
        log.error(
            "disk buffer segment corrupt: set aside as .bad, its lines are lost",
            extra={"segment": str(segment.path), "lines": segment.lines, "reason": reason},
        )
        _quarantine(segment.path)
        self._forget(segment)

    def acked(self, segment: Segment) -> None:
        """A collector took the segment; it is deleted at the next `release`."""
        if self._unacked.pop(segment.number, None) is not None:
            self._acked.append(segment)

    def release(self, done: list[Segment] | None = None) -> int:
        """Delete acknowledged segments (all, or those of `done` that were acknowledged):
        save the cursors first, and name the segments acknowledged before that save
        began when others may have been acknowledged while it ran. Return how many."""
        if done is None:
            done, self._acked = self._acked, []
        else:
            gone = {segment.number for segment in done}
            done = [segment for segment in self._acked if segment.number in gone]
            self._acked = [segment for segment in self._acked if segment.number not in gone]
        for segment in done:
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
            self.used -= segment.size
        if done:
            self._room.set()
            self._changed()
        return len(done)

    def _forget(self, segment: Segment) -> None:
        if self._unacked.pop(segment.number, None) is not None:
            self.used -= segment.size
            self._room.set()
            self._changed()

    def _changed(self) -> None:
        metrics.BUFFER_BYTES.set(self.used)
        metrics.BUFFER_BATCHES.set(len(self._unacked) + len(self._acked))
        self.on_change(self.used, self.max_bytes)

    @property
    def pending_batches(self) -> int:
        """Segments not yet acknowledged by a collector."""
        return len(self._unacked)

    @property
    def has_acked(self) -> bool:
        """Some acknowledged segments wait for `release`."""
        return bool(self._acked)

    def acknowledged(self) -> list[Segment]:
        """The acknowledged segments waiting for `release`, as of now."""
        return list(self._acked)

    @property
    def empty(self) -> bool:
        """Nothing left to send or delete."""
        return not self._unacked and not self._acked

    def unacknowledged(self) -> list[Segment]:
        """The segments not yet acknowledged by a collector (read by /status)."""
        return list(self._unacked.values())

    def oldest_ts(self) -> int | None:
        """Timestamp of the oldest line not yet acknowledged, if any."""
        stamps = [s.first_ts for s in self._unacked.values() if s.first_ts]
        return min(stamps) if stamps else None


Header = dict[str, object]


def _listed(positions: dict[tuple[str, str], Position]) -> list[list[object]]:
    return [[c, s, p.ts, p.count] for (c, s), p in positions.items()]


def _positions(raw: object) -> list[StreamPosition]:
    """Positions as a header lists them (`_listed`); raises on anything else."""
    if not isinstance(raw, list):
        raise TypeError("positions are not a list")
    return [(str(c), str(s), Position(int(t), int(n))) for c, s, t, n in raw]


def _split(data: bytes) -> tuple[Header, bytes] | None:
    """A segment's header and body, or None when it does not start like a segment."""
    end = data.find(b"\n", len(MAGIC))
    if not data.startswith(MAGIC) or end < 0:
        return None
    try:
        header = orjson.loads(data[len(MAGIC) : end])
    except orjson.JSONDecodeError:
        return None
    return (header, data[end + 1 :]) if isinstance(header, dict) else None


def _intact(header: Header, body: bytes) -> bool:
    return header.get("length") == len(body) and header.get("crc") == zlib_ng.crc32(body)


def _load_header(path: Path) -> Segment | None:
    """The segment's index entry from its header, or None when the header is unreadable."""
    try:
        number = int(path.name.removesuffix(SUFFIX))
        size = path.stat().st_size
        with path.open("rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
            raw = orjson.loads(f.readline())
        positions = _positions(raw["positions"])
        written = _positions(raw.get("written", []))
        lines, first_ts = int(raw["lines"]), int(raw["first_ts"])
        again = raw.get("again", False) is True
        return Segment(number, path, size, lines, first_ts, positions, again, written)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError):
        return None


def _quarantine(path: Path) -> None:
    """Keep a corrupt segment for a person to look at, out of the spool's way."""
    with contextlib.suppress(OSError):
        path.rename(path.with_suffix(".bad"))
