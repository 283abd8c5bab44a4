"""Read a json-file log directly: the last resort for a ``--rm`` container's tail.

dockerd ends a follow stream when the container is being removed, about 30 ms after
it exits, whether or not its own reader had caught up; under CPU pressure it had not
(measured: 762 of 1,000 lines sent), and by then the logs API refuses any request.
A file opened while the container ran stays readable after its removal, so when the
shipper can see the host's /var/lib/docker/containers (on the host, or mounted
read-only into its container), it holds the log of each ``--rm`` container (opened as
dockerd creates it, watch.py) and reads what the stream left out from there. Without
it, the end of such a log cannot be confirmed, and a gap says so. Parsing is pure;
entries become the same frames the API would have sent (same 16 KiB pieces, same
U+FFFD), so lines join and number exactly as they would have.

Rotated files that dockerd compressed (``compress=true``, and the ``local`` driver's by
default) are unpacked into a file of their own as they are opened (open_rotated), so
they read, seek and compare like the plain ones; one cut short or corrupt is read up to
the damage, and says so (problem()). A read from a position (``since``) does not unpack
the ones whose gzip header says their last entry is older than it (last_time): after a
restart, a log's backlog would otherwise unpack every file of its chain to read a few
lines at its end.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
import zlib
from collections.abc import Iterable
from typing import BinaryIO

import orjson
from prometheus_client import Counter

from shipper.demux import STDERR, STDOUT, Frame, parse_ts
from shipper.errors import DemuxError
from shipper.rejoin import Line, Rejoiner, held_lines

_STREAMS = {"stdout": STDOUT, "stderr": STDERR}
SLACK_NS = 1_000_000_000  # the two streams' entries are in time order to within this
PROBE_BYTES = 1 << 18  # read to find an entry: more than one entry's longest (16 KiB log)
CHECK_EVERY = 1.0  # seconds between two looks at whether rotation replaced a held file
HELD_FILES = 4  # files of one log held at most: the newest ones
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib reads gzip members (header and trailer checked)
UNPACK_CHUNK = 1 << 16  # compressed bytes read at a time
UNPACK_STEP = 1 << 12  # ... and unpacked at a time
UNPACK_SMALL = 16  # ... and again this few at a time, up to a corrupt stretch
HEAD_BYTES = 4096  # first bytes compared to tell a compressed copy from another file
GZIP_FEXTRA = 0x04  # the gzip header's flag: an extra field follows the first 10 bytes

RESCUES = Counter(
    "logpipe_shipper_logfile_rescues_total",
    "Removed containers whose log file was read directly: a --rm one's after its stream"
    " ended, a run started and removed as its follower finished.",
)


UNPACKED = Counter(
    "logpipe_shipper_logfile_unpacked_total",
    "Rotated log files that dockerd compressed, unpacked to be read (one whose header says"
    " its last entry is older than the position a read starts from is not).",
)


def entry(raw: bytes) -> tuple[int, int, bytes] | None:
    """One line of a json-file log as (stream, ts, text); None for a torn or foreign line."""
    try:
        parsed = orjson.loads(raw)
        stream = _STREAMS[parsed["stream"]]
        ts = parse_ts(parsed["time"].encode())
        text = parsed["log"].encode("utf-8", "surrogatepass")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, DemuxError):
        return None
    return stream, ts, text


def frames(data: bytes) -> list[Frame]:
    """The entries of a json-file log as frames; a torn or foreign line is skipped."""
    out: list[Frame] = []
    for raw in data.splitlines():
        read = entry(raw)
        if read is not None:
            out.append(Frame(*read))
    return out


def json_log_path(root_dir: str, cid: str) -> str:
    """Where dockerd keeps a container's json-file log ("" when its data root is not
    known). Inspect gives it as ``LogPath`` only once the container has started."""
    if not root_dir:
        return ""
    return f"{root_dir.rstrip('/')}/containers/{cid}/{cid}-json.log"


def unreachable(root_dir: str) -> str | None:
    """Why the shipper cannot open the log files under dockerd's data root (None: it can
    at least enter their folder; each file's own mode is only known when opened)."""
    if not root_dir:
        return "dockerd did not give its data root"
    folder = os.path.join(root_dir, "containers")
    try:
        os.stat(folder)
    except FileNotFoundError:
        return f"{folder} is not there (mount it read-only at the same path)"
    except OSError as exc:
        return f"{folder}: {exc.strerror}"
    if not os.access(folder, os.X_OK):
        return f"{folder}: permission denied"
    return None


