"""Unit tests of positions, de-duplication on resume, and in-order acknowledgement."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipper.cursor import CursorStore, Position, Sequencer
from shipper.errors import ConfigError


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


entries_strategy = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3), st.integers(min_value=1, max_value=3)),
    min_size=1,
    max_size=25,
)


def _stream(steps: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
    """Entries with non-decreasing stamps; entries sharing a stamp are distinct lines."""
    out: list[tuple[int, bytes]] = []
    ts = 1000
    for step, group in steps:
        ts += step + 1
        for _ in range(group):
            out.append((ts, b"line %d" % len(out)))
    return out


@given(entries_strategy, st.lists(st.tuples(st.integers(0, 60), st.integers(1, 60)), max_size=5))
def test_rotation_repeats_anywhere_are_dropped(
    steps: list[tuple[int, int]], repeats: list[tuple[int, int]]
) -> None:
    """dockerd re-sending any run of earlier entries (even from the last one) adds nothing."""
    entries = _stream(steps)
    at = {min(k, len(entries)): max(1, min(n, k)) for k, n in repeats if k > 0}
    delivered: list[tuple[int, bytes]] = []
    for k, entry in enumerate(entries):
        if k in at:
            delivered += entries[k - at[k] : k]  # a contiguous run already sent
        delivered.append(entry)
    expected = Sequencer(Position())
    numbered = [(ts, expected.number(ts)) for ts, _ in entries]
    seq = Sequencer(Position())
    taken = [(ts, n) for ts, data in delivered if (n := seq.number(ts, hash(data))) is not None]
    assert taken == numbered


def test_repeat_that_starts_at_the_last_entry_is_recognised() -> None:
    """A repeat beginning with the very entry last read is dropped, not numbered anew."""
    seq = Sequencer(Position())
    assert seq.number(5, hash(b"a")) == 0
    assert seq.number(5, hash(b"a")) is None
    assert seq.number(5, hash(b"b")) == 1
    assert seq.number(5, hash(b"a")) is None


def test_cursor_file_keeps_meta_done_gone_and_alive(tmp_path: Path) -> None:
    """Container metadata, the read-to-end mark, when a listing found it removed (noted
    once: a later listing keeps the first time) and the last sign of life survive a
    restart."""
    store = CursorStore(tmp_path)
    store.ensure("c1", 0, {"name": "web", "image": "nginx", "labels": {"a": "b"}})
    store.set_done("c1", True)
    assert store.mark_gone("c1", 456) == 456
    assert store.mark_gone("c1", 789) == 456
    assert store.mark_gone("c2", 789) == 0  # no cursor: nothing noted
    store.alive_ns = 123
    store.save()
    again = CursorStore(tmp_path)
    again.load()
    cursor = again.get("c1")
    assert cursor is not None
    assert cursor.meta == {"name": "web", "image": "nginx", "labels": {"a": "b"}}
    assert cursor.done
    assert cursor.gone == 456
    assert again.get("c2") is None
    assert again.alive_ns == 123


async def test_saves_on_and_off_the_loop_never_mix(tmp_path: Path) -> None:
    """Saves from the loop and from a thread interleave without leaving a broken file."""
    store = CursorStore(tmp_path)
    for i in range(50):
        store.advance(f"c{i}", "stdout", Position(i, 1))
        writes = [store.save_in_thread() for _ in range(3)]
        store.save()
        await asyncio.gather(*writes)
        check = CursorStore(tmp_path)
        check.load()
        assert check.get(f"c{i}") is not None
    leftovers = await asyncio.to_thread(lambda: list(tmp_path.glob("*.tmp")))
    assert not leftovers


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "not JSON: "),
        (b"[1]", "version None, where this shipper reads 1"),
        (b"{}", "version None, where this shipper reads 1"),
        (b'{"version": 99, "containers": {}}', "version 99, where this shipper reads 1"),
        (
            b'{"version": 1, "containers": {"c1": {"streams": {"stdout": 5}}}}',
            "not a cursor file: ",
        ),
        (b"", "not JSON: "),
    ],
)
def test_an_unreadable_cursor_file_is_a_config_error(
    tmp_path: Path, content: bytes, why: str
) -> None:
    """A damaged cursor file stops the start, naming it and the way out; nothing is guessed."""
    (tmp_path / "cursors.json").write_bytes(content)
    with pytest.raises(ConfigError) as info:
        CursorStore(tmp_path).load()
    message = str(info.value)
    assert message.startswith(
        f"LOGPIPE_STATE_DIR: cannot read the cursors in {tmp_path / 'cursors.json'} ({why}"
    )
    assert message.endswith(
        "; move it aside to start over as on a first start (see LOGPIPE_START_AT)"
    )


def test_a_cursor_file_that_is_a_folder_is_a_config_error(tmp_path: Path) -> None:
    """cursors.json as a folder is named with the system's reason."""
    (tmp_path / "cursors.json").mkdir()
    with pytest.raises(ConfigError, match=r"cursors.json \(is a directory\); move it aside"):
        CursorStore(tmp_path).load()


