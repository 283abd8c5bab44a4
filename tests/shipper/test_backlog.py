"""A stopped container's log read from its json-file files gives what dockerd would have.

The lines read from the files are those the logs API gives for the same entries (both
readers, compiled and Python, byte for byte); a follower reads a stopped container's
rotated files in order from its positions; and whenever the files may not be all of
the log (it started, its file grew or was replaced), the read
hands over to dockerd from the positions reached, and nothing comes twice.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import sys
import types
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper import native
from shipper.containers import ContainerSummary
from shipper.cursor import Position
from shipper.demux import PIECE
from shipper.docker_api import DockerClient
from shipper.dockerd import Following
from shipper.errors import Unanchored
from shipper.follow import Follower
from shipper.follow import backlog as backlog_module
from shipper.follow.backlog import CATCH_UPS, READS, TAIL_BACK, Backlog
from shipper.follow.turns import Turns
from shipper.inbox import Inbox
from shipper.logfiles import localfile
from shipper.logfiles.jsonfile import FileLines
from shipper.logfiles.localfile import MAX_ENTRY
from shipper.logfiles.watch import LogFiles
from shipper.metrics import PerContainer
from shipper.record import LogRecord, Meta
from shipper.rejoin import LineReader
from tests.shipper.logfiles.local_entries import entry as local_entry
from tests.shipper.logfiles.local_entries import field, framed, message, varint
from tests.shipper.standin import StandIn
from tests.shipper.summaries import container
from tests.shipper.test_native import (
    ANY_CUTS,
    ANY_ENTRIES,
    ANY_MAX_LINE,
    EDGE,
    T0,
    on_python_path,
    reads,
    stamp,
    wire,
)

needs_native = pytest.mark.skipif(native.MODULE is None, reason=native.describe())


def text_of(payload: bytes) -> str:
    """What dockerd keeps of a line's bytes: invalid UTF-8 becomes U+FFFD."""
    return payload.decode("utf-8", "replace")


def json_line(stream: int, ns: int, text: str, style: int = 0) -> bytes:
    """One entry as dockerd's json-file driver writes it; `style` varies the escaping
    (1: everything beyond ASCII escaped, the time's zeros trimmed as Go writes it;
    2: Go's HTML escapes and an `attrs` key)."""
    name = "stdout" if stream == 1 else "stderr"
    ts = stamp(ns).decode()
    if style == 1:
        ts = ts.rstrip("Z").rstrip("0").rstrip(".") + "Z"  # Go's RFC3339Nano trims zeros
        return json.dumps({"log": text, "stream": name, "time": ts}).encode()
    if style == 2:
        raw = json.dumps({"log": text, "stream": name, "attrs": {"tag": "web"}, "time": ts})
        return raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()
    return orjson.dumps({"log": text, "stream": name, "time": ts})


def json_file(entries: list[tuple[int, int, bytes]]) -> bytes:
    """(stream, ns, payload) entries as a json-file log, long payloads in 16 KiB pieces."""
    out = []
    for i, (stream, ns, payload) in enumerate(entries):
        for at in range(0, max(len(payload), 1), PIECE):
            out.append(json_line(stream, ns, text_of(payload[at : at + PIECE]), i % 3) + b"\n")
    return b"".join(out)


def as_sent(entries: list[tuple[int, int, bytes]]) -> bytes:
    """The same entries as dockerd sends them through the logs API once the file kept
    them: a frame for each 16 KiB piece, invalid UTF-8 replaced as in the file."""
    out = []
    for stream, ns, payload in entries:
        for at in range(0, max(len(payload), 1), PIECE):
            out.append(wire(stream, stamp(ns), text_of(payload[at : at + PIECE]).encode()))
    return b"".join(out)


def items(lines: Any) -> list[tuple[Any, ...]]:
    if isinstance(lines, list):
        return [(x.stream, x.ts, x.data, x.truncated) for x in lines]
    out: list[tuple[Any, ...]] = lines.items()
    return out


def file_lines(make: Any, files: list[list[bytes]]) -> list[tuple[Any, ...]]:
    """Every line a file reader makes of the files' chunks, each file ended, then the log."""
    return read_files(make(), files)


def read_files(reader: Any, files: list[list[bytes]]) -> list[tuple[Any, ...]]:
    """Every line `reader` makes of the files' chunks, each file ended, then the log."""
    out: list[tuple[Any, ...]] = []
    for chunks in files:
        for chunk in chunks:
            out += items(reader.feed(chunk))
        out += items(reader.end_file())
    out += items(reader.finish())
    return out


def same_file_lines(
    files: list[list[bytes]], max_line_bytes: int = 1 << 20, tty: bool = False
) -> list[Any]:
    """The Python and the compiled file readers agree (the compiled one when installed)."""
    python = file_lines(lambda: FileLines(max_line_bytes, tty), files)
    if native.MODULE is not None:
        compiled = file_lines(lambda: native.file_reader(max_line_bytes, tty), files)
        assert compiled == python
    return python


def api_lines(data: bytes, max_line_bytes: int = 1 << 20) -> list[Any]:
    reader = LineReader(max_line_bytes)
    return items(reader.feed(data)) + items(reader.finish())


def test_entries_read_from_the_file_as_dockerd_sends_them() -> None:
    """The edge cases of the logs API's tests (pieces, invalid UTF-8, controls, equal
    timestamps, no newline at the end), written to a file: the same lines."""
    data = json_file(EDGE)
    expected = api_lines(as_sent(EDGE))
    assert len(expected) == len(EDGE)
    for cut in range(len(data) + 1):
        assert same_file_lines([reads(data, [cut])]) == expected


