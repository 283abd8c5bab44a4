"""The containers a listing finds at each connection to dockerd: to follow, or gone.

Events alone miss what happened while nobody read them. So at each (re)connection
dockerd's list is read (while events are read too, see source.py): running containers,
stopped ones with unread lines and ones that exited since the shipper was last alive
are followed, and at the first start of a new state folder the stopped ones too (or,
with start_at=end, given a finished cursor); a container that still has a cursor but
is no longer listed was removed while the shipper was away, and unless its log had
been read to the end that loss is reported as a gap. Which is which is decided from
the cursors (catchup.py).

A removal is reported once, by one owner (the rule is the supervisor's, source.py): a
container a follower of this run began to read is that follower's, which finds it gone
and reads or reports the rest of its log; any other container with a cursor that a
listing finds gone (not listed, or gone by its inspection) is the listing's, which
marks it gone, so that no follower begins for it afterwards (a start event replayed after
the listing answered), and reports it.

The report outlives a crash: the cursor notes when the container was found gone and is
saved before the gaps are queued, and a done mark queued behind them finishes the cursor
once they are on disk; only then does the supervisor forget it (`reported`). A kill before
that leaves the cursor to the next start, which reports the same gaps again, with the same
end and so the same ids (the collector keeps one copy). A follower that finds its
container removed and reports lines lost notes and saves the time the same way
(source.py), and its done mark follows its gaps: after a kill the next start's listing
repeats them, with their ids.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Container, Iterable

from shipper import metrics
from shipper.catchup import floor, gone_gaps, left_unread, to_follow, worth_inspecting
from shipper.config import ShipperConfig
from shipper.containers import ContainerSummary, Listed
from shipper.cursor import CursorStore
from shipper.dockerd import Lists
from shipper.errors import ContainerGone
from shipper.record import DoneRecord, Record
from shipper.selection import skip_reason

INSPECTS = 8  # inspections at once while listing


class Listing:
    """Lists the containers at each connection; hands over those to follow, reports the gone."""

    def __init__(
        self,
        config: ShipperConfig,
        docker: Lists,
        store: CursorStore,
        followed: Container[str],
        begun: Container[str],
        gone: set[str],
        removed: set[str],
        follow: Callable[[ContainerSummary, int], None],
        report: Callable[[Record], Awaitable[None]],
    ) -> None:
        self._config = config
        self._start_at = config.start_at
        self._docker = docker
        self._store = store
        self._followed = followed  # ids of the containers followed now
        self._begun = begun  # ids of the containers a follower of this run began to read
        self._follow = follow  # follow an inspected container from a floor (ns)
        self._report = report  # queue a record among the lifecycle events
        self.alive_before = store.alive_ns  # when the previous run was last reading
        self._caught_up_to = self.alive_before  # exits after this are read at listing
        self._first = True
        self._gone = gone  # found removed by a listing (not to be followed again)
        self._removed = removed  # the supervisor's: removed, their cursors to forget
        # Reported by a listing, their cursors kept until the gaps are on disk (done).
        self.reported: set[str] = set()

    async def run(self) -> None:
        """Follow running containers, stopped ones with unread lines, ones that exited
        since the shipper was last alive, and at the first start of a new state the
        stopped ones (start_at=beginning); report the ones removed before being read."""
        started = time.time_ns()
        listed = await self._docker.list_all()
        existing = {c["id"] for c in listed}
        await self._gone_while_away(set(self._store.containers()) - existing)
        todo = [
            c
            for c in listed
            if c["id"] not in self._followed
            and worth_inspecting(c, self._store.get(c["id"]), self._caught_up_to, self._fresh)
        ]
        limit = asyncio.Semaphore(INSPECTS)

        async def one(item: Listed) -> None:
            async with limit:
                await self._consider(item)

        await asyncio.gather(*(one(c) for c in todo))
        self._first = False
        self._caught_up_to = started  # a later listing looks at exits after this one

    @property
    def _fresh(self) -> bool:
        """The first listing of a state folder never run with: every container is older."""
        return self._first and not self.alive_before

    async def _consider(self, item: Listed) -> None:
        try:
            summary = await self._docker.inspect(item["id"])
        except ContainerGone:
            await self._gone_while_away([item["id"]])  # removed since it was listed
            return
        cid = summary["id"]
        cursor = self._store.get(cid)
        if to_follow(summary, cursor, self._caught_up_to, self._fresh, self._start_at):
            start = floor(self._start_at, self._first, self.alive_before, time.time_ns())
            self._follow(summary, start)
        elif left_unread(summary, cursor, self._fresh, self._start_at):
            # Followed while it was inspected (a replayed start event): the follower's
            # cursor stands. (`cursor`, read after the inspection, is None here.)
            if cid in self._followed:
                return
            if skip_reason(summary, self._config, None) is None:
                self._store.ensure(cid, time.time_ns())
                self._store.set_done(cid, True)

    @property
    def listed(self) -> bool:
        """Whether a listing has run: the containers removed while the shipper was away
        that no follower of this run took have been reported (`reported`)."""
        return not self._first

    async def _gone_while_away(self, cids: Iterable[str]) -> None:
        """Report removed containers' losses, each unless it is not the listing's: no
        cursor (never read: nothing to report from), a follower of this run began it (its
        follower accounts for the rest of its log, and the listing would say it twice), or
        a listing reported it already. One read to its end is forgotten at once."""
        now = time.time_ns()
        reports = []
        for cid in cids:
            cursor = self._store.get(cid)
            if cursor is not None and cid in self._begun:
                # Its follower's (which finds it gone, if it still runs). Removed with no
                # destroy event heard (dockerd was down): the cursor is forgotten all the
                # same once done, not at the next start.
                self._removed.add(cid)
                continue
            if cursor is None or cid in self._gone:
                continue
            self._gone.add(cid)  # a replayed event must not follow it again: it is reported
            cursor.gone = self._store.mark_gone(cid, now)
            gaps = gone_gaps(cid, cursor, now)
            if gaps:
                self.reported.add(cid)  # the cursor stays until they are on disk
                reports.append(gaps)
            else:
                self._store.forget(cid)  # read to its end: nothing lost
        if not reports:
            return
        # Saved before the gaps are queued: reported again after a crash, they end at the
        # same time (a save that fails is logged; the gaps are then reported, and would be
        # again after a crash, with another end).
        await self._store.save_or_log()
        for gaps in reports:
            for gap in gaps:
                metrics.GAPS.inc()
                await self._report(gap)
            await self._report(DoneRecord(gaps[0].meta))  # done once the gaps are on disk
