"""The closed indices a collector's answer names, read from a header or an event, and the
warning made of them."""

from __future__ import annotations

import pytest

from logpipe.closed import Closed, from_event, from_header, reason_of_event, unchecked_warning


def test_the_header_gives_the_count_and_the_names() -> None:
    """`<count> <names>`: the count may exceed the names listed."""
    assert from_header("3 .ds-a-1,.ds-b-2") == Closed(3, (".ds-a-1", ".ds-b-2"))
    assert from_header(" 1 .ds-a-1 ") == Closed(1, (".ds-a-1",))


@pytest.mark.parametrize("value", [None, "", "0 .ds-a", "x .ds-a", "-1 .ds-a", "³ .ds-a"])
def test_a_header_not_understood_is_no_warning(value: str | None) -> None:
    """No header, a zero count or one that is no count: nothing to tell."""
    assert from_header(value) is None


def test_the_event_gives_the_count_and_the_names() -> None:
    """A `closed` event's JSON data."""
    assert from_event('{"closed": 2, "indices": [".ds-a-1"]}') == Closed(2, (".ds-a-1",))


BAD_EVENTS = ["", "{", "[]", '{"closed": "2", "indices": []}', '{"closed": 0}', '{"closed": 2}']


@pytest.mark.parametrize("data", BAD_EVENTS)
def test_an_event_not_understood_is_no_warning(data: str) -> None:
    """Data that is not the event's JSON: nothing to tell, and no failure."""
    assert from_event(data) is None


def test_the_warning_names_them_and_counts_the_rest() -> None:
    """One index is named alone; beyond the names given, `and N more`."""
    assert Closed(1, (".ds-a-1",)).warning() == (
        "warning: lines may be missing: Elasticsearch skips closed indices, and 1 index of "
        "the streams read is closed: .ds-a-1"
    )
    assert (
        Closed(12, (".ds-a-1", ".ds-b-2"))
        .warning()
        .endswith("12 indices of the streams read are closed: .ds-a-1, .ds-b-2 and 10 more")
    )


def test_a_list_not_checked_is_a_warning_with_the_collectors_reason() -> None:
    """The event's reason (a string, else nothing to tell); the warning names the command
    and shows the reason on one line, control characters made spaces."""
    assert reason_of_event('{"reason": "Elasticsearch did not answer"}') == (
        "Elasticsearch did not answer"
    )
    for data in ("", "{", "[]", '{"reason": 3}', "{}"):
        assert reason_of_event(data) is None
    assert unchecked_warning("the search", "refused\x1b[2J (HTTP 403)") == (
        "warning: lines may be missing: the search could not check for closed indices, "
        "which Elasticsearch skips: refused [2J (HTTP 403)"
    )
    assert unchecked_warning("the tail", "").endswith("skips: no reason given")
