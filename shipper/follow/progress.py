"""One container's follow as its parts share it: who it is and how far its log was read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shipper.cursor import Position
from shipper.follow.handoff import Handoff
from shipper.record import Meta


@dataclass(slots=True)
class Stats:
    """What /status shows for one container."""

    state: str = "starting"
    lines: int = 0
    bytes: int = 0
    last_ts: int = 0
    recovered: int = 0
    gaps: int = 0
    started: float = field(default_factory=time.time)


@dataclass(slots=True)
class Progress:
    """The state the stream, the start poll, the rescue and the gap reports share."""

    meta: Meta
    positions: dict[str, Position]  # shared with the supervisor: survives the follower
    out: Handoff  # to the queue, shaped by the container's label hints
    stats: Stats = field(default_factory=Stats)
    again: bool = False  # a start event came while we were finishing
    read_to_end: bool = False  # it stopped and its whole log was read (or reported lost)
    skip: bool = False  # inspection said not to ship it
    # Saved positions held at a window's start behind lines read already (cursor.py): the
    # log was read past them, so a read that begins later than one of them began late.
    held: dict[str, Position] = field(default_factory=dict)
    decided: asyncio.Event = field(default_factory=asyncio.Event)  # inspection answered
    # Notes when the container was found removed (ns), saved before its gaps are queued;
    # answers the time noted, their end (gaps.py). None: nothing to note it in.
    note_removal: Callable[[int], Awaitable[int]] | None = None

    @property
    def cid(self) -> str:
        """The container id."""
        return self.meta.id
