"""The compiled path gives what the Python path gives, byte for byte.

Every test runs both paths on the same input and compares their outputs exactly: the
lines a response is read into, the records, positions and counts a follower makes of
them, and the batches (body, positions) the batcher encodes of records. Skipped only
when the extension is not installed and LOGPIPE_REQUIRE_NATIVE is not set (the CI sets
it after building the extension: there a missing one fails).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import corpus
from shipper import batch, native
from shipper.cursor import Position
from shipper.demux import PIECE
from shipper.errors import DemuxError, DockerUnavailable
from shipper.follow import Follower
from shipper.inbox import Inbox
from shipper.metrics import PerContainer
from shipper.record import DoneRecord, EventRecord, GapRecord, LogRecord, MarkRecord, Meta
from shipper.rejoin import LineReader
from tests.shipper.standin import StandIn

if native.MODULE is None:
    if os.environ.get("LOGPIPE_REQUIRE_NATIVE"):
        raise RuntimeError(
            "LOGPIPE_REQUIRE_NATIVE is set but logpipe_shipper_native is not importable "
            "(pip install ./native/shipper; is LOGPIPE_NATIVE=0 set?)"
        )
    pytest.skip(f"no compiled path: {native.describe()}", allow_module_level=True)

T0 = 1_796_000_000_000_000_000  # 2026-11-29
T = TypeVar("T")


def stamp(ns: int, digits: int = 9) -> bytes:
    secs, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if digits:
        text += "." + f"{frac:09d}"[:digits]
    return (text + "Z").encode()


def wire(stream: int, ts: bytes, payload: bytes) -> bytes:
    body = ts + b" " + payload
    return struct.pack(">BxxxL", stream, len(body)) + body


def framed(entries: list[tuple[int, int, bytes]]) -> bytes:
    """(stream, ns, payload) entries as dockerd sends them, long payloads in 16 KiB pieces."""
    out = []
    for stream, ns, payload in entries:
        for i in range(0, max(len(payload), 1), PIECE):
            out.append(wire(stream, stamp(ns), payload[i : i + PIECE]))
    return b"".join(out)


def tty(entries: list[tuple[int, bytes]]) -> bytes:
    """(ns, payload) entries of a TTY stream (no frames), long payloads in 16 KiB pieces."""
    out = []
    for ns, payload in entries:
        for i in range(0, max(len(payload), 1), PIECE):
            out.append(stamp(ns) + b" " + payload[i : i + PIECE])
    return b"".join(out)


def reads(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def read_lines(make: Any, chunks: list[bytes]) -> list[Any]:
    """Every line (as tuples) a reader makes of the chunks, then of its end; or the error."""
    reader = make()
    out: list[Any] = []

    def take(lines: Any) -> None:
        if isinstance(lines, list):
            out.extend((x.stream, x.ts, x.data, x.truncated) for x in lines)
        else:
            out.extend(lines.items())

    try:
        for chunk in chunks:
            take(reader.feed(chunk))
            out.append(("tty", reader.tty))
        take(reader.finish())
    except DemuxError as exc:
        out.append(("error", type(exc), str(exc)))
    return out


def same_lines(chunks: list[bytes], max_line_bytes: int = 1 << 20) -> list[Any]:
    python = read_lines(lambda: LineReader(max_line_bytes), chunks)
    compiled = read_lines(lambda: native.reader(max_line_bytes), chunks)
    assert native.reader(max_line_bytes).__class__.__module__ == "logpipe_shipper_native"
    assert compiled == python
    return python


def _record(r: Any) -> tuple[Any, ...]:
    if isinstance(r, LogRecord):
        return ("log", r.meta.id, r.stream, r.ts, r.seq, r.data, r.truncated, r.lines, r.until)
    assert isinstance(r, GapRecord)
    return ("gap", r.stream, r.from_ts, r.to_ts, r.reason, r.estimated_lines)


async def _follow(
    chunks: list[bytes], positions: dict[str, Position], max_line_bytes: int, skip: bool
) -> list[Any]:
    inbox = Inbox(1_000_000, PerContainer(False, 100))
    meta = Meta(id="c" * 64, name="web", image="busybox")
    follower = Follower(StandIn(), meta, dict(positions), inbox, max_line_bytes)
    follower.learn(None, meta, skip=skip)

    async def response() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    result: list[Any] = []
    assert follower._numbering._native is None or native.MODULE is not None
    try:
        reader = await follower.stream.consume(response(), follow=False)
        assert isinstance(reader, LineReader) == (native.MODULE is None)
        await follower._numbering.emit(reader.finish())
    except DockerUnavailable as exc:
        result.append(("unavailable", str(exc)))
    while not inbox.empty():
        result.append(_record(inbox.get_nowait()))
    stats = follower.progress.stats
    result.append(("positions", follower.progress.positions))
    result.append(("stats", stats.lines, stats.bytes, stats.last_ts, stats.gaps))
    return result


def on_python_path(run: Callable[[], T]) -> T:
    """What `run` gives with the compiled path switched off (as LOGPIPE_NATIVE=0 does)."""
    module = native.MODULE
    try:
        native.MODULE = None
        return run()
    finally:
        native.MODULE = module


def same_records(
    chunks: list[bytes],
    positions: dict[str, Position] | None = None,
    max_line_bytes: int = 1 << 20,
    skip: bool = False,
) -> list[Any]:
    """What a follower queues from the chunks, by both paths; they must be equal."""
    start = positions or {"stdout": Position(0, 0), "stderr": Position(0, 0)}
    python = on_python_path(lambda: asyncio.run(_follow(chunks, start, max_line_bytes, skip)))
    compiled = asyncio.run(_follow(chunks, start, max_line_bytes, skip))
    assert compiled == python
    return python


def corpus_response(count: int) -> bytes:
    lines = corpus.lines(count)
    return framed(
        [(1 if i % 10 else 2, T0 + i * 1000, f"{x}\n".encode()) for i, x in enumerate(lines)]
    )


@pytest.mark.parametrize("per_read", [1, 37, 4096, 65536])
def test_corpus_read_in_any_chunks(per_read: int) -> None:
    """The bench's corpus lines, read in chunks that cut frames anywhere."""
    data = corpus_response(3000)
    chunks = [data[i : i + per_read] for i in range(0, len(data), per_read)]
    out = same_records(chunks)
    assert sum(1 for r in out if r[0] == "log") == 3000


