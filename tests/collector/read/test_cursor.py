"""Positions survive a round trip through opaque cursors, and say exactly what is after
them: a later key, or the same key but an id not read yet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.errors import BadRequest
from collector.read import cursor
from collector.read.cursor import MAX_TIED, SEARCH_KEY, TAIL_KEY, Position


@given(
    st.lists(st.integers(min_value=0, max_value=2**63 - 1), min_size=2, max_size=2),
    st.lists(st.text(min_size=1, max_size=22), max_size=5),
)
def test_cursor_round_trip(key: list[int], ids: list[str]) -> None:
    """What a cursor holds comes back unchanged."""
    text = cursor.encode({"k": key, "i": ids})
    assert cursor.position_of("c", cursor.decode("c", text), 2) == Position(tuple(key), tuple(ids))


@pytest.mark.parametrize("text", ["", "!!!", "bm90IGpzb24", "WzFd", "eyJrIjpbMV19"])
def test_foreign_cursors_are_400(text: str) -> None:
    """Garbage, JSON that is no object, or an object without a position: 400 naming it."""
    with pytest.raises(BadRequest, match=r"^cursor:"):
        cursor.position_of("cursor", cursor.decode("cursor", text), 1)


def test_then_keeps_ids_of_a_tie_only() -> None:
    """Reading at the same key adds the id; a new key starts over."""
    p = Position(()).then((5,), "a").then((5,), "b")
    assert p == Position((5,), ("a", "b"))
    assert p.then((6,), "c") == Position((6,), ("c",))


def test_a_tie_list_is_bounded() -> None:
    """However many documents share a key, a position lists at most MAX_TIED ids."""
    p = Position(())
    for i in range(MAX_TIED + 5):
        p = p.then((1,), str(i))
    assert len(p.ids) == MAX_TIED


def test_after_a_tail_position() -> None:
    """After (ingested, ts, ids): a later arrival, the same arrival and a later ts, or the
    same key and an id not listed."""
    clause = cursor.after(Position((1000, 7), ("x",)), TAIL_KEY, "asc")
    ways = clause["bool"]["should"]
    assert ways[0] == {
        "bool": {"filter": [{"range": {"event.ingested": {"gt": 1000, "format": "epoch_millis"}}}]}
    }
    assert ways[1]["bool"]["filter"][1]["range"]["@timestamp"]["gt"] == (
        "1970-01-01T00:00:00.000000007Z"
    )
    assert ways[2]["bool"]["must_not"] == [{"ids": {"values": ["x"]}}]


def test_descending_reads_go_back() -> None:
    """Newest first, what comes next is older."""
    clause = cursor.after(Position((9,), ()), SEARCH_KEY, "desc")
    assert "lt" in clause["bool"]["should"][0]["bool"]["filter"][0]["range"]["@timestamp"]
