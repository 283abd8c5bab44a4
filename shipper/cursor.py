"""Where each container's streams have been read and acknowledged up to.

A position is per stream: the last timestamp and how many entries carried it. Resuming
asks dockerd for everything since the lowest position of the two streams and drops, per
stream, what was already taken: measured to lose and duplicate nothing where a single
`since` loses or repeats lines (see docs/docker-logs.md). The acknowledged positions are
saved atomically (write, fsync, rename, fsync of the folder) in one file, with what is
needed to account for a container that disappears while the shipper is not running:
its name, image and labels, whether its log was read to the end, when it was found
removed (its gaps end there), and the last time the shipper was alive (containers that
exited after it are read at the next start).

A position held back at a window of a rotating log not read again yet
(shipper/logfiles/audit.py) is saved with how far the stream's lines had gone into the
disk buffer (``written``), which the position does not cover. The next start reads them
from Docker again, from the held position; until its position passes that point, a
batch that may hold them goes marked as sent again (:meth:`CursorStore.sent_before`), so
that a line indexed before its data stream rolled over is found in the older backing
index instead of being indexed a second time. A file without ``written`` (a shipper
before it, or nothing held) marks nothing; an older shipper ignores it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import orjson

from shipper import metrics
from shipper.durable import WriteFailures, errno_name, write_durably
from shipper.errors import ConfigError

log = logging.getLogger("logpipe.shipper.cursor")

STREAMS = ("stdout", "stderr")
CURSOR_VERSION = 1  # the cursor file's format, written and required


@dataclass(slots=True)
class Position:
    """Entries up to `count` of those stamped `ts` are taken."""

    ts: int = 0
    count: int = 0

    def covers(self, ts: int, seq: int) -> bool:
        """Whether the entry (ts, seq) is at or before this position."""
        return ts < self.ts or (ts == self.ts and seq < self.count)

    def after(self, ts: int, seq: int) -> Position:
        """The position just past entry (ts, seq)."""
        return Position(ts, seq + 1)

    def passes(self, other: Position) -> bool:
        """Whether this position is beyond `other`."""
        return (self.ts, self.count) > (other.ts, other.count)


def last_read(positions: Iterable[Position]) -> int:
    """Where a loss can start: the latest of the streams' positions. dockerd sends both
    streams in the order they were logged, so nothing before the last line read, of
    either stream, is missing (a stream that never had a line has no position of its own
    to start from)."""
    return max(p.ts for p in positions)


class SavedMeta(TypedDict):
    """What a gap document needs to name a container that is gone."""

    name: str
    image: str
    labels: dict[str, str]


@dataclass(slots=True)
class Cursor:
    """Positions of one container's two streams."""

    streams: dict[str, Position] = field(default_factory=dict)
    floor: int = 0
    meta: SavedMeta | None = None
    done: bool = False  # its log was read to the end after it stopped
    # Per stream, past the lines in the disk buffer where the position is held behind them.
    written: dict[str, Position] = field(default_factory=dict)
    # When a listing or its follower found it removed (ns; 0: not found so): where its
    # gaps end, the same each time they are reported, so that a report repeated after a
    # crash keeps its ids.
    gone: int = 0

    def position(self, stream: str) -> Position:
        """This stream's position; the floor when it never had a line."""
        return self.streams.get(stream) or Position(self.floor, 0)

    def held(self) -> dict[str, Position]:
        """The positions held at a window's start, with lines read past them (`written`)."""
        return {s: self.position(s) for s in self.written}

    def since(self) -> int:
        """The `since` to resume from: the lowest of both streams' positions."""
        return min(self.position(s).ts for s in STREAMS)

    def copy(self) -> Cursor:
        """An independent copy."""
        streams = {k: Position(p.ts, p.count) for k, p in self.streams.items()}
        written = {k: Position(p.ts, p.count) for k, p in self.written.items()}
        return Cursor(streams, self.floor, self.meta, self.done, written, self.gone)


class Sequencer:
    """Numbers the entries of one stream that share a timestamp, and drops the seen ones.

    Within one stream dockerd's timestamps never go backwards, except when it repeats
    lines after a log rotation; those repeats are at or before the position reached.
    A repeat can start at the very timestamp last read: then only the content tells a
    repeat from a new entry, so entries of a timestamp are told apart by a digest
    (distinct lines never share a nanosecond in practice: docs/docker-logs.md).
    """

    def __init__(self, start: Position) -> None:
        # The position reached, as two ints: a Position per line cost more than numbering.
        self._reached_ts = start.ts
        self._reached_count = start.count
        self._ts = -1
        self._digests: list[int | None] = []

    @property
    def reached(self) -> Position:
        """The position just past the last entry numbered (or the start)."""
        return Position(self._reached_ts, self._reached_count)

    def number(self, ts: int, digest: int | None = None) -> int | None:
        """The entry's sequence number among equal timestamps, or None if already taken."""
        if ts != self._ts:
            self._ts, self._digests = ts, [digest]
            seq = 0
        elif digest is not None and digest in self._digests:
            seq = self._digests.index(digest)
        else:
            seq = len(self._digests)
            self._digests.append(digest)
        reached = self._reached_ts
        if ts < reached or (ts == reached and seq < self._reached_count):
            return None
        self._reached_ts, self._reached_count = ts, seq + 1
        return seq


