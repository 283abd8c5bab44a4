"""Unit tests of reading a ``local`` driver log directly (a removed --rm container's tail)."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from shipper.demux import PIECE, STDERR, STDOUT, Frame
from shipper.logfiles.jsonfile import SLACK_NS
from shipper.logfiles.localfile import (
    MAX_ENTRY,
    decode,
    entry,
    is_local,
    lines,
    local_log_path,
    read_since,
    start_of,
)
from shipper.rejoin import Line
from tests.shipper.logfiles.local_entries import entry as written
from tests.shipper.logfiles.local_entries import field, framed, message

T = 1_796_591_504_060_653_254  # a time_nano as dockerd wrote it


def test_entries_become_the_frames_the_logs_api_sends() -> None:
    """Source, time and line as stored; the newline the file leaves out is given back to
    every entry not marked partial, as dockerd's logs API does."""
    data = (
        written("stdout", T, b"one")
        + written("stderr", T + 1, b"err")
        + written("stdout", T + 2, b"")
    )
    got = decode(data)
    assert got.problems == []
    assert got.frames == [
        Frame(STDOUT, T, b"one\n"),
        Frame(STDERR, T + 1, b"err\n"),
        Frame(STDOUT, T + 2, b"\n"),  # an empty line: dockerd leaves field 3 out
    ]


def test_partial_pieces_join_into_lines_as_from_the_api() -> None:
    """A line of 20,000 bytes is two pieces (the last marked partial too, with no newline
    in the file or from the API); one of exactly 16 KiB ends with an empty last piece; a
    last line written without a newline is a partial entry of its own."""
    long = b"a" * 20_000
    exact = b"b" * PIECE
    data = b"".join(
        [
            written("stdout", T, long[:PIECE], partial=True, ordinal=1),
            written("stderr", T + 1, b"between"),
            written("stdout", T, long[PIECE:], partial=True, last=True, ordinal=2),
            written("stdout", T + 2, b"two"),
            written("stdout", T + 3, exact, partial=True, ordinal=1),
            written("stdout", T + 3, b"", partial=True, last=True, ordinal=2),
            written("stdout", T + 4, b"no newline", partial=True, ordinal=1),
        ]
    )
    found, problems = lines([data], 1 << 20, tty=False)
    assert problems == []
    assert found == [
        Line(STDERR, T + 1, b"between"),
        Line(STDOUT, T, long),
        Line(STDOUT, T + 2, b"two"),
        Line(STDOUT, T + 3, exact),
        Line(STDOUT, T + 4, b"no newline"),
    ]


def test_unknown_fields_are_skipped() -> None:
    """Fields the reader does not know, of every wire type a newer dockerd might add
    (varint, length-delimited, fixed 64 and 32 bits), are stepped over."""
    extra = (
        field(9, 300)
        + field(10, b"\x01\x02more")
        + bytes([11 << 3 | 1])
        + b"\0" * 8
        + bytes([12 << 3 | 5])
        + b"\0" * 4
    )
    data = framed(message("stdout", T, b"kept", extra=extra)) + written("stdout", T + 1, b"next")
    got = decode(data)
    assert got.problems == []
    assert got.frames == [Frame(STDOUT, T, b"kept\n"), Frame(STDOUT, T + 1, b"next\n")]


def test_a_torn_last_entry_is_reported_and_the_entries_before_it_kept() -> None:
    """dockerd stopped in the middle of writing an entry: the whole ones are read, the
    torn one is a problem that says where, and nothing is raised."""
    good = written("stdout", T, b"one") + written("stdout", T + 1, b"two")
    torn = written("stdout", T + 2, b"three")[:-6]
    got = decode(good + torn)
    assert [f.data for f in got.frames] == [b"one\n", b"two\n"]
    assert len(got.problems) == 1
    assert got.problems[0].startswith(f"torn entry at byte {len(good)} ")


