"""Batches the collector refuses, said in its log without flooding it.

A sender that is misconfigured (a wrong token, bad lines, a body over the limit, a media
type the collector does not read) is refused each time it tries, and a shipper tries
again for ever. The collector says each kind of refusal (its HTTP status) to each
sender (its address) as one warning at most once per interval, with how many of the
same it did not say since the last one; the metrics count them all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

INTERVAL = 60.0  # seconds between two warnings of one kind to one sender
# (kind, sender) pairs remembered at most: beyond, those last said an interval ago or
# more are forgotten (their count of refusals not said with them).
MAX_REMEMBERED = 10_000

# What each refused status means, for the warning's message.
KINDS = {
    400: "bad request or lines",
    401: "no or wrong token",
    403: "a read token sent to ingest",
    413: "body too large",
    415: "media type not read",
}


class RefusalLog:
    """Says a refusal unless the same kind to the same sender was said within `interval`."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        # (status, sender) -> [when it was last said, refusals not said since]
        self._said: dict[tuple[int, str], list[float]] = {}

    def refused(self, status: int, sender: str, reason: str | Callable[[], str]) -> None:
        """Note one refusal; a warning when it is the first of its kind to `sender` for
        an interval. `reason` may be a function, called only for a warning."""
        now = self._clock()
        key = (status, sender)
        said = self._said.get(key)
        if said is not None and now - said[0] < self._interval:
            said[1] += 1
            return
        not_said = int(said[1]) if said is not None else 0
        if said is None and len(self._said) >= MAX_REMEMBERED:
            self._forget(now)
        self._said[key] = [now, 0]
        if callable(reason):
            reason = reason()
        since = f" ({not_said} more of these from it not logged since the last)" if not_said else ""
        self._log.warning(
            f"batch refused {status} ({KINDS.get(status, 'refused')}) from {sender}: "
            f"{reason}{since}",
            extra={
                "http.response.status_code": status,
                "source.address": sender,
                "reason": reason,
                "not_logged": not_said,
            },
        )

    def remembered(self) -> int:
        """How many (kind, sender) pairs are remembered."""
        return len(self._said)

    def _forget(self, now: float) -> None:
        """Drop the pairs last said an interval ago or more (with their counts not said)."""
        for key in [k for k, (at, _) in self._said.items() if now - at >= self._interval]:
            del self._said[key]
