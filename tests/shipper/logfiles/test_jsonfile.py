"""Unit tests of reading a json-file log directly (a removed --rm container's tail)."""

from __future__ import annotations

import gzip
import os
import struct
import time
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipper.demux import PIECE, parse_ts
from shipper.logfiles import jsonfile
from shipper.logfiles.jsonfile import (
    CHECK_EVERY,
    HELD_FILES,
    SLACK_NS,
    UNPACKED,
    HeldLog,
    last_time,
    lines,
    open_all,
    open_chain,
    open_rotated,
    problem,
    read_since,
    same,
)


def entry(stream: str, text: str, ts: str = "2026-11-27T22:08:07.039548676Z") -> bytes:
    return orjson.dumps({"log": text, "stream": stream, "time": ts})


def test_pieces_join_and_torn_lines_are_skipped() -> None:
    """16 KiB pieces join into one line; a line torn by a crash does not stop the reading."""
    long_text = "b" * 16383 + "\ufffd"
    data = b"\n".join(
        [
            entry("stdout", "one\n", "2026-11-27T22:08:07.1Z"),
            entry("stdout", long_text, "2026-11-27T22:08:07.2Z"),
            b'{"log":"torn li',
            entry("stderr", "err\n", "2026-11-27T22:08:07.25Z"),
            entry("stdout", "\ufffdend\n", "2026-11-27T22:08:07.2Z"),
            entry("stdout", "last without newline", "2026-11-27T22:08:07.3Z"),
        ]
    )
    got = [(ln.stream, ln.data.decode()) for ln in lines(data + b"\n", 1 << 20, tty=False)]
    assert got == [
        (1, "one"),
        (2, "err"),
        (1, long_text + "\ufffdend"),
        (1, "last without newline"),
    ]


def test_tty_line_ends_are_removed() -> None:
    """A TTY container's json-file lines lose their CRLF."""
    got = lines(entry("stdout", "hello\r\n") + b"\n", 1024, tty=True)
    assert [ln.data for ln in got] == [b"hello"]


@given(st.lists(st.text(max_size=3 * PIECE).map(lambda t: t.replace("\n", "")), max_size=5))
def test_any_line_comes_back_as_written(texts: list[str]) -> None:
    """Lines cut into 16 KiB pieces by dockerd come back whole, in order."""
    raw = []
    for i, text in enumerate(texts):
        ts = f"2026-11-27T22:08:{10 + i:02d}.5Z"
        data = (text + "\n").encode()
        pieces = [data[j : j + PIECE] for j in range(0, len(data), PIECE)]
        raw += [entry("stdout", p.decode("utf-8", "replace"), ts) for p in pieces]
    got = lines(b"\n".join(raw) + b"\n", 10 * PIECE, tty=False)
    expected = [
        "".join(
            (text + "\n").encode()[j : j + PIECE].decode("utf-8", "replace")
            for j in range(0, len((text + "\n").encode()), PIECE)
        )[:-1]
        for text in texts
    ]
    assert [ln.data.decode() for ln in got] == expected


START_NS = 1_795_834_800 * 10**9  # 2026-11-28T03:00:00Z
STEP_NS = 1_000_000  # an entry every ms


def _long_log(path: Path, count: int) -> list[int]:
    """`count` entries a ms apart, both streams in turn; their times."""
    times = [START_NS + n * STEP_NS for n in range(count)]
    with path.open("wb") as f:
        for n, ts in enumerate(times):
            iso = f"2026-11-28T03:00:{ts // 10**9 - 1_795_834_800:02d}.{ts % 10**9:09d}Z"
            f.write(entry("stderr" if n % 3 == 0 else "stdout", f"line {n}\n", iso) + b"\n")
    return times


def test_a_rescue_reads_the_end_of_a_long_log_not_all_of_it(tmp_path: Path) -> None:
    path = tmp_path / "json.log"
    times = _long_log(path, 40_000)  # 40 s of lines, ~3.5 MB
    since = times[35_000]
    with path.open("rb") as f:
        data = read_since(f, since)
    got = lines(data, 1 << 20, tty=False)
    numbers = [int(line.data.split()[1]) for line in got]
    # From an entry at least a second (1,000 entries) before, to the very end, in order.
    assert numbers == list(range(numbers[0], 40_000))
    assert numbers[0] <= 34_000
    assert got[0].ts < since - SLACK_NS
    assert len(data) < path.stat().st_size // 4