def test_a_corrupt_length_skips_only_its_entry() -> None:
    """An entry whose leading length was damaged (it no longer matches the one after it,
    or is past any entry's size) is reported and skipped; the entries on both sides are
    read."""
    before = written("stdout", T, b"before")
    bad = bytearray(written("stdout", T + 1, b"damaged"))
    bad[3] += 5
    huge = bytearray(written("stderr", T + 2, b"huge"))
    huge[0:4] = (MAX_ENTRY + 1).to_bytes(4, "big")
    after = written("stderr", T + 3, b"after")
    got = decode(before + bytes(bad) + bytes(huge) + after)
    assert [f.data for f in got.frames] == [b"before\n", b"after\n"]
    assert [p.split(" (")[0] for p in got.problems] == [
        f"corrupt entry at byte {len(before)}",
    ]
    assert "skipped" in got.problems[0]


def test_a_message_that_does_not_decode_is_reported() -> None:
    """A field cut short, a known field of the wrong wire type, an unknown source: each
    such entry is one problem, and the next entry is read."""
    cut = framed(field(1, b"stdout") + bytes([3 << 3 | 2, 50]) + b"short")
    wrong_type = framed(field(1, b"stdout") + field(2, b"not a varint"))
    foreign = framed(message("journal", T, b"x"))
    last = written("stdout", T + 9, b"last")
    got = decode(cut + wrong_type + foreign + last)
    assert [f.data for f in got.frames] == [b"last\n"]
    assert len(got.problems) == 1  # one run of bad bytes, skipped to the next sound entry
    assert "field 3 runs past the entry" in got.problems[0]
    single = decode(foreign + last)
    assert "neither stdout nor stderr" in single.problems[0]
    assert single.frames == [Frame(STDOUT, T + 9, b"last\n")]


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=3))
def test_garbage_never_raises_and_never_hides_whole_entries(junk: bytes, where: int) -> None:
    """Whatever bytes sit between sound entries, every sound entry after them is read."""
    good = [written("stdout", T + n, b"line %d" % n) for n in range(3)]
    data = b"".join(good[:where]) + junk + b"".join(good[where:])
    got = decode(data)
    read = [f.data for f in got.frames]
    expected = [b"line %d\n" % n for n in range(3)]
    # Junk may itself look like an entry; the sound ones are all there, in order.
    assert [d for d in read if d in expected] == expected


def _file(tmp_path: Path, count: int, step: int) -> Path:
    path = tmp_path / "container.log"
    path.write_bytes(
        b"".join(written("stdout", T + n * step, b"line %d" % n) for n in range(count))
    )
    return path


def test_the_tail_is_found_walking_back_from_the_end(tmp_path: Path) -> None:
    """From a time, reading starts at an entry logged at least SLACK_NS before it, found
    by the lengths the entries repeat after them; from 0, at the start."""
    step = SLACK_NS // 4
    path = _file(tmp_path, 100, step)
    with path.open("rb") as f:
        assert start_of(f, 0) == 0
        data = read_since(f, T + 90 * step)
    found, problems = lines([data], 1 << 20, tty=False)
    assert problems == []
    numbers = [int(line.data.split()[1]) for line in found]
    assert numbers[-1] == 99
    assert numbers[0] < 90 - 4  # at least SLACK_NS before the time asked for
    assert numbers[0] > 50  # not the whole file
    assert numbers == list(range(numbers[0], 100))


def test_a_torn_end_reads_the_whole_file(tmp_path: Path) -> None:
    """No length to walk back from: the file is read from its start, and decoding reports
    the torn entry."""
    path = _file(tmp_path, 10, SLACK_NS)
    with path.open("ab") as f:
        f.write(b"\0\0\0\x20partial")
    with path.open("rb") as f:
        assert start_of(f, T + 9 * SLACK_NS) == 0


def test_which_driver_wrote_a_file_is_told_by_its_first_byte() -> None:
    assert is_local([io.BytesIO(b""), io.BytesIO(written("stdout", T, b"x"))])
    assert not is_local([io.BytesIO(b'{"log":"x\\n"}')])
    assert not is_local([])


def test_where_the_local_log_is() -> None:
    assert local_log_path("/var/lib/docker/", "c" * 64) == (
        f"/var/lib/docker/containers/{'c' * 64}/local-logs/container.log"
    )
    assert local_log_path("", "c" * 64) == ""


def test_entry_of_a_negative_time_is_read_as_int64() -> None:
    """time_nano is an int64: a negative one comes as a 10-byte varint."""
    assert entry(message("stdout", -5, b"x")).ts == -5
