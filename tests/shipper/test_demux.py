"""Unit tests of the frame demultiplexer and the TTY splitter."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipper.demux import (
    PIECE,
    Frame,
    FrameDemuxer,
    TtyDemuxer,
    format_since,
    parse_ts,
)
from shipper.errors import DemuxError

TS = b"2026-11-27T20:55:19.123456789Z"
TS_NS = 1795812919123456789


def frame(stream: int, payload: bytes, ts: bytes = TS) -> bytes:
    body = ts + b" " + payload
    return struct.pack(">BxxxL", stream, len(body)) + body


def test_parse_ts_keeps_nanoseconds() -> None:
    """Docker's timestamp becomes exact integer nanoseconds."""
    assert parse_ts(TS) == TS_NS
    assert parse_ts(b"1970-01-01T00:00:00.000000001Z") == 1


def test_parse_ts_rejects_garbage() -> None:
    """A malformed timestamp is a DemuxError, not a wrong number."""
    with pytest.raises(DemuxError):
        parse_ts(b"2026-11-27 garbage")


def test_format_since_is_seconds_dot_nanoseconds() -> None:
    """`since` is written as seconds.nanoseconds, which dockerd takes inclusively."""
    assert format_since(TS_NS) == "1795812919.123456789"
    assert format_since(5) == "0.000000005"


@given(
    st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=300)), min_size=1, max_size=20),
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30),
)
def test_frames_survive_any_chunking(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    """However HTTP chunks cut the byte stream, the same frames come out in order."""
    raw = b"".join(frame(s, p) for s, p in frames)
    demux = FrameDemuxer()
    out: list[Frame] = []
    pos = 0
    i = 0
    while pos < len(raw):
        step = cuts[i % len(cuts)]
        out += demux.feed(raw[pos : pos + step])
        pos += step
        i += 1
    assert [(f.stream, f.data) for f in out] == frames
    assert all(f.ts == TS_NS for f in out)
    assert demux.pending == 0


def test_unknown_stream_is_an_error() -> None:
    """A header naming stream 7 means we are not reading frames: say so."""
    with pytest.raises(DemuxError):
        FrameDemuxer().feed(frame(7, b"x\n"))


def test_piece_and_short_line_completeness() -> None:
    """A 16 KiB piece without newline is partial; a short one is a last line."""
    assert not Frame(1, 0, b"a" * PIECE).complete
    assert Frame(1, 0, b"tail without newline").complete
    assert Frame(1, 0, b"line\n").complete


def test_tty_splits_lines_and_injected_timestamps() -> None:
    """TTY output: entries end at a newline or after 16 KiB, each after its timestamp."""
    long_line = b"a" * PIECE
    raw = TS + b" " + long_line + TS + b" " + b"bb\r\n" + TS + b" short\r\n" + TS + b" tail"
    tty = TtyDemuxer()
    out = []
    for i in range(0, len(raw), 1000):
        out += tty.feed(raw[i : i + 1000])
    out += tty.close()
    assert [f.data for f in out] == [long_line, b"bb\r\n", b"short\r\n", b"tail"]
    assert all(f.stream == 1 for f in out)


def test_dockerd_error_frame_is_reported() -> None:
    """A stream-3 frame (dockerd could not read the log) ends reading with its message."""
    body = b"Error grabbing logs: open /x-json.log: no such file"
    with pytest.raises(DemuxError, match="Error grabbing logs"):
        FrameDemuxer().feed(frame(1, b"ok\n") + struct.pack(">BxxxL", 3, len(body)) + body)


def test_tty_line_without_newline_ends_at_the_next_timestamp() -> None:
    """A TTY's last line without newline is not glued to the next run's entry."""
    later = b"2026-11-27T20:55:21.000000000Z"
    raw = TS + b" partial" + later + b" next run\r\n"
    tty = TtyDemuxer()
    out = tty.feed(raw) + tty.close()
    assert [f.data for f in out] == [b"partial", b"next run\r\n"]
    assert out[1].ts > out[0].ts


def test_tty_text_that_looks_like_an_older_timestamp_stays_in_the_line() -> None:
    """Only a timestamp not older than the entry's own can start the next entry."""
    older = b"2020-01-01T00:00:00.000000000Z"
    tty = TtyDemuxer()
    out = tty.feed(TS + b" quoting " + older + b" in text\r\n") + tty.close()
    assert [f.data for f in out] == [b"quoting " + older + b" in text\r\n"]


tty_lines = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
    min_size=1,
    max_size=20,
)


@given(tty_lines, st.integers(min_value=1, max_value=64))
def test_tty_entries_survive_any_chunking(lines: list[bytes], step: int) -> None:
    """TTY entries cut into any chunks come back as the same entries."""
    raw = b"".join(TS + b" " + line + b"\r\n" for line in lines)
    tty = TtyDemuxer()
    out = []
    for pos in range(0, len(raw), step):
        out += tty.feed(raw[pos : pos + step])
    out += tty.close()
    assert [f.data for f in out] == [line + b"\r\n" for line in lines]


def test_timestamps_of_other_shapes_are_read_or_refused_in_any_chunking() -> None:
    """A fraction of fewer than nine digits is read exactly and a malformed one is refused,
    however the chunks fall (the usual nine-digit shape is read in place)."""
    short = frame(1, b"a\n", ts=b"2026-11-27T20:55:19.5Z")
    usual = frame(2, b"b\n")
    raw = short + usual
    for step in (1, 7, len(raw)):
        demux = FrameDemuxer()
        out: list[Frame] = []
        for pos in range(0, len(raw), step):
            out += demux.feed(raw[pos : pos + step])
        assert [(f.stream, f.ts, f.data) for f in out] == [
            (1, TS_NS - 123456789 + 500_000_000, b"a\n"),
            (2, TS_NS, b"b\n"),
        ]
    with pytest.raises(DemuxError):
        FrameDemuxer().feed(frame(1, b"a\n", ts=b"2026-11-27T20:55:19.12345678xZ"))
