"""Rejoin dockerd's 16 KiB pieces into whole lines, per stream. Pure.

Pieces of one line carry the same timestamp; only the last ends in a newline (under the
``local`` driver the last piece has no newline, and a line of a multiple of 16 KiB ends
with an empty piece). Pieces of the other stream may arrive in between, so each stream
has its own rejoiner. A piece with another timestamp than the held ones starts a new
line: the held one was a last line without newline (the container stopped, then ran
again). A line longer than the maximum is cut there and marked truncated; the rest of
it is read and dropped, never held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.wire import cut_utf8
from shipper.demux import STDERR, STDOUT, SYSTEM_ERROR, Frame, FrameDemuxer, TtyDemuxer


@dataclass(slots=True)
class Line:
    """One whole line of one stream, without its line end."""

    stream: int
    ts: int
    data: bytes
    truncated: bool = False


def strip_line_end(data: bytes, tty: bool) -> bytes:
    """Remove the newline; a TTY's ``\\r\\n`` (and stray ``\\r``) too."""
    if data.endswith(b"\n"):
        data = data[:-1]
    if tty:
        data = data.rstrip(b"\r")
    return data


class Rejoiner:
    """Holds the pieces of one stream's unfinished line."""

    def __init__(self, max_bytes: int, tty: bool = False) -> None:
        self._max = max_bytes
        self._tty = tty
        self._pieces: list[bytes] = []
        self._size = 0
        self._ts = 0
        self._truncated = False

    def push(self, frame: Frame) -> list[Line]:
        """Add a frame; return the lines it completes (two when it starts a new line)."""
        held = self._holding_any
        if not held and frame.complete:
            data = strip_line_end(frame.data, self._tty)
            if len(data) <= self._max:
                return [Line(frame.stream, frame.ts, data)]
        lines: list[Line] = []
        if held and frame.ts != self._ts:
            lines += self._flushed(frame.stream)
        if not self._holding_any:
            self._ts = frame.ts
        self._take(frame.data)
        if frame.complete:
            lines += self._flushed(frame.stream)
        return lines

    @property
    def _holding_any(self) -> bool:
        return bool(self._pieces) or self._truncated

    @property
    def idle(self) -> bool:
        """No piece of an unfinished line held (nor the rest of a truncated one to drop)."""
        return not self._pieces and not self._truncated

    def _take(self, data: bytes) -> None:
        room = self._max - self._size
        if room <= 0:
            self._truncated = True
            return
        if len(data) > room:
            data = data[:room]
            self._truncated = True
        self._pieces.append(data)
        self._size += len(data)

    def _flushed(self, stream: int) -> list[Line]:
        line = self.flush(stream)
        return [] if line is None else [line]

    def flush(self, stream: int) -> Line | None:
        """The held line as it is (stream ended, or its last piece came)."""
        if not self._holding_any:
            return None
        data = strip_line_end(b"".join(self._pieces), self._tty)
        line = Line(stream, self._ts, cut_utf8(data) if self._truncated else data)
        line.truncated = self._truncated
        self._pieces, self._size, self._truncated = [], 0, False
        return line

    @property
    def holding(self) -> int:
        """Bytes of an unfinished line held now."""
        return self._size


def held_lines(rejoiners: dict[int, Rejoiner]) -> list[Line]:
    """The lines each stream's rejoiner holds unfinished, at the end of a log."""
    out: list[Line] = []
    for stream, rejoiner in rejoiners.items():
        line = rejoiner.flush(stream)
        if line is not None:
            out.append(line)
    return out


class LineReader:
    """Bytes of one logs response in, whole lines out; tells a TTY stream by its first bytes.

    A non-TTY stream starts with a frame header (stream 1 or 2, or 3 for dockerd's own
    error, then three zero bytes); a TTY stream starts with a timestamp.
    """

    def __init__(self, max_line_bytes: int) -> None:
        self._max = max_line_bytes
        self._demux: FrameDemuxer | TtyDemuxer | None = None
        self._head = b""
        self._rejoin: dict[int, Rejoiner] = {}

    @property
    def tty(self) -> bool | None:
        """Whether the stream is a TTY's (None before its first bytes)."""
        return None if self._demux is None else isinstance(self._demux, TtyDemuxer)

    def feed(self, chunk: bytes) -> list[Line]:
        """The lines that `chunk` completes."""
        if self._demux is None:
            self._head += chunk
            if len(self._head) < 4:
                return []
            chunk, self._head = self._head, b""
            # dockerd's own error (stream 3) may be the first frame: not a TTY's text.
            framed = chunk[0] in (STDOUT, STDERR, SYSTEM_ERROR) and chunk[1:4] == b"\0\0\0"
            self._start(not framed)
        assert self._demux is not None
        return self._lines(self._demux.feed(chunk))

    def _start(self, tty: bool) -> None:
        self._demux = TtyDemuxer() if tty else FrameDemuxer()
        self._rejoin = {s: Rejoiner(self._max, tty) for s in (STDOUT, STDERR)}

    def _lines(self, frames: list[Frame]) -> list[Line]:
        lines: list[Line] = []
        rejoin = self._rejoin
        fits = self._max + 1
        plain = not isinstance(self._demux, TtyDemuxer)
        for frame in frames:
            rejoiner = rejoin[frame.stream]
            data = frame.data
            # The usual frame, a whole line while nothing is held: what push() would do.
            if plain and data[-1:] == b"\n" and len(data) <= fits and rejoiner.idle:
                lines.append(Line(frame.stream, frame.ts, data[:-1]))
            else:
                lines += rejoiner.push(frame)
        return lines

    def finish(self) -> list[Line]:
        """Lines held at the end of the log of a stopped container (no newline at exit)."""
        lines: list[Line] = []
        if self._demux is None:
            if not self._head:
                return []
            self._start(True)
            assert self._demux is not None
            lines = self._lines(self._demux.feed(self._head))
            self._head = b""
        if isinstance(self._demux, TtyDemuxer):
            lines += self._lines(self._demux.close())
        return lines + held_lines(self._rejoin)