def open_log(path: str) -> BinaryIO | None:
    """The log file opened for reading, or None when the shipper cannot see it."""
    if not path:
        return None
    with contextlib.suppress(OSError):
        return open(path, "rb")  # held open on purpose: the follower closes it
    return None


def read_since(f: BinaryIO, since: int) -> bytes:
    """The (possibly already removed) file from an entry logged at least ``SLACK_NS``
    before ``since`` to its end; all of it when ``since`` is 0."""
    f.seek(start_of(f, since))
    return f.read()


def start_of(f: BinaryIO, since: int) -> int:
    """Where to read from for the entries logged from ``since`` on: an entry at least
    ``SLACK_NS`` earlier (0 when ``since`` is 0, or when no entry that early is found).

    A container that ran for days can leave gigabytes, and the lines wanted are near
    the end: the file is probed backwards from there, each probe twice as far as the
    last, until an entry old enough is found (entries are in the order they were
    logged, to within the slack).
    """
    size = f.seek(0, os.SEEK_END)
    back = PROBE_BYTES
    while since > 0 and back < size:
        found = _entry_at(f, size - back)
        if found is not None and found[1] < since - SLACK_NS:
            return found[0]
        back *= 2
    return 0


def open_all(path: str, since: int = 0) -> list[BinaryIO] | None:
    """Every file of a json-file (or ``local``) log, oldest first (``-json.log.2``,
    ``.1``, then the log itself; a rotated file compressed by dockerd unpacked, see
    open_rotated), from the newest one that may hold an entry logged from ``since`` on
    (0: all of them; see open_chain); None when the log itself cannot be read here."""
    chain = open_chain(path, since=since)
    return None if chain is None else chain[0]


def open_chain(
    path: str, held: BinaryIO | None = None, since: int = 0
) -> tuple[list[BinaryIO], bool] | None:
    """The files of a log newer than the file `held` (None: all of them), opened,
    oldest first, and whether the chain reached back to `held` (no file between removed
    by rotation). None when `path` is still `held`, or cannot be read here.

    They are opened newest first: a rotation meanwhile renames the files already opened
    (each is then met again under its next number, or as its compressed copy, and
    skipped) and starts a new file, whose lines come after every line of those opened.

    With ``since``, the chain also ends at the first rotated file that is there only
    compressed and whose header says its last entry was logged more than ``SLACK_NS``
    before ``since`` (before_since): entries are in the order logged to within that
    slack, so neither it nor any older file holds one logged from ``since`` on, and it
    is not unpacked. A rotation meanwhile only moves files away from the look (one
    number up), so the files newer than the one found old were all met already. The
    file `held` met as its compressed copy is told by the copy's length and first
    bytes (packs), without unpacking it all.
    """
    newest = open_log(path)
    if newest is None:
        return None
    if held is not None and same(newest, held):
        newest.close()
        return None
    files = [newest]
    reached = False
    k = 1
    while True:
        name = f"{path}.{k}"
        if since and before_since(name, since):
            break
        if held is not None and _holds(name, held):
            reached = True  # as it is, or its compressed copy: told without unpacking it
            break
        f = open_rotated(name)
        if f is None:
            break
        if held is not None and same(f, held):
            reached = True
            f.close()
            break
        if any(same(f, opened) for opened in files):
            f.close()
        else:
            files.append(f)
        k += 1
    files.reverse()
    return files, reached


class Unpacked(io.BufferedRandom):
    """A rotated log file that dockerd compressed (``.N.gz``), unpacked into a file of
    its own (unlinked: it goes with its last descriptor). `packed` is the compressed
    file's identity (what tells it apart across renames); `problem` says why it ends
    early ("" when it was whole)."""

    packed: tuple[int, int]
    problem: str


