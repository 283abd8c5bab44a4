"""Unit tests of opening containers' log files as dockerd creates them (real inotify)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from shipper.logfiles import watch
from shipper.logfiles.watch import LogFiles

CID = "c" * 64


def _wait(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[LogFiles]:
    (tmp_path / "containers").mkdir()
    watching = LogFiles(str(tmp_path))
    assert watching.start() is None
    yield watching
    watching.stop()


def _container(root: str, cid: str, text: bytes) -> Path:
    """What dockerd does: the container's folder at create, its log file at start."""
    folder = Path(root, "containers", cid)
    folder.mkdir()
    time.sleep(0.05)  # create, then start
    log = folder / f"{cid}-json.log"
    log.write_bytes(text)
    return log


def test_a_log_file_opened_ahead_is_read_after_its_removal(files: LogFiles) -> None:
    log = _container(files.root_dir, CID, b'{"log":"hi\\n"}\n')
    _wait(lambda: files.held == 1)
    log.unlink()
    os.rmdir(log.parent)
    f = files.open(CID)
    assert f is not None
    assert f.read() == b'{"log":"hi\\n"}\n'
    f.close()
    assert files.held == 0
    assert files.open(CID) is None  # taken once; the path is gone


@pytest.mark.parametrize("at_once", [False, True])
def test_a_local_driver_log_opened_ahead_is_read_after_its_removal(
    files: LogFiles, at_once: bool
) -> None:
    """The `local` driver's log is local-logs/container.log in the container's folder:
    that folder is watched as it appears (or found there already, when it came with the
    container's folder: usually before the watch of that one is in place) and the log
    opened."""
    folder = Path(files.root_dir, "containers", CID)
    if at_once:
        os.makedirs(folder / "local-logs")
    else:
        folder.mkdir()
        time.sleep(0.05)
        (folder / "local-logs").mkdir()
        time.sleep(0.05)
    log = folder / "local-logs" / "container.log"
    log.write_bytes(b"\0\0\0\x01entry")
    _wait(lambda: files.held == 1)
    log.unlink()
    f = files.open(CID)
    assert f is not None
    assert f.read() == b"\0\0\0\x01entry"
    f.close()
    assert files.open(CID) is None


def test_a_local_driver_log_is_opened_by_its_path_without_the_watch(tmp_path: Path) -> None:
    """Not opened ahead (no watch): the follower's open finds the `local` log."""
    folder = tmp_path / "containers" / CID / "local-logs"
    folder.mkdir(parents=True)
    (folder / "container.log").write_bytes(b"x")
    f = LogFiles(str(tmp_path)).open(CID)
    assert f is not None
    assert f.read() == b"x"
    f.close()


def test_other_files_of_the_folder_are_not_opened(files: LogFiles) -> None:
    folder = Path(files.root_dir, "containers", CID)
    folder.mkdir()
    (folder / "hostname").write_text("x")
    (folder / "config.v2.json").write_text("{}")
    _container(files.root_dir, "d" * 64, b"x")
    _wait(lambda: files.held == 1)
    assert files.open(CID) is None


def test_a_dropped_file_is_closed(files: LogFiles) -> None:
    _container(files.root_dir, CID, b"x")
    _wait(lambda: files.held == 1)
    files.drop(CID)
    assert files.held == 0


def test_a_file_nobody_takes_is_closed(files: LogFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "HOLD", 0.5)
    _container(files.root_dir, CID, b"x")
    _wait(lambda: files.held == 1, 0.4)
    _wait(lambda: files.held == 0, 0.5 + 2 * watch.POLL_MS / 1000)


def test_without_a_folder_to_watch_files_are_opened_by_path(tmp_path: Path) -> None:
    nothing = LogFiles(str(tmp_path / "elsewhere"))
    reason = nothing.start()
    assert reason is not None
    assert "cannot watch" in reason
    log = tmp_path / "app.log"
    log.write_bytes(b"line")
    f = nothing.open(CID, str(log))
    assert f is not None
    assert f.read() == b"line"
    f.close()
    assert LogFiles("").start() == "dockerd did not give its data root"


