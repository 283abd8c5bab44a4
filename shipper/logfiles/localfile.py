"""Read a ``local`` driver log directly: a ``--rm`` container's tail, a container's backlog.

The same rescue as jsonfile.py, for Docker's ``local`` log driver. Its file is
``<data root>/containers/<id>/local-logs/container.log`` (inspect's ``LogPath`` is empty
under ``local``); rotation renames it to ``container.log.1`` and so on, compressed to
``.gz`` by default. Each entry is a 4-byte big-endian length, a protobuf ``LogEntry`` of
that length (1 source, 2 time_nano, 3 line, 4 partial, 5 partial_log_metadata), then
the same length again, so that a reader can walk the file backwards. The line is stored
without its newline; dockerd's logs API adds one to every entry not marked partial (the
pieces of a long line, the last one included, and a last line written without a
newline are marked), so each entry becomes the frame the API would have sent, and the
lines join and number exactly as they would have.

The protobuf reader is the few rules this message needs: varints and length-delimited
fields (fixed-size fields skipped too), unknown fields skipped. A torn or corrupt entry
is reported, never raised; the entries around it are still read (the next whole entry is
looked for byte by byte: a length, a message that decodes, the same length after it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import BinaryIO

from shipper.demux import STDERR, STDOUT, Frame
from shipper.logfiles.jsonfile import SLACK_NS
from shipper.rejoin import Line, Rejoiner, held_lines

LOCAL_DIR = "local-logs"
LOCAL_NAME = "container.log"
# An entry holds at most a 16 KiB piece of a line and a few short fields; a length far
# past that is a corrupt one, not an entry to wait for.
MAX_ENTRY = 1 << 20
_SOURCES = {b"stdout": STDOUT, b"stderr": STDERR}
_WIRE = {1: 2, 2: 0, 3: 2, 4: 0, 5: 2}  # LogEntry's fields: varint (0) or length-delimited (2)


class ProtoError(ValueError):
    """A protobuf message that does not decode as a ``LogEntry``."""


@dataclass(slots=True)
class Decoded:
    """The entries read from a log's bytes, and what could not be read (each problem
    says where and why)."""

    frames: list[Frame] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def local_log_path(root_dir: str, cid: str) -> str:
    """Where dockerd keeps a container's ``local`` log ("" when its data root is not
    known)."""
    if not root_dir:
        return ""
    return f"{root_dir.rstrip('/')}/containers/{cid}/{LOCAL_DIR}/{LOCAL_NAME}"


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A varint at `pos`: its value and where the next field starts."""
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise ProtoError("varint cut short")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise ProtoError("varint longer than 10 bytes")


def entry(msg: bytes) -> Frame:
    """One ``LogEntry`` message as the frame dockerd's logs API sends for it."""
    source = b""
    ts = 0
    line = b""
    partial = False
    pos, end = 0, len(msg)
    while pos < end:
        key, pos = _varint(msg, pos, end)
        number, wire = key >> 3, key & 7
        if _WIRE.get(number, wire) != wire:
            raise ProtoError(f"field {number} has wire type {wire}")
        if wire == 0:
            value, pos = _varint(msg, pos, end)
            if number == 2:
                ts = value - (1 << 64) if value >= 1 << 63 else value
            elif number == 4:
                partial = value != 0
        elif wire == 2:
            size, pos = _varint(msg, pos, end)
            if pos + size > end:
                raise ProtoError(f"field {number} runs past the entry")
            if number == 1:
                source = msg[pos : pos + size]
            elif number == 3:
                line = msg[pos : pos + size]
            pos += size
        elif wire in (1, 5):  # fixed 64 or 32 bits, in no field we read
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise ProtoError(f"field {number} runs past the entry")
        else:
            raise ProtoError(f"field {number} has wire type {wire}")
    stream = _SOURCES.get(source)
    if stream is None:
        raise ProtoError(f"source {source[:20]!r} is neither stdout nor stderr")
    return Frame(stream, ts, line if partial else line + b"\n")


def _whole(data: bytes, pos: int) -> tuple[Frame, int] | None:
    """The entry at `pos` and where the next starts, if a whole, sound one is there."""
    end = len(data)
    if end - pos < 8:
        return None
    size = int.from_bytes(data[pos : pos + 4], "big")
    stop = pos + 8 + size
    if size > MAX_ENTRY or stop > end or data[stop - 4 : stop] != data[pos : pos + 4]:
        return None
    try:
        return entry(data[pos + 4 : stop - 4]), stop
    except ProtoError:
        return None


def decode(data: bytes, where: str = "") -> Decoded:
    """The entries of a ``local`` log's bytes (whole entries from the start) as frames.

    An entry that is not sound (its two lengths differ, a length past ``MAX_ENTRY``, a
    message that does not decode) is reported and skipped up to the next sound entry;
    bytes at the end that are not a whole entry are reported as a torn entry.
    """
    frames, _, problems = _take(data, 0, final=True)
    return Decoded(frames, [where + p for p in problems])


def _why_not(data: bytes, pos: int) -> str:
    end = len(data)
    if end - pos < 8:
        return "shorter than its lengths"
    size = int.from_bytes(data[pos : pos + 4], "big")
    if size > MAX_ENTRY:
        return f"length {size} past {MAX_ENTRY}"
    stop = pos + 8 + size
    if stop > end:
        return f"length {size} runs past the end"
    trailer = int.from_bytes(data[stop - 4 : stop], "big")
    if trailer != size:
        return f"length {size} at its start, {trailer} at its end"
    try:
        entry(data[pos + 4 : stop - 4])
    except ProtoError as exc:
        return str(exc)
    return "unreadable"  # pragma: no cover - _whole() would have read it


