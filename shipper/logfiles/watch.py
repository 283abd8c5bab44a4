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

The folder of the log stays watched after that: each file rotation begins (dockerd
renames the log to ``.1`` and creates it anew) is opened as dockerd creates it too, and
the follower takes those after its first (:meth:`LogFiles.rotated`). A removed
``--rm`` container's log is then held to its last file, however close to the removal
rotation began it; looking by path, as followers do without the watch (jsonfile.py's
``HeldLog.keep_up``), finds nothing once the container is gone. :meth:`LogFiles.settle`
lets a follower wait until the watch has seen what happened before it asked, so that
"no newer file" is known, not guessed.

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
import select
import threading
import time
from typing import BinaryIO

from inotify_simple import INotify, flags  # type: ignore[import-untyped]
from prometheus_client import Counter

from shipper.logfiles import jsonfile, localfile

log = logging.getLogger("logpipe.shipper.logwatch")

HOLD = 60.0  # seconds a file opened ahead is kept for its follower
MAX_HELD = 256  # files opened ahead and not taken, at most (each is a descriptor)
POLL_MS = 1000  # longest wait for an inotify event (then held files are swept)
SETTLE_WAIT = 2.0  # seconds a follower waits for the watch to catch up, at most
# What wakes a follower waiting for its quiet file: a write, its close and rename by
# rotation. Once: a follower that reads gets events for nothing while it reads.
WAKE_ON = flags.MODIFY | flags.CLOSE_WRITE | flags.MOVE_SELF | flags.ONESHOT