@pytest.mark.parametrize("max_line_bytes", [10, PIECE - 1, PIECE + 7, 3 * PIECE])
def test_long_lines_cut_alike_and_joined_across_files(max_line_bytes: int) -> None:
    """A long line's pieces joined and cut at the maximum as the API's are, even when
    rotation put its pieces in two files."""
    entries = [
        (1, T0, ("€" * (2 * PIECE)).encode()[: 3 * PIECE + 5] + b"\n"),
        (2, T0 + 1, b"stderr after\n"),
        (1, T0 + 2, b"z" * (2 * PIECE) + b"\n"),
    ]
    data = json_file(entries)
    expected = api_lines(as_sent(entries), max_line_bytes)
    split = data.index(b"\n") + 1  # the first piece alone in the older file
    assert same_file_lines([[data[:split]], [data[split:]]], max_line_bytes) == expected
    assert same_file_lines([reads(data, [5, 20000, 40000])], max_line_bytes) == expected


@pytest.mark.parametrize(
    "line",
    [
        b'{"log":"torn li',
        b'["x\\n","stdout","2026-11-27T22:08:07.1Z"]',
        b'{"log":"one\\n","log":"two\\n","stream":"stdout","time":"2026-11-27T22:08:07.1Z"}',
        b'{"log":"x\\n","stream":"stdin","time":"2026-11-27T22:08:07.1Z"}',
        b'{"log":"x\\n","stream":"stdout","time":"yesterday"}',
        b'{"log":"x\\n","stream":"stdout","time":"2026-13-27T22:08:07.1Z"}',
        b'{"log":"trimmed\\n","stream":"stderr","time":"2026-11-27T22:08:07.1Z"}',
        b'{"log":"no fraction\\n","stream":"stderr","time":"2026-11-27T22:08:07Z"}',
        b'{"log":5,"stream":"stdout","time":"2026-11-27T22:08:07.1Z"}',
        b'{"log":"x\\n","stream":"stdout","time":1}',
        b'{"log":"\\ud800 lone\\n","stream":"stdout","time":"2026-11-27T22:08:07.1Z"}',
        b'{"log":"\\ud83d\\ude00 pair \\u003c\\/\\u0000\\n","stream":"stdout",'
        b'"time":"2026-11-27T22:08:07.1Z"}',
        b'{"log":"\xff bad\\n","stream":"stdout","time":"2026-11-27T22:08:07.1Z"}',
        b'  {"log":"spaces\\n","stream":"stdout","time":"2026-11-27T22:08:07.1Z"}\t',
        b'{"log":"crlf\\n","stream":"stdout","time":"2026-11-27T22:08:07.1Z"}\r',
        b'{"log":"x\\n","stream":"stdout","time":"2026-11-27T22:08:07.1Z"} trailing',
        b"   ",
        b"{}",
    ],
)
def test_unusual_lines_read_alike(line: bytes) -> None:
    """Torn, foreign or unusual lines among ordinary ones: both readers keep or skip
    each alike (the compiled one hands anything unusual to the Python one)."""
    ok = json_line(1, T0, "before\n")
    data = ok + b"\n" + line + b"\n" + json_line(2, T0 + 1, "after\n") + b"\n"
    got = same_file_lines([[data]])
    assert [g[2] for g in got if g[2] in (b"before", b"after")] == [b"before", b"after"]
    same_file_lines([[ok + b"\n" + line]])  # the odd one last, without a line end
    same_file_lines([reads(data, [len(ok) + 3])])


@settings(max_examples=150, deadline=None)
@given(ANY_ENTRIES, ANY_CUTS, ANY_MAX_LINE)
def test_any_entries_read_as_from_the_api(
    entries: list[tuple[int, int, bytes]], cuts: list[int], max_line_bytes: int
) -> None:
    ordered = [(s, T0 + d, p) for s, d, p in sorted(entries, key=lambda e: e[1])]
    expected = api_lines(as_sent(ordered), max_line_bytes)
    assert same_file_lines([reads(json_file(ordered), cuts)], max_line_bytes) == expected


@settings(max_examples=150, deadline=None)
@given(ANY_ENTRIES, ANY_CUTS, ANY_MAX_LINE)
def test_any_tty_entries_read_alike(
    entries: list[tuple[int, int, bytes]], cuts: list[int], max_line_bytes: int
) -> None:
    """A TTY's json-file log (the --rm rescue reads one of a container run with -t):
    both readers give the same lines, its line ends stripped alike."""
    ordered = [
        (1, T0 + d, p.replace(b"\n", b"\r\n")) for _, d, p in sorted(entries, key=lambda e: e[1])
    ]
    same_file_lines([reads(json_file(ordered), cuts)], max_line_bytes, tty=True)


# ---- a follower reading a stopped container's files ---------------------------------


class Docker(StandIn):
    """What the backlog asks dockerd: an inspection, answered by `state` (running,
    finished_ns); `before` runs first (a write to the log, say)."""

    def __init__(self, summary: ContainerSummary) -> None:
        self.summary = summary
        self.before: Any = None
        self.logs_asked = 0

    async def inspect(self, cid: str) -> ContainerSummary:
        if self.before is not None:
            self.before()
        return self.summary

    def logs(self, *args: object, **kwargs: object) -> AsyncGenerator[bytes, None]:
        self.logs_asked += 1
        raise AssertionError("the log was to be read from its files")


