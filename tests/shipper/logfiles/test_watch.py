"""Unit tests of opening containers' log files as dockerd creates them (real inotify)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

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
