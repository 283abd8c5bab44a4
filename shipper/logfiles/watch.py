"""Open each container's log file the moment dockerd creates it.

A ``--rm`` container's log file is the last resort for the lines its stream left out
(jsonfile.py), and only a file opened before the container is removed can be read after.
The follower learns of a container, and reads its first line, on the event loop; on a
busy host that can come after a container that lived 100 ms is already gone (measured:
the shipper read all 1,000 lines of such a container and found its file removed). So a
thread watches dockerd's container folder with inotify and opens each new log file as
soon as it appears, whatever the event loop is doing; the follower takes it from there.
A file nobody takes within ``HOLD`` seconds is closed, and the file of a container the
shipper does not want (not ``--rm``, or not shipped) is closed or never opened.

The file is the ``json-file`` driver's ``<id>-json.log`` in the container's folder, or
the ``local`` driver's ``container.log`` in its ``local-logs`` folder (localfile.py),
which is watched as it appears.

Without inotify, or without the right to watch the folder, followers open the file by
its path when they first read a line, as before.

The same thread wakes followers that read a log from its files (shipper/follow/files.py)
when a quiet file is written again: a file nobody writes then costs nothing, instead of a
read every ``LOGPIPE_READ_PACE`` seconds (50 idle containers: 21 ms of CPU a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from typing import BinaryIO

from inotify_simple import INotify, flags  # type: ignore[import-untyped]

from shipper.logfiles import jsonfile, localfile

log = logging.getLogger("logpipe.shipper.logwatch")

HOLD = 60.0  # seconds a file opened ahead is kept for its follower
MAX_HELD = 256  # files opened ahead and not taken, at most (each is a descriptor)
POLL_MS = 1000  # longest wait for an inotify event (then held files are swept)
# What wakes a follower waiting for its quiet file: a write, its close and rename by
# rotation. Once: a follower that reads gets events for nothing while it reads.
WAKE_ON = flags.MODIFY | flags.CLOSE_WRITE | flags.MOVE_SELF | flags.ONESHOT


class LogFiles:
    """Hands followers their container's log file, opened as early as possible."""

    def __init__(self, root_dir: str) -> None:
        self.root_dir = root_dir
        self._folder = os.path.join(root_dir, "containers") if root_dir else ""
        self._held: dict[str, tuple[BinaryIO, float]] = {}
        self._unwanted: dict[str, float] = {}  # container id -> when it was dropped
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inotify: INotify | None = None
        self._wakes: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = {}

    def path(self, cid: str) -> str:
        """The container's json-file log ("" when dockerd's data root is not known)."""
        return jsonfile.json_log_path(self.root_dir, cid)

    def start(self) -> str | None:
        """Watch for new log files; why not, when that is not possible."""
        if not self._folder:
            return "dockerd did not give its data root"
        try:
            inotify = INotify()
        except OSError as exc:
            return f"no inotify: {exc.strerror or exc}"
        try:
            root = inotify.add_watch(self._folder, flags.CREATE | flags.ONLYDIR)
        except OSError as exc:
            inotify.close()
            return f"cannot watch {self._folder}: {exc.strerror or exc}"
        self._inotify = inotify
        self._thread = threading.Thread(
            target=self._watch, args=(inotify, root), name="logwatch", daemon=True
        )
        self._thread.start()
        return None

    def stop(self) -> None:
        """Stop watching (the thread ends within POLL_MS; not waited for: this runs on
        the event loop) and close every file not taken."""
        self._stop.set()
        with self._lock:
            held, self._held = self._held, {}
            self._inotify = None  # closed by the thread as it ends
        for f, _ in held.values():
            f.close()

    def open(self, cid: str, path: str = "") -> BinaryIO | None:
        """The file opened ahead for this container, else opened now: `path`, or its
        json-file log, else its ``local`` one (None: cannot)."""
        with self._lock:
            entry = self._held.pop(cid, None)
        if entry is not None:
            return entry[0]
        if path:
            return jsonfile.open_log(path)
        return jsonfile.open_log(self.path(cid)) or jsonfile.open_log(self.local_path(cid))

    def local_path(self, cid: str) -> str:
        """The container's ``local`` driver log ("" when dockerd's data root is not known)."""
        return localfile.local_log_path(self.root_dir, cid)

    def drop(self, cid: str) -> None:
        """The container's file is not needed (not a --rm container, or not shipped)."""
        with self._lock:
            entry = self._held.pop(cid, None)
            self._unwanted[cid] = time.monotonic()  # its file may appear later
        if entry is not None:
            entry[0].close()

    def on_write(self, fd: int) -> tuple[int, asyncio.Future[None]] | None:
        """A future done once the file open as `fd` is written, closed or renamed (the
        watch's descriptor with it, for forget()); None when that cannot be watched."""
        inotify = self._inotify
        if inotify is None or self._stop.is_set():
            return None
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            try:
                # The file held, whatever its name now (/proc resolves the descriptor).
                wd = inotify.add_watch(f"/proc/self/fd/{fd}", WAKE_ON)
            except (OSError, ValueError):
                return None
            self._wakes[wd] = (asyncio.get_running_loop(), future)
        return wd, future

    def forget(self, wd: int) -> None:
        """Stop watching for on_write (woken or not)."""
        with self._lock:
            entry = self._wakes.pop(wd, None)
            if entry is not None and self._inotify is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._inotify.rm_watch(wd)  # gone already once it fired

    @property
    def held(self) -> int:
        """Files opened ahead and not taken yet."""
        return len(self._held)

    def _watch(self, inotify: INotify, root: int) -> None:
        # watch -> container id, until its log file appears (in its folder, or in the
        # folder of its `local` log: `locals_`)
        folders: dict[int, str] = {}
        locals_: dict[int, str] = {}
        with inotify:
            while not self._stop.is_set():
                try:
                    events = inotify.read(timeout=POLL_MS)
                except OSError as exc:
                    log.warning("log file watch ended", extra={"reason": str(exc)})
                    return
                for event in events:
                    if event.wd in self._wakes or event.mask & flags.Q_OVERFLOW:
                        self._wake(event.wd, event.mask)
                    elif event.wd == root:
                        if event.mask & flags.ISDIR:
                            self._new_container(inotify, event.name, folders, locals_)
                    elif event.mask & flags.IGNORED:
                        folders.pop(event.wd, None)  # its folder was removed
                        locals_.pop(event.wd, None)
                    elif event.wd in folders and event.name == f"{folders[event.wd]}-json.log":
                        cid = folders.pop(event.wd)
                        self._found(inotify, event.wd, cid, self.path(cid))
                    elif event.wd in folders and event.name == localfile.LOCAL_DIR:
                        cid = folders.pop(event.wd)
                        _unwatch(inotify, event.wd)
                        self._new_local(inotify, cid, locals_)
                    elif event.wd in locals_ and event.name == localfile.LOCAL_NAME:
                        cid = locals_.pop(event.wd)
                        self._found(inotify, event.wd, cid, self.local_path(cid))
                self._sweep()
        self.stop()  # a file opened after stop() was called is closed too

    def _wake(self, wd: int, mask: int) -> None:
        """Wake the follower waiting on `wd` (every one, when events were lost)."""
        with self._lock:
            if mask & flags.Q_OVERFLOW:
                woken = list(self._wakes.values())
                self._wakes.clear()
            else:
                entry = self._wakes.pop(wd, None)
                woken = [entry] if entry is not None else []
        for loop, future in woken:
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                loop.call_soon_threadsafe(_done, future)

    def _new_container(
        self, inotify: INotify, cid: str, folders: dict[int, str], locals_: dict[int, str]
    ) -> None:
        try:
            wd = inotify.add_watch(os.path.join(self._folder, cid), flags.CREATE)
        except OSError:
            return  # removed already, or not a container's folder we may watch
        folders[wd] = cid
        # Created before the watch was in place:
        if os.path.exists(self.path(cid)):
            folders.pop(wd)
            self._found(inotify, wd, cid, self.path(cid))
        elif os.path.isdir(os.path.dirname(self.local_path(cid))):
            folders.pop(wd)
            _unwatch(inotify, wd)
            self._new_local(inotify, cid, locals_)

    def _new_local(self, inotify: INotify, cid: str, locals_: dict[int, str]) -> None:
        """The folder of a container's ``local`` log appeared: watch it for the log."""
        path = self.local_path(cid)
        try:
            wd = inotify.add_watch(os.path.dirname(path), flags.CREATE)
        except OSError:
            return  # removed already
        locals_[wd] = cid
        if os.path.exists(path):  # created before the watch was in place
            locals_.pop(wd)
            self._found(inotify, wd, cid, path)

    def _found(self, inotify: INotify, wd: int, cid: str, path: str) -> None:
        """The log file at `path` is there: open it ahead; its folder (watch `wd`) needs no
        more watching."""
        self._open_ahead(cid, path)
        _unwatch(inotify, wd)

    def _open_ahead(self, cid: str, path: str) -> None:
        if cid in self._unwanted or len(self._held) >= MAX_HELD:
            return
        f = jsonfile.open_log(path)
        if f is None:
            return
        with self._lock:
            old = self._held.pop(cid, None)
            self._held[cid] = (f, time.monotonic())
        if old is not None:
            old[0].close()

    def _sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [cid for cid, (_, at) in self._held.items() if now - at > HOLD]
            files = [self._held.pop(cid)[0] for cid in stale]
            for cid in [cid for cid, at in self._unwanted.items() if now - at > HOLD]:
                del self._unwanted[cid]
        for f in files:
            f.close()


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _unwatch(inotify: INotify, wd: int) -> None:
    """Stop the watch `wd` (gone already when its folder was removed)."""
    with contextlib.suppress(OSError):
        inotify.rm_watch(wd)
