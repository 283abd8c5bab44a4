"""Unit tests of rejoining 16 KiB pieces into lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shipper.demux import PIECE, Frame
from shipper.rejoin import Line, Rejoiner


def pieces(line: bytes, ts: int = 7) -> list[Frame]:
    """Split a line (with its newline) the way dockerd does."""
    return [Frame(1, ts, line[i : i + PIECE]) for i in range(0, len(line), PIECE)]


def feed(r: Rejoiner, frames: list[Frame]) -> list[Line]:
    out = [line for f in frames if (line := r.push(f)) is not None]
    return out


@given(st.integers(min_value=0, max_value=5 * PIECE))
def test_any_length_comes_back_whole(n: int) -> None:
    """A line of any length, cut into pieces, is one line again, byte-exact."""
    data = bytes((i * 7) % 251 for i in range(n)).replace(b"\n", b"x")
    out = feed(Rejoiner(10 * PIECE), pieces(data + b"\n"))
    assert [(line.data, line.truncated, line.ts) for line in out] == [(data, False, 7)]


def test_exactly_one_piece_then_lone_newline() -> None:
    """A 16,384-byte line comes as a full piece and a frame holding only the newline."""
    data = b"q" * PIECE
    out = feed(Rejoiner(PIECE * 4), [Frame(1, 1, data), Frame(1, 1, b"\n")])
    assert [line.data for line in out] == [data]


def test_over_the_maximum_is_cut_and_marked() -> None:
    """A line longer than the maximum is cut there, marked truncated, and not held whole."""
    r = Rejoiner(40000)
    out = feed(r, pieces(b"z" * 100000 + b"\n"))
    assert len(out) == 1
    assert out[0].truncated
    assert out[0].data == b"z" * 40000
    assert r.holding == 0


def test_truncation_does_not_leave_half_a_character() -> None:
    """Cutting inside a multi-byte character drops the half character."""
    r = Rejoiner(1025)
    out = feed(r, pieces("é".encode() * PIECE + b"\n"))
    assert out[0].data.decode("utf-8") == "é" * 512


def test_last_line_without_newline_is_flushed() -> None:
    """A held piece at stream end is given out by flush()."""
    r = Rejoiner(10 * PIECE)
    assert r.push(Frame(2, 3, b"w" * PIECE)) is None
    line = r.flush(2)
    assert line is not None
    assert (line.stream, line.data) == (2, b"w" * PIECE)


def test_tty_line_end_is_removed() -> None:
    """TTY lines lose their \\r\\n (and the stray \\r a TTY adds)."""
    r = Rejoiner(PIECE, tty=True)
    out = r.push(Frame(1, 1, b"x\r\r\n"))
    assert out is not None
    assert out.data == b"x"
