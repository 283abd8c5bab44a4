"""Write a file so that a crash (kill -9, power loss) leaves the old or the new one whole."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from pathlib import Path

# Folders on some filesystems cannot be fsynced: their entries are durable without it.
_DIR_FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EBADF})


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
    dir_fd = os.open(path.parent, os.O_RDONLY)
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