EDGE = [
    (1, T0, b"plain line\n"),
    (2, T0, b"error line\n"),
    (1, T0 + 1, b"x" * (PIECE + 100) + b"\n"),  # two pieces
    (2, T0 + 1, b"bad utf-8 \xff\xfe \xc3( and a cut \xe2\x82\n"),
    (1, T0 + 2, b"controls \x00\x01\x1b[31m\t\r\x7f done\n"),
    (1, T0 + 3, b"no newline at the end"),
    (1, T0 + 3, b"same timestamp, other line\n"),
    (1, T0 + 3, b"same timestamp, other line\n"),
    (2, T0 + 4, b"y" * PIECE + b"\n"),  # a piece and a newline alone
    (1, T0 + 5, b"\n"),
    (1, T0 + 6, b"last"),
]


def test_frames_split_at_every_byte_offset() -> None:
    """Two reads, the cut at every offset: frames, headers and pieces split anywhere."""
    data = framed(EDGE)
    for cut in range(len(data) + 1):
        same_lines(reads(data, [cut]))
    for cut in range(0, len(data) + 1, 97):
        same_records(reads(data, [cut]))


def test_frames_split_in_many_reads() -> None:
    data = framed(EDGE * 3)
    rnd = random.Random(5)
    for _ in range(40):
        cuts = [rnd.randrange(len(data)) for _ in range(rnd.randrange(1, 30))]
        same_lines(reads(data, cuts))
        same_records(reads(data, cuts))


@pytest.mark.parametrize("max_line_bytes", [10, PIECE - 1, PIECE, PIECE + 7, 3 * PIECE])
def test_pieces_rejoined_and_truncated(max_line_bytes: int) -> None:
    """Long lines in 16 KiB pieces, the other stream between them, cut at the maximum
    (a multi-byte character cut in half at the cut is dropped)."""
    euro = "€".encode() * (2 * PIECE)  # three bytes each: the cut lands inside one
    body = framed([(1, T0, euro[: 3 * PIECE + 5] + b"\n")])
    pieces = [body[i : i + 8 + 31 + PIECE] for i in range(0, len(body), 8 + 31 + PIECE)]
    between = framed([(2, T0 + 1, b"stderr between pieces\n")])
    data = pieces[0] + between + b"".join(pieces[1:])
    # the local driver: no newline, an empty last piece after a line of whole pieces
    local = b"".join(wire(1, stamp(T0 + 2), b"z" * PIECE) for _ in range(2))
    local += wire(1, stamp(T0 + 2), b"")
    tail = framed([(1, T0 + 3, b"after\n")])
    for chunks in ([data + local + tail], reads(data + local + tail, [100, 20000, 40000])):
        same_lines(chunks, max_line_bytes)
        same_records(chunks, max_line_bytes=max_line_bytes)