class CursorStore:
    """All containers' acknowledged cursors in one JSON file under the state folder."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir
        self._path = state_dir / "cursors.json"
        self._cursors: dict[str, Cursor] = {}
        self._follows: dict[str, int] = {}  # how many follows of each container began
        # Per (container, stream): lines up to here may have been sent by an earlier run.
        self._again: dict[tuple[str, str], Position] = {}
        self.alive_ns = 0  # the last time this shipper was known to be reading
        self._writing = asyncio.Lock()
        self._failures = WriteFailures(self._path, metrics.CURSOR_SAVE_ERRORS)

    def load(self) -> None:
        """Read the saved cursors (none on first start).

        A cursor file that cannot be read is a ConfigError, never a fresh start: without
        the cursors every log would be shipped again (or, with LOGPIPE_START_AT=end,
        what was logged while the shipper was down would be skipped), and which of the
        two is for a person to choose by moving the file aside.
        """
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            raw = orjson.loads(self._path.read_bytes())
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._unusable(
                os.strerror(exc.errno).lower() if exc.errno else str(exc)
            ) from None
        except orjson.JSONDecodeError as exc:
            raise self._unusable(f"not JSON: {exc}") from None
        version = raw.get("version") if isinstance(raw, dict) else None
        if version != CURSOR_VERSION:
            # Every shipper wrote version 1: another number is a newer shipper's format,
            # none a file of something else; read as empty, either would ship everything again.
            raise self._unusable(
                f"version {version!r}, where this shipper reads {CURSOR_VERSION}: written by "
                "a newer shipper, or not a cursor file"
            )
        try:
            self.alive_ns = int(raw.get("alive_ns", 0))
            for cid, entry in raw.get("containers", {}).items():
                streams = {
                    str(s): Position(int(p[0]), int(p[1]))
                    for s, p in entry.get("streams", {}).items()
                }
                meta = entry.get("meta")
                written = {
                    str(s): Position(int(p[0]), int(p[1]))
                    for s, p in entry.get("written", {}).items()
                }
                self._cursors[str(cid)] = Cursor(
                    streams,
                    int(entry.get("floor", 0)),
                    meta,
                    bool(entry.get("done", False)),
                    written,
                    int(entry.get("gone", 0)),
                )
                self._again.update({(str(cid), s): p for s, p in written.items()})
        except (AttributeError, TypeError, ValueError, IndexError) as exc:
            self._cursors.clear()
            self._again.clear()
            raise self._unusable(f"not a cursor file: {exc}") from None

    def _unusable(self, why: str) -> ConfigError:
        return ConfigError(
            f"LOGPIPE_STATE_DIR: cannot read the cursors in {self._path} ({why}); move it "
            "aside to start over as on a first start (see LOGPIPE_START_AT)"
        )

    def get(self, cid: str) -> Cursor | None:
        """A copy of the container's cursor, if it has one."""
        cursor = self._cursors.get(cid)
        return cursor.copy() if cursor else None

    def advance(self, cid: str, stream: str, pos: Position, floor: int = 0) -> None:
        """Move a stream's acknowledged position forward (never back)."""
        cursor = self._cursors.setdefault(cid, Cursor(floor=floor))
        current = cursor.streams.get(stream)
        if current is None or pos.passes(current):
            cursor.streams[stream] = pos
            written = cursor.written.get(stream)
            if written is not None and not written.passes(pos):
                del cursor.written[stream]  # read again up to there: nothing held behind
            again = self._again.get((cid, stream))
            if again is not None and not again.passes(pos):
                del self._again[(cid, stream)]

    def wrote(self, cid: str, stream: str, pos: Position, earlier: bool = False) -> None:
        """The stream's lines up to `pos` are in the disk buffer, its position held
        behind them (after `advance`): noted, and saved with the position, until the
        position passes it. `earlier`: a segment left by an earlier run holds them."""
        cursor = self._cursors.get(cid)
        if cursor is None or not pos.passes(cursor.position(stream)):
            return
        noted = cursor.written.get(stream)
        if noted is None or pos.passes(noted):
            cursor.written[stream] = pos
        again = self._again.get((cid, stream))
        if earlier and (again is None or pos.passes(again)):
            self._again[(cid, stream)] = pos

    def sent_before(self, streams: Iterable[tuple[str, str]], first_ts: int) -> bool:
        """Whether a batch of lines of these (container, stream)s, the oldest stamped
        `first_ts`, may hold lines an earlier run sent: read again from Docker because
        that run's positions were held behind them. Judged per batch from its oldest
        line, so a batch of other lines too may be marked with them (a lookup's cost,
        never a copy); none once the positions passed what that run had written."""
        if not self._again or not first_ts:
            return False
        for key in streams:
            again = self._again.get(key)
            if again is not None and again.covers(first_ts, 0):
                return True
        return False

    def ensure(self, cid: str, floor: int, meta: SavedMeta | None = None) -> Cursor:
        """The container's cursor, created with `floor` if it has none; notes `meta`."""
        cursor = self._cursors.setdefault(cid, Cursor(floor=floor))
        if meta is not None:
            cursor.meta = meta
        return cursor.copy()

    def set_done(self, cid: str, done: bool) -> None:
        """Note whether the container's log was read to its end (it had stopped)."""
        cursor = self._cursors.get(cid)
        if cursor is not None:
            cursor.done = done

    def mark_gone(self, cid: str, ns: int) -> int:
        """Note when a listing or its follower found the container removed, unless noted
        before: the time noted (0 without a cursor)."""
        cursor = self._cursors.get(cid)
        if cursor is None:
            return 0
        if not cursor.gone:
            cursor.gone = ns
        return cursor.gone

    def begin(self, cid: str) -> int:
        """A follow of the container begins: not done; the number of this follow (it
        goes with the DoneRecord of its end, see `finish`)."""
        self.set_done(cid, False)
        follow = self._follows.get(cid, 0) + 1
        self._follows[cid] = follow
        return follow

    def finish(self, cid: str, follow: int) -> None:
        """The lines before the end of follow number `follow` are on disk: the container
        is done, unless a later follow of it began meanwhile (a restart: its lines may
        still wait in the queue)."""
        if self._follows.get(cid, 0) == follow:
            self.set_done(cid, True)

    def forget(self, cid: str) -> None:
        """Drop a removed container's cursor."""
        self._cursors.pop(cid, None)
        self._follows.pop(cid, None)
        for stream in STREAMS:
            self._again.pop((cid, stream), None)

    def containers(self) -> list[str]:
        """Ids of containers with a cursor."""
        return list(self._cursors)

    @property
    def path(self) -> Path:
        """The cursor file."""
        return self._path

    def save(self) -> None:
        """Write all cursors atomically."""
        write_durably(self._path, self._snapshot())

    @property
    def save_error(self) -> str | None:
        """Why the last save failed, if it did."""
        return self._failures.error

    async def save_or_log(self, quiet: bool = False) -> bool:
        """save_in_thread(), but a disk that refuses the save (full, read-only, an I/O
        error) is counted and logged, once per reason and again every REPEAT_LOG seconds
        (never when `quiet`: the caller says it), not raised: False then. Nothing is lost
        meanwhile: segments are deleted only once a save covers them, and the next save
        (every second) covers all."""
        try:
            await self.save_in_thread()
        except OSError as exc:
            if self._failures.failed(exc) and not quiet:
                log.error(
                    "cannot save the cursors: retried every second; the disk buffer keeps "
                    "the batches they would cover, so a restart meanwhile loses nothing",
                    extra={
                        "path": str(self._path),
                        "errno": errno_name(exc),
                        "reason": exc.strerror,
                    },
                )
            return False
        if self._failures.worked():
            log.info("cursors saved again", extra={"path": str(self._path)})
        return True

    async def save_in_thread(self) -> None:
        """Like save(), with the fsyncs off the event loop (which must stay responsive).

        The cursors are read once no other save is under way, so what is written covers
        every position reached before this call, and saves land in the order they began.
        """
        async with self._writing:
            data = self._snapshot()
            await asyncio.to_thread(write_durably, self._path, data)

    def _snapshot(self) -> bytes:
        data = {
            "version": CURSOR_VERSION,
            "alive_ns": self.alive_ns,
            "containers": {cid: _entry(c) for cid, c in self._cursors.items()},
        }
        return orjson.dumps(data)


def _entry(c: Cursor) -> dict[str, object]:
    entry: dict[str, object] = {
        "floor": c.floor,
        "streams": {s: [p.ts, p.count] for s, p in c.streams.items()},
    }
    if c.meta is not None:
        entry["meta"] = c.meta
    if c.done:
        entry["done"] = True
    if c.written:
        entry["written"] = {s: [p.ts, p.count] for s, p in c.written.items()}
    if c.gone:
        entry["gone"] = c.gone
    return entry