def test_a_rescue_starts_a_second_before_the_last_line_read(tmp_path: Path) -> None:
    """The streams' entries may be out of order by a little: a second of slack."""
    path = tmp_path / "json.log"
    times = _long_log(path, 40_000)
    since = times[-2_500]  # within the first probe's reach, but less than a second back
    with path.open("rb") as f:
        got = lines(read_since(f, since), 1 << 20, tty=False)
    assert got[0].ts < since - SLACK_NS
    assert got[-1].data == b"line 39999"


def test_a_rescue_of_a_log_never_read_reads_all_of_it(tmp_path: Path) -> None:
    path = tmp_path / "json.log"
    _long_log(path, 5_000)
    with path.open("rb") as f:
        assert read_since(f, 0) == path.read_bytes()


def test_a_rescue_far_behind_probes_further_back(tmp_path: Path) -> None:
    path = tmp_path / "json.log"
    times = _long_log(path, 40_000)
    with path.open("rb") as f:
        data = read_since(f, times[5_000])
    numbers = [int(line.data.split()[1]) for line in lines(data, 1 << 20, tty=False)]
    assert numbers == list(range(numbers[0], 40_000))
    assert numbers[0] <= 4_000


def test_where_a_probe_finds_no_readable_entry_the_next_looks_further(tmp_path: Path) -> None:
    path = tmp_path / "json.log"
    times = _long_log(path, 20_000)
    foreign = b"".join(b'{"other":"format %d"}\n' % n for n in range(30_000))  # ~660 KB
    with path.open("ab") as f:
        f.write(foreign)
    with path.open("rb") as f:
        data = read_since(f, times[-1])
    assert data.endswith(foreign)
    assert len(data) > len(foreign)
    last = lines(data, 1 << 20, tty=False)[-1]
    assert last.data == b"line 19999"


def _write_log(path: Path, first: int, last: int) -> None:
    """Lines first..last, one a millisecond, as dockerd writes a json-file log."""
    with path.open("wb") as f:
        for n in range(first, last + 1):
            f.write(entry("stdout", f"line {n}\n", f"2026-11-28T03:00:00.{n:03d}000000Z") + b"\n")


def _rotate(path: Path, first: int, last: int) -> None:
    """What dockerd does at max-size: each file is renamed one number up (the one it
    wrote becomes ``.1``) and a new one is started."""
    older = sorted(path.parent.glob(f"{path.name}.*"), key=lambda p: -int(p.suffix[1:]))
    for p in older:
        os.replace(p, f"{path}.{int(p.suffix[1:]) + 1}")
    os.replace(path, f"{path}.1")
    _write_log(path, first, last)


def _numbers(data: bytes) -> list[int]:
    return [int(line.data.split()[1]) for line in lines(data, 1 << 20, tty=False)]


def test_a_held_log_takes_the_file_rotation_started_and_reads_across_it(
    tmp_path: Path,
) -> None:
    """Lines 6-10 went to the file rotation started: the tail is read from both files."""
    path = tmp_path / "c-json.log"
    _write_log(path, 1, 5)
    held = HeldLog(path.open("rb"))
    now = time.monotonic()
    try:
        _rotate(path, 6, 10)
        assert held.keep_up(str(path), now) is False  # not looked at within CHECK_EVERY...
        assert _numbers(held.read_since(1)) == [1, 2, 3, 4, 5]
        assert held.keep_up(str(path), now + CHECK_EVERY) is True  # ...but after it
        assert _numbers(held.read_since(1)) == list(range(1, 11))
        # The same file at the path: nothing to take.
        assert held.keep_up(str(path), now + 2 * CHECK_EVERY) is False
    finally:
        held.close()


def test_every_file_rotated_between_two_looks_is_taken(tmp_path: Path) -> None:
    """Two rotations within a second: the file in between (lines 6-8) is read too."""
    path = tmp_path / "c-json.log"
    _write_log(path, 1, 5)
    held = HeldLog(path.open("rb"))
    _rotate(path, 6, 8)
    _rotate(path, 9, 10)
    assert held.keep_up(str(path), 1e12)
    assert len(held.files) == 3
    assert _numbers(held.read_since(1)) == list(range(1, 11))
    held.close()
    assert all(f.closed for f in held.files)


