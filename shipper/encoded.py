"""An encoded batch: what the batcher writes to the disk buffer, and the cursors it moves."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from shipper.cursor import Position
from shipper.record import DoneRecord

_ids = itertools.count(1)


@dataclass(slots=True)
class Batch:
    """An encoded batch and the stream positions it completes."""

    body: bytes
    lines: int
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    id: int = field(default_factory=lambda: next(_ids))
    first_ts: int = 0
    done: list[DoneRecord] = field(default_factory=list)  # containers read to their end
    # Per stream, past the lines the batch holds, where its position is held behind them
    # (a window of the stream waits for its audit, shipper/logfiles/audit.py).
    written: dict[tuple[str, str], Position] = field(default_factory=dict)
    # It may hold lines an earlier run of the shipper sent (shipper/cursor.py).
    again: bool = False
