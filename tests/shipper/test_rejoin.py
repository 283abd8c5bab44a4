"""Unit tests of rejoining 16 KiB pieces into lines, and of reading whole responses."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipper.demux import PIECE, Frame
from shipper.errors import DemuxError
from shipper.rejoin import Line, LineReader, Rejoiner

TS = b"2026-11-27T20:55:19.123456789Z"


def pieces(line: bytes, ts: int = 7, stream: int = 1) -> list[Frame]:
    """Split a line (with its newline) the way the json-file driver does."""
    return [Frame(stream, ts, line[i : i + PIECE]) for i in range(0, len(line), PIECE)]


def local_pieces(line: bytes, ts: int = 7, stream: int = 1) -> list[Frame]:
    """Split a line the way the local driver does: no newline, an empty last piece if even."""
    body = line.removesuffix(b"\n")
    out = [Frame(stream, ts, body[i : i + PIECE]) for i in range(0, len(body), PIECE)]
    if not out or len(out[-1].data) == PIECE:
        out.append(Frame(stream, ts, b""))
    return out


def feed(r: Rejoiner, frames: list[Frame]) -> list[Line]:
    return [line for f in frames for line in r.push(f)]


def wire(stream: int, ts: bytes, payload: bytes) -> bytes:
    """One frame as dockerd sends it."""
    body = ts + b" " + payload
    return struct.pack(">BxxxL", stream, len(body)) + body


def stamp(n: int) -> bytes:
    return b"2026-11-27T20:55:19.%09dZ" % n


@given(st.integers(min_value=0, max_value=5 * PIECE))
def test_any_length_comes_back_whole(n: int) -> None:
    """A line of any length, cut into pieces, is one line again, byte-exact."""
    data = bytes((i * 7) % 251 for i in range(n)).replace(b"\n", b"x")
    for split in (pieces, local_pieces):
        out = feed(Rejoiner(10 * PIECE), split(data + b"\n"))
        assert [(line.data, line.truncated, line.ts) for line in out] == [(data, False, 7)]


def test_exactly_one_piece_then_lone_newline() -> None:
    """A 16,384-byte line comes as a full piece and a frame holding only the newline."""
    data = b"q" * PIECE
    out = feed(Rejoiner(PIECE * 4), [Frame(1, 1, data), Frame(1, 1, b"\n")])
    assert [line.data for line in out] == [data]


def test_local_driver_empty_last_piece_ends_the_line() -> None:
    """Under the local driver a line of exactly 32 KiB ends with an empty piece."""
    data = b"c" * (2 * PIECE)
    out = feed(Rejoiner(PIECE * 4), [Frame(1, 3, data[:PIECE]), Frame(1, 3, data[PIECE:])])
    assert out == []
    out = feed(Rejoiner(PIECE * 4), local_pieces(data))
    assert [line.data for line in out] == [data]


def test_over_the_maximum_is_cut_and_marked() -> None:
    """A line longer than the maximum is cut there, marked truncated, and not held whole."""
    r = Rejoiner(40000)
    out = feed(r, pieces(b"z" * 100000 + b"\n"))
    assert len(out) == 1
    assert out[0].truncated
    assert out[0].data == b"z" * 40000
    assert r.holding == 0


@given(st.integers(min_value=1024, max_value=3 * PIECE), st.integers(min_value=0, max_value=6))
def test_truncation_never_holds_more_than_the_maximum(maximum: int, extra_pieces: int) -> None:
    """However long the line, the rejoiner holds at most the maximum and marks the cut."""
    r = Rejoiner(maximum)
    frames = pieces(b"y" * (maximum + extra_pieces * PIECE + 1) + b"\n")
    out = []
    for frame in frames:
        out += r.push(frame)
        assert r.holding <= maximum
    assert [(len(line.data), line.truncated) for line in out] == [(maximum, True)]


def test_truncation_does_not_leave_half_a_character() -> None:
    """Cutting inside a multi-byte character drops the half character."""
    r = Rejoiner(1025)
    out = feed(r, pieces("é".encode() * PIECE + b"\n"))
    assert out[0].data.decode("utf-8") == "é" * 512


def test_last_line_without_newline_is_flushed() -> None:
    """A held piece at stream end is given out by flush()."""
    r = Rejoiner(10 * PIECE)
    assert r.push(Frame(2, 3, b"w" * PIECE)) == []
    line = r.flush(2)
    assert line is not None
    assert (line.stream, line.data) == (2, b"w" * PIECE)


def test_a_new_timestamp_ends_a_held_line() -> None:
    """A 16 KiB last line without newline is not glued to the next run's first line."""
    r = Rejoiner(10 * PIECE)
    out = feed(r, [Frame(1, 3, b"w" * PIECE), Frame(1, 9, b"next\n")])
    assert [(line.ts, line.data) for line in out] == [(3, b"w" * PIECE), (9, b"next")]