def test_a_file_dropped_before_it_appears_is_never_opened(files: LogFiles) -> None:
    """Inspection can say a container needs no file before its start creates it."""
    files.drop(CID)
    _container(files.root_dir, CID, b"x")
    _container(files.root_dir, "d" * 64, b"x")  # seen after the first: the watch is past it
    _wait(lambda: files.held == 1)
    held = files.open("d" * 64)
    assert held is not None
    held.close()
    assert files.held == 0  # the dropped one's was never opened


def test_files_held_ahead_are_bounded(files: LogFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "MAX_HELD", 2)
    for n in range(4):
        _container(files.root_dir, str(n) * 64, b"x")
    _wait(lambda: files.held == 2)
    time.sleep(0.2)
    assert files.held == 2


def _rotate(log: Path, text: bytes) -> None:
    """What dockerd does at max-size: the log renamed one number up, then created anew."""
    for k in range(8, 0, -1):
        older = log.with_name(f"{log.name}.{k}")
        if older.exists():
            older.rename(log.with_name(f"{log.name}.{k + 1}"))
    log.rename(log.with_name(f"{log.name}.1"))
    log.write_bytes(text)


def _read(files: list[BinaryIO]) -> list[bytes]:
    got = []
    for f in files:
        f.seek(0)
        got.append(f.read())
        f.close()
    return got


@pytest.mark.parametrize("behind", [False, True], ids=["as-created", "thread-behind"])
async def test_files_rotation_begins_are_opened_as_dockerd_creates_them(
    files: LogFiles, behind: bool
) -> None:
    """A --rm container's log rotated twice just before its removal: looked for by path
    after that, the new files are gone. The watch opened each as it was created (or,
    when its thread came to the first creation after the second, the one renamed away
    behind the newest), and hands over both, oldest first."""
    log = _container(files.root_dir, CID, b"first\n")
    _wait(lambda: files.held == 1)
    first = files.open(CID)
    assert first is not None
    _wait(lambda: files.follows_rotation(CID))
    with files._lock if behind else contextlib.nullcontext():  # the thread waits
        _rotate(log, b"second\n")
        if not behind:
            await files.settle()
        _rotate(log, b"third\n")
    await files.settle()
    shutil.rmtree(log.parent)  # removed: nothing left to look at by path
    await files.settle()
    assert _read(files.rotated(CID)) == [b"second\n", b"third\n"]
    assert files.rotated(CID) == []  # handed over once
    assert files.follows_rotation(CID)  # its folder gone, every file was seen
    first.close()


async def test_a_file_removed_before_the_watch_came_to_it_is_not_trusted(
    files: LogFiles,
) -> None:
    """Rotation began a file and the container was removed before the thread read the
    event: the file cannot be opened any more, and the follower must not take the
    files it has for the whole log (follows_rotation)."""
    log = _container(files.root_dir, CID, b"first\n")
    _wait(lambda: files.held == 1)
    first = files.open(CID)
    assert first is not None
    _wait(lambda: files.follows_rotation(CID))
    with files._lock:  # the thread waits
        _rotate(log, b"second\n")
        shutil.rmtree(log.parent)
    await files.settle()
    assert files.rotated(CID) == []
    assert not files.follows_rotation(CID)
    first.close()


def _local_container(root: str, cid: str, text: bytes) -> Path:
    """What dockerd does under the `local` driver: the folder of its log, then the log."""
    folder = Path(root, "containers", cid, "local-logs")
    folder.mkdir(parents=True)
    log = folder / "container.log"
    log.write_bytes(text)
    return log


