"""A running container's log followed from its json-file or ``local`` files gives what
dockerd would.

Real files in a temporary folder laid out as dockerd's (``containers/<id>/<id>-json.log``,
``containers/<id>/local-logs/container.log``),
written while the follower reads them, rotated as dockerd rotates them (the file renamed
``.1``, the older ones one number up, a new one started); dockerd itself is a fake that
only says when the container stops. Every line comes once, in the order and with the
sequence numbers a read through the logs API gives; rotation removing files before they
could be opened is a gap; a follow stream begun before the inspection said "files" is
ended with nothing queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
from collections.abc import AsyncGenerator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from shipper import metrics
from shipper.containers import ContainerSummary
from shipper.cursor import Position
from shipper.errors import ContainerGone, DockerUnavailable
from shipper.follow import Follower
from shipper.follow import files as files_module
from shipper.follow.files import FOLLOWS, ROTATED_AWAY_GAP, followable
from shipper.inbox import Inbox
from shipper.logfiles import jsonfile, localfile
from shipper.logfiles.jsonfile import SLACK_NS
from shipper.logfiles.watch import LogFiles
from shipper.metrics import PerContainer
from shipper.record import GapRecord, Meta
from tests.shipper.logfiles.test_jsonfile import dockerd_gzip
from tests.shipper.summaries import container
from tests.shipper.test_backlog import (
    api_records,
    as_sent,
    corpus_entries,
    drained,
    follower_for,
    json_file,
    local_file,
    logged,
)
from tests.shipper.test_native import on_python_path

CID = "f" * 64


class Docker:
    """Says when the container stops (`stop()`), and what inspecting it tells then."""

    def __init__(self, summary: ContainerSummary) -> None:
        self.summary = summary
        self.stopped = asyncio.Event()
        self.waits = 0
        self.fail_wait: Exception | None = None
        self.response: bytes | None = None  # a follow stream's first chunk (then it idles)

    def stop(self, running_again: bool = False) -> None:
        self.summary["running"] = running_again
        self.stopped.set()

    async def wait_stopped(self, cid: str) -> None:
        self.waits += 1
        if self.fail_wait is not None:
            raise self.fail_wait
        await self.stopped.wait()
        if self.summary["running"]:  # it ran again: the next wait waits for a new stop
            self.stopped.clear()

    async def inspect(self, cid: str) -> ContainerSummary:
        return self.summary

    async def logs(self, *args: object, **kwargs: object) -> AsyncGenerator[bytes, None]:
        if self.response is None:
            raise AssertionError("the log was to be read from its files")
        yield self.response
        await asyncio.Event().wait()  # a follow stream of a quiet container


class Log:
    """A json-file log as dockerd writes it, under `root`/containers/<id>/."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "containers" / CID
        self.folder.mkdir(parents=True)
        self.path = self.folder / f"{CID}-json.log"
        self.path.write_bytes(b"")

    def write(self, data: bytes) -> None:
        with open(self.path, "ab") as f:
            f.write(data)

    def rotate(self, keep: int, compress: bool = False) -> None:
        """As dockerd: .k-1 -> .k down to the log -> .1 (beyond `keep` files removed);
        with `compress`, .1 then becomes .1.gz (the rest are compressed already)."""
        for k in range(keep - 1, 0, -1):
            for end in ("", ".gz"):
                older = Path(f"{self.path}.{k}{end}")
                if older.exists():
                    if k + 1 >= keep:
                        older.unlink()
                    else:
                        older.rename(f"{self.path}.{k + 1}{end}")
        self.path.rename(f"{self.path}.1")
        self.path.write_bytes(b"")
        if compress:
            plain = Path(f"{self.path}.1")
            Path(f"{plain}.gz").write_bytes(gzip.compress(plain.read_bytes()))
            plain.unlink()


class LocalLog(Log):
    """A `local` driver log as dockerd writes it, under `root`/containers/<id>/local-logs/."""

    def __init__(self, root: Path) -> None:
        self.path = Path(localfile.local_log_path(str(root), CID))
        self.folder = self.path.parent
        self.folder.mkdir(parents=True)
        self.path.write_bytes(b"")


def summary_of(**opts: str) -> ContainerSummary:
    summary = container(cid=CID)
    summary["log_opts"] = dict(opts)
    return summary