def test_tty_line_end_is_removed() -> None:
    """TTY lines lose their \\r\\n (and the stray \\r a TTY adds)."""
    r = Rejoiner(PIECE, tty=True)
    assert [line.data for line in r.push(Frame(1, 1, b"x\r\r\n"))] == [b"x"]


def test_json_file_replacement_characters_stay_in_one_line() -> None:
    """A 16 KiB cut inside a character, stored by json-file as U+FFFD twice, is one line."""
    first = b"b" * 16383 + "\ufffd".encode()
    last = "\ufffd".encode() + b"end\n"
    out = feed(Rejoiner(10 * PIECE), [Frame(1, 5, first), Frame(1, 5, last)])
    assert [line.data for line in out] == [first + last[:-1]]


lines_strategy = st.lists(
    st.tuples(st.sampled_from([1, 2]), st.integers(min_value=0, max_value=3 * PIECE)),
    min_size=1,
    max_size=8,
)


@given(lines_strategy, st.integers(min_value=1, max_value=5000), st.randoms())
def test_interleaved_streams_in_any_chunks_come_back_whole(
    lines: list[tuple[int, int]], chunk: int, rnd: random.Random
) -> None:
    """Pieces of both streams interleaved, cut into any HTTP chunks, give each line whole."""
    frames: dict[int, list[bytes]] = {1: [], 2: []}
    expected = []
    for i, (stream, size) in enumerate(lines):
        data = bytes([97 + i]) * size
        expected.append((stream, i, data))
        for f in pieces(data + b"\n", ts=i, stream=stream):
            frames[stream].append(wire(stream, stamp(i), f.data))
    order = [1] * len(frames[1]) + [2] * len(frames[2])
    rnd.shuffle(order)
    raw = b"".join(frames[s].pop(0) for s in order)
    reader = LineReader(10 * PIECE)
    out: list[Line] = []
    for pos in range(0, len(raw), chunk):
        out += reader.feed(raw[pos : pos + chunk])
    out += reader.finish()
    got = sorted((line.stream, line.ts, line.data) for line in out)
    assert got == sorted((s, 1795812919000000000 + ts, d) for s, ts, d in expected)
    assert reader.tty is False


def test_tty_stream_is_told_from_its_first_bytes() -> None:
    """A response that starts with a timestamp is a TTY's: one stream, CRLF removed."""
    raw = TS + b" hello\r\n" + TS + b" " + b"a" * PIECE + TS + b" tail\r\n" + TS + b" bye"
    reader = LineReader(10 * PIECE)
    out = []
    for i in range(0, len(raw), 7):
        out += reader.feed(raw[i : i + 7])
    assert reader.tty is True
    out += reader.finish()
    assert [(line.stream, line.data) for line in out] == [
        (1, b"hello"),
        (1, b"a" * PIECE + b"tail"),
        (1, b"bye"),
    ]


def test_dockerd_error_as_the_first_frame_is_its_error_not_tty_text() -> None:
    """A response that is only dockerd's "Error grabbing logs" names that error."""
    message = b"Error grabbing logs: open /var/lib/docker/containers/x/x-json.log: no such file"
    reader = LineReader(10 * PIECE)
    with pytest.raises(DemuxError, match="dockerd: Error grabbing logs"):
        reader.feed(struct.pack(">BxxxL", 3, len(message)) + message)
    assert reader.tty is False
