"""Unit tests of the free text the wire cuts at its bound (marked truncated) and of the
identity fields it still refuses past theirs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from collector.batch import describe
from collector.wire import (
    CONTAINER_ID_CHARS,
    CONTAINER_NAME_CHARS,
    DETAIL_CHARS,
    HOST_CHARS,
    IMAGE_CHARS,
    LABEL_KEY_CHARS,
    LABEL_VALUE_CHARS,
    REASON_CHARS,
    Event,
    Gap,
    Source,
    event_line,
    gap_line,
    read_line,
)

_SOURCE = {"kind": "source", "src": 0, "host": "h", "container_id": "c1",
           "container_name": "n", "image": "i"}  # fmt: skip
_EVENT = {"kind": "event", "src": 0, "ts": 1, "action": "die"}
_GAP = {"kind": "gap", "src": 0, "stream": "stdout", "from_ts": 1, "to_ts": 2, "reason": "r"}

# Each free-text field, its line and its bound.
FIELDS = [
    pytest.param(_SOURCE, "container_name", CONTAINER_NAME_CHARS, id="source.container_name"),
    pytest.param(_SOURCE, "image", IMAGE_CHARS, id="source.image"),
    pytest.param(_EVENT, "detail", DETAIL_CHARS, id="event.detail"),
    pytest.param(_GAP, "reason", REASON_CHARS, id="gap.reason"),
]
# One, two, three and four bytes of UTF-8 a character (the last a surrogate pair in JSON).
CHARS = ["a", "é", "€", "😀"]


def _read(line: dict[str, Any], **fields: Any) -> Source | Event | Gap:
    read, replaced = read_line(orjson.dumps(line | fields))
    assert not replaced
    assert isinstance(read, Source | Event | Gap)
    return read


@pytest.mark.parametrize(("line", "name", "bound"), FIELDS)
@pytest.mark.parametrize("char", CHARS)
def test_free_text_within_its_bound_is_read_whole(
    line: dict[str, Any], name: str, bound: int, char: str
) -> None:
    """A value of exactly its bound in characters, or one under, is read as sent, unmarked."""
    for size in (bound - 1, bound):
        read = _read(line, **{name: char * size})
        assert (getattr(read, name), read.truncated) == (char * size, False)


@pytest.mark.parametrize(("line", "name", "bound"), FIELDS)
@pytest.mark.parametrize("char", CHARS)
def test_free_text_past_its_bound_is_cut_there_and_marked_truncated(
    line: dict[str, Any], name: str, bound: int, char: str
) -> None:
    """One character over, or far over, is cut to the bound's first characters (whole
    characters: a surrogate pair stays a pair), the line marked truncated, not refused."""
    for size in (bound + 1, 3 * bound):
        read = _read(line, **{name: "x" + char * size})
        assert getattr(read, name) == "x" + char * (bound - 1)
        assert read.truncated is True


def test_every_long_field_of_a_line_is_cut_and_the_rest_kept() -> None:
    """A source line with both its name and image too long keeps its other fields."""
    read = _read(_SOURCE, container_name="n" * 300, image="i" * 2000, labels={"a": "b"})
    assert isinstance(read, Source)
    assert (read.container_name, read.image) == ("n" * CONTAINER_NAME_CHARS, "i" * IMAGE_CHARS)
    assert (read.container_id, read.labels, read.truncated) == ("c1", {"a": "b"}, True)


@pytest.mark.parametrize("char", CHARS)
def test_a_label_key_or_value_past_its_bound_is_cut_there_and_marked_truncated(
    char: str,
) -> None:
    """Each label's key and value are cut to their bounds' first characters, the source
    line marked truncated; keys and values within their bounds stay whole, unmarked."""
    key, value = char * LABEL_KEY_CHARS, char * LABEL_VALUE_CHARS
    whole = {key: value, key[1:]: value[1:]}
    read = _read(_SOURCE, labels=whole)
    assert isinstance(read, Source)
    assert (read.labels, read.truncated) == (whole, False)
    read = _read(_SOURCE, labels={"k" + key: "v", "k": "v" + value, "ok": "fine"})
    assert isinstance(read, Source)
    assert read.labels == {"k" + key[1:]: "v", "k": "v" + value[1:], "ok": "fine"}
    assert read.truncated is True


def test_of_two_label_keys_the_same_once_cut_the_first_is_kept() -> None:
    """Keys that differ only past the bound become one key, holding the first's value."""
    stem = "k" * LABEL_KEY_CHARS
    read = _read(_SOURCE, labels={stem + "1": "first", stem + "2": "second", "a": "b"})
    assert isinstance(read, Source)
    assert (read.labels, read.truncated) == ({stem: "first", "a": "b"}, True)