def local_summary(**opts: str) -> ContainerSummary:
    summary = summary_of(**opts)
    summary["log_driver"] = "local"
    summary["log_path"] = ""  # inspect gives none under `local`
    return summary


def log_of(
    driver: str, root: Path
) -> tuple[Log, Callable[[list[tuple[int, int, bytes]]], bytes], ContainerSummary]:
    """A log of `driver` under `root`, how its entries are written, the container."""
    if driver == "local":
        return LocalLog(root), local_file, local_summary()
    return Log(root), json_file, summary_of()


def follower_of(
    docker: Docker, root: Path, positions: dict[str, Position] | None = None, learn: bool = True
) -> tuple[Follower, Inbox]:
    """A follower of the running container CID whose log files are under `root`."""
    files = LogFiles(str(root))
    return follower_for(docker, positions, files, cid=CID, learn=learn, pace=0.01, turns=None)


async def _following(
    follower: Follower, writes: Callable[[], Coroutine[Any, Any, None]]
) -> bool | None:
    task = asyncio.create_task(follower._file_follow.follow())
    writer = asyncio.create_task(writes())
    done = await asyncio.wait_for(task, 10)
    await writer
    return done


def following(follower: Follower, writes: Callable[[], Coroutine[Any, Any, None]]) -> bool | None:
    """The follow from files while `writes` writes to the log (and stops the container)."""
    return asyncio.run(_following(follower, writes))


def split(entries: list[Any], parts: int) -> list[list[Any]]:
    size = len(entries) // parts + 1
    return [entries[k : k + size] for k in range(0, len(entries), size)]


def test_lines_written_while_followed_and_rotated_come_once_in_order(tmp_path: Path) -> None:
    """Entries appended in pieces that cut entries in two, across two rotations (one of
    them two files at once), then the stop: every line once, as from dockerd's API, by
    the Python path and the compiled one alike, and no gap."""
    entries = corpus_entries(3000)
    entries[-1] = (1, entries[-1][1] + 1, b"no newline at the end")

    def outcome() -> tuple[list[Any], bool | None, Follower]:
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        log = Log(root)
        log.write(json_file(entries[:100]))  # a backlog before the follow starts
        docker = Docker(summary_of(**{"max-size": "1m", "max-file": "5"}))
        follower, inbox = follower_of(docker, root)

        async def writes() -> None:
            for k, part in enumerate(split(entries[100:], 6)):
                data = json_file(part)
                cut = len(data) // 2 + 3  # within an entry
                log.write(data[:cut])
                await asyncio.sleep(0.03)
                log.write(data[cut:])
                await asyncio.sleep(0.03)
                if k in (1, 3):
                    log.rotate(keep=5)
                if k == 3:
                    log.write(json_file(corpus_entries(0)))
                    log.rotate(keep=5)  # twice before the follower looks
            docker.stop()

        done = following(follower, writes)
        return drained(inbox), done, follower

    python, done_python, _ = on_python_path(outcome)
    records, done, follower = outcome()
    assert done is True
    assert done_python is True
    assert follower.read_to_end
    assert logged(records) == logged(python) == api_records(entries)
    assert not [r for r in records if isinstance(r, GapRecord)]


def test_lines_rotated_into_compressed_files_come_once_in_order(tmp_path: Path) -> None:
    """compress=true: rotations, two of them before the follower looks, each rotated file
    compressed at once; the file read is then only there as its compressed copy, and the
    one between too. Every line once, as from dockerd's API, and no gap."""
    entries = corpus_entries(2000)
    log = Log(tmp_path)
    log.write(json_file(entries[:100]))
    docker = Docker(summary_of(**{"max-size": "1m", "max-file": "5", "compress": "true"}))
    follower, inbox = follower_of(docker, tmp_path)

    async def writes() -> None:
        for k, part in enumerate(split(entries[100:], 4)):
            log.write(json_file(part))
            await asyncio.sleep(0.05)
            if k < 3:
                log.rotate(keep=5, compress=True)
            if k == 1:
                log.write(json_file(corpus_entries(0)))
                log.rotate(keep=5, compress=True)  # twice before the follower looks
        docker.stop()

    assert following(follower, writes) is True
    records = drained(inbox)
    assert Path(f"{log.path}.2.gz").exists()
    assert logged(records) == api_records(entries)
    assert not [r for r in records if isinstance(r, GapRecord)]