async def test_a_local_driver_logs_rotation_is_followed(files: LogFiles) -> None:
    log = _local_container(files.root_dir, CID, b"one")
    folder = log.parent
    _wait(lambda: files.held == 1)
    first = files.open(CID)
    assert first is not None
    _wait(lambda: files.follows_rotation(CID))
    (folder / "container.log.2.gz").write_bytes(b"not the log")
    _rotate(log, b"two")
    await files.settle()
    assert _read(files.rotated(CID)) == [b"two"]
    first.close()


async def test_a_dropped_containers_rotation_is_not_followed(files: LogFiles) -> None:
    log = _container(files.root_dir, CID, b"x")
    _wait(lambda: files.follows_rotation(CID))
    files.drop(CID)
    assert not files.follows_rotation(CID)
    _rotate(log, b"y")
    await files.settle()
    assert files.rotated(CID) == []


async def test_a_file_opened_by_its_path_lets_the_older_rotated_ones_go(files: LogFiles) -> None:
    """The follower came late, its file opened ahead and swept: opened by its path, the
    file is the newest, and only files rotation begins after it are handed over."""
    log = _container(files.root_dir, CID, b"1")
    _wait(lambda: files.follows_rotation(CID))
    _rotate(log, b"2")
    _rotate(log, b"3")
    await files.settle()
    files._held.pop(CID)[0].close()  # as the sweep does after HOLD
    now = files.open(CID, str(log))
    assert now is not None
    assert now.read() == b"3"
    _rotate(log, b"4")
    await files.settle()
    assert _read(files.rotated(CID)) == [b"4"]
    now.close()


async def test_rotation_of_a_log_nobody_took_stops_being_followed(
    files: LogFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "HOLD", 0.3)
    log = _container(files.root_dir, CID, b"x")
    _wait(lambda: files.follows_rotation(CID))
    _rotate(log, b"y")
    _wait(lambda: not files.follows_rotation(CID), 0.3 + 2 * watch.POLL_MS / 1000)
    assert files.rotated(CID) == []


async def test_settle_returns_at_once_without_a_watch(tmp_path: Path) -> None:
    nothing = LogFiles(str(tmp_path))
    async with asyncio.timeout(1):
        await nothing.settle()
    assert not nothing.follows_rotation(CID)


@pytest.mark.parametrize("rotated", [False, True], ids=["same-file", "rotated-between"])
async def test_a_log_its_follower_opened_before_the_watch_saw_it(
    files: LogFiles, monkeypatch: pytest.MonkeyPatch, rotated: bool
) -> None:
    """The follower opened the file by its path before the thread came to its creation.
    The thread then opens the same file: it follows rotation from there. Or rotation
    began another in between: a file between the two could be missing from what the
    thread would hand over, so it leaves the log to the follower's looks by path."""
    gate = threading.Event()
    found = files._found

    def behind(*args: Any) -> None:
        gate.wait(5)
        found(*args)

    monkeypatch.setattr(files, "_found", behind)
    log = _container(files.root_dir, CID, b"first\n")
    first = files.open(CID, str(log))
    assert first is not None
    if rotated:
        _rotate(log, b"second\n")
    gate.set()
    await files.settle()
    assert files.follows_rotation(CID) is not rotated
    _rotate(log, b"third\n")
    await files.settle()
    assert _read(files.rotated(CID)) == ([] if rotated else [b"third\n"])
    first.close()


async def test_the_watch_closes_its_pipe_as_it_ends(tmp_path: Path) -> None:
    """The pipe that wakes the thread for a settle is closed by the thread as it ends
    (not before: it polls it); a settle after that returns at once."""
    (tmp_path / "containers").mkdir()
    watching = LogFiles(str(tmp_path))
    assert watching.start() is None
    assert min(watching._nudge_r, watching._nudge_w) >= 0
    await watching.settle()
    watching.stop()
    _wait(lambda: watching._nudge_w < 0, 2 * watch.POLL_MS / 1000)
    assert watching._nudge_r < 0  # both closed, under the lock a settle writes under
    async with asyncio.timeout(1):
        await watching.settle()
