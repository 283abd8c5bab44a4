"""Split Docker's log stream into timestamped entries. Pure: bytes in, frames out.

Non-TTY containers send frames: an 8-byte header ``[stream, 0, 0, 0, size u32 BE]``
then ``size`` bytes. TTY containers send raw bytes with stderr merged into stdout, and
``\\r\\n`` line ends. With ``timestamps=1`` every entry starts with an RFC 3339 UTC
timestamp with nine fractional digits and a space; dockerd cuts long lines into
entries of 16,384 bytes that all carry the same timestamp.
"""

from __future__ import annotations

import calendar
import re
import struct
from dataclasses import dataclass

from shipper.errors import DemuxError

STDOUT, STDERR = 1, 2
SYSTEM_ERROR = 3  # dockerd's own error, e.g. "Error grabbing logs: ..." when a file vanished
STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
PIECE = 16384  # dockerd's cut for long lines
_TS_LEN = 30  # "2026-11-27T20:55:19.123456789Z"
_HEADER = struct.Struct(">BxxxL")
# An entry's timestamp as dockerd writes it in a TTY stream (nothing else delimits entries).
_TTY_TS = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")
_second_cache: dict[bytes, int] = {}


@dataclass(slots=True)
class Frame:
    """One log entry as dockerd stored it: a whole line or a 16 KiB piece of one."""

    stream: int
    ts: int
    data: bytes

    @property
    def complete(self) -> bool:
        """Ends a line: has the newline, or is a short last line written without one."""
        return self.data.endswith(b"\n") or len(self.data) < PIECE


def parse_ts(raw: bytes) -> int:
    """Nanoseconds since the epoch from Docker's ``YYYY-MM-DDTHH:MM:SS.fffffffffZ``."""
    secs = _second_cache.get(raw[:19])
    if secs is None:
        try:
            secs = calendar.timegm(
                (
                    int(raw[0:4]),
                    int(raw[5:7]),
                    int(raw[8:10]),
                    int(raw[11:13]),
                    int(raw[14:16]),
                    int(raw[17:19]),
                    0,
                    0,
                    0,
                )
            )
        except ValueError as exc:
            raise DemuxError(f"bad timestamp {raw[:40]!r}") from exc
        if len(_second_cache) > 4096:
            _second_cache.clear()
        _second_cache[raw[:19]] = secs
    frac = raw[20:-1]
    if raw[19:20] != b"." or not raw.endswith(b"Z") or not frac.isdigit():
        if raw[19:20] == b"Z" and len(raw) == 20:
            return secs * 1_000_000_000
        raise DemuxError(f"bad timestamp {raw[:40]!r}")
    return secs * 1_000_000_000 + int(frac.ljust(9, b"0")[:9])


def format_since(ns: int) -> str:
    """Docker's `since` parameter: ``seconds.nanoseconds`` (inclusive)."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _split_ts(stream: int, payload: bytes) -> Frame:
    space = payload.find(b" ", 0, 40)
    if space < 0:
        raise DemuxError(f"entry without timestamp: {payload[:40]!r}")
    return Frame(stream, parse_ts(payload[:space]), payload[space + 1 :])


class FrameDemuxer:
    """Demultiplexer for non-TTY streams; feed it chunks as they arrive."""

    def __init__(self) -> None:
        # The start of an unfinished frame, in the pieces it came in: joined only once
        # the frame is whole, so a frame that spans many reads is not copied at each.
        self._parts: list[bytes] = []
        self._have = 0
        self._need = 0  # bytes the unfinished frame needs in all (0: its header is not in)

    def feed(self, chunk: bytes) -> list[Frame]:
        """Frames completed by `chunk` (HTTP chunks need not align with frames)."""
        if self._parts:
            self._parts.append(bytes(chunk))
            self._have += len(chunk)
            if self._have < self._need:
                return []
            buf = b"".join(self._parts)
            self._parts, self._have, self._need = [], 0, 0
        else:
            buf = chunk if type(chunk) is bytes else bytes(chunk)
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        unpack = _HEADER.unpack_from
        while end - pos >= 8:
            stream, size = unpack(buf, pos)
            if stream not in (STDOUT, STDERR, SYSTEM_ERROR):
                raise DemuxError(f"unknown stream {stream} in frame header")
            start = pos + 8
            stop = start + size
            if stop > end:
                self._need = 8 + size
                break
            if stream == SYSTEM_ERROR:
                message = buf[start:stop].decode("utf-8", "replace")
                raise DemuxError(f"dockerd: {message.strip()}")
            if size > _TS_LEN and buf[start + _TS_LEN] == 0x20:
                # The usual entry: a timestamp of nine digits, read in place.
                ts = _stamp(buf, start)
                frames.append(Frame(stream, ts, buf[start + _TS_LEN + 1 : stop]))
            else:
                frames.append(_split_ts(stream, buf[start:stop]))
            pos = stop
        if pos < end:
            self._parts = [buf[pos:]]
            self._have = end - pos
        return frames

    @property
    def pending(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return self._have


def _stamp(buf: bytes, at: int) -> int:
    """The timestamp of the usual shape (nine digits) at `at`, without slicing it out."""
    secs = _second_cache.get(buf[at : at + 19])
    frac = buf[at + 20 : at + 29]
    if secs is None or buf[at + 19] != 0x2E or buf[at + 29] != 0x5A or not frac.isdigit():
        return parse_ts(buf[at : at + _TS_LEN])
    return secs * 1_000_000_000 + int(frac)


class TtyDemuxer:
    """Splitter for TTY streams: entries are ``ts SP content`` up to a newline or 16 KiB."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[Frame]:
        """Entries completed by `chunk`."""
        self._buf += chunk
        frames: list[Frame] = []
        while True:
            frame = self._next(final=False)
            if frame is None:
                return frames
            frames.append(frame)

    def close(self) -> list[Frame]:
        """The entries left when the stream ended (a last line without newline)."""
        frames = self.feed(b"")
        frame = self._next(final=True)
        if frame is not None:
            frames.append(frame)
        return frames

    def _next(self, final: bool) -> Frame | None:
        buf = self._buf
        if len(buf) <= _TS_LEN or (not final and len(buf) < _TS_LEN + 1):
            return None
        start = _TS_LEN + 1
        ts = parse_ts(bytes(buf[:_TS_LEN]))
        nl = buf.find(b"\n", start, start + PIECE)
        stop: int | None
        if nl >= 0:
            stop = nl + 1
        elif len(buf) >= start + PIECE:
            stop = start + PIECE
        else:
            stop = len(buf) if final else None
        stop = _next_entry(buf, start, len(buf) if stop is None else stop, ts) or stop
        if stop is None:
            return None
        frame = Frame(STDOUT, ts, bytes(buf[start:stop]))
        del buf[:stop]
        return frame


def _next_entry(buf: bytearray, start: int, stop: int, ts: int) -> int | None:
    """Where a next entry starts before `stop`: after a last line without newline.

    A line written without newline just before the container stopped is followed, when
    it ran again, by the next run's entries; only their timestamp shows where it ends.
    """
    for match in _TTY_TS.finditer(buf, start, stop):
        if parse_ts(match.group()[:-1]) >= ts:
            return match.start()
    return None