def test_resumed_from_the_positions(tmp_path: Path) -> None:
    """Positions within the log (a restart of the shipper): only what lies after them."""
    entries = corpus_entries(600)
    log = Log(tmp_path)
    log.write(json_file(entries))
    everything = api_records(entries)
    stream, ts, seq, _ = everything[299]
    name = stream
    other = "stderr" if name == "stdout" else "stdout"
    last_other = [r for r in everything[:300] if r[0] == other][-1]
    positions = {name: Position(ts, seq + 1), other: Position(last_other[1], last_other[2] + 1)}
    docker = Docker(summary_of())
    follower, inbox = follower_of(docker, tmp_path, positions)
    docker.stop()
    assert asyncio.run(follower._file_follow.follow()) is True
    assert logged(drained(inbox)) == everything[300:]


def test_resumed_from_the_positions_without_unpacking_the_files_before_them(
    tmp_path: Path,
) -> None:
    """A restart over a compress=true log, 100 entries a file, each file's entries 2 s
    after the last's: the positions are in .1.gz, so .2.gz to .4.gz (their gzip header
    says they end more than a second before) are not unpacked. What lies after the
    positions comes once."""
    entries = [
        (stream, ts + (i // 100) * 2 * SLACK_NS, payload)
        for i, (stream, ts, payload) in enumerate(corpus_entries(500))
    ]
    log = Log(tmp_path)
    for k in range(5):
        log.write(json_file(entries[100 * k : 100 * (k + 1)]))
        if k < 4:
            log.rotate(keep=5)
            dockerd_gzip(f"{log.path}.1")
    assert sorted(p.name for p in log.folder.iterdir())[-1] == f"{CID}-json.log.4.gz"
    everything = api_records(entries)
    at = next(i for i, r in enumerate(everything) if r[1] >= entries[300][1]) + 20
    positions = {
        name: Position(r[1], r[2] + 1)
        for name in ("stdout", "stderr")
        for r in [[r for r in everything[:at] if r[0] == name][-1]]
    }
    docker = Docker(summary_of(**{"max-size": "1m", "max-file": "5", "compress": "true"}))
    follower, inbox = follower_of(docker, tmp_path, positions)
    docker.stop()
    before = jsonfile.UNPACKED._value.get()
    assert asyncio.run(follower._file_follow.follow()) is True
    assert jsonfile.UNPACKED._value.get() - before == 1
    assert logged(drained(inbox)) == everything[at:]


def test_files_rotated_away_before_they_were_opened_are_a_gap(tmp_path: Path) -> None:
    """Three rotations with two files kept while the follower was away: the file it read
    and the one after it are gone. What is still there comes once, after a gap for each
    stream from the last line read to the first one left."""
    entries = corpus_entries(400)
    parts = split(entries, 4)
    log = Log(tmp_path)
    log.write(json_file(parts[0]))
    docker = Docker(summary_of(**{"max-size": "1m", "max-file": "2"}))
    follower, inbox = follower_of(docker, tmp_path)

    async def writes() -> None:
        await asyncio.sleep(0.1)
        for part in parts[1:]:
            log.rotate(keep=2)
            log.write(json_file(part))
        docker.stop()

    follower._file_follow._poll = 0.2  # the rotations come between two looks
    done = following(follower, writes)
    records = drained(inbox)
    assert done is True
    gaps = [r for r in records if isinstance(r, GapRecord)]
    assert {g.stream for g in gaps} == {"stdout", "stderr"}
    assert all(g.reason == ROTATED_AWAY_GAP for g in gaps)
    for gap in gaps:  # to the stream's first line in the oldest file left
        number = 1 if gap.stream == "stdout" else 2
        assert gap.to_ts == next(ts for n, ts, _ in parts[2] if n == number)
        last_read = [ts for n, ts, _ in parts[0] if n == number][-1]
        assert gap.from_ts == last_read
    expected = api_records(entries)
    got = logged(records)
    first_left = len(parts[0])  # parts[1] was in the file rotated away
    assert got[:first_left] == expected[:first_left]
    assert [(s, ts, d) for s, ts, _, d in got[first_left:]] == [
        (s, ts, d) for s, ts, _, d in expected[first_left + len(parts[1]) :]
    ]


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_a_container_that_starts_again_goes_on_in_the_same_file(
    tmp_path: Path, driver: str
) -> None:
    """The wait returns, but the container runs again by the inspection: the follow goes
    on, and ends at the next stop with every line once."""
    entries = corpus_entries(200)
    log, encode, summary = log_of(driver, tmp_path)
    docker = Docker(summary)
    follower, inbox = follower_of(docker, tmp_path)

    async def writes() -> None:
        log.write(encode(entries[:100]))
        await asyncio.sleep(0.05)
        docker.stop(running_again=True)
        await asyncio.sleep(0.05)
        log.write(encode(entries[100:]))
        await asyncio.sleep(0.05)
        docker.stop()

    done = following(follower, writes)
    assert done is True
    assert docker.waits >= 2
    assert logged(drained(inbox)) == api_records(entries)


def test_a_log_written_after_the_stop_is_read_before_the_end(tmp_path: Path) -> None:
    """The inspection after the wait finds the file longer than read (written in
    between): it is read on, and the end comes with its last line."""
    entries = corpus_entries(50)
    log = Log(tmp_path)
    log.write(json_file(entries[:40]))
    docker = Docker(summary_of())
    follower, inbox = follower_of(docker, tmp_path)
    inspect = docker.inspect
    wrote = False

    async def late(cid: str) -> ContainerSummary:
        nonlocal wrote
        if not wrote:
            wrote = True
            log.write(json_file(entries[40:]))
        return await inspect(cid)

    docker.inspect = late  # type: ignore[method-assign]
    docker.stop()
    assert asyncio.run(follower._file_follow.follow()) is True
    assert logged(drained(inbox)) == api_records(entries)


def test_a_removed_container_ends_with_what_its_files_held(tmp_path: Path) -> None:
    entries = corpus_entries(30)
    log = Log(tmp_path)
    log.write(json_file(entries))
    docker = Docker(summary_of())
    docker.fail_wait = ContainerGone("no such container")
    follower, inbox = follower_of(docker, tmp_path)
    assert asyncio.run(follower._file_follow.follow()) is True
    assert logged(drained(inbox)) == api_records(entries)


def test_dockerd_away_hands_back_from_the_positions(tmp_path: Path) -> None:
    """The wait breaks: DockerUnavailable for the follower's reconnect, the files closed,
    the lines read so far queued and the positions past them."""
    entries = corpus_entries(30)
    log = Log(tmp_path)
    log.write(json_file(entries))
    docker = Docker(summary_of())
    docker.fail_wait = DockerUnavailable("dockerd restarting")
    follower, inbox = follower_of(docker, tmp_path)
    before = FOLLOWS.labels("dockerd away")._value.get()
    with pytest.raises(DockerUnavailable):
        asyncio.run(follower._file_follow.follow())
    assert FOLLOWS.labels("dockerd away")._value.get() == before + 1
    assert follower._file_follow._files == []
    assert logged(drained(inbox)) == api_records(entries)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, True),
        ({"log_opts": {"max-size": "10m", "max-file": "3"}}, True),
        ({"log_opts": {"max-size": "10m"}}, False),  # one file: truncated in place
        ({"log_opts": {"max-size": "10m", "max-file": "3", "compress": "true"}}, True),
        ({"log_opts": {"max-file": "x"}}, False),
        ({"tty": True}, False),
        ({"auto_remove": True}, False),
        ({"log_driver": "local"}, True),  # rotation always on: 5 files by default
        ({"log_driver": "local", "log_opts": {"max-size": "10m", "max-file": "2"}}, True),
        ({"log_driver": "local", "log_opts": {"max-file": "1"}}, False),  # truncated in place
        ({"log_driver": "local", "log_opts": {"max-file": "x"}}, False),
        ({"log_driver": "local", "tty": True}, False),
        ({"log_driver": "local", "auto_remove": True}, False),
        ({"log_driver": "journald"}, False),
    ],
)
def test_which_logs_are_followed_from_their_files(change: dict[str, Any], expected: bool) -> None:
    summary = container(cid=CID)
    summary.update(change)  # type: ignore[typeddict-item]
    assert followable(summary) is expected