def test_a_held_log_keeps_its_newest_files_only(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    _write_log(path, 1, 1)
    first = path.open("rb")
    held = HeldLog(first)
    for n in range(2, HELD_FILES + 2):
        _rotate(path, n, n)
        assert held.keep_up(str(path), n * 1e12)
    assert first.closed
    assert len(held.files) == HELD_FILES
    assert _numbers(held.read_since(1)) == list(range(2, HELD_FILES + 2))
    held.close()


def test_a_held_log_adopts_the_files_the_watch_opened_once_each_newest_kept(
    tmp_path: Path,
) -> None:
    """The watch hands over the files rotation began, oldest first: one held already
    (the first, opened by its path after its creation was seen) is closed, not held
    twice; past HELD_FILES the oldest go."""
    path = tmp_path / "c-json.log"
    _write_log(path, 1, 1)
    held = HeldLog(path.open("rb"))
    again = path.open("rb")  # the same file, as the watch opened it
    newer = [again]
    for n in range(2, HELD_FILES + 2):
        _rotate(path, n, n)
        newer.append(path.open("rb"))
    held.adopt(newer)
    assert again.closed
    assert len(held.files) == HELD_FILES
    assert _numbers(held.read_since(1)) == list(range(2, HELD_FILES + 2))
    held.close()


def test_a_held_log_whose_path_is_gone_stays_as_it_is(tmp_path: Path) -> None:
    """Between rotation's rename and its new file, or once the container is removed."""
    path = tmp_path / "c-json.log"
    _write_log(path, 1, 5)
    held = HeldLog(path.open("rb"))
    path.unlink()
    assert held.keep_up(str(path), 1e12) is False
    assert _numbers(held.read_since(1)) == [1, 2, 3, 4, 5]
    held.close()


@pytest.mark.parametrize(("rotates_at", "full"), [(None, False), (10**6, False), (1, True)])
def test_a_held_log_is_full_at_the_size_dockerd_rotates_at(
    tmp_path: Path, rotates_at: int | None, full: bool
) -> None:
    path = tmp_path / "c-json.log"
    _write_log(path, 1, 5)
    held = HeldLog(path.open("rb"))
    assert held.full(rotates_at) is full
    assert held.full(path.stat().st_size) is True  # dockerd rotates at the next write
    assert held.full(path.stat().st_size + 1) is False
    held.close()


def _files_of(tmp_path: Path, *names: str) -> str:
    """A json-file log's files, each holding its own name; the log's path."""
    tmp_path.mkdir(exist_ok=True)
    for name in names:
        (tmp_path / name).write_bytes(name.encode())
    return str(tmp_path / "c-json.log")


def _names(files: list[BinaryIO]) -> list[bytes]:
    names = [f.read() for f in files]
    for f in files:
        f.close()
    return names


def test_the_whole_chain_is_opened_oldest_first(tmp_path: Path) -> None:
    path = _files_of(tmp_path, "c-json.log", "c-json.log.1", "c-json.log.2")
    chain = open_chain(path)
    assert chain is not None
    assert _names(chain[0]) == [b"c-json.log.2", b"c-json.log.1", b"c-json.log"]
    assert chain[1] is False
    assert _names(open_all(path) or []) == [b"c-json.log.2", b"c-json.log.1", b"c-json.log"]


def test_the_chain_stops_at_the_file_held_and_says_it_reached_it(tmp_path: Path) -> None:
    path = _files_of(tmp_path, "c-json.log", "c-json.log.1", "c-json.log.2", "c-json.log.3")
    with open(f"{path}.2", "rb") as held:
        chain = open_chain(path, held)
    assert chain is not None
    assert _names(chain[0]) == [b"c-json.log.1", b"c-json.log"]
    assert chain[1] is True


def test_a_chain_without_the_file_held_says_files_may_be_missing(tmp_path: Path) -> None:
    path = _files_of(tmp_path, "c-json.log", "c-json.log.1", "elsewhere")
    with (tmp_path / "elsewhere").open("rb") as held:
        chain = open_chain(path, held)
    assert chain is not None
    assert _names(chain[0]) == [b"c-json.log.1", b"c-json.log"]
    assert chain[1] is False


def test_no_chain_while_the_path_is_the_file_held(tmp_path: Path) -> None:
    path = _files_of(tmp_path, "c-json.log", "c-json.log.1")
    with open(path, "rb") as held:
        assert open_chain(path, held) is None


def _gzip(path: Path | str, keep: bool = False) -> None:
    """What dockerd does to a rotated file with compress=true (`keep`: while it does)."""
    plain = Path(path)
    Path(f"{plain}.gz").write_bytes(gzip.compress(plain.read_bytes()))
    if not keep:
        plain.unlink()


def test_compressed_rotated_files_are_opened_unpacked_oldest_first(tmp_path: Path) -> None:
    path = _files_of(tmp_path, "c-json.log", "c-json.log.1", "c-json.log.2", "c-json.log.3")
    _gzip(f"{path}.2")
    _gzip(f"{path}.3")
    chain = open_chain(path)
    assert chain is not None
    assert _names(chain[0]) == [b"c-json.log.3", b"c-json.log.2", b"c-json.log.1", b"c-json.log"]


def test_a_plain_file_beside_its_compressed_copy_is_the_one_read(tmp_path: Path) -> None:
    """dockerd removes .1 once .1.gz is whole: until then .1.gz may be cut short."""
    path = _files_of(tmp_path, "c-json.log", "c-json.log.1")
    Path(f"{path}.1.gz").write_bytes(gzip.compress(b"c-json.log.1")[:12])
    f = open_rotated(f"{path}.1")
    assert f is not None
    assert problem(f) == ""
    assert _names([f]) == [b"c-json.log.1"]


def test_the_chain_reaches_the_file_held_through_its_compressed_copy(tmp_path: Path) -> None:
    """The file held was rotated to .1, then compressed: the chain stops there (nothing
    between was lost) and does not read it again."""
    path = _files_of(tmp_path, "c-json.log", "c-json.log.1", "c-json.log.2")
    with open(f"{path}.1", "rb") as held:
        _gzip(f"{path}.1")
        chain = open_chain(path, held)
    assert chain is not None
    assert _names(chain[0]) == [b"c-json.log"]
    assert chain[1] is True


def test_a_file_and_its_compressed_copy_are_the_same_file_of_the_log(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    _write_log(path, 1, 300)
    _gzip(path, keep=True)
    changed = path.read_bytes().replace(b"line 1\\n", b"line 9\\n", 1)  # same length
    (tmp_path / "other").write_bytes(changed)
    with path.open("rb") as plain, (tmp_path / "other").open("rb") as other:
        copy = open_rotated(str(tmp_path / "gone"))
        assert copy is None
        os.replace(f"{path}.gz", tmp_path / "c.1.gz")
        copy = open_rotated(str(tmp_path / "c.1"))
        assert copy is not None
        assert same(copy, plain)
        assert same(plain, copy)
        assert not same(copy, other)
        assert not same(plain, other)
        copy.close()


@pytest.mark.parametrize("damage", ["cut", "corrupt", "not gzip"])
def test_a_damaged_compressed_file_keeps_what_comes_before_the_damage(
    tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "c-json.log"
    _write_log(path, 1, 400)
    os.replace(path, f"{path}.1")
    _gzip(f"{path}.1")
    packed = Path(f"{path}.1.gz")
    data = bytearray(packed.read_bytes())
    if damage == "cut":
        del data[len(data) // 2 :]
    elif damage == "corrupt":
        data[len(data) // 2 : len(data) // 2 + 32] = b"\xff" * 32
    else:
        data[:] = b"not a gzip file at all"
    packed.write_bytes(bytes(data))
    f = open_rotated(f"{path}.1")
    assert f is not None
    assert str(packed) in problem(f)
    numbers = _numbers(f.read())
    f.close()
    assert numbers == list(range(1, len(numbers) + 1))  # the start, in order, nothing else
    assert len(numbers) < 400
    if damage != "not gzip":
        assert len(numbers) > 50


def test_a_held_log_takes_the_files_rotated_between_once_compressed(tmp_path: Path) -> None:
    """Two rotations within a look, compress=true: the file between (lines 6-8) is only
    there as .1.gz, the one held as .2.gz; both are told apart and the tail is whole."""
    path = tmp_path / "c-json.log"
    _write_log(path, 1, 5)
    held = HeldLog(path.open("rb"))
    os.replace(path, f"{path}.1")  # rotated,
    _write_log(path, 6, 8)
    _gzip(f"{path}.1")  # compressed,
    os.replace(f"{path}.1.gz", f"{path}.2.gz")  # rotated again,
    os.replace(path, f"{path}.1")
    _write_log(path, 9, 10)
    _gzip(f"{path}.1")  # and compressed, before the next look
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c-json.log",
        "c-json.log.1.gz",
        "c-json.log.2.gz",
    ]
    assert held.keep_up(str(path), 1e12)
    assert len(held.files) == 3
    assert _numbers(held.read_since(1)) == list(range(1, 11))
    held.close()


# What dockerd (20.10, json-file and `local`) writes at the start of a rotated file it
# compressed, as read from one with xxd: flag FEXTRA, mtime 0, OS 255, then the extra
# field's length and, as the whole field, JSON with the time of the file's last entry.
DOCKERD_HEADER = (
    b'\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff-\x00{"lastTime":"2026-12-07T00:01:01.701611592Z"}'
)


def _stamp(n: int) -> str:
    """A time n seconds into a minute, in RFC 3339 as Go writes it (zeros trimmed)."""
    return f"2026-12-07T00:00:{n:02d}.5Z"


def _ns(n: int) -> int:
    return parse_ts(_stamp(n).encode())


def _write_seconds(path: Path, first: int, last: int) -> None:
    """Lines first..last, one a second."""
    with path.open("wb") as f:
        for n in range(first, last + 1):
            f.write(entry("stdout", f"line {n}\n", _stamp(n)) + b"\n")


def dockerd_gzip(plain: Path | str, last_time: str | None = "") -> None:
    """Compress a rotated file as dockerd does: the time of its last entry in the gzip
    header's extra field (`last_time`: that time, "": the last entry's, None: no extra
    field), then remove the plain file."""
    plain = Path(plain)
    data = plain.read_bytes()
    if last_time == "":
        last_time = orjson.loads(data.splitlines()[-1])["time"]
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    if last_time is not None:
        extra = b'{"lastTime":"' + last_time.encode() + b'"}'
        header = b"\x1f\x8b\x08\x04" + header[4:] + len(extra).to_bytes(2, "little") + extra
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    Path(f"{plain}.gz").write_bytes(header + body + trailer)
    plain.unlink()


def _compressed_chain(tmp_path: Path, last_time: str | None = "") -> Path:
    """A log of lines 0-49, ten a file: .4.gz (0-9), .3.gz, .2.gz, .1.gz, the log (40-49)."""
    path = tmp_path / "c-json.log"
    for k in range(4, 0, -1):
        _write_seconds(Path(f"{path}.{k}"), 40 - 10 * k, 49 - 10 * k)
        dockerd_gzip(f"{path}.{k}", last_time)
    _write_seconds(path, 40, 49)
    return path


def _read_from(files: list[Any], since: int) -> list[int]:
    """The lines of the files from `since` on, as a backlog reads them."""
    data = b"".join(read_since(f, since) for f in files)
    for f in files:
        f.close()
    return [n for n in _numbers(data) if _ns(n) >= since]


def test_the_header_dockerd_writes_gives_the_last_entrys_time(tmp_path: Path) -> None:
    packed = tmp_path / "c.1.gz"
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    packed.write_bytes(DOCKERD_HEADER + deflate.compress(b"x\n") + deflate.flush() + bytes(8))
    with packed.open("rb") as f:
        assert last_time(f) == parse_ts(b"2026-12-07T00:01:01.701611592Z")
    _write_seconds(tmp_path / "c.2", 1, 3)
    dockerd_gzip(tmp_path / "c.2")
    with open(tmp_path / "c.2.gz", "rb") as f:
        assert last_time(f) == _ns(3)
    assert gzip.decompress((tmp_path / "c.2.gz").read_bytes()).count(b"\n") == 3


@pytest.mark.parametrize(
    "header",
    [
        b"",  # empty file
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",  # no extra field (gzip's own)
        b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff#\x00" + b'{"lastTime":"0001-01-01T00:00:00Z"}',
        b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x08\x00AP\x04\x00abcd",  # RFC 1952 subfield
        b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x0e\x00" + b'{"lastTime":1}',
        b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff-\x00" + b'{"lastTime":"2026-12-07T00:01',  # cut
        b"not gzip at all, not gzip at all",
    ],
)
def test_a_header_without_a_usable_time_gives_none(tmp_path: Path, header: bytes) -> None:
    """Go's zero time: what dockerd writes when it rotates a file all of whose entries
    came before it last opened the log (seen after a container's restart)."""
    packed = tmp_path / "c.1.gz"
    packed.write_bytes(header)
    with packed.open("rb") as f:
        assert last_time(f) is None


def test_a_read_from_a_position_unpacks_only_the_files_that_may_hold_it(
    tmp_path: Path,
) -> None:
    """Position at line 25 (in .2.gz): .4.gz and .3.gz end before it by more than the
    slack and are not unpacked; every line from 25 on is read, once."""
    path = _compressed_chain(tmp_path)
    before = UNPACKED._value.get()
    files = open_all(str(path), _ns(25))
    assert files is not None
    assert UNPACKED._value.get() - before == 2
    assert len(files) == 3
    assert _read_from(files, _ns(25)) == list(range(25, 50))


def test_a_file_ending_within_the_slack_before_the_position_is_unpacked(tmp_path: Path) -> None:
    """Line 30 is the first of .1.gz; .2.gz ends with line 29, a second before: within
    the slack, so it is read; .3.gz ends 11 s before and is not."""
    path = _compressed_chain(tmp_path)
    assert SLACK_NS <= _ns(30) - _ns(29) < _ns(30) - _ns(19)
    since = _ns(29) + SLACK_NS  # line 29 is exactly SLACK_NS before: may still be needed
    before = UNPACKED._value.get()
    files = open_all(str(path), since)
    assert files is not None
    assert UNPACKED._value.get() - before == 2
    assert _read_from(files, _ns(29)) == list(range(29, 50))


@pytest.mark.parametrize("last", [None, "0001-01-01T00:00:00Z", "not a time"])
def test_a_compressed_file_whose_header_says_no_time_is_unpacked_as_ever(
    tmp_path: Path, last: str | None
) -> None:
    path = _compressed_chain(tmp_path, last_time=last)
    before = UNPACKED._value.get()
    files = open_all(str(path), _ns(45))
    assert files is not None
    assert UNPACKED._value.get() - before == 4
    assert _read_from(files, _ns(45)) == list(range(45, 50))


def test_a_read_from_the_start_unpacks_every_file(tmp_path: Path) -> None:
    path = _compressed_chain(tmp_path)
    before = UNPACKED._value.get()
    files = open_all(str(path))
    assert files is not None
    assert UNPACKED._value.get() - before == 4
    assert _read_from(files, 0) == list(range(50))


def _rotate_compressed(path: Path, first: int, last: int) -> None:
    """dockerd's rotation with compress=true: each .N.gz one number up, the log to .1,
    a new log (lines first..last), .1 compressed to .1.gz."""
    older = sorted(path.parent.glob(f"{path.name}.*.gz"), key=lambda p: -int(p.suffixes[-2][1:]))
    for p in older:
        os.replace(p, f"{path}.{int(p.suffixes[-2][1:]) + 1}.gz")
    os.replace(path, f"{path}.1")
    _write_seconds(path, first, last)
    dockerd_gzip(f"{path}.1")


@pytest.mark.parametrize("since", [25, 45])
def test_a_rotation_while_the_chain_is_opened_loses_and_repeats_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, since: int
) -> None:
    """The log (lines 40-49) is opened, then rotated and compressed before the older files
    are looked at: its compressed copy is met as .1.gz and the others one number up. Read
    from line 25 or 45, the chain is every line from there once (lines 50-54 are in the
    new log, which the follow takes at its next look), and the files that end before
    the position are not unpacked."""
    path = _compressed_chain(tmp_path)
    real_open = jsonfile.open_log
    rotated: list[bool] = []

    def open_then_rotate(name: str) -> Any:
        f = real_open(name)
        if name == str(path) and not rotated:
            rotated.append(True)
            _rotate_compressed(path, 50, 54)
        return f

    monkeypatch.setattr(jsonfile, "open_log", open_then_rotate)
    before = UNPACKED._value.get()
    files = open_all(str(path), _ns(since))
    assert rotated
    assert files is not None
    # The log's copy (.1.gz) is unpacked to be told from the files not read yet; from
    # 25, .2.gz (30-39) and .3.gz (20-29) too; the older ones end before the position.
    assert UNPACKED._value.get() - before == (3 if since == 25 else 1)
    assert _read_from(files, _ns(since)) == list(range(since, 50))


def test_the_file_held_is_found_as_its_compressed_copy_without_unpacking_it(
    tmp_path: Path,
) -> None:
    """A rotation while the log is followed from its files: the file read is .1.gz now;
    the chain stops there, reached, told by its length and first bytes alone."""
    path = _compressed_chain(tmp_path)
    with path.open("rb") as held:
        _rotate_compressed(path, 50, 54)
        before = UNPACKED._value.get()
        chain = open_chain(str(path), held)
    assert chain is not None
    assert UNPACKED._value.get() == before
    assert chain[1] is True
    assert _read_from(chain[0], 0) == list(range(50, 55))
