"""Which containers to read when the shipper (re)connects to dockerd. Pure.

Besides the running ones: stopped containers whose log was not read to its end, and
containers that exited after the shipper was last alive (they ran while it was down).
At the first start of a new state folder every container on the host is older than the
shipper's state, the stopped ones too (exited, not removed: Docker keeps their log):
``start_at=beginning`` reads theirs to its end; ``start_at=end`` leaves it unshipped and
gives them a finished cursor from now, so that a later start of theirs ships only what
comes then. Once read to its end, a container's cursor says so and it is not read again.
A container whose cursor remains but which is gone was removed while the shipper was
not reading it: unless its log had been read to the end, that is a gap to report.
"""

from __future__ import annotations

from typing import Literal

from shipper.containers import ContainerSummary, Listed
from shipper.cursor import STREAMS, Cursor, SavedMeta, last_read
from shipper.record import GapRecord, Meta

StartAt = Literal["beginning", "end"]

CATCH_UP_NS = 5_000_000_000  # events and exits this long before the last sign of life
SUBSCRIBE_SLACK_NS = 2_000_000_000  # a first subscription replays this much
# dockerd keeps its last 256 events for replays: asked for the events since three hours
# ago on a busy host, it answered exactly 256, the oldest from 15 minutes before.
DOCKERD_EVENTS_KEPT = 256
ALIVE_STATES = {"running", "paused", "restarting"}
STOPPED_STATES = {"exited", "dead"}  # stopped, not removed: dockerd still has the log
GONE_GAP = (
    "the container was removed while the shipper was not reading it; "
    "lines after this point may be lost"
)


def caught_up_from(alive_before: int) -> int:
    """Containers that exited after this time are read even without a cursor (0: none)."""
    return max(0, alive_before - CATCH_UP_NS) if alive_before else 0


def subscribe_from(last_event_ns: int, alive_before: int, now: int) -> int:
    """Replay from the last event seen, or the last sign of life, or a moment ago.

    dockerd sends the answer's headers before it registers the subscription, so an
    event in between would be lost were the subscription not replayed from earlier.
    """
    if last_event_ns:
        return last_event_ns
    if alive_before:
        return caught_up_from(alive_before)
    return max(0, now - SUBSCRIBE_SLACK_NS)


class ReplayCheck:
    """Whether a subscription's replay reached back to where it was asked from.

    dockerd keeps only its last DOCKERD_EVENTS_KEPT events: a replay from a time before
    those begins at the oldest it kept, and the lifecycle events before it are gone (the
    lines are not: they are read from the logs). A replay of that many events that all
    came after `since` may have lost some; exactly that many since then is told apart
    from more by nothing dockerd says, so it is reported as "may".
    """

    def __init__(self, since: int, subscribed: int) -> None:
        self._since = since
        self._subscribed = subscribed
        self._first = 0  # the oldest event replayed
        self._replayed = 0
        self._said = False

    @property
    def since(self) -> int:
        """Where the replay was asked from."""
        return self._since

    def see(self, ts: int) -> int | None:
        """Note an event; once, when the replay may have missed events: the time of the
        oldest event dockerd still had (the span [since, it) may lack some)."""
        if self._said or ts > self._subscribed:
            return None  # a live event: the replay is over
        self._replayed += 1
        if not self._first:
            self._first = ts
        if self._replayed < DOCKERD_EVENTS_KEPT or not 0 < self._since < self._first:
            return None
        self._said = True
        return self._first


def worth_inspecting(c: Listed, cursor: Cursor | None, alive_before: int, fresh: bool) -> bool:
    """Whether a listed container may need following (inspecting tells for sure).

    `fresh`: this is the first listing of a state folder the shipper never ran with."""
    if c["state"] in ALIVE_STATES:
        return True
    if cursor is not None and not cursor.done:
        return True
    if c["state"] not in STOPPED_STATES:
        return False
    return bool(caught_up_from(alive_before)) or (fresh and cursor is None)


def to_follow(
    summary: ContainerSummary,
    cursor: Cursor | None,
    alive_before: int,
    fresh: bool,
    start_at: StartAt,
) -> bool:
    """Whether an inspected container is to be followed now."""
    if summary["running"] or (cursor is not None and not cursor.done):
        return True
    since = caught_up_from(alive_before)
    if since > 0 and summary["finished_ns"] >= since:
        return True  # it exited (again) while the shipper was away
    return fresh and cursor is None and start_at == "beginning"


def left_unread(
    summary: ContainerSummary, cursor: Cursor | None, fresh: bool, start_at: StartAt
) -> bool:
    """Whether a container that stopped before the shipper's state began keeps its log
    unshipped (start_at=end): it gets a finished cursor from now instead of a follower."""
    return fresh and cursor is None and not summary["running"] and start_at == "end"


def floor(start_at: StartAt, first_listing: bool, alive_before: int, now: int) -> int:
    """Where the log of a container never seen before is read from."""
    if start_at == "beginning" or not first_listing:
        return 0
    return alive_before or now


def gone_gaps(cid: str, cursor: Cursor, now: int) -> list[GapRecord]:
    """Gaps for a container removed while the shipper was away (none if read to the end),
    up to when it was found removed (`Cursor.gone`), else `now`.

    Its follower may have found it removed and queued gaps before a kill: they began at
    its last line read and ended at `Cursor.gone`. With them on disk, the lines before
    them are too, so the positions reach that line: the same span, the same ids (the
    collector keeps one copy). Without, the gaps begin at the last line on disk."""
    if cursor.done or cursor.meta is None:
        return []
    meta = Meta(cid, cursor.meta["name"], cursor.meta["image"], cursor.meta["labels"])
    since = last_read(cursor.position(s) for s in STREAMS)
    return [GapRecord(meta, s, since, cursor.gone or now, GONE_GAP) for s in STREAMS]


def saved_meta(meta: Meta) -> SavedMeta:
    """What the cursor file keeps about a container (gone_gaps reads it back)."""
    return SavedMeta(name=meta.name, image=meta.image, labels=meta.labels)