def test_not_followed_from_files_when_turned_off_or_not_visible(tmp_path: Path) -> None:
    Log(tmp_path)
    docker = Docker(summary_of())
    on, _ = follower_of(docker, tmp_path)
    assert on._file_follow.path.endswith(f"{CID}-json.log")
    off = Follower(
        docker,
        Meta(id=CID, name="web", image="busybox"),
        {"stdout": Position(0, 0), "stderr": Position(0, 0)},
        Inbox(1000, PerContainer(False, 100)),
        1 << 20,
        files=LogFiles(str(tmp_path)),
        follow_files=False,
    )
    off.learn(docker.summary, off.meta, skip=False)
    assert off._file_follow.path == ""
    assert asyncio.run(off._file_follow.follow()) is None
    hidden, _ = follower_of(docker, tmp_path / "elsewhere")
    unreadable = FOLLOWS.labels("files unreadable")._value.get()
    assert asyncio.run(hidden._file_follow.follow()) is None  # no file there: dockerd
    assert FOLLOWS.labels("files unreadable")._value.get() == unreadable + 1


def test_a_stream_begun_before_the_inspection_is_switched_to_the_files(tmp_path: Path) -> None:
    """A container followed from its start event is read through dockerd until it is
    inspected; when the inspection says its files can be read, that stream ends with
    nothing queued and nothing moved, and the follow goes on from the files."""
    entries = corpus_entries(20)
    log = Log(tmp_path)
    log.write(json_file(entries))
    docker = Docker(summary_of())
    docker.response = as_sent(entries[:5])
    follower, inbox = follower_of(docker, tmp_path, learn=False)
    positions = dict(follower.positions)

    async def scenario() -> tuple[bool, bool | None]:
        reading = asyncio.create_task(follower._read())
        await asyncio.sleep(0.05)  # the stream's first chunk waits for the inspection
        assert inbox.empty()
        follower.learn(docker.summary, follower.meta, skip=False)
        switched = await asyncio.wait_for(reading, 5)
        assert inbox.empty()
        assert follower.positions == positions
        docker.stop()
        return switched, await follower._read()

    assert asyncio.run(scenario()) == (False, True)
    assert logged(drained(inbox)) == api_records(entries)


