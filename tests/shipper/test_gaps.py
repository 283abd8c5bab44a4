"""Unit tests of the gap reports' bounds."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shipper.cursor import Position
from shipper.follow.gaps import REMOVED_EARLY_GAP, REMOVED_GAP, Gaps
from shipper.follow.progress import Progress
from shipper.record import GapRecord, Meta


class _Out:
    def __init__(self) -> None:
        self.records: list[Any] = []

    async def put(self, record: Any) -> None:
        self.records.append(record)


async def test_a_loss_reported_now_never_ends_before_the_last_line_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dockerd's clock (the lines' timestamps) may run ahead of the shipper's host
    (DOCKER_HOST on another machine): the gap still ends at or after where it begins,
    as the collector requires."""
    ahead = time.time_ns() + 90 * 10**9
    out = _Out()
    positions = {"stdout": Position(ahead, 1), "stderr": Position()}
    progress = Progress(Meta("c" * 64, "web", "nginx"), positions, out)  # type: ignore[arg-type]
    await Gaps(progress).removed_unread()
    gaps = [r for r in out.records if isinstance(r, GapRecord)]
    assert [g.stream for g in gaps] == ["stdout", "stderr"]
    for gap in gaps:
        assert gap.reason == REMOVED_EARLY_GAP
        assert gap.from_ts == ahead
        assert gap.to_ts >= gap.from_ts


@pytest.mark.parametrize("held", [False, True])
async def test_positions_held_at_a_window_are_of_a_log_read_before(held: bool) -> None:
    """Positions that count no line are those of a log never read, unless they are held
    at a window's start behind lines read already: then the container was removed before
    the rest of its log could be read, not before all of it."""
    out = _Out()
    positions = {"stdout": Position(1_000, 0), "stderr": Position(1_001, 0)}
    held_at = dict(positions) if held else {}
    meta = Meta("c" * 64, "web", "nginx")
    progress = Progress(meta, positions, out, held=held_at)  # type: ignore[arg-type]
    await Gaps(progress).removed_unread()
    reasons = {r.reason for r in out.records if isinstance(r, GapRecord)}
    assert reasons == {REMOVED_EARLY_GAP if held else REMOVED_GAP}