def open_rotated(path: str) -> BinaryIO | None:
    """The rotated file `path` (``.N``) opened, or else its compressed copy ``.N.gz``
    unpacked (None: neither is there, or readable here).

    dockerd compresses a rotated file in place: it writes ``.N.gz`` next to ``.N`` and
    removes ``.N`` only once the copy is closed (watched on Docker 20.10 with inotify: no
    temporary name). So a plain ``.N`` is the whole file and a ``.gz`` beside it may be
    cut short; a ``.gz`` alone is whole unless dockerd stopped while writing it."""
    f = open_log(path)
    if f is not None:
        return f
    packed = open_log(f"{path}.gz")
    if packed is None:
        return None
    with packed:
        unpacked = unpack(packed, f"{path}.gz")
    UNPACKED.inc()
    if unpacked.problem:
        plain = open_log(path)  # renamed to .N and being compressed since the first look
        if plain is not None:
            unpacked.close()
            return plain
    return unpacked


def last_time(packed: BinaryIO) -> int | None:
    """When the last entry of a compressed log file was logged, as dockerd wrote it into
    the gzip header: the header's extra field (flag FEXTRA, then a 2-byte little-endian
    length) holds JSON, ``{"lastTime":"2026-12-07T00:01:01.701611592Z"}``, not the
    subfields of RFC 1952 (seen on Docker 20.10, json-file and ``local`` alike: the
    time of the file's last entry). None when the header holds no such time, or cannot
    be read; and when it says Go's zero time, ``0001-01-01T00:00:00Z``: dockerd writes
    that when it rotates a file whose entries were all written before it last opened
    the log (seen after a container's restart), so it says nothing of them."""
    try:
        head = os.pread(packed.fileno(), 12, 0)
        if len(head) < 12 or head[:3] != b"\x1f\x8b\x08" or not head[3] & GZIP_FEXTRA:
            return None
        size = int.from_bytes(head[10:12], "little")
        extra = os.pread(packed.fileno(), size, 12)
        meta = orjson.loads(extra)
        ts = parse_ts(meta["lastTime"].encode())
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError, DemuxError):
        return None
    return ts if ts > 0 else None


def before_since(path: str, since: int) -> bool:
    """Whether the rotated file `path` (``.N``) is there only compressed (``.N.gz``) and
    its header says its last entry was logged more than ``SLACK_NS`` before ``since``:
    then no entry it holds was logged from ``since`` on (each is at most the slack later
    than the last). A plain ``.N`` is read as ever (it costs no unpacking, and beside a
    ``.gz`` it is the whole one)."""
    if os.path.exists(path):
        return False
    packed = open_log(f"{path}.gz")
    if packed is None:
        return False
    with packed:
        last = last_time(packed)
    return last is not None and last < since - SLACK_NS


def unpack(packed: BinaryIO, name: str) -> Unpacked:
    """The content of a gzip-compressed log file, in a file of its own. What comes
    before a cut or a corrupt stretch is kept; `problem` says where it ended and why."""
    fd, temp = tempfile.mkstemp(prefix="logpipe-unpacked-")
    os.unlink(temp)
    out = Unpacked(io.FileIO(fd, "r+b"))
    out.packed = identity(os.fstat(packed.fileno()))
    out.problem = ""
    unpacker = zlib.decompressobj(GZIP_WBITS)
    read = 0
    try:
        while chunk := packed.read(UNPACK_CHUNK):
            for at in range(0, len(chunk), UNPACK_STEP):
                step = chunk[at : at + UNPACK_STEP]
                before = unpacker.copy()
                try:
                    out.write(unpacker.decompress(step))
                except zlib.error:
                    # What the step made before the damage, a few bytes at a time.
                    for small in range(0, len(step), UNPACK_SMALL):
                        out.write(before.decompress(step[small : small + UNPACK_SMALL]))
                        read += min(UNPACK_SMALL, len(step) - small)
                    raise  # pragma: no cover - the small steps meet the damage too
                read += len(step)
                while unpacker.eof and unpacker.unused_data:  # a member of its own follows
                    rest = unpacker.unused_data
                    unpacker = zlib.decompressobj(GZIP_WBITS)
                    out.write(unpacker.decompress(rest))
        if not unpacker.eof:
            out.write(unpacker.flush())
            out.problem = f"{name} is cut short: it ends inside its compressed data"
    except zlib.error as exc:
        out.problem = f"{name} is corrupt after {read} compressed bytes: {exc}"
    except OSError as exc:
        out.problem = f"{name} could not be read after {read} compressed bytes: {exc}"
    if out.problem:
        out.problem += f" ({out.tell()} bytes unpacked, read up to there)"
    out.flush()
    out.seek(0)
    return out


