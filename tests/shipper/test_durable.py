"""Unit tests of the crash-safe file write shared by the cursor file and the disk buffer."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, Counter

from shipper.durable import REPEAT_LOG, WriteFailures, write_durably


def test_the_file_is_replaced_whole_and_no_temporary_file_stays(tmp_path: Path) -> None:
    target = tmp_path / "cursors.json"
    write_durably(target, b"old")
    write_durably(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["cursors.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "cursors.json"
    write_durably(target, b"old")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        write_durably(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["cursors.json"]


@pytest.mark.parametrize(
    ("code", "raised"), [(errno.EINVAL, False), (errno.ENOTSUP, False), (errno.EIO, True)]
)
def test_a_folder_that_cannot_be_fsynced_is_accepted_but_an_io_error_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, raised: bool
) -> None:
    real = os.fsync
    folder_fd = -1

    def folder_fails(fd: int) -> None:
        if fd == folder_fd:
            raise OSError(code, os.strerror(code))
        real(fd)

    real_open = os.open

    def remember(path: str | Path, flags: int, *args: int) -> int:
        nonlocal folder_fd
        fd = real_open(path, flags, *args)
        if Path(path) == tmp_path:
            folder_fd = fd
        return fd

    monkeypatch.setattr(os, "fsync", folder_fails)
    monkeypatch.setattr(os, "open", remember)
    target = tmp_path / "segment"
    if raised:
        with pytest.raises(OSError, match=os.strerror(errno.EIO)):
            write_durably(target, b"data")
    else:
        write_durably(target, b"data")
    assert target.read_bytes() == b"data"  # renamed before the folder's fsync either way
    assert folder_fd >= 0


def test_a_refused_write_is_counted_each_time_and_logged_once_per_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every failure is counted and names the path and errno; the log hears of a reason
    once, again after REPEAT_LOG seconds, at once when the reason changes, and at once
    when writes fail again after one worked."""
    now = [100.0]
    monkeypatch.setattr("shipper.durable.time", SimpleNamespace(monotonic=lambda: now[0]))
    counter = Counter("refused", "Refused writes.", registry=CollectorRegistry())
    failures = WriteFailures(Path("/s/cursors.json"), counter)
    full = OSError(errno.ENOSPC, "No space left on device")
    assert failures.failed(full)
    assert failures.error == "/s/cursors.json: ENOSPC: No space left on device"
    now[0] += REPEAT_LOG - 1
    assert not failures.failed(full)
    now[0] += 1
    assert failures.failed(full)
    assert failures.failed(OSError(errno.EROFS, "Read-only file system"))
    assert failures.error == "/s/cursors.json: EROFS: Read-only file system"
    assert failures.worked()
    assert failures.error is None
    assert not failures.worked()
    assert failures.failed(full)
    assert counter._value.get() == 5
