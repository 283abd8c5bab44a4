"""Rejoin dockerd's 16 KiB pieces into whole lines, per stream. Pure.

Pieces of one line carry the same timestamp; only the last ends in a newline. Pieces
of the other stream may arrive in between, so each stream has its own rejoiner. A line
longer than the maximum is cut there and marked truncated; the rest of it is read and
dropped, never held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipper.demux import Frame


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

    def push(self, frame: Frame) -> Line | None:
        """Add a frame; return the line it completes, if any."""
        if not self._pieces and not self._truncated and frame.complete:
            data = strip_line_end(frame.data, self._tty)
            if len(data) <= self._max:
                return Line(frame.stream, frame.ts, data)
        if not self._pieces and not self._truncated:
            self._ts = frame.ts
        self._take(frame.data)
        if frame.complete:
            return self.flush(frame.stream)
        return None

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

    def flush(self, stream: int) -> Line | None:
        """The held line as it is (stream ended, or its last piece came)."""
        if not self._pieces and not self._truncated:
            return None
        data = strip_line_end(b"".join(self._pieces), self._tty)
        line = Line(stream, self._ts, _cut_utf8(data) if self._truncated else data)
        line.truncated = self._truncated
        self._pieces, self._size, self._truncated = [], 0, False
        return line

    @property
    def holding(self) -> int:
        """Bytes of an unfinished line held now."""
        return self._size


def _cut_utf8(data: bytes) -> bytes:
    """Drop a multi-byte character cut in half at the end (a truncation artefact)."""
    i = len(data) - 1
    while i >= 0 and i >= len(data) - 4 and (data[i] & 0xC0) == 0x80:
        i -= 1
    if i < 0 or data[i] < 0xC0:
        return data
    need = 2 if data[i] < 0xE0 else 3 if data[i] < 0xF0 else 4
    return data if len(data) - i >= need else data[:i]