UNFOLLOWED = Counter(
    "logpipe_shipper_rotation_unfollowed_total",
    "Containers whose log's new files the watch could not all open (one gone before the"
    " watch came to it, or the log opened by its path across a rotation): their new files"
    " are looked for by path, and a --rm container's tail may end in a gap.",
)


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
        # Files rotation began, oldest first, opened as dockerd created them and not taken
        # yet (at most HELD_FILES a container), and when the last came.
        self._newer: dict[str, tuple[list[BinaryIO], float]] = {}
        # container id -> the watch of its log's folder, and when its log appeared
        self._log_wd: dict[str, tuple[int, float]] = {}
        # The newest file of each such log the watch opened, held open by the thread
        # alone (its own descriptor): a file rotation began and renamed away before the
        # thread read the event of its creation is found behind it (rotated_between).
        self._last: dict[str, BinaryIO] = {}
        self._missed: set[str] = set()  # a file rotation began could not be opened
        self._taken: set[str] = set()  # containers whose follower took their file
        # ... by its path, before the watch came to it: which file that was
        self._taken_by_path: dict[str, tuple[int, int]] = {}
        self._blind = False  # events were lost, or the watch ended: rotation may be missed
        self._settles: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._nudge_r, self._nudge_w = -1, -1  # wakes the watch for a settle

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
        self._nudge_r, self._nudge_w = os.pipe()
        os.set_blocking(self._nudge_r, False)
        os.set_blocking(self._nudge_w, False)
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
            newer, self._newer = self._newer, {}
            last, self._last = self._last, {}
            settles, self._settles = self._settles, []
            self._inotify = None  # closed by the thread as it ends
        for f, _ in held.values():
            f.close()
        for files, _ in newer.values():
            for f in files:
                f.close()
        for f in last.values():
            f.close()
        _resolve(settles)

    def open(self, cid: str, path: str = "") -> BinaryIO | None:
        """The file opened ahead for this container, else opened now: `path`, or its
        json-file log, else its ``local`` one (None: cannot). Files rotation began that
        are older than one opened now are let go: :meth:`rotated` gives only newer ones."""
        with self._lock:
            entry = self._held.pop(cid, None)
            if entry is not None:
                self._taken.add(cid)
                return entry[0]
        if path:
            f = jsonfile.open_log(path)
        else:
            f = jsonfile.open_log(self.path(cid)) or jsonfile.open_log(self.local_path(cid))
        if f is not None:
            self._older_than(cid, f)
        return f

    def _older_than(self, cid: str, f: BinaryIO) -> None:
        """The log's file `f` was opened by its path: close the files rotation began for
        `cid` up to it (the newest created by then: every one noted is it or older, one
        created since is noted after them). If the watch never opened `f`, a file between
        the two may be missing from what it hands over: rotation is not followed for
        `cid` then (follows_rotation), nor, when the watch comes to its log after this,
        unless the file it opens then is this one (_found)."""
        held = jsonfile.file_identity(f)
        with self._lock:
            self._taken.add(cid)
            if cid not in self._log_wd:
                self._taken_by_path.setdefault(cid, held)
            files, at = self._newer.pop(cid, ([], 0.0))
            ids = [jsonfile.file_identity(n) for n in files]
            keep = files[ids.index(held) + 1 :] if held in ids else []
            if keep:
                self._newer[cid] = (keep, at)
            last = self._last.get(cid)
            known = held in ids or (last is not None and jsonfile.file_identity(last) == held)
            if cid in self._log_wd and not known and cid not in self._missed:
                self._missed.add(cid)
                UNFOLLOWED.inc()
        for n in files:
            if n not in keep:
                n.close()

    def rotated(self, cid: str) -> list[BinaryIO]:
        """The files rotation began for this container since the last call (or since its
        file was opened), oldest first; the caller closes them."""
        with self._lock:
            files, _ = self._newer.pop(cid, ([], 0.0))
        return files

    def follows_rotation(self, cid: str) -> bool:
        """Whether every file rotation begins for this container is opened as dockerd
        creates it: its log's folder is watched, no event was lost and each new file
        could be opened."""
        with self._lock:
            return cid in self._log_wd and cid not in self._missed and not self._blind

    async def settle(self) -> None:
        """Return once the watch has read every event that came before this call (at most
        SETTLE_WAIT seconds; at once without a watch)."""
        if self._thread is None or self._stop.is_set():
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:  # the thread closes the pipe under it as it ends
            if self._nudge_w < 0:
                return
            self._settles.append((loop, future))
            with contextlib.suppress(OSError):
                os.write(self._nudge_w, b"x")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), SETTLE_WAIT)

    def local_path(self, cid: str) -> str:
        """The container's ``local`` driver log ("" when dockerd's data root is not known)."""
        return localfile.local_log_path(self.root_dir, cid)

    def drop(self, cid: str) -> None:
        """The container's file is not needed (not a --rm container, or not shipped)."""
        with self._lock:
            entry = self._held.pop(cid, None)
            self._unwanted[cid] = time.monotonic()  # its file may appear later
            self._taken.discard(cid)
            self._taken_by_path.pop(cid, None)
            newer = self._unwatch_log(cid)
        if entry is not None:
            entry[0].close()
        for f in newer:
            f.close()

    def _unwatch_log(self, cid: str) -> list[BinaryIO]:
        """Stop opening the files rotation begins for `cid` (the lock held): the ones
        opened and not taken, to close."""
        newer, _ = self._newer.pop(cid, ([], 0.0))
        entry = self._log_wd.pop(cid, None)
        self._missed.discard(cid)
        if entry is not None and entry[0] >= 0 and self._inotify is not None:
            _unwatch(self._inotify, entry[0])
        last = self._last.pop(cid, None)
        return newer if last is None else [*newer, last]

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
        try:
            self._watch_events(inotify, root)
        finally:
            self._close_nudge()
        self.stop()  # a file opened after stop() was called is closed too

    def _close_nudge(self) -> None:
        """Close the pipe that wakes the thread (as it ends: no poll on it any more), and
        answer the settles still waiting."""
        with self._lock:
            fds = [fd for fd in (self._nudge_r, self._nudge_w) if fd >= 0]
            self._nudge_r = self._nudge_w = -1
            settles, self._settles = self._settles, []
        for fd in fds:
            os.close(fd)
        _resolve(settles)

    def _watch_events(self, inotify: INotify, root: int) -> None:
        # watch -> container id, until its log file appears (in its folder, or in the
        # folder of its `local` log: `locals_`); then, while it is wanted, its log's
        # folder for the files rotation begins: `logs` (watch -> container id, log path)
        folders: dict[int, str] = {}
        locals_: dict[int, str] = {}
        logs: dict[int, tuple[str, str]] = {}
        poller = select.poll()
        poller.register(inotify.fileno(), select.POLLIN)
        poller.register(self._nudge_r, select.POLLIN)
        with inotify:
            while not self._stop.is_set():
                with self._lock:
                    settles, self._settles = self._settles, []
                try:
                    if not settles:
                        poller.poll(POLL_MS)
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._nudge_r, 4096)
                    events = inotify.read(timeout=0)
                except OSError as exc:
                    log.warning("log file watch ended", extra={"reason": str(exc)})
                    with self._lock:
                        self._blind = True
                    _resolve(settles)
                    return
                for event in events:
                    if event.wd in self._wakes or event.mask & flags.Q_OVERFLOW:
                        self._wake(event.wd, event.mask)
                    elif event.wd == root:
                        if event.mask & flags.ISDIR:
                            self._new_container(inotify, event.name, folders, locals_, logs)
                    elif event.mask & flags.IGNORED:
                        folders.pop(event.wd, None)  # its folder was removed
                        locals_.pop(event.wd, None)
                        self._gone(logs.pop(event.wd, None), event.wd)
                    elif event.wd in logs:
                        cid, path = logs[event.wd]
                        if event.name == os.path.basename(path):
                            self._rotation_began(cid, path)
                    elif event.wd in folders and event.name == f"{folders[event.wd]}-json.log":
                        cid = folders.pop(event.wd)
                        self._found(inotify, event.wd, cid, self.path(cid), logs)
                    elif event.wd in folders and event.name == localfile.LOCAL_DIR:
                        cid = folders.pop(event.wd)
                        _unwatch(inotify, event.wd)
                        self._new_local(inotify, cid, locals_, logs)
                    elif event.wd in locals_ and event.name == localfile.LOCAL_NAME:
                        cid = locals_.pop(event.wd)
                        self._found(inotify, event.wd, cid, self.local_path(cid), logs)
                self._sweep()
                _resolve(settles)

    def _wake(self, wd: int, mask: int) -> None:
        """Wake the follower waiting on `wd` (every one, when events were lost)."""
        with self._lock:
            if mask & flags.Q_OVERFLOW:
                self._blind = True
                woken = list(self._wakes.values())
                self._wakes.clear()
            else:
                entry = self._wakes.pop(wd, None)
                woken = [entry] if entry is not None else []
        for loop, future in woken:
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                loop.call_soon_threadsafe(_done, future)

    def _new_container(
        self,
        inotify: INotify,
        cid: str,
        folders: dict[int, str],
        locals_: dict[int, str],
        logs: dict[int, tuple[str, str]],
    ) -> None:
        try:
            wd = inotify.add_watch(os.path.join(self._folder, cid), flags.CREATE)
        except OSError:
            return  # removed already, or not a container's folder we may watch
        folders[wd] = cid
        # Created before the watch was in place:
        if os.path.exists(self.path(cid)):
            folders.pop(wd)
            self._found(inotify, wd, cid, self.path(cid), logs)
        elif os.path.isdir(os.path.dirname(self.local_path(cid))):
            folders.pop(wd)
            _unwatch(inotify, wd)
            self._new_local(inotify, cid, locals_, logs)

    def _new_local(
        self, inotify: INotify, cid: str, locals_: dict[int, str], logs: dict[int, tuple[str, str]]
    ) -> None:
        """The folder of a container's ``local`` log appeared: watch it for the log."""
        path = self.local_path(cid)
        try:
            wd = inotify.add_watch(os.path.dirname(path), flags.CREATE)
        except OSError:
            return  # removed already
        locals_[wd] = cid
        if os.path.exists(path):  # created before the watch was in place
            locals_.pop(wd)
            self._found(inotify, wd, cid, path, logs)

    def _found(
        self, inotify: INotify, wd: int, cid: str, path: str, logs: dict[int, tuple[str, str]]
    ) -> None:
        """The log file at `path` is there: open it ahead; its folder (watch `wd`) is
        watched on for the files rotation begins, unless the container is not wanted."""
        last = None if cid in self._unwanted else jsonfile.open_log(path)
        with self._lock:
            by_path = self._taken_by_path.pop(cid, None)
        if last is not None and by_path not in (None, jsonfile.file_identity(last)):
            # Its follower opened the log by its path before this, and rotation began
            # another since: a file between the two may be missing from what the watch
            # would hand over, so the follower looks by the path (_older_than).
            UNFOLLOWED.inc()
            last.close()
            last = None
        if last is None:
            _unwatch(inotify, wd)
            return
        self._open_ahead(cid, last)  # the same file: rotation may begin another meanwhile
        with self._lock:
            wanted = cid not in self._unwanted
            if wanted:
                self._log_wd[cid] = (wd, time.monotonic())
                self._last[cid] = last
        if wanted:
            logs[wd] = (cid, path)
        else:
            _unwatch(inotify, wd)
            last.close()

    def _rotation_began(self, cid: str, path: str) -> None:
        """dockerd created the log file anew at `path`: open it, for the follower to take
        after the ones before it (the oldest let go past HELD_FILES). When rotation began
        more since the last one opened (the thread was behind), they are renamed away by
        now: the ones between are opened too, in order."""
        with self._lock:
            last = self._last.get(cid)
        if last is None:
            return  # its folder was removed: no rotation after that
        f = jsonfile.open_log(path)
        if f is None:
            # Removed (or renamed away again) before the thread came to it: its files
            # may be missing from what the follower takes, which must not trust them.
            with self._lock:
                if cid not in self._missed:
                    self._missed.add(cid)
                    UNFOLLOWED.inc()
            return
        if jsonfile.file_identity(f) == jsonfile.file_identity(last):
            f.close()  # opened at an earlier event already
            return
        opened = [*jsonfile.rotated_between(path, last), f]
        newest = _dup(f)  # the thread's own, to look behind at the next one
        with self._lock:
            if cid not in self._log_wd:  # dropped, or its watch swept, meanwhile
                closed = [*opened, newest]
            else:
                files, _ = self._newer.get(cid, ([], 0.0))
                files = [*files, *opened]
                closed = [*files[: -jsonfile.HELD_FILES], self._last[cid]]
                self._newer[cid] = (files[-jsonfile.HELD_FILES :], time.monotonic())
                self._last[cid] = newest
        for old in closed:
            old.close()

    def _gone(self, entry: tuple[str, str] | None, wd: int) -> None:
        """The folder of a container's log was removed (its watch with it): every file
        rotation began in it was seen, so it still follows rotation (follows_rotation)
        for its follower's last reads; there is no watch left to remove."""
        if entry is not None:
            with self._lock:
                watched = self._log_wd.get(entry[0])
                last = None
                if watched is not None and watched[0] == wd:
                    self._log_wd[entry[0]] = (-1, watched[1])
                    last = self._last.pop(entry[0], None)  # no rotation after this
            if last is not None:
                last.close()

    def _open_ahead(self, cid: str, opened: BinaryIO) -> None:
        """Hold the log file `opened` (the thread keeps that one: a descriptor of its own)
        for the follower."""
        if cid in self._unwanted or len(self._held) >= MAX_HELD:
            return
        f = _dup(opened)
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
            # The log's folder of a container no follower took: watched no more.
            untaken = [c for c, (_, at) in self._log_wd.items() if now - at > HOLD]
            # (one whose folder was removed too: a follower that comes later looks by path)
            for cid in untaken:
                if cid not in self._taken:
                    files += self._unwatch_log(cid)
            for cid in [cid for cid, at in self._unwanted.items() if now - at > HOLD]:
                del self._unwanted[cid]
        for f in files:
            f.close()


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _resolve(settles: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
    """Tell the followers waiting in settle() that the watch caught up."""
    for loop, future in settles:
        with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
            loop.call_soon_threadsafe(_done, future)


def _dup(f: BinaryIO) -> BinaryIO:
    """Another descriptor of the file open as `f` (its offset shared: the thread reads
    its copies only by fstat and pread)."""
    return os.fdopen(os.dup(f.fileno()), "rb")


def _unwatch(inotify: INotify, wd: int) -> None:
    """Stop the watch `wd` (gone already when its folder was removed)."""
    with contextlib.suppress(OSError):
        inotify.rm_watch(wd)