def stopped(path: Path, **opts: str) -> ContainerSummary:
    summary = container(running=False, finished_ns=T0 + 10**9)
    summary["log_path"] = str(path)
    summary["log_opts"] = dict(opts)
    return summary


def corpus_entries(count: int, start: int = 0) -> list[tuple[int, int, bytes]]:
    from bench import corpus

    lines = corpus.lines(start + count)[start:]
    return [
        (2 if (start + i) % 7 == 0 else 1, T0 + (start + i) // 3, f"{x}\n".encode())
        for i, x in enumerate(lines)
    ]


def rotated(folder: Path, entries: list[tuple[int, int, bytes]], files: int) -> Path:
    """The entries in `files` json-file files, rotated as dockerd rotates: the log, .1, ..."""
    path = folder / "c-json.log"
    data = json_file(entries)
    size = len(data) // files + 1
    parts = []
    at = 0
    while at < len(data):
        end = data.find(b"\n", at + size)
        end = len(data) if end < 0 else end + 1
        parts.append(data[at:end])
        at = end
    for k, part in enumerate(reversed(parts)):
        (folder / (path.name + (f".{k}" if k else ""))).write_bytes(part)
    return path


@dataclass
class Read:
    follower: Follower
    records: list[Any]
    done: bool
    inbox: Inbox


class Told(Following, Protocol):
    """A stand-in for dockerd that holds what inspecting its container tells."""

    summary: ContainerSummary


def follower_for(
    docker: Told | DockerClient,
    positions: dict[str, Position] | None = None,
    files: LogFiles | None = LogFiles(""),  # noqa: B008 (nothing watched: root unknown)
    cid: str = "c" * 64,
    learn: bool = True,
    **options: Any,
) -> tuple[Follower, Inbox]:
    """A follower of a container (told what inspecting it said, unless not `learn`) and
    its queue; `options` are the Follower's (a stopped container's first read waits for
    a turn unless `turns` says otherwise)."""
    inbox = Inbox(1_000_000, PerContainer(False, 100))
    meta = Meta(id=cid, name="web", image="busybox")
    start = positions or {"stdout": Position(0, 0), "stderr": Position(0, 0)}
    options.setdefault("turns", Turns(1))
    follower = Follower(docker, meta, dict(start), inbox, 1 << 20, files=files, **options)
    if learn:
        assert not isinstance(docker, DockerClient), "dockerd tells nothing unasked"
        follower.learn(docker.summary, meta, skip=False)
    return follower, inbox


async def _backlog(docker: Docker, positions: dict[str, Position] | None, turn: bool) -> Read:
    follower, inbox = follower_for(docker, positions)
    done = await follower._cycle() if turn else await follower._backlog.read()
    return Read(follower, drained(inbox), done, inbox)


def drained(inbox: Inbox) -> list[Any]:
    records = []
    while not inbox.empty():
        records.append(inbox.get_nowait())
    return records


def run(docker: Docker, positions: dict[str, Position] | None = None, turn: bool = True) -> Read:
    return asyncio.run(_backlog(docker, positions, turn))


def logged(records: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.stream, r.ts, r.seq, r.data) for r in records if isinstance(r, LogRecord)]


def both_paths(docker: Docker, positions: dict[str, Position] | None = None) -> Read:
    """The backlog read by the Python path, then by the compiled one: the same records."""
    python = on_python_path(lambda: run(docker, positions))
    compiled = run(docker, positions)
    assert logged(compiled.records) == logged(python.records)
    assert compiled.follower.positions == python.follower.positions
    return compiled


def test_a_stopped_containers_rotated_files_are_read_in_order(tmp_path: Path) -> None:
    """Three files (.2, .1, the log): every line once, in order, numbered as dockerd's
    stream would have been; the follower is done without asking dockerd for the log."""
    entries = corpus_entries(3000)
    docker = Docker(stopped(rotated(tmp_path, entries, 3)))
    assert (tmp_path / "c-json.log.2").exists()
    before = READS.labels("read to the end")._value.get()
    read = both_paths(docker)
    assert read.done
    assert read.follower.read_to_end
    assert docker.logs_asked == 0
    assert READS.labels("read to the end")._value.get() == before + 2
    got = logged(read.records)
    assert got == api_records(entries)  # the same lines, numbers and repeats dropped
    assert len(got) > 2900
    assert [(s, ts) for s, ts, _, _ in got] == sorted(
        [(s, ts) for s, ts, _, _ in got], key=lambda x: x[1]
    )


def compress(path: Path, keep: bool = False) -> Path:
    """What dockerd does to a rotated file with ``compress=true``: ``.N`` becomes
    ``.N.gz`` (`keep`: the plain one is still there, as while dockerd compresses it)."""
    packed = path.with_name(path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    if not keep:
        path.unlink()
    return packed


def test_rotated_files_compressed_by_dockerd_are_read_in_order(tmp_path: Path) -> None:
    """compress=true: .2.gz, .1.gz, then the log; every line once, as dockerd serves
    them, and dockerd is not asked."""
    entries = corpus_entries(3000)
    path = rotated(tmp_path, entries, 3)
    for k in (1, 2):
        compress(tmp_path / f"c-json.log.{k}")
    docker = Docker(stopped(path, compress="true"))
    read = both_paths(docker)
    assert read.done
    assert docker.logs_asked == 0
    assert logged(read.records) == api_records(entries)
    assert not [r for r in read.records if not isinstance(r, LogRecord)]


def test_a_file_being_compressed_is_read_plain(tmp_path: Path) -> None:
    """While dockerd writes .1.gz, .1 is still there and whole: .1 is read, the .gz left
    alone (here cut short, as it is until dockerd closes it)."""
    entries = corpus_entries(1000)
    path = rotated(tmp_path, entries, 2)
    packed = compress(tmp_path / "c-json.log.1", keep=True)
    packed.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    read = run(Docker(stopped(path, compress="true")))
    assert read.done
    assert logged(read.records) == api_records(entries)
    assert not [r for r in read.records if not isinstance(r, LogRecord)]


def _texts(records: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.stream, r.ts, r.data) for r in records if isinstance(r, LogRecord)]