def test_long_free_text_with_invalid_utf8_is_cut_and_said_replaced() -> None:
    """Bytes that are not UTF-8 in a long detail become U+FFFD, then the detail is cut."""
    raw = b'{"kind":"event","src":0,"ts":1,"action":"die","detail":"\xff' + b"d" * 5000 + b'"}'
    read, replaced = read_line(raw)
    assert isinstance(read, Event)
    assert (read.detail, read.truncated, replaced) == ("\ufffd" + "d" * 4095, True, True)


IDENTITY = [
    pytest.param(_SOURCE, "container_id", "c" * (CONTAINER_ID_CHARS + 1), id="container_id"),
    pytest.param(_SOURCE, "host", "h" * (HOST_CHARS + 1), id="host"),
    pytest.param(_SOURCE, "host", "", id="empty host"),
    pytest.param(_SOURCE, "src", -1, id="src"),
    pytest.param(_EVENT, "ts", 2**63, id="event.ts"),
    pytest.param(_GAP, "from_ts", 2**63, id="gap.from_ts"),
    pytest.param(_EVENT, "action", "a" * 65, id="event.action"),
    pytest.param(_SOURCE, "hints", {"dataset": "Web-App"}, id="hints.dataset"),
]


@pytest.mark.parametrize(("line", "name", "value"), IDENTITY)
def test_fields_that_tell_records_apart_or_route_them_are_still_refused(
    line: dict[str, Any], name: str, value: Any
) -> None:
    """Cutting a container id, host, src, time, action or routing hint could merge two
    records or send lines elsewhere: such a line is refused, naming the field."""
    with pytest.raises(ValidationError) as caught:
        read_line(orjson.dumps(line | {name: value}))
    assert f"field '{name}" in describe(caught.value)


def test_a_line_with_long_free_text_and_a_bad_id_is_refused_for_the_id() -> None:
    """Cutting repairs what it can; the error then names what it cannot repair."""
    raw = orjson.dumps(_SOURCE | {"image": "i" * 2000, "container_id": "c" * 200})
    with pytest.raises(ValidationError) as caught:
        read_line(raw)
    assert describe(caught.value).startswith("field 'container_id' of a 'source' line")


@pytest.mark.parametrize("char", CHARS)
def test_the_shipper_marks_the_details_and_reasons_it_cuts(char: str) -> None:
    """The shipper cuts an event detail and a gap reason as the collector cuts another
    sender's and marks the line truncated; one within its bound goes unmarked, as before."""
    for size, cut in ((DETAIL_CHARS, False), (DETAIL_CHARS + 1, True)):
        event = orjson.loads(event_line(0, 1, "die", None, char * size))
        assert (event["detail"], event.get("truncated", False)) == (char * DETAIL_CHARS, cut)
        assert _read(_EVENT, detail=char * size).model_dump() == _read(event).model_dump()
    for size, cut in ((REASON_CHARS, False), (REASON_CHARS + 1, True)):
        gap = orjson.loads(gap_line(0, "stdout", 1, 2, char * size, None))
        assert (gap["reason"], gap.get("truncated", False)) == (char * REASON_CHARS, cut)
        assert _read(_GAP, reason=char * size).model_dump() == _read(gap).model_dump()


def test_an_unmarked_shipper_line_is_written_as_before() -> None:
    """A detail or reason within its bound adds no `truncated` key: a collector of an
    earlier version reads the line as it always did."""
    assert b"truncated" not in event_line(0, 1, "die", 1, "d" * DETAIL_CHARS)
    assert b"truncated" not in gap_line(0, "stdout", 1, 2, "r" * REASON_CHARS, None)
