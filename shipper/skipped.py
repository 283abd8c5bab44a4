"""Containers the shipper does not follow, summed up in one info line now and then.

Each skip decision is logged at debug (a container is decided again at every one of its
events); at info a summary names the containers newly skipped since the last one, at
most once per interval and only when there is something new to say.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

SUMMARY_INTERVAL = 60.0  # seconds between two summaries, at least
NAMED = 10  # containers named in one summary; the rest are counted
REMEMBERED = 10_000  # skipped containers remembered, so each is reported once


class Skipped:
    """Collects skip decisions; `summary()` says what is new, when it is time."""

    def __init__(
        self, interval: float = SUMMARY_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._known: OrderedDict[str, str] = OrderedDict()  # name -> reason, as reported
        self._new: dict[str, str] = {}
        self._last: float | None = None

    def note(self, name: str, reason: str) -> None:
        """A container was not followed, for `reason`."""
        if self._known.get(name) == reason or self._new.get(name) == reason:
            return
        self._new[name] = reason

    def summary(self) -> str | None:
        """The line to log now, or None (nothing new, or the last one was too recent)."""
        now = self._clock()
        if not self._new or (self._last is not None and now - self._last < self._interval):
            return None
        self._last = now
        new, self._new = self._new, {}
        for name, reason in new.items():
            self._known[name] = reason
            self._known.move_to_end(name)
        while len(self._known) > REMEMBERED:
            self._known.popitem(last=False)
        named = ", ".join(f"{name} ({reason})" for name, reason in list(new.items())[:NAMED])
        more = f" and {len(new) - NAMED} more" if len(new) > NAMED else ""
        count = f"{len(new)} container{'s' if len(new) != 1 else ''}"
        return f"not following {count}: {named}{more}"
