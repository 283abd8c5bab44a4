"""Whether Elasticsearch can be reached at all, as the collector's `_bulk` requests find it.

Every node of the client's pool failed without an answer (refused, reset, timed out)
since the last answer, and a probe failed too: then Elasticsearch is lost, and the
collector answers batches 503 + ``Retry-After`` at once instead of holding each for
``es_retry_seconds``. Any answer (a `_bulk` one, or a probe's) ends that. One lost
connection is not enough: the probe must fail as well.
"""

from __future__ import annotations

import logging
import time

from collector import metrics

log = logging.getLogger("logpipe.collector.sink")

# What a lost Elasticsearch's batches are told: about when to try again.
RETRY_AFTER = 5.0


class Reach:
    """Which nodes went silent since the last answer, and since when none answers."""

    def __init__(self) -> None:
        self._silent: set[int] = set()
        self.lost_since: float | None = None
        self.why = ""
        self.answering = False  # lost with a node answering errors, not with none answering
        metrics.ES_REACHABLE.set(1)

    @property
    def lost(self) -> bool:
        """Whether Elasticsearch is known unreachable (until an answer comes)."""
        return self.lost_since is not None

    def no_answer(self, node: object) -> None:
        """A request to `node` failed without an answer."""
        self._silent.add(id(node))

    def every_node_silent(self, nodes: int) -> bool:
        """Whether each of the pool's `nodes` failed without an answer since the last one."""
        return len(self._silent) >= nodes

    def answered(self) -> None:
        """Elasticsearch answered (whatever it said): it can be reached."""
        self._silent.clear()
        if self.lost_since is not None:
            log.warning(
                "Elasticsearch answers again",
                extra={"lost_seconds": round(time.monotonic() - self.lost_since, 1)},
            )
            self.lost_since = None
            metrics.ES_REACHABLE.set(1)

    def lose(self, why: str, answering: bool = False) -> None:
        """No node answers and the probe failed: refuse batches until an answer comes.
        `answering`: the probe got an error answer (no elected master, say), not none."""
        if self.lost_since is None or answering != self.answering:
            log.error(
                "Elasticsearch cannot take logs: batches are answered 503 until it can"
                if answering
                else "Elasticsearch cannot be reached: batches are answered 503 until it answers",
                extra={"reason": why},
            )
        if self.lost_since is None:
            self.lost_since = time.monotonic()
            metrics.ES_REACHABLE.set(0)
        self.why, self.answering = why, answering

    def refusal(self) -> str:
        """What a batch is told while Elasticsearch is lost."""
        if self.answering:
            return (
                f"Elasticsearch cannot take logs ({self.why}): the shipper will send the "
                "batch again"
            )
        return (
            f"Elasticsearch cannot be reached from this collector (no node answers; "
            f"{self.why}): the shipper will send the batch again"
        )
