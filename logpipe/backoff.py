"""How long `logpipe tail` waits before each reconnect: doubling, capped, a little random.

0.5 s, 1 s, 2 s, 4 s, 8 s, then 10 s between attempts, each within ±20% so that the
tails of many people do not all hit a restarted collector at once; a `Retry-After` the
collector sent is waited instead. The delays start again from 0.5 s once a connection
has delivered something.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

FIRST = 0.5
CAP = 10.0
JITTER = 0.2


@dataclass
class Backoff:
    """The delay before the next attempt; `reset` after an attempt that worked."""

    attempts: int = 0
    spread: Callable[[float, float], float] = field(default=random.uniform)

    def next(self, retry_after: float | None = None) -> float:
        """The delay before the next attempt (the collector's Retry-After if it gave one)."""
        if retry_after is not None:
            self.attempts += 1
            return min(retry_after, 60.0)
        delay = min(CAP, FIRST * 2**self.attempts)
        self.attempts += 1
        return float(delay * self.spread(1 - JITTER, 1 + JITTER))

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self.attempts = 0
