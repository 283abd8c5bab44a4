"""Follow one container's log stream from its position until the container is done.

The request for the logs goes out first and the container is inspected after: a
``--rm`` container may be removed within milliseconds of its start, and a request
already accepted keeps streaming after removal (docs/docker-logs.md). Lines wait for
that inspection before they are queued, so an opt-out only visible there is honoured.
When the inspection says the log can be read from its json-file or ``local`` files, that request
is ended before any of its lines was queued, and the files are followed instead.

The follower runs its parts: a created container is polled until it starts
(start.py); a running container's json-file or ``local`` log is followed from its files where the
shipper can read them (files.py), else through dockerd, with what each follow stream
left out read after it (stream.py), again after dockerd comes back; the lines are
numbered and queued (numbering.py), shaped by the container's label hints on their way
(handoff.py); a stopped container's log is read when its turn comes, unless it starts
(turns.py), from its json-file files where the shipper can read them, as is a running
one's backlog when dockerd serves what follows, a few containers at a time
(backlog.py); a ``--rm`` container's tail is read from its log file once the API
cannot give it, as is a run that a start began as the last follower ended, if the
container is removed before dockerd serves it (rescue.py); and what could not be read
is reported (gaps.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from shipper import metrics
from shipper.containers import ContainerSummary
from shipper.cursor import Position
from shipper.dockerd import Following
from shipper.errors import ContainerGone, DockerUnavailable, Switched, Unanchored
from shipper.follow.backlog import TAIL_BACK, Backlog
from shipper.follow.files import FileFollow
from shipper.follow.gaps import Gaps
from shipper.follow.handoff import Handoff
from shipper.follow.numbering import Numbering
from shipper.follow.progress import Progress, Stats
from shipper.follow.rescue import KeptLog, Rescue
from shipper.follow.start import await_start
from shipper.follow.stream import LiveStream, close
from shipper.follow.turns import Turns
from shipper.inbox import Inbox
from shipper.logfiles.rotation import compressed, file_bytes
from shipper.logfiles.watch import LogFiles
from shipper.readahead import ReadAhead
from shipper.record import Meta
from shipper.tail.tap import Tap

log = logging.getLogger("logpipe.shipper.follow")

RECONNECT_INITIAL = 0.2
RECONNECT_MAX = 10.0


class Follower:
    """Reads one container's logs, numbers and de-duplicates them, and queues records."""

    def __init__(
        self,
        docker: Following,
        meta: Meta,
        positions: dict[str, Position],
        out: Inbox,
        max_line_bytes: int,
        prestart: bool = False,
        complete: bool = False,
        pace: float = 0.0,
        files: LogFiles | None = None,
        tap: Tap | None = None,
        turns: Turns | None = None,
        catch_ups: asyncio.Semaphore | None = None,
        follow_files: bool = True,
        kept: KeptLog | None = None,
        held: dict[str, Position] | None = None,
        note_removal: Callable[[int], Awaitable[int]] | None = None,
    ) -> None:
        self.prestart = prestart  # created, not started yet: poll until it runs
        self._turns = turns  # stopped: its first read waits for a turn
        self._started = asyncio.Event()  # a start event came: it need not wait for one
        self.progress = Progress(
            meta, positions, Handoff(out, tap), held=held or {}, note_removal=note_removal
        )
        self.wake = asyncio.Event()  # set to retry at once (dockerd is back)
        self._gaps = Gaps(self.progress)
        self._numbering = Numbering(docker, self.progress, self._gaps, max_line_bytes)
        self._rescue = Rescue(self.progress, self._numbering, self._gaps, files, max_line_bytes)
        self._numbering.read_held_files_with(self._rescue.read_window)
        if kept is not None:  # the log file of this run, taken at its start (rescue.py)
            self._rescue.take_over(kept)
        self._leaving = False  # left its loop: a start now is a run for the next follower
        self._found_gone = False  # found removed while away (a broken stream, a reconnect)
        catch_ups = catch_ups or asyncio.Semaphore(1)
        self._backlog = Backlog(docker, self.progress, self._numbering, max_line_bytes, catch_ups)
        self._files = files  # None: dockerd's log files are not visible here
        self._logfiles = files if follow_files else None
        self._file_follow = FileFollow(
            docker, self.progress, self._numbering, max_line_bytes, pace, catch_ups, files
        )
        # A log never read to its end before (not `complete`) may hold lines past the
        # positions.
        self.stream = LiveStream(
            docker, self.progress, self._numbering, self._rescue, max_line_bytes, not complete
        )
        self._pace_after_inspection = pace  # seconds; 0: never paced

    @property
    def cid(self) -> str:
        """The container id."""
        return self.progress.cid

    @property
    def meta(self) -> Meta:
        """The container's metadata, carried by its records."""
        return self.progress.meta

    @meta.setter
    def meta(self, meta: Meta) -> None:
        self.progress.meta = meta

    @property
    def positions(self) -> dict[str, Position]:
        """Where each stream was read to (shared with the supervisor)."""
        return self.progress.positions

    @property
    def stats(self) -> Stats:
        """What /status shows."""
        return self.progress.stats

    @property
    def again(self) -> bool:
        """A start event came while the follower was finishing: follow once more."""
        return self.progress.again

    @again.setter
    def again(self, value: bool) -> None:
        self.progress.again = value
        if value:
            self._started.set()
            if self._leaving:
                self._rescue.keep()

    @property
    def found_gone(self) -> bool:
        """It found the container removed and accounted for the rest of its log (read
        from its file, or a gap), every run before the removal included: a start it hears
        of now is one of those. Whether the removal cut its stream or came while it was
        away."""
        return self._found_gone or self._rescue.tail_read

    def hand_over(self) -> KeptLog | None:
        """The log file taken at a start that came once this follower had left its loop,
        for the follower of that run (None: no start came then; `held` None: there was
        no file to take)."""
        return self._rescue.hand_over()

    @property
    def read_to_end(self) -> bool:
        """It stopped and its whole log was read (or reported lost)."""
        return self.progress.read_to_end

    def learn(self, summary: ContainerSummary | None, meta: Meta, skip: bool) -> None:
        """Take what inspecting the container told (None: it was gone); lines may flow."""
        self.progress.meta = meta
        self.progress.skip = skip
        # A --rm container's stream end must be seen at once (the rest of its log is
        # asked for before it is removed): only other containers' streams are paced.
        paced = summary is not None and not summary["auto_remove"]
        self.stream.pace.seconds = self._pace_after_inspection if paced else 0.0
        if summary is not None:
            size = file_bytes(summary["log_driver"], summary["log_opts"])
            self._rescue.learn(summary, size)
            self._backlog.learn(summary, self._files)
            self._file_follow.learn(summary, self._logfiles)
            if self._file_follow.path and not skip:
                self.stream.switch()  # its files are read from here on
            gzipped = compressed(summary["log_driver"], summary["log_opts"])
            self._numbering.watch_rotation(size, gzipped)
        if skip:
            self._rescue.let_go()
        self.progress.decided.set()

    @property
    def decided(self) -> bool:
        """Whether inspecting the container (or its end) has said if it is shipped."""
        return self.progress.decided.is_set()

    async def skipped(self, wait: float) -> bool:
        """Whether inspecting the container said not to ship it (waits for the answer)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.progress.decided.wait(), wait)
        return self.progress.skip

    async def run(self) -> None:
        """Follow until the container has stopped (or is gone) and its lines are queued."""
        try:
            started = not self.prestart or await await_start(
                self.stream, self._gaps, self.progress, self._file_follow.started
            )
            if started:
                await self._follow()
            else:
                # It never ran here, or it ran and was removed within the poll that saw
                # it start: read to its end then, perhaps (as below). Its audits are
                # finished as below too; they were cancelled from here once, and the
                # windows of such a --rm container went unjudged: what its follow stream
                # skipped was lost unreported.
                await self.progress.out.flush()
            # A start from here on is a run for the next follower. The last audits can
            # take a while: a re-read, then AUDIT_EVERY before the audit loop ends.
            self._leaving = True
            await self._numbering.finish_audits()
            if marks := self._numbering.released():
                await self.progress.out.release(marks)
            if started or self.progress.read_to_end:  # else still "created": it never ran
                self.stats.state = "gone"
        finally:
            self._leaving = True
            self._numbering.cancel_audits()
            self._rescue.let_go()
            await self.progress.out.close()  # held events go out, at shutdown too

    async def _follow(self) -> None:
        """Follow until the container has stopped and its log was read to its end."""
        delay = RECONNECT_INITIAL
        while True:
            self.progress.again = False
            try:
                done = await self._cycle()
            except DockerUnavailable as exc:
                self._interrupted(exc)
                await self._sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            if done:
                # It stopped and its log was read to the end: what it printed last
                # need not wait for a multiline timeout.
                await self.progress.out.flush()
                if not self.progress.again:
                    return
            delay = RECONNECT_INITIAL
            await asyncio.sleep(0.05)

    def _interrupted(self, exc: Exception) -> None:
        self.stats.state = "reconnecting"
        metrics.RECONNECTS.inc()
        log.warning(
            "log stream interrupted", extra={"container": self.cid[:12], "reason": str(exc)}
        )

    async def _sleep(self, delay: float) -> None:
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), delay)

    async def _cycle(self) -> bool:
        """Read, the first time when its turn comes if the container was stopped."""
        turns, self._turns = self._turns, None
        if turns is None:
            return await self._read()
        self.stats.state = "queued"
        async with turns.turn(self._started):
            if not self._started.is_set() and await self._backlog.read():
                self.stream.unread = False
                self.progress.read_to_end = True
                return True
            return await self._read()

    async def _read(self) -> bool:
        """Follow, then read what the follow stream left; True when the container is done."""
        finished = self.progress.read_to_end  # the last cycle read it to its end (then a start)
        self.progress.read_to_end = False
        done = await self._file_follow.follow()
        if done is not None:
            self.stream.unread = False
            return done
        rest: list[ReadAhead] = []  # asked for the moment the follow stream ends
        tail = TAIL_BACK if await self._backlog.catch_up() else None
        try:
            await self.stream.follow(rest, tail=tail)
        except BaseException as exc:
            close(rest)
            if isinstance(exc, Switched):
                return False  # inspected meanwhile: its files are followed from here
            if isinstance(exc, Unanchored):
                # It wrote more than TAIL_BACK entries since its files were read: follow
                # from the positions instead.
                log.info(
                    "log end asked for after its files began later, following from the positions",
                    extra={"container": self.cid[:12], "reason": str(exc)},
                )
                return False
            if not isinstance(exc, ContainerGone):
                raise
            await self._gone(finished)
            return True
        return await self.stream.drain(rest)

    async def _gone(self, finished: bool) -> None:
        """The container was removed while the follower was away (a broken stream, a
        reconnect): account for the rest of its log."""
        self._found_gone = True
        self._rescue.take_file()
        if self._rescue.holding:
            await self._rescue.read_tail()  # the file held open has what its log held
        elif self.stream.unread:
            await self._gaps.removed_unread()
        elif finished:
            self.progress.read_to_end = True
        else:
            await self._rescue.unconfirmed_end()