def test_a_stream_not_switched_when_the_shipper_stops(tmp_path: Path) -> None:
    """Cancelled from outside (the shipper stops) while the inspection is awaited: a
    cancellation, not a switch."""
    Log(tmp_path)
    docker = Docker(summary_of())
    docker.response = as_sent(corpus_entries(3))
    follower, _ = follower_of(docker, tmp_path, learn=False)

    async def scenario() -> None:
        reading = asyncio.create_task(follower.stream.follow([]))
        await asyncio.sleep(0.05)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        assert not follower.stream.switch()  # nothing left to switch

    asyncio.run(scenario())
    follower._rescue.let_go()  # held in case it was a --rm container (run() lets go)


def test_the_file_is_read_on_the_event_loop_only_once_caught_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog is read by a thread (it may be cold on disk); quiet polls are not."""
    entries = corpus_entries(2000)
    log = Log(tmp_path)
    log.write(json_file(entries))
    docker = Docker(summary_of())
    follower, inbox = follower_of(docker, tmp_path)
    threaded: list[Any] = []
    to_thread = asyncio.to_thread

    async def counted(func: Any, *args: Any) -> Any:
        threaded.append(getattr(func, "__name__", func))
        return await to_thread(func, *args)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    expected = api_records(entries)

    async def scenario() -> bool | None:
        task = asyncio.create_task(follower._file_follow.follow())
        for _ in range(1500):  # until caught up: a loaded machine may take seconds
            if inbox.qsize() >= len(expected):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # past the read that found the end
        before = list(threaded)
        await asyncio.sleep(0.2)  # about 20 quiet polls
        assert threaded == before
        docker.stop()
        return await task

    assert asyncio.run(scenario()) is True
    assert "readinto" in threaded
    assert logged(drained(inbox)) == expected
    assert os.path.exists(log.path)


def test_a_second_follow_of_the_same_file_starts_where_the_first_ended(tmp_path: Path) -> None:
    """Stopped, read to its end, then started again (a start event makes the follower
    follow once more): the new lines only, not a line read again (nor dropped as a
    repeat), and no gap."""
    entries = corpus_entries(3000)
    log = Log(tmp_path)
    log.write(json_file(entries[:2000]))
    docker = Docker(summary_of())
    follower, inbox = follower_of(docker, tmp_path)
    docker.stop()
    assert asyncio.run(follower._file_follow.follow()) is True
    first = drained(inbox)
    log.write(json_file(entries[2000:]))
    dropped = metrics.DUPLICATES_DROPPED._value.get()
    docker.stop()
    assert asyncio.run(follower._file_follow.follow()) is True
    second = drained(inbox)
    assert metrics.DUPLICATES_DROPPED._value.get() == dropped
    assert not [r for r in second if isinstance(r, GapRecord)]
    assert logged(first) + logged(second) == api_records(entries)


def test_what_the_rotated_file_got_after_the_last_read_is_read_before_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dockerd wrote to the file, then rotated it, between the follower's last read of
    it and its look at the log's path: that last part is read before the new file."""
    entries = corpus_entries(90)
    log = Log(tmp_path)
    log.write(json_file(entries[:30]))
    docker = Docker(summary_of(**{"max-size": "1m", "max-file": "3"}))
    follower, inbox = follower_of(docker, tmp_path)
    open_chain = jsonfile.open_chain
    late = [json_file(entries[30:60])]

    def written_late(path: str, held: Any = None, since: int = 0) -> Any:
        if late and held is not None:  # the look for newer files, not the first opening
            with open(f"{path}.1", "ab") as f:  # the file read, renamed by the rotation
                f.write(late.pop())
        return open_chain(path, held, since)

    monkeypatch.setattr(jsonfile, "open_chain", written_late)

    async def writes() -> None:
        await asyncio.sleep(0.05)
        log.rotate(keep=3)
        log.write(json_file(entries[60:]))
        await asyncio.sleep(0.05)
        docker.stop()

    assert following(follower, writes) is True
    assert not late
    assert logged(drained(inbox)) == api_records(entries)


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_a_quiet_file_is_not_read_until_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    """With the log files watched (inotify), a follower whose file had nothing new a few
    polls in a row waits for a write instead of reading every `poll` seconds, and a
    write wakes it."""
    entries = corpus_entries(40)
    log, encode, summary = log_of(driver, tmp_path)
    log.write(encode(entries[:20]))
    docker = Docker(summary)
    follower, inbox = follower_of(docker, tmp_path)
    watched = LogFiles(str(tmp_path))
    reads = 0
    read_current = files_module.FileFollow._read_current

    async def counted(self: Any) -> int:
        nonlocal reads
        reads += 1
        return await read_current(self)

    monkeypatch.setattr(files_module.FileFollow, "_read_current", counted)

    # Only a write can wake it: a quiet file would be read again after an hour.
    monkeypatch.setattr(files_module, "QUIET_CHECK", 3600.0)

    async def scenario() -> int:
        assert watched.start() is None
        follower._file_follow._wakes = watched
        task = asyncio.create_task(follower._file_follow.follow())
        await asyncio.sleep(0.5)  # QUIET_AFTER polls that find nothing, 0.05 s apart
        before = reads
        await asyncio.sleep(0.5)  # 10 more polls without inotify
        quiet = reads - before
        log.write(encode(entries[20:]))
        arrived = asyncio.Event()
        while inbox.qsize() < len(entries):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), 0.01)
        docker.stop()
        assert await task is True
        watched.stop()
        return quiet

    quiet = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert quiet == 0
    assert logged(drained(inbox)) == api_records(entries)


