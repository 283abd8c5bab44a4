"""Server-Sent Events read line by line: fields, comments, and when an event is complete."""

from __future__ import annotations

from logpipe.sse import Event, EventReader


def read(text: str) -> list[Event]:
    """The events a stream's text holds."""
    reader = EventReader()
    found = [reader.feed(line) for line in text.split("\n")]
    return [event for event in found if event is not None]


def test_a_line_event_has_its_type_id_and_data() -> None:
    """`id`, `event` and `data` fields make one event at the blank line."""
    assert read('id: c1\nevent: line\ndata: {"a": 1}\n\n') == [Event("line", '{"a": 1}', "c1")]


def test_comments_and_blank_lines_alone_make_no_event() -> None:
    """A keepalive comment and a blank line without data dispatch nothing."""
    assert read(": keepalive\n\n\n") == []


def test_several_data_lines_join_with_newlines_and_one_leading_space_goes() -> None:
    """Data lines join with `\\n`; only one space after the colon is dropped."""
    assert read("data:a\ndata:  b\n\n") == [Event("message", "a\n b", None)]


def test_an_unfinished_event_is_not_given() -> None:
    """Fields without the closing blank line (a dropped connection) give no event."""
    assert read("id: c3\nevent: line\ndata: {}") == []


def test_each_event_starts_afresh() -> None:
    """Type and id of one event do not carry into the next."""
    events = read("id: c1\nevent: line\ndata: x\n\nevent: missed\ndata: {}\n\n")
    assert events == [Event("line", "x", "c1"), Event("missed", "{}", None)]


def test_an_id_alone_is_an_event_without_data() -> None:
    """The collector's id after the starting lines: kept to resume from, as EventSource does."""
    assert read("id: p1\n\n") == [Event("message", "", "p1")]