def packs(packed: BinaryIO, plain: BinaryIO) -> bool:
    """Whether the compressed file holds `plain`'s bytes: the same length (gzip keeps it,
    modulo 2**32, in its last 4 bytes) and the same first bytes, each entry of which
    carries a time to the nanosecond."""
    size = os.fstat(plain.fileno()).st_size
    end = packed.seek(0, os.SEEK_END)
    if end < 18:
        return False
    packed.seek(end - 4)
    if int.from_bytes(packed.read(4), "little") != size % (1 << 32):
        return False
    packed.seek(0)
    unpacker = zlib.decompressobj(GZIP_WBITS)
    try:
        head = unpacker.decompress(packed.read(UNPACK_CHUNK), HEAD_BYTES)
    except zlib.error:
        return False
    packed.seek(0)
    return head == os.pread(plain.fileno(), HEAD_BYTES, 0)


def same(f: BinaryIO, other: BinaryIO) -> bool:
    """Whether two opened files are one file of a log: the same file, or one the
    other's compressed copy unpacked (same length, same first bytes)."""
    if file_identity(f) == file_identity(other):
        return True
    if isinstance(f, Unpacked) == isinstance(other, Unpacked):
        return False
    size = os.fstat(f.fileno()).st_size
    if size != os.fstat(other.fileno()).st_size:
        return False
    return os.pread(f.fileno(), HEAD_BYTES, 0) == os.pread(other.fileno(), HEAD_BYTES, 0)


def file_identity(f: BinaryIO) -> tuple[int, int]:
    """The identity of an opened log file (a compressed one's: of its ``.gz``)."""
    if isinstance(f, Unpacked):
        return f.packed
    return identity(os.fstat(f.fileno()))


def problem(f: BinaryIO) -> str:
    """Why a log file opened ends early ("": it does not; only an unpacked one can)."""
    return f.problem if isinstance(f, Unpacked) else ""