def _next_whole(data: bytes, start: int) -> int | None:
    """Where the first sound entry at or after `start` begins."""
    for pos in range(start, len(data) - 7):
        if _whole(data, pos) is not None:
            return pos
    return None


def start_of(f: BinaryIO, since: int) -> int:
    """Where to read from for the entries logged from ``since`` on: an entry logged at
    least ``SLACK_NS`` earlier (0 when ``since`` is 0, or when none that early is found,
    or the walk meets an entry that is not sound: then the whole file is read).

    The file is walked backwards from its end, entry by entry, by the length each entry
    repeats after itself: only the tail wanted is read, however long the log.
    """
    size = f.seek(0, os.SEEK_END)
    pos = size
    while since > 0 and pos >= 8:
        f.seek(pos - 4)
        length = int.from_bytes(f.read(4), "big")
        begin = pos - 8 - length
        if length > MAX_ENTRY or begin < 0:
            return 0  # a torn last entry, or a corrupt one: read from the start
        f.seek(begin)
        found = _whole(f.read(pos - begin), 0)
        if found is None:
            return 0
        if found[0].ts < since - SLACK_NS:
            return begin
        pos = begin
    return 0


def read_since(f: BinaryIO, since: int) -> bytes:
    """The (possibly already removed) file from an entry logged at least ``SLACK_NS``
    before ``since`` to its end; all of it when ``since`` is 0."""
    f.seek(start_of(f, since))
    return f.read()


def is_local(files: list[BinaryIO]) -> bool:
    """Whether log files are a ``local`` log's, not a json-file one's: a json-file entry
    starts with ``{``, a ``local`` one with its length's high byte, 0 for any entry (the
    files' offsets move: whoever reads them next seeks)."""
    for f in files:
        f.seek(0)
        first = f.read(1)
        if first:
            return first != b"{"
    return False


def lines(chunks: list[bytes], max_line_bytes: int, tty: bool) -> tuple[list[Line], list[str]]:
    """Whole lines of a ``local`` log, joined as from the logs API, from the bytes of each
    of its files (oldest first; each from an entry's start), and what could not be read."""
    rejoiners = {s: Rejoiner(max_line_bytes, tty) for s in (STDOUT, STDERR)}
    out: list[Line] = []
    problems: list[str] = []
    for n, chunk in enumerate(chunks):
        decoded = decode(chunk, f"file {n + 1} of {len(chunks)}: " if len(chunks) > 1 else "")
        problems += decoded.problems
        for frame in decoded.frames:
            out += rejoiners[frame.stream].push(frame)
    return out + held_lines(rejoiners), problems


def _take(data: bytes, where: int, final: bool = False) -> tuple[list[Frame], int, list[str]]:
    """The whole entries at the start of `data` (a file's bytes from an entry's start,
    `where` bytes into it), where the first one not whole yet begins, and what could
    not be read. A corrupt stretch is skipped up to the next sound entry; one that may
    still become an entry (its length runs past the end) waits for more bytes, unless
    `data` is `final` (all there is): then it is a torn entry, and all of `data` used."""
    frames: list[Frame] = []
    problems: list[str] = []
    pos, end = 0, len(data)
    while pos < end:
        found = _whole(data, pos)
        if found is not None:
            frames.append(found[0])
            pos = found[1]
            continue
        if not final:
            if end - pos < 8:
                break
            size = int.from_bytes(data[pos : pos + 4], "big")
            if size <= MAX_ENTRY and pos + 8 + size > end:
                break  # the rest of it is in the next chunk
        nxt = _next_whole(data, pos + 1)
        if nxt is None:
            if final:
                problems.append(
                    f"torn entry at byte {where + pos} ({end - pos} bytes): {_why_not(data, pos)}"
                )
                return frames, end, problems
            if end - pos <= 2 * (MAX_ENTRY + 8):
                break  # the next sound entry may not be whole yet
            nxt = end - (MAX_ENTRY + 8)  # nothing before this can begin one
        problems.append(
            f"corrupt entry at byte {where + pos} ({nxt - pos} bytes skipped): "
            f"{_why_not(data, pos)}"
        )
        pos = nxt
    return frames, pos, problems


class LocalLines:
    """A ``local`` log's bytes in, a chunk at a time, whole lines out, as the logs API
    would have given them (jsonfile.FileLines' counterpart: feed, end_file, finish).
    What could not be read piles up in `problems` (each says where and why)."""

    def __init__(self, max_line_bytes: int, tty: bool) -> None:
        self._rejoiners = {s: Rejoiner(max_line_bytes, tty) for s in (STDOUT, STDERR)}
        self._carry = b""  # the start of an entry the last chunk cut
        self._at = 0  # bytes of the file before the carry
        self.problems: list[str] = []

    def feed(self, chunk: bytes) -> list[Line]:
        """The lines that `chunk` completes; an entry it cuts waits for the next chunk."""
        data = self._carry + chunk
        frames, used, problems = _take(data, self._at)
        self.problems += problems
        self._carry = data[used:]
        self._at += used
        return self._lines(frames)

    def end_file(self) -> list[Line]:
        """The end of one file: what is left is read as far as it goes (a torn last
        entry is reported); a line's pieces may go on in the next file."""
        carry, self._carry = self._carry, b""
        decoded = decode(carry)
        self.problems += [f"{p} (byte {self._at} of the file on)" for p in decoded.problems]
        self._at = 0
        return self._lines(decoded.frames)

    def finish(self) -> list[Line]:
        """The end of the log: what end_file reads, then the lines held unfinished."""
        return self.end_file() + held_lines(self._rejoiners)

    def _lines(self, frames: list[Frame]) -> list[Line]:
        out: list[Line] = []
        for frame in frames:
            out += self._rejoiners[frame.stream].push(frame)
        return out
