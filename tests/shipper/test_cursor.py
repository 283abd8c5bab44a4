"""Unit tests of positions, de-duplication on resume, and in-order acknowledgement."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from shipper.batch import AckTracker, encode
from shipper.cursor import CursorStore, Position, Sequencer
from shipper.record import LogRecord, Meta


@given(
    st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=60),
    st.integers(min_value=0, max_value=60),
)
def test_resume_drops_exactly_what_was_taken(steps: list[int], cut: int) -> None:
    """Re-reading a stream from a saved position yields exactly the entries after it."""
    stamps = []
    ts = 100
    for step in steps:
        ts += step
        stamps.append(ts)
    first = Sequencer(Position())
    numbered = [(t, first.number(t)) for t in stamps]
    cut = min(cut, len(numbered))
    saved = Position() if cut == 0 else Position(numbered[cut - 1][0], numbered[cut - 1][1] + 1)  # type: ignore[operator]
    again = Sequencer(saved)
    # dockerd resumes at `since` = saved.ts (inclusive): everything from that ts on.
    resent = [t for t in stamps if t >= saved.ts]
    taken = [(t, s) for t in resent if (s := again.number(t)) is not None]
    assert taken == numbered[cut:]


def test_rotation_repeats_are_dropped() -> None:
    """Lines dockerd sends again after a rotation (earlier stamps) are not taken twice."""
    seq = Sequencer(Position())
    assert [seq.number(t) for t in (1, 2, 2, 3)] == [0, 0, 1, 0]
    assert [seq.number(t) for t in (2, 2, 3)] == [None, None, None]
    assert seq.number(4) == 0


def _record(meta: Meta, stream: str, ts: int) -> LogRecord:
    return LogRecord(meta, stream, ts, 0, b"x")


def test_acks_out_of_order_move_cursor_only_past_contiguous_batches(tmp_path: Path) -> None:
    """With batches acknowledged out of order, a cursor never skips an unacknowledged one."""
    store = CursorStore(tmp_path)
    tracker = AckTracker(store)
    meta = Meta("c1", "n", "img")
    b1 = encode([_record(meta, "stdout", 10)], "h")
    b2 = encode([_record(meta, "stdout", 20), _record(meta, "stderr", 21)], "h")
    tracker.register(b1)
    tracker.register(b2)
    assert tracker.ack(b2)  # stderr only had b2: it moves
    cursor = store.get("c1")
    assert cursor is not None
    assert "stdout" not in cursor.streams
    assert cursor.streams["stderr"] == Position(21, 1)
    assert tracker.ack(b1)
    cursor = store.get("c1")
    assert cursor is not None
    assert cursor.streams["stdout"] == Position(20, 1)
    assert tracker.pending_batches == 0


def test_cursors_survive_a_restart(tmp_path: Path) -> None:
    """Saved cursors load back identically (atomic file under the state folder)."""
    store = CursorStore(tmp_path)
    store.ensure("abc", floor=5)
    store.advance("abc", "stdout", Position(99, 3))
    store.save()
    again = CursorStore(tmp_path)
    again.load()
    cursor = again.get("abc")
    assert cursor is not None
    assert cursor.floor == 5
    assert cursor.position("stdout") == Position(99, 3)
    assert cursor.position("stderr") == Position(5, 0)
    assert cursor.since() == 5
    assert not list(tmp_path.glob("*.tmp"))