def unchanged(path: str, f: BinaryIO, size: int) -> bool:
    """Whether `path` is still the file `f` and holds `size` bytes (nothing written since)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return identity(st) == identity(os.fstat(f.fileno())) and st.st_size == size


class HeldLog:
    """A ``--rm`` container's log file held open, kept up with rotation.

    With ``max-size``, dockerd renames the file it writes (to ``-json.log.1``, the older
    ones one number up) and starts a new one; a file held from the container's start
    would then stop short of its tail. So while its lines are read, the file at the
    log's path is compared with the newest one held (at most every ``CHECK_EVERY``
    seconds). When rotation replaced it, that file is opened, and so are the ones
    rotation made in between (``.1``, ``.2``, ... down to the one held, or its
    compressed copy; one compressed by dockerd is unpacked, open_rotated): lines
    written before those rotations and not read yet are still there. The newest
    ``HELD_FILES`` are kept, oldest first.
    """

    def __init__(self, f: BinaryIO) -> None:
        self.files = [f]
        self._checked = time.monotonic()

    @property
    def current(self) -> BinaryIO:
        """The newest file held."""
        return self.files[-1]

    def keep_up(self, path: str, now: float) -> bool:
        """Take the files rotation made since the last look at `path`; True if any."""
        if now - self._checked < CHECK_EVERY or not path:
            return False
        self._checked = now
        try:
            held = identity(os.fstat(self.current.fileno()))
            if identity(os.stat(path)) == held:
                return False
        except (OSError, ValueError):  # between rotation's rename and create; no fd
            return False
        opened = [*rotated_between(path, self.current), open_log(path)]
        newer = [f for f in opened if f is not None]
        if not newer:
            return False
        self.files += newer
        for f in self.files[:-HELD_FILES]:
            f.close()
        del self.files[:-HELD_FILES]
        return True

    def adopt(self, newer: Iterable[BinaryIO]) -> None:
        """Hold `newer` after the files held: the files rotation began since, oldest
        first, as the watch opened them (watch.py; keep_up is not used with it). A file
        held already is closed (its first, when it was opened by its path)."""
        held = {file_identity(f) for f in self.files}
        for f in newer:
            it = file_identity(f)
            if it in held:
                f.close()
            else:
                held.add(it)
                self.files.append(f)
        for f in self.files[:-HELD_FILES]:
            f.close()
        del self.files[:-HELD_FILES]

    def read_since(self, since: int) -> bytes:
        """:func:`read_since` of each file held, oldest first."""
        return b"".join(read_since(f, since) for f in self.files)

    def full(self, max_bytes: int | None) -> bool:
        """Whether the newest file held reached the size at which dockerd rotates: its log
        may go on in a newer file, opened after the last look."""
        if not max_bytes:
            return False
        return self.current.seek(0, os.SEEK_END) >= max_bytes

    def close(self) -> None:
        """Close the files held."""
        for f in self.files:
            f.close()


def rotated_between(path: str, held: BinaryIO) -> list[BinaryIO]:
    """The files rotation renamed away from the log at `path` since `held` was its file
    (``.1``, ``.2``, ... down to `held` or its compressed copy, at most HELD_FILES - 1),
    opened, oldest first: lines written to them may not have been read yet."""
    between: list[str] = []  # newest first
    for k in range(1, HELD_FILES):
        rotated = f"{path}.{k}"
        if _holds(rotated, held):
            break
        if not os.path.exists(rotated) and not os.path.exists(f"{rotated}.gz"):
            break
        between.append(rotated)
    opened = [open_rotated(name) for name in reversed(between)]
    return [f for f in opened if f is not None]


def _holds(rotated: str, held: BinaryIO) -> bool:
    """Whether the rotated file `rotated` (``.N``, or its compressed ``.N.gz``) is `held`."""
    try:
        return identity(os.stat(rotated)) == identity(os.fstat(held.fileno()))
    except FileNotFoundError:
        pass
    except OSError:
        return False
    packed = open_log(f"{rotated}.gz")
    if packed is None:
        return False
    with packed:
        try:
            return packs(packed, held)
        except OSError:
            return False


def identity(st: os.stat_result) -> tuple[int, int]:
    """What tells one file from another whatever its name: inode and device."""
    return st.st_ino, st.st_dev


def _entry_at(f: BinaryIO, offset: int) -> tuple[int, int] | None:
    """Where the first whole entry after ``offset`` starts, and its time."""
    f.seek(offset)
    piece = f.read(PROBE_BYTES)
    begin = piece.find(b"\n") + 1  # the entry at offset may be cut: skip to the next
    end = piece.find(b"\n", begin)
    if begin == 0 or end < 0:
        return None
    try:
        ts = parse_ts(orjson.loads(piece[begin:end])["time"].encode())
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, DemuxError):
        return None
    return offset + begin, ts


class FileLines:
    """A json-file log's bytes in, a chunk at a time, whole lines out (as the logs API
    would have given them: each entry is the frame dockerd sends for it)."""

    def __init__(self, max_line_bytes: int, tty: bool) -> None:
        self._rejoiners = {s: Rejoiner(max_line_bytes, tty) for s in (STDOUT, STDERR)}
        self._carry = b""  # the start of an entry the last chunk cut

    def feed(self, chunk: bytes) -> list[Line]:
        """The lines that `chunk` completes; an entry it cuts waits for the next chunk."""
        data = self._carry + chunk
        end = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        self._carry = data[end:]
        return self._lines(data[:end])

    def end_file(self) -> list[Line]:
        """The end of one file: an entry without a line end is read as it is (the next
        file starts with an entry of its own); a line's pieces may go on in the next."""
        carry, self._carry = self._carry, b""
        return self._lines(carry)

    def finish(self) -> list[Line]:
        """The end of the log: what end_file reads, then the lines held unfinished."""
        return self.end_file() + held_lines(self._rejoiners)

    def _lines(self, data: bytes) -> list[Line]:
        out: list[Line] = []
        for frame in frames(data):
            out += self._rejoiners[frame.stream].push(frame)
        return out


def lines(data: bytes, max_line_bytes: int, tty: bool) -> list[Line]:
    """Whole lines of a json-file log, joined as from the logs API."""
    reader = FileLines(max_line_bytes, tty)
    return reader.feed(data) + reader.finish()