def test_the_end_of_a_follow_before_a_restart_leaves_the_next_follow_undone(
    tmp_path: Path,
) -> None:
    """A container's end waits in the queue behind its lines; if it starts again meanwhile,
    that end, written later, must not mark the new follow done (its lines may still be
    queued). Only the end of the latest follow does."""
    store = CursorStore(tmp_path)
    store.ensure("c1", 0)
    first = store.begin("c1")
    second = store.begin("c1")
    store.finish("c1", first)
    assert not store.get("c1").done  # type: ignore[union-attr]
    store.finish("c1", second)
    assert store.get("c1").done  # type: ignore[union-attr]
    assert store.begin("c1") == second + 1
    assert not store.get("c1").done  # type: ignore[union-attr]


def test_a_held_position_is_saved_with_how_far_its_lines_were_written(tmp_path: Path) -> None:
    """A position held at a window keeps, in the cursor file, how far the stream's lines
    went into the disk buffer; the next start marks a batch whose oldest line is up to
    there as sent again, and one past it, or of another stream, not."""
    store = CursorStore(tmp_path)
    store.advance("c1", "stdout", Position(100, 0))  # held at the window's start
    store.wrote("c1", "stdout", Position(200, 1))  # the lines read after it, in segments
    store.wrote("c1", "stdout", Position(150, 1))  # never moves back
    store.save()
    assert not store.sent_before([("c1", "stdout")], 120)  # this run wrote them: unmarked
    again = CursorStore(tmp_path)
    again.load()
    cursor = again.get("c1")
    assert cursor is not None
    assert cursor.streams["stdout"] == Position(100, 0)
    assert cursor.written == {"stdout": Position(200, 1)}
    assert again.sent_before([("c1", "stdout")], 100)
    assert again.sent_before([("c2", "stdout"), ("c1", "stdout")], 200)
    assert not again.sent_before([("c1", "stdout")], 201)
    assert not again.sent_before([("c1", "stderr"), ("c2", "stdout")], 120)


def test_what_was_written_is_forgotten_once_the_position_passes_it(tmp_path: Path) -> None:
    """Read again and written up to where the earlier run had come, the stream is marked
    no more, and its cursor file entry is as before the hold."""
    (tmp_path / "cursors.json").write_bytes(
        orjson.dumps(
            {
                "version": 1,
                "containers": {
                    "c1": {
                        "floor": 0,
                        "streams": {"stdout": [100, 0]},
                        "written": {"stdout": [200, 1]},
                    }
                },
            }
        )
    )
    store = CursorStore(tmp_path)
    store.load()
    store.advance("c1", "stdout", Position(160, 1))  # part of the way: still held behind
    store.wrote("c1", "stdout", Position(180, 1))
    assert store.sent_before([("c1", "stdout")], 170)
    store.advance("c1", "stdout", Position(200, 1))
    assert not store.sent_before([("c1", "stdout")], 170)
    store.save()
    saved = orjson.loads((tmp_path / "cursors.json").read_bytes())
    assert saved["containers"]["c1"] == {"floor": 0, "streams": {"stdout": [200, 1]}}


def test_a_cursor_file_of_an_older_shipper_marks_nothing(tmp_path: Path) -> None:
    """A file written before positions were saved with how far lines went (no `written`)
    loads as it did, and no batch read from it is marked as sent again."""
    (tmp_path / "cursors.json").write_bytes(
        b'{"version":1,"alive_ns":7,"containers":{"c1":{"floor":3,"streams":{"stdout":[100,2]}}}}'
    )
    store = CursorStore(tmp_path)
    store.load()
    cursor = store.get("c1")
    assert cursor is not None
    assert cursor.streams == {"stdout": Position(100, 2)}
    assert cursor.written == {}
    assert not store.sent_before([("c1", "stdout")], 50)


def test_a_written_position_that_is_no_position_is_a_config_error(tmp_path: Path) -> None:
    """A `written` entry that is not a pair of numbers makes the file unreadable, as any
    other damage does: a clear error at start, never a guess."""
    (tmp_path / "cursors.json").write_bytes(
        b'{"version":1,"containers":{"c1":{"streams":{},"written":{"stdout":["x",1]}}}}'
    )
    with pytest.raises(ConfigError, match="not a cursor file"):
        CursorStore(tmp_path).load()
