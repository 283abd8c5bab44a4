"""One tail's reader as its poller sees it: a bounded buffer, and the count of lines it
missed. The poller hands lines over without waiting, so a slow reader costs only itself.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivery:
    """A line for the reader: the event id that resumes after it, its document, its id,
    and when it arrived at a collector (`event.ingested`, epoch ms)."""

    event_id: str
    doc_id: str
    document: bytes
    arrival: int


class Subscriber:
    """Lines waiting for one reader, at most `capacity`; the rest are counted as missed."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._waiting: deque[Delivery] = deque()
        self._missed = 0
        self._wake = asyncio.Event()
        self.closed = False

    def offer(self, delivery: Delivery) -> None:
        """Take a line if there is room, else count it missed; never waits."""
        if len(self._waiting) >= self.capacity:
            self._missed += 1
        else:
            self._waiting.append(delivery)
        self._wake.set()

    def close(self) -> None:
        """End the reader's stream (the collector is stopping)."""
        self.closed = True
        self._wake.set()

    async def take(self, patience: float) -> tuple[list[Delivery], int]:
        """The lines waiting and then the count missed after them; empty after `patience` seconds.

        Lines are missed only while the buffer is full, so every missed line came after
        every line still waiting: sending those, then the count, keeps the order true.
        """
        if not self._waiting and not self._missed and not self.closed:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), patience)
            except TimeoutError:
                return [], 0
        lines, missed = list(self._waiting), self._missed
        self._waiting.clear()
        self._missed = 0
        return lines, missed