def test_a_file_written_now_and_then_stays_polled(tmp_path: Path) -> None:
    """A file with something new at most polls is read at its pace, not woken by each
    write (that would double the reads of a container that prints in chunks)."""
    entries = corpus_entries(200)
    log = Log(tmp_path)
    docker = Docker(summary_of())
    follower, inbox = follower_of(docker, tmp_path)
    watched = LogFiles(str(tmp_path))
    watches = 0
    on_write = watched.on_write

    def counted(fd: int) -> Any:
        nonlocal watches
        watches += 1
        return on_write(fd)

    watched.on_write = counted  # type: ignore[method-assign]

    async def writes() -> None:
        assert watched.start() is None
        follower._file_follow._wakes = watched
        for part in split(entries, 20):
            log.write(json_file(part))
            await asyncio.sleep(0.03)  # polls are 0.05 s apart at least
        docker.stop()

    assert following(follower, writes) is True
    watched.stop()
    assert watches == 0
    assert logged(drained(inbox)) == api_records(entries)


# ---- the `local` driver's log -----------------------------------------------------------


def test_a_local_log_written_while_followed_and_rotated_comes_once_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `local` log (default options: rotated files compressed) written in pieces that
    cut entries in two, in chunks that cut them again, across rotations (two of them
    before the follower looks), then the stop: every line once, as from dockerd's API,
    with no gap; dockerd is not asked for the log."""
    monkeypatch.setattr(files_module, "CHUNK", 5000)
    entries = corpus_entries(3000)
    log = LocalLog(tmp_path)
    log.write(local_file(entries[:100]))  # a backlog before the follow starts
    docker = Docker(local_summary())
    follower, inbox = follower_of(docker, tmp_path)
    assert follower._file_follow.path == str(log.path)
    follower._file_follow._buffer = bytearray(5000)

    async def writes() -> None:
        for k, part in enumerate(split(entries[100:], 6)):
            data = local_file(part)
            cut = len(data) // 2 + 3  # within an entry
            log.write(data[:cut])
            await asyncio.sleep(0.03)
            log.write(data[cut:])
            await asyncio.sleep(0.03)
            if k in (1, 3):
                log.rotate(keep=5, compress=True)
            if k == 3:
                log.write(local_file(corpus_entries(0)))
                log.rotate(keep=5, compress=True)  # twice before the follower looks
        docker.stop()

    assert following(follower, writes) is True
    records = drained(inbox)
    assert Path(f"{log.path}.3.gz").exists()
    assert follower.read_to_end
    assert logged(records) == api_records(entries)
    assert not [r for r in records if isinstance(r, GapRecord)]


def test_a_local_log_is_followed_from_the_positions(tmp_path: Path) -> None:
    """Positions within a `local` log (a restart of the shipper): only what follows."""
    entries = corpus_entries(600)
    log = LocalLog(tmp_path)
    log.write(local_file(entries[:300]))
    log.rotate(keep=5, compress=True)
    log.write(local_file(entries[300:]))
    everything = api_records(entries)
    stream, ts, seq, _ = everything[399]
    other = "stderr" if stream == "stdout" else "stdout"
    last_other = [r for r in everything[:400] if r[0] == other][-1]
    positions = {stream: Position(ts, seq + 1), other: Position(last_other[1], last_other[2] + 1)}
    docker = Docker(local_summary())
    follower, inbox = follower_of(docker, tmp_path, positions)
    docker.stop()
    assert asyncio.run(follower._file_follow.follow()) is True
    assert logged(drained(inbox)) == everything[400:]


def test_local_files_rotated_away_before_they_were_opened_are_a_gap(tmp_path: Path) -> None:
    """max-file=2 and three rotations between two looks: the file read and the next are
    gone; a gap for each stream, then what is left, once."""
    entries = corpus_entries(400)
    parts = split(entries, 4)
    log = LocalLog(tmp_path)
    log.write(local_file(parts[0]))
    docker = Docker(local_summary(**{"max-size": "1m", "max-file": "2"}))
    follower, inbox = follower_of(docker, tmp_path)

    async def writes() -> None:
        await asyncio.sleep(0.1)
        for part in parts[1:]:
            log.rotate(keep=2, compress=True)
            log.write(local_file(part))
        docker.stop()

    follower._file_follow._poll = 0.2  # the rotations come between two looks
    assert following(follower, writes) is True
    records = drained(inbox)
    gaps = [r for r in records if isinstance(r, GapRecord)]
    assert {g.stream for g in gaps} == {"stdout", "stderr"}
    assert all(g.reason == ROTATED_AWAY_GAP for g in gaps)
    expected = api_records(entries)
    got = logged(records)
    first_left = len(parts[0])
    assert got[:first_left] == expected[:first_left]
    assert [(s, ts, d) for s, ts, _, d in got[first_left:]] == [
        (s, ts, d) for s, ts, _, d in expected[first_left + len(parts[1]) :]
    ]


def test_a_corrupt_local_entry_followed_is_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    entries = corpus_entries(300)
    log = LocalLog(tmp_path)
    data = bytearray(local_file(entries))
    second = 8 + int.from_bytes(data[:4], "big")  # the second entry's start
    data[second : second + 4] = (1 << 30).to_bytes(4, "big")  # a length past any entry
    log.write(bytes(data))
    docker = Docker(local_summary())
    follower, inbox = follower_of(docker, tmp_path)
    docker.stop()
    assert asyncio.run(follower._file_follow.follow()) is True
    got = [(s, d) for s, _, _, d in logged(drained(inbox))]
    want = [(s, d) for s, _, _, d in api_records(entries)]
    assert got == want[:1] + want[2:]
    assert any("corrupt entry at byte" in getattr(r, "reason", "") for r in caplog.records)