@pytest.mark.parametrize("damage", ["cut short", "corrupt"])
def test_a_damaged_compressed_file_is_read_as_far_as_it_goes_and_the_rest_is_a_gap(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """.2.gz cut in its middle, or with bytes of its middle changed: its lines up to the
    damage are read, then every line of .1 and of the log; a gap of each stream, from its
    last line read to its next one, says what is lost; the read does not fail."""
    entries = corpus_entries(3000)
    path = rotated(tmp_path, entries, 3)
    oldest = (tmp_path / "c-json.log.2").read_bytes()
    packed = compress(tmp_path / "c-json.log.2")
    data = bytearray(packed.read_bytes())
    middle = len(data) // 2
    if damage == "cut short":
        del data[middle:]
    else:
        data[middle : middle + 64] = bytes(64)
    packed.write_bytes(bytes(data))
    read = run(Docker(stopped(path)))
    assert read.done
    got = _texts(read.records)
    everything = _texts([r for r in _api_log(entries)])
    in_oldest = len([x for x in oldest.splitlines() if x])
    assert got[: in_oldest // 4] == everything[: in_oldest // 4]  # the start of .2 is read
    newer = everything[len(everything) - (len(entries) - in_oldest) :]
    assert got[len(got) - len(newer) :] == newer  # .1 and the log, every line
    assert len(got) < len(everything)
    gaps = [r for r in read.records if not isinstance(r, LogRecord)]
    assert {g.stream for g in gaps} == {"stdout", "stderr"}
    assert all("compressed by dockerd was cut short or corrupt" in g.reason for g in gaps)
    for gap in gaps:
        before = [ts for s, ts, _ in got if s == gap.stream and ts <= gap.from_ts]
        after = [ts for s, ts, _ in got if s == gap.stream and ts >= gap.to_ts]
        assert before
        assert after
    assert any(f"c-json.log.2.gz is {damage}" in getattr(r, "reason", "") for r in caplog.records)


def _api_log(entries: list[tuple[int, int, bytes]]) -> list[Any]:
    follower, inbox = follower_for(Docker(container(running=False)), None)
    read = Read(follower, [], False, inbox)

    async def go() -> list[Any]:
        data = as_sent(entries)

        async def response() -> Any:
            yield data

        reader = await read.follower.stream.consume(response(), follow=False)
        await read.follower._numbering.emit(reader.finish())
        return drained(read.inbox)

    return asyncio.run(go())


def api_records(
    entries: list[tuple[int, int, bytes]], positions: dict[str, Position] | None = None
) -> list[Any]:
    """What a follower makes of the same log read through dockerd's API."""
    follower, inbox = follower_for(Docker(container(running=False)), positions)
    return asyncio.run(_api_rest(Read(follower, [], False, inbox), entries))


def test_read_from_the_positions_reached(tmp_path: Path) -> None:
    """A shipper that had read part of the log goes on after it: nothing twice."""
    entries = corpus_entries(1200)
    docker = Docker(stopped(rotated(tmp_path, entries, 2)))
    everything = logged(run(docker).records)
    stdout_ts = [r for r in everything if r[0] == "stdout"][400]
    stderr_ts = [r for r in everything if r[0] == "stderr"][50]
    positions = {
        "stdout": Position(stdout_ts[1], stdout_ts[2] + 1),
        "stderr": Position(stderr_ts[1], stderr_ts[2] + 1),
    }
    read = both_paths(docker, positions)
    assert read.done
    rest = logged(read.records)
    assert rest == [r for r in everything if not positions[r[0]].covers(r[1], r[2])]
    assert rest == api_records(entries, positions)
    assert 0 < len(rest) < len(everything)


def test_a_file_rotated_away_is_a_gap(tmp_path: Path) -> None:
    """Positions older than every file left: the lines between are reported lost, as
    they are when dockerd's response starts later."""
    entries = corpus_entries(300)
    docker = Docker(stopped(rotated(tmp_path, entries, 1)))
    positions = {"stdout": Position(T0 - 10**9, 1), "stderr": Position(T0 - 10**9, 1)}
    read = run(docker, positions)
    assert read.done
    gaps = [r for r in read.records if not isinstance(r, LogRecord)]
    assert {g.stream for g in gaps} == {"stdout", "stderr"}
    assert len(logged(read.records)) == 300


@pytest.mark.parametrize("change", ["started", "restarted", "grew", "replaced", "removed"])
def test_a_container_that_ran_again_is_handed_to_dockerd(tmp_path: Path, change: str) -> None:
    """Whatever the files cannot vouch for goes to dockerd: the read says it did not
    reach the end, and what it numbered plus dockerd's rest (from the positions) is
    every line once."""
    entries = corpus_entries(500)
    more = corpus_entries(20, start=500)
    path = rotated(tmp_path, entries, 2)
    docker = Docker(stopped(path))

    def ran_again() -> None:
        running = change == "started"
        finished = T0 + (2 if change == "restarted" else 1) * 10**9
        if change == "grew":
            with path.open("ab") as f:
                f.write(json_file(more))
        if change == "replaced":
            path.rename(path.with_name(path.name + ".new"))
            path.write_bytes(json_file(more))
        docker.summary = {**docker.summary, "running": running, "finished_ns": finished}
        if change == "removed":
            raise_gone()

    docker.before = ran_again
    before = READS.labels("handed to dockerd")._value.get()
    read = run(docker, turn=False)
    assert not read.done
    assert not read.follower.read_to_end
    assert READS.labels("handed to dockerd")._value.get() == before + 1
    got = logged(read.records)
    assert len(got) == 500
    # dockerd's rest, from the positions reached, adds only what the files did not have
    rest = asyncio.run(_api_rest(read, entries + more))
    assert len(rest) == 20
    assert not set(rest) & set(got)


def raise_gone() -> None:
    from shipper.errors import ContainerGone

    raise ContainerGone("removed")


async def _api_rest(read: Read, entries: list[tuple[int, int, bytes]]) -> list[Any]:
    data = as_sent(entries)

    async def response() -> Any:
        yield data

    reader = await read.follower.stream.consume(response(), follow=False)
    await read.follower._numbering.emit(reader.finish())
    return logged(drained(read.inbox))


@pytest.mark.parametrize("why", ["tty", "running", "other driver", "no file", "not visible"])
def test_logs_the_files_cannot_give_are_read_through_dockerd(tmp_path: Path, why: str) -> None:
    """TTYs, running containers, other drivers, a missing file: the read takes nothing
    and leaves the log to dockerd."""
    path = rotated(tmp_path, corpus_entries(50), 2)
    summary = stopped(path)
    if why == "tty":
        summary["tty"] = True
    elif why == "running":
        summary["running"] = True
    elif why == "other driver":
        summary["log_driver"] = "local"
    elif why == "no file":
        summary["log_path"] = str(tmp_path / "gone-json.log")
    files = None if why == "not visible" else LogFiles("")
    follower, _ = follower_for(Docker(summary), files=files)
    assert asyncio.run(follower._backlog.read()) is False
    assert follower.stats.lines == 0
    assert follower.positions == {"stdout": Position(0, 0), "stderr": Position(0, 0)}


@needs_native
def test_random_chunks_of_a_large_file() -> None:
    """The corpus as one file, read in chunks of random sizes: both readers, the API's lines."""
    entries = corpus_entries(4000)
    data = json_file(entries)
    expected = api_lines(as_sent(entries))
    rnd = random.Random(7)
    for _ in range(5):
        cuts = [rnd.randrange(len(data)) for _ in range(rnd.randrange(1, 60))]
        assert same_file_lines([reads(data, cuts)]) == expected


# ---- a running container: its files first, then only the end of its log from dockerd --


@pytest.fixture(params=["compiled", "python"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test on the compiled path (when installed) and on the Python path."""
    if request.param == "python":
        monkeypatch.setattr(native, "MODULE", None)
    elif native.MODULE is None:
        pytest.skip(native.describe())
    return str(request.param)


def running(path: Path) -> ContainerSummary:
    summary = stopped(path)
    summary["running"] = True
    summary["finished_ns"] = 0
    return summary


async def _catch_up_then(response: bytes, docker: Docker) -> tuple[list[Any], list[Any], Any]:
    """Files read, then `response` consumed as the anchored follow stream: what each
    queued, and what the stream raised (None)."""
    follower, inbox = follower_for(docker)
    assert await follower._backlog.catch_up()
    assert not await follower._backlog.catch_up()  # once: a reconnect asks from positions
    from_files = drained(inbox)

    async def chunks() -> Any:
        yield response

    raised = None
    try:
        reader = await follower.stream.consume(chunks(), follow=True, anchored=True)
        await follower._numbering.emit(reader.finish())
    except Unanchored as exc:
        raised = exc
    return from_files, drained(inbox), raised


def test_a_running_containers_backlog_is_read_from_its_files(tmp_path: Path, path: str) -> None:
    """The files as far as they go, then dockerd's last TAIL_BACK entries and what came
    after: every line once, as a read through dockerd from the start would have it."""
    entries = corpus_entries(2500)
    more = corpus_entries(40, start=2500)  # written after the files were read
    docker = Docker(running(rotated(tmp_path, entries, 2)))
    end = (entries + more)[-(TAIL_BACK + len(more)) :]
    before = CATCH_UPS._value.get()
    from_files, from_dockerd, raised = asyncio.run(_catch_up_then(as_sent(end), docker))
    assert raised is None
    assert CATCH_UPS._value.get() == before + 1
    assert len(logged(from_files)) > 2400
    assert len(logged(from_dockerd)) == 40
    assert logged(from_files) + logged(from_dockerd) == api_records(entries + more)
    assert not [r for r in from_files + from_dockerd if not isinstance(r, LogRecord)]  # no gap


def test_a_log_end_that_begins_after_the_files_is_refused(tmp_path: Path, path: str) -> None:
    """More written meanwhile than TAIL_BACK entries: dockerd's answer starts after the
    last line read, so lines between could be missing; nothing of it is queued, and the
    follower asks from the positions instead (Unanchored)."""
    entries = corpus_entries(300)
    more = corpus_entries(50, start=300)
    docker = Docker(running(rotated(tmp_path, entries, 1)))
    from_files, from_dockerd, raised = asyncio.run(_catch_up_then(as_sent(more[10:]), docker))
    assert isinstance(raised, Unanchored)
    assert len(logged(from_files)) == len(api_records(entries))
    assert from_dockerd == []


def test_a_stopped_container_is_not_caught_up_nor_a_running_one_read_whole(
    tmp_path: Path,
) -> None:
    """catch_up is for running containers that logged already, read for stopped ones;
    --rm ones are the rescue's."""
    log_path = rotated(tmp_path, corpus_entries(20), 1)

    async def outcomes(summary: ContainerSummary) -> tuple[bool, bool]:
        follower, _ = follower_for(Docker(summary))
        try:
            return await follower._backlog.catch_up(), await follower._backlog.read()
        finally:
            follower._rescue.let_go()  # a --rm container's file is held for its rescue

    assert asyncio.run(outcomes(stopped(log_path))) == (False, True)
    assert asyncio.run(outcomes(running(log_path))) == (True, False)
    empty = tmp_path / "empty-json.log"
    empty.write_bytes(b"")
    assert asyncio.run(outcomes(running(empty))) == (False, False)  # no line to anchor on
    removed = running(log_path)
    removed["auto_remove"] = True
    assert asyncio.run(outcomes(removed)) == (False, False)


def test_running_containers_are_caught_up_a_few_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each catch-up holds a chunk's lines while the queue is full: followers sharing a
    limit of two never read more than two logs at once, and every one is read."""
    reading = 0
    most = 0
    lines_of = Backlog._lines

    async def counted(self: Backlog, *args: Any, **kwargs: Any) -> Any:
        nonlocal reading, most
        reading += 1
        most = max(most, reading)
        try:
            await asyncio.sleep(0.01)  # the others get their chance to start
            return await lines_of(self, *args, **kwargs)
        finally:
            reading -= 1

    monkeypatch.setattr(Backlog, "_lines", counted)

    async def catch_up_all() -> list[bool]:
        limit = asyncio.Semaphore(2)
        followers = []
        for k in range(5):
            folder = tmp_path / str(k)
            folder.mkdir()
            summary = running(rotated(folder, corpus_entries(100), 1))
            follower = Follower(
                Docker(summary),
                Meta(id=f"{k}" * 64, name=f"web-{k}", image="busybox"),
                {"stdout": Position(0, 0), "stderr": Position(0, 0)},
                Inbox(1_000_000, PerContainer(False, 100)),
                1 << 20,
                files=LogFiles(""),
                catch_ups=limit,
            )
            follower.learn(summary, follower.meta, skip=False)
            followers.append(follower)
        return list(await asyncio.gather(*(f._backlog.catch_up() for f in followers)))

    assert asyncio.run(catch_up_all()) == [True] * 5
    assert most == 2


# ---- the `local` driver's log, read from its files --------------------------------------


def local_file(entries: list[tuple[int, int, bytes]]) -> bytes:
    """Short-lined entries as the `local` driver writes them (the newline left out)."""
    return b"".join(
        local_entry("stdout" if stream == 1 else "stderr", ns, payload.removesuffix(b"\n"))
        for stream, ns, payload in entries
    )


def local_log(root: Path, cid: str, entries: list[tuple[int, int, bytes]], files: int) -> Path:
    """The entries in `files` files of a `local` log under `root`, rotated files
    compressed as dockerd does by default: container.log.2.gz, .1.gz, container.log."""
    path = Path(localfile.local_log_path(str(root), cid))
    path.parent.mkdir(parents=True)
    size = len(entries) // files + 1
    parts = [entries[at : at + size] for at in range(0, len(entries), size)]
    for k, part in enumerate(reversed(parts)):
        data = local_file(part)
        if k:
            Path(f"{path}.{k}.gz").write_bytes(gzip.compress(data))
        else:
            path.write_bytes(data)
    return path


def stopped_local(cid: str) -> ContainerSummary:
    summary = container(cid=cid, running=False, finished_ns=T0 + 10**9)
    summary["log_driver"] = "local"
    summary["log_path"] = ""  # inspect gives none under `local`
    return summary


def test_a_stopped_local_log_is_read_from_its_compressed_rotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `local` log in three files, two of them compressed: read from them in order,
    in chunks that cut entries, every line once as through dockerd's API, which is
    not asked."""
    monkeypatch.setattr(backlog_module, "CHUNK", 1000)  # entries cut between chunks
    cid = "d" * 64
    entries = corpus_entries(3000)
    local_log(tmp_path, cid, entries, 3)
    docker = Docker(stopped_local(cid))
    read = run_with(docker, LogFiles(str(tmp_path)), cid)
    assert read.done
    assert docker.logs_asked == 0
    assert logged(read.records) == api_records(entries)
    assert not [r for r in read.records if not isinstance(r, LogRecord)]


def test_a_local_log_is_read_from_the_positions(tmp_path: Path) -> None:
    cid = "d" * 64
    entries = corpus_entries(1200)
    local_log(tmp_path, cid, entries, 2)
    everything = api_records(entries)
    stream, ts, seq, _ = everything[699]
    other = "stderr" if stream == "stdout" else "stdout"
    last_other = [r for r in everything[:700] if r[0] == other][-1]
    positions = {stream: Position(ts, seq + 1), other: Position(last_other[1], last_other[2] + 1)}
    read = run_with(Docker(stopped_local(cid)), LogFiles(str(tmp_path)), cid, positions)
    assert read.done
    assert logged(read.records) == everything[700:]


def test_a_corrupt_local_entry_is_skipped_and_logged_the_rest_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cid = "d" * 64
    entries = corpus_entries(300)
    path = local_log(tmp_path, cid, entries, 1)
    data = bytearray(path.read_bytes())
    second = 8 + int.from_bytes(data[:4], "big")  # the second entry's start
    data[second : second + 4] = (1 << 30).to_bytes(4, "big")  # a length past any entry
    path.write_bytes(bytes(data))
    read = run_with(Docker(stopped_local(cid)), LogFiles(str(tmp_path)), cid)
    assert read.done
    got = [(s, d) for s, _, _, d in logged(read.records)]
    want = [(s, d) for s, _, _, d in api_records(entries)]
    assert got == want[:1] + want[2:]
    assert any("corrupt entry at byte" in getattr(r, "reason", "") for r in caplog.records)


def same_local_lines(
    files: list[list[bytes]], max_line_bytes: int = 1 << 20, tty: bool = False
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The Python and the compiled `local` readers agree (the compiled one when
    installed): the same lines, and the same problems in the same words."""
    python = localfile.LocalLines(max_line_bytes, tty)
    expected = (read_files(python, files), python.problems)
    if native.MODULE is not None:
        compiled = native.local_reader(max_line_bytes, tty)
        assert type(compiled).__module__ == "logpipe_shipper_native"
        assert (read_files(compiled, files), list(compiled.problems)) == expected
    return expected


def _key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


# Sound entries of every shape dockerd writes, and unsound ones of every kind the reader
# tells apart, each with the words it is reported in.
UNUSUAL_LOCAL = [
    local_entry("stdout", T0, b"one"),
    local_entry("stderr", T0 + 1, b"err\r"),  # a TTY's line end: stripped under a TTY
    local_entry("stdout", T0 + 2, b""),  # an empty line: field 3 left out
    local_entry("stdout", T0 + 3, b"piece ", partial=True, ordinal=1),
    local_entry("stdout", T0 + 3, b"end", partial=True, last=True, ordinal=2),
    local_entry("stdout", -5, b"negative time"),  # time_nano as a 10-byte varint
    local_entry("stderr", T0 + 4, b"fixed", extra=_key(6, 1) + bytes(8) + _key(7, 5) + bytes(4)),
    local_entry("stdout", T0 + 5, b"first", extra=field(3, b"second") + field(99, b"?")),
    local_file([(1, T0 + 6, b"ok")])[:-1] + b"\x01",  # its lengths differ
    framed(message("journal", T0 + 7, b"foreign")),
    framed(field(1, b"stdout") + field(2, b"not a varint")),
    framed(field(1, b"stdout") + bytes([0x80])),  # a varint cut short
    framed(field(1, b"stdout") + _key(2, 0) + b"\xff" * 10 + b"\x01"),  # 11 bytes
    framed(field(1, b"stdout") + _key(9, 3)),  # a group: no wire type read
    framed(field(1, b"stdout") + _key(8, 1) + b"1234"),  # fixed 64 bits cut short
    framed(field(1, b"stdout") + _key(3, 2) + varint(50) + b"short"),
    (MAX_ENTRY + 1).to_bytes(4, "big") + b"past the longest entry",
    local_entry("stderr", T0 + 8, b"after the damage"),
    local_entry("stdout", T0 + 9, b"torn at the end")[:-3],
]


@pytest.mark.parametrize(("max_line_bytes", "tty"), [(1 << 20, False), (1 << 20, True), (4, False)])
def test_local_entries_read_alike_cut_at_every_byte(max_line_bytes: int, tty: bool) -> None:
    """Every sound and unsound kind of entry, the log cut into two chunks, then into two
    files, at every byte: both readers give the same lines and the same problems."""
    data = b"".join(UNUSUAL_LOCAL)
    lines, problems = same_local_lines([[data]], max_line_bytes, tty)
    assert b"after the damage"[:max_line_bytes] in [line[2] for line in lines]
    assert len(problems) == 2  # one corrupt stretch, and the torn end
    assert problems[0].startswith("corrupt entry at byte ")
    assert problems[1].startswith("torn entry at byte ")
    whys = set()
    for cut in range(len(data) + 1):
        same_local_lines([reads(data, [cut])], max_line_bytes, tty)
        whys.update(same_local_lines([[data[:cut]], [data[cut:]]], max_line_bytes, tty)[1])
    said = " ".join(whys)
    for why in [
        "at its start",
        "neither stdout nor stderr",
        "has wire type",
        "varint cut short",
        "longer than 10 bytes",
        "runs past the entry",
        f"past {MAX_ENTRY}",
        "runs past the end",
        "shorter than its lengths",
        "of the file on)",
    ]:
        assert why in said


def test_long_local_lines_joined_and_cut_alike() -> None:
    """A line of 40,000 bytes in three pieces and one of exactly 16 KiB, across a chunk,
    a file's end and a line length limit: the same lines by both readers."""
    long = [
        local_entry("stdout", T0, b"x" * PIECE, partial=True, ordinal=1),
        local_entry("stderr", T0 + 1, b"between"),
        local_entry("stdout", T0, b"y" * PIECE, partial=True, ordinal=2),
        local_entry("stdout", T0, b"z" * 7232, partial=True, last=True, ordinal=3),
        local_entry("stdout", T0 + 2, b"b" * PIECE, partial=True, ordinal=1),
        local_entry("stdout", T0 + 2, b"", partial=True, last=True, ordinal=2),
    ]
    data = b"".join(long)
    bounds = [sum(map(len, long[:k])) for k in range(len(long) + 1)]
    for max_line_bytes in (10, PIECE - 1, PIECE + 7, 1 << 20):
        lines, problems = same_local_lines([[data]], max_line_bytes)
        assert len(lines) == 3
        assert not problems
        for at in bounds + [b + d for b in bounds for d in (-1, 1, 5) if 0 < b + d < len(data)]:
            same_local_lines([reads(data, [at, at + 9000])], max_line_bytes)
            same_local_lines([[data[:at]], [data[at:]]], max_line_bytes)


def test_a_long_corrupt_stretch_is_skipped_alike() -> None:
    """More bytes than two of the longest entries without a sound one among them: both
    readers skip all but the last stretch that could still begin one, then read on."""
    junk = b"\xff" * (2 * (MAX_ENTRY + 8) + 100)
    after = local_file([(1, T0 + n, b"after %d" % n) for n in range(3)])
    lines, problems = same_local_lines([[junk, after[:5], after[5:]]])
    assert [line[2] for line in lines] == [b"after 0", b"after 1", b"after 2"]
    assert len(problems) == 2


LOCAL_PART = st.one_of(
    st.tuples(
        st.sampled_from(["stdout", "stderr"]),
        st.integers(min_value=-3, max_value=3),
        st.binary(max_size=30) | st.sampled_from([b"\r", b"x" * PIECE]),
        st.booleans(),
    ).map(lambda e: local_entry(e[0], T0 + e[1], e[2], partial=e[3], last=e[3])),
    st.binary(max_size=12),  # junk, or the start or the end of an entry
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(LOCAL_PART, max_size=10),
    ANY_CUTS,
    st.lists(st.integers(min_value=0, max_value=100_000), max_size=2),
    ANY_MAX_LINE,
    st.booleans(),
)
def test_any_local_bytes_read_alike(
    parts: list[bytes], cuts: list[int], splits: list[int], max_line_bytes: int, tty: bool
) -> None:
    """Entries and junk in any order, cut into chunks and files anywhere: the same lines
    and problems by both readers."""
    data = b"".join(parts)
    files = [reads(part, cuts) for part in reads(data, splits)] or [[]]
    same_local_lines(files, max_line_bytes, tty)


def test_what_the_rescue_looks_at_is_the_same_by_either_reader() -> None:
    """What the --rm rescue looks at before it numbers the lines: each line's stream and
    time, the same of the compiled reader's lines as of the Python reader's."""
    data = b"".join(
        [
            local_entry("stdout", T0, b"x" * PIECE, partial=True, ordinal=1),
            local_entry("stdout", T0, b"y" * 10, partial=True, last=True, ordinal=2),
            local_entry("stderr", T0 + 1, b"short"),
        ]
    )
    python = localfile.LocalLines(100, tty=False)
    expected = [*native.stamps(python.feed(data)), *native.stamps(python.finish())]
    assert expected == [(1, T0), (2, T0 + 1)]
    if native.MODULE is not None:
        compiled = native.local_reader(100, tty=False)
        got = [*native.stamps(compiled.feed(data)), *native.stamps(compiled.finish())]
        assert got == expected


def test_the_local_reader_is_compiled_when_the_extension_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A `local` log is read by the extension's LocalReader when it is installed, by
    LocalLines with LOGPIPE_NATIVE=0; a module built before LocalReader is not used."""
    assert isinstance(on_python_path(lambda: native.local_lines(100, False)), localfile.LocalLines)
    if native.MODULE is not None:
        assert type(native.local_lines(100, False)).__name__ == "LocalReader"
    old = types.ModuleType(native.MODULE_NAME)
    for name in native.NEEDS:
        if name != "LocalReader":
            setattr(old, name, object)
    monkeypatch.delenv(native.ENV, raising=False)
    monkeypatch.setitem(sys.modules, native.MODULE_NAME, old)
    assert native.load() is None
    monkeypatch.setattr(native, "MODULE", None)
    assert native.describe() == (
        f"Python ({native.MODULE_NAME} is older than this shipper: build it again)"
    )


def test_local_lines_in_any_chunks_are_the_lines_of_the_whole_file() -> None:
    entries = corpus_entries(500)
    entries.append((1, T0 + 10**6, b"x" * 40_000 + b"\n"))  # pieces as dockerd writes them
    data = local_file(entries[:-1]) + b"".join(
        local_entry("stdout", T0 + 10**6, b"x" * PIECE, partial=True, ordinal=k + 1, last=k == 2)
        if k < 2
        else local_entry("stdout", T0 + 10**6, b"x" * (40_000 - 2 * PIECE), partial=True, last=True)
        for k in range(3)
    )
    whole, problems = localfile.lines([data], 1 << 20, tty=False)
    assert not problems
    rnd = random.Random(3)
    for _ in range(5):
        cuts = sorted(rnd.randrange(len(data)) for _ in range(rnd.randrange(1, 40)))
        reader = localfile.LocalLines(1 << 20, tty=False)
        got = []
        for part in reads(data, cuts):
            got += reader.feed(part)
        got += reader.finish()
        assert got == whole
        assert not reader.problems


def run_with(
    docker: Docker,
    files: LogFiles,
    cid: str,
    positions: dict[str, Position] | None = None,
) -> Read:
    async def go() -> Read:
        follower, inbox = follower_for(docker, positions, files=files, cid=cid)
        done = await follower._cycle()
        return Read(follower, drained(inbox), done, inbox)

    return asyncio.run(go())
