"""Write a file so that a crash (kill -9, power loss) leaves the old or the new one whole;
and keep track of a write that the disk refuses."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from pathlib import Path

from prometheus_client import Counter

# Folders on some filesystems cannot be fsynced: their entries are durable without it.
_DIR_FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EBADF})
REPEAT_LOG = 30.0  # seconds before the same write failure is logged again


def write_durably(path: Path, data: bytes) -> None:
    """Write under a temporary name, fsync, rename over `path`, fsync the folder.

    The temporary name ends in ``.tmp`` and is unique per process and thread, so two
    writers of the same file never mix their bytes; whoever finds ``*.tmp`` files at
    start may delete them (a write that never completed).
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make the folder's entries (a rename, an unlink) durable: fsync it, where the
    filesystem can."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(dir_fd)


def errno_name(exc: OSError) -> str:
    """The errno's symbol (``ENOSPC``, ``EROFS``...), as the log names a failed write."""
    return errno.errorcode.get(exc.errno or 0, str(exc.errno))


class WriteFailures:
    """A write retried until the disk takes it: why it fails now (None while it works; what
    /healthz and /status show), each failure counted in `counter`, and which failures to
    log: the first of each reason, and the same again every REPEAT_LOG seconds."""

    def __init__(self, where: Path, counter: Counter) -> None:
        self.where = where
        self.error: str | None = None
        self._counter = counter
        self._logged = ""
        self._logged_at = 0.0

    def failed(self, exc: OSError) -> bool:
        """Note a failed write; True when it is to be logged."""
        self._counter.inc()
        reason = f"{errno_name(exc)}: {exc.strerror or exc}"
        self.error = f"{self.where}: {reason}"
        now = time.monotonic()
        if reason == self._logged and now - self._logged_at < REPEAT_LOG:
            return False
        self._logged, self._logged_at = reason, now
        return True

    def worked(self) -> bool:
        """Note a write that worked; True when writes were failing until now (to be logged)."""
        failing = self.error is not None
        self.error, self._logged = None, ""
        return failing