def test_tty_streams() -> None:
    """TTY streams (no frames): \\r\\n ends, a last line without newline followed by the
    next run's entries, a long line, an unfinished entry at the end."""
    data = tty(
        [
            (T0, b"hello\r\n"),
            (T0 + 1, b"no newline before the restart"),
            (T0 + 5, b"next run\r\n"),
            (T0 + 6, b"w" * (PIECE + 40) + b"\r\n"),
            (T0 + 7, b"\xff invalid \x1b[0m\r\r\n"),
            (T0 + 7, b"\xff invalid \x1b[0m\r\r\n"),
            (T0 + 8, b"unfinished"),
        ]
    )
    for cut in range(0, len(data) + 1):
        if cut % 211 == 0 or cut < 80 or len(data) - cut < 80:
            same_lines(reads(data, [cut]))
    same_records([data])
    same_records(reads(data, [3, 40, 1000, 17000]))
    same_lines([data[:2]])  # only two bytes ever came: a TTY's
    same_lines([stamp(T0) + b" x", b""], 5)


def test_equal_timestamps_and_repeats_after_reconnect() -> None:
    """Lines of one timestamp numbered in order; from a saved position the lines up to it
    are repeats and dropped, the same content at one timestamp counted once."""
    entries = [(1, T0 + i // 3, b"line %d\n" % (i % 2)) for i in range(30)]
    entries += [(2, T0 + i // 4, b"err %d\n" % i) for i in range(12)]
    entries.sort(key=lambda e: e[1])
    data = framed(entries)
    same_records([data])
    for positions in (
        {"stdout": Position(T0 + 4, 2), "stderr": Position(T0 + 1, 1)},
        {"stdout": Position(T0 + 9, 5), "stderr": Position(T0, 0)},
        {"stdout": Position(T0 - 5, 1), "stderr": Position(T0 + 99, 1)},  # gaps
    ):
        out = same_records([data], positions)
        assert any(r[0] == "log" for r in out)
        same_records(reads(data, [50, 51, 300]), positions, skip=True)


@pytest.mark.parametrize(
    "chunk",
    [
        wire(7, stamp(T0), b"unknown stream\n"),
        framed([(1, T0, b"ok\n")]) + wire(3, b"Error", b"grabbing logs: \xff gone \n"),
        wire(1, b"2026-13-27T20:55:19.123456789Z", b"month 13\n"),
        wire(1, b"0000-11-27T20:55:19.123456789Z", b"year 0\n"),
        wire(1, b"2026-11-27T20:55:19.12345678xZ", b"bad digit\n"),
        wire(1, b"+026-11-27T20:55:19.123456789Z", b"a sign\n"),
        wire(1, b"2026x11x27T20:55:19.123456789Z", b"other separators\n"),
        wire(1, b"2026-11-27T20:55:19.123456Z", b"six digits\n"),
        wire(1, b"2026-11-27T20:55:19Z", b"no fraction\n"),
        wire(1, b"2026-11-27T20:55:19.1234567891Z", b"ten digits\n"),
        struct.pack(">BxxxL", 1, 50) + b"x" * 50,  # no space: no timestamp
        struct.pack(">BxxxL", 2, 3) + b"a b",
        wire(1, b"2026-02-31T99:99:99.000000000Z", b"days and hours past the end\n"),
        wire(1, b"1969-12-31T23:59:59.999999999Z", b"before 1970\n"),
        wire(1, b"9999-12-31T23:59:59.999999999Z", b"the last year\n"),
        tty([(T0, b"a TTY line\n")])[:-3] + b"2026-13-01T00:00:00.000000000Z next\n",
        b"2026-11-27T20:55:19.1234567890 not a timestamp\n",
    ],
)
def test_unusual_input_read_alike(chunk: bytes) -> None:
    """Unusual timestamps read alike, malformed streams fail with the same error."""
    same_lines([chunk])
    same_records([chunk])


# (stream, timestamp offset, payload) entries of a log, where its reads are cut, and the
# longest line: what the property tests of reading (here and test_backlog.py) draw.
ANY_ENTRIES = st.lists(
    st.tuples(
        st.sampled_from([1, 2]),
        st.integers(min_value=0, max_value=3),
        st.binary(max_size=40) | st.sampled_from([b"\n", b"same\n", b"x" * PIECE]),
    ),
    max_size=12,
)
ANY_CUTS = st.lists(st.integers(min_value=0, max_value=100_000), max_size=4)
ANY_MAX_LINE = st.sampled_from([8, 100, 1 << 20])


@settings(max_examples=150, deadline=None)
@given(ANY_ENTRIES, ANY_CUTS, ANY_MAX_LINE)
def test_any_frames_read_alike(
    entries: list[tuple[int, int, bytes]], cuts: list[int], max_line_bytes: int
) -> None:
    data = framed([(s, T0 + d, p) for s, d, p in sorted(entries, key=lambda e: e[1])])
    same_lines(reads(data, cuts), max_line_bytes)
    same_records(reads(data, cuts), max_line_bytes=max_line_bytes)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0, max_value=200), max_size=3))
def test_any_bytes_read_alike(data: bytes, cuts: list[int]) -> None:
    """Arbitrary bytes (mostly malformed): the same lines or the same error."""
    same_lines(reads(data, cuts), 50)


def test_forced_python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGPIPE_NATIVE=0 chooses the Python path even with the extension installed."""
    monkeypatch.setenv("LOGPIPE_NATIVE", "0")
    assert native.load() is None
    monkeypatch.setenv("LOGPIPE_NATIVE", "1")
    assert native.load() is not None


# ---- batch encoding ----------------------------------------------------------------


def _batch(records: list[Any], host: str = "host-1") -> tuple[Any, ...]:
    made = batch.encode(records, host)
    return (made.body, made.lines, made.positions, made.first_ts, made.done)


def same_batch(records: list[Any], host: str = "host-1") -> tuple[Any, ...]:
    """What batch.encode makes of the records, by both paths; they must be equal."""
    python = on_python_path(lambda: _batch(records, host))
    compiled = _batch(records, host)
    assert compiled == python
    return python


WEB = Meta(id="c" * 64, name="web", image="busybox", labels={"a": "b"}, parser="json")
DB = Meta(id="d" * 64, name="db", image="postgres", dataset="pg", namespace="prod")


def test_batches_of_corpus_records() -> None:
    """The bench's corpus lines from two containers, as batches the batcher makes."""
    records: list[Any] = []
    for i, text in enumerate(corpus.lines(5000)):
        meta = WEB if i % 3 else DB
        stream = "stderr" if i % 7 == 0 else "stdout"
        records.append(LogRecord(meta, stream, T0 + i // 2, i % 2, text.encode()))
    for size in (1, 100, 5000):
        for start in range(0, len(records), size):
            out = same_batch(records[start : start + size])
            assert out[1] == len(records[start : start + size])


MESSAGES = [
    b"",
    b"plain",
    b'quotes " and \\ backslashes \\" /',
    bytes(range(0x20)) + b"\x7f",
    b"bad utf-8 \xff\xfe \xc3( \xe2\x82 \xed\xa0\x80 \xf0\x9f\x98 \xf4\x90\x80\x80 end \xc0\xaf",
    "ünïcödé € \u2028 \U0001f600 \ufffd".encode(),
    b"\xe2\x82",
    b"x" * 70000,
]


def test_batches_of_unusual_records() -> None:
    """Every kind of record and field value: marks, ends, events, gaps, joined and
    truncated lines, messages with quotes, controls and invalid UTF-8, a container
    whose metadata changed (same id, a new Meta), large numbers."""
    web2 = Meta(id=WEB.id, name="web-renamed", image="busybox:2")
    records: list[Any] = [
        LogRecord(WEB, "stdout", T0 + i, i, m, truncated=i % 2 == 1, lines=1 + i % 3)
        for i, m in enumerate(MESSAGES)
    ]
    records += [
        MarkRecord(DB, "stdout", Position(T0 + 50, 2)),
        LogRecord(web2, "stdout", T0 + 60, 0, b"after the rename"),
        EventRecord(DB, T0 + 61, "die", 137, "killed\x00 \xff"),
        GapRecord(WEB, "stderr", T0, T0 + 70, "rotated", 12),
        LogRecord(DB, "stderr", T0 - 5, 2**31, b"earlier", lines=2**40),
        LogRecord(DB, "stderr", 0, 0, b"at zero"),
        LogRecord(DB, "stdout", 2**63 - 1, 0, b"the last nanosecond"),
        LogRecord(DB, "stdout", -7, 9, b"before the epoch"),
        LogRecord(DB, "stdout", -(2**63), 0, b"the first 64-bit nanosecond"),
        LogRecord(DB, "stdout", 2**70, 0, b"past 64 bits: written by Python"),
        LogRecord(DB, "other", T0, 0, b"an odd stream name: written by Python"),
        LogRecord(DB, "stdout", T0, 3, b"until", until=Position(T0 + 9, 1)),
        DoneRecord(WEB),
        MarkRecord(WEB, "stderr", Position(T0 + 80, 1)),
    ]
    same_batch(records)
    same_batch(records[::-1])
    same_batch([DoneRecord(DB), MarkRecord(DB, "stdout", Position(1, 1))])  # no line
    same_batch([])
    for start in range(len(records)):
        same_batch(records[start:])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=30), st.integers(0, 3), st.booleans()), max_size=8))
def test_any_message_encoded_alike(items: list[tuple[bytes, int, bool]]) -> None:
    records: list[Any] = [
        LogRecord(WEB, "stdout", T0 + n, n, data, truncated=cut, lines=n + 1)
        for data, n, cut in items
    ]
    same_batch(records)
