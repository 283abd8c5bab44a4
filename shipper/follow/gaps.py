"""Lines lost before they could be read: each loss a gap record, logged and counted.

The reasons below are what a gap document says; the rescue of a removed container's
log (rescue.py) and the rotation audit (shipper/logfiles/audit.py) name which applies.
"""

from __future__ import annotations

import logging
import time

from shipper import metrics
from shipper.cursor import STREAMS, last_read
from shipper.follow.progress import Progress
from shipper.record import GapRecord

log = logging.getLogger("logpipe.shipper.follow")

RESUME_GAP = "lines before the resume point were no longer in Docker's log (rotated or removed)"
SKIPPED_GAP = "dockerd's follow stream skipped rotated log files and they were gone when re-read"
CLOSE_GAP = (
    "dockerd's follow stream, soon after skipping rotated log files, may have skipped lines"
    " here too, and they were gone when re-read: lines may be missing"
)
UNREAD_GAP = (
    "the container was removed before spans where dockerd's follow stream may have skipped"
    " rotated log files could be read again, and the shipper held no log file of it:"
    " lines may be missing"
)
REMOVED_GAP = "the container was removed before its logs could be read"
REMOVED_EARLY_GAP = "the container was removed before the rest of its log could be read"
_UNCONFIRMED = (
    "the container was removed before the end of its log could be read: lines after this"
    " may be missing"
)
NO_FILE_GAP = _UNCONFIRMED + " (the shipper could not read its log file)"
ROTATED_AWAY_GAP = _UNCONFIRMED + " (the log file the shipper held had been rotated away)"
ROTATED_BETWEEN_GAP = (
    "the log file of these lines was rotated away before the shipper took it, and the"
    " container was removed before they could be read"
)
UNPACKED_SHORT_GAP = (
    "a rotated log file compressed by dockerd was cut short or corrupt: lines after what"
    " could be unpacked from it, up to the next file, are lost"
)
ROTATED_FULL_GAP = (
    _UNCONFIRMED + " (the log file the shipper held was full: rotation may have begun another)"
)


class Gaps:
    """Reports one container's gaps: a record for the queue, a warning and a count each."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._fresh = not progress.held and all(  # never read
            p.count == 0 for p in progress.positions.values()
        )

    def record(
        self, stream: str, from_ts: int, to_ts: int, reason: str, estimate: int | None = None
    ) -> GapRecord:
        """The gap as a record (to be queued in order with the lines around it)."""
        metrics.GAPS.inc()
        self._progress.stats.gaps += 1
        log.warning(
            "gap: lines lost before they could be read",
            extra={
                "container": self._progress.cid[:12],
                "stream": stream,
                "from_ts": from_ts,
                "to_ts": to_ts,
                "reason": reason,
            },
        )
        return GapRecord(self._progress.meta, stream, from_ts, to_ts, reason, estimate)

    async def put(
        self, stream: str, from_ts: int, to_ts: int, reason: str, estimate: int | None = None
    ) -> None:
        """Queue the gap now."""
        await self._progress.out.put(self.record(stream, from_ts, to_ts, reason, estimate))

    async def lost_after(self, reason: str) -> None:
        """Lines after the last one read may be lost: a gap for each stream until now."""
        since = last_read(self._progress.positions.values())
        # `since` is Docker's clock, `now` this host's: with dockerd on another machine
        # (DOCKER_HOST) whose clock runs ahead, a gap would end before it began, and the
        # collector refuses such a gap.
        now = max(time.time_ns(), since)
        if self._progress.note_removal is not None:
            # Saved before the gaps are queued: after a kill before they and the end
            # behind them are on disk, the next start reports the same span, so the same
            # ids (catchup.gone_gaps), where it would end at its own time.
            now = max(await self._progress.note_removal(now), since)
        for stream in STREAMS:
            await self.put(stream, since, now, reason)
        # Accounted for to its end: saved as done, so that a listing that no longer finds
        # the container does not report the same loss again.
        self._progress.read_to_end = True

    async def removed_unread(self) -> None:
        """The container was gone before its log could be read: say so for each stream."""
        await self.lost_after(REMOVED_GAP if self._fresh else REMOVED_EARLY_GAP)
