"""`logpipe tail` against a scripted collector: reconnects resume exactly after the last
line printed, through dropped connections, timeouts and error answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from logpipe.client import Endpoint
from logpipe.document import Document
from logpipe.errors import AuthError, BadQuery, LogpipeError, Unreachable
from logpipe.query import Filters
from logpipe.tail import MAX_LINES, Position, Tail, TailRequest
from logpipe.timespec import nanos
from tests.conftest import free_port
from tests.logpipe.fake_collector import Reply, Script, doc, error, fake_collector, line_event

SSE = {"Content-Type": "text/event-stream"}
NOW = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)


class Recorder:
    """A tail whose printed lines, notices and waits are kept for the test."""

    def __init__(self, script: Script, lines: int = 10, timeout: float = 10) -> None:
        self.printed: list[str] = []
        self.notices: list[str] = []
        self.waits: list[float] = []
        endpoint = Endpoint(script.url, "read-token", "--url", timeout)
        self.tail = Tail(
            endpoint,
            TailRequest(Filters(service=("api",)), lines),
            self.printed_doc,
            self.notices.append,
            sleep=self.waits.append,
            clock=lambda: NOW,
        )

    def printed_doc(self, doc: Document) -> None:
        """Keep the message printed."""
        self.printed.append(doc.message)

    def run_until_error(self) -> LogpipeError:
        """Run the tail until the script ends it with an error; that error."""
        with pytest.raises(LogpipeError) as caught:
            self.tail.run()
        return caught.value


def events(*pairs: tuple[str, str]) -> list[str]:
    """Line events for (message, id) pairs."""
    return [line_event(doc(message), event_id) for message, event_id in pairs]


def test_a_connection_dropped_mid_event_resumes_after_the_last_whole_line() -> None:
    """A drop inside an event loses nothing and repeats nothing: the reconnect sends the id
    of the last complete line and prints what follows it."""
    half = 'id: c3\nevent: line\ndata: {"message": "thr'
    with fake_collector(
        Reply(200, SSE, [*events(("one", "c1"), ("two", "c2")), half], drop=True),
        Reply(200, SSE, events(("three", "c3"), ("four", "c4")), drop=True),
        error(401, "no such read token"),
    ) as script:
        rec = Recorder(script, lines=5)
        assert isinstance(rec.run_until_error(), AuthError)
    assert rec.printed == ["one", "two", "three", "four"]
    first, second, third = script.requests
    assert first.param("lines") == "5"
    assert "Last-Event-ID" not in first.headers
    assert first.param("service") == "api"
    assert first.headers["Authorization"] == "Bearer read-token"
    assert second.headers["Last-Event-ID"] == "c2"
    assert second.param("lines") is None
    assert third.headers["Last-Event-ID"] == "c4"
    assert second.param("service") == "api"


def test_the_outage_is_told_once_and_the_reconnect_too() -> None:
    """One notice when the connection is lost (however many attempts fail), one when back."""
    with fake_collector(
        Reply(200, SSE, events(("one", "c1")), drop=True),
        error(503, "Elasticsearch is unreachable", **{"Retry-After": "2"}),
        error(503, "Elasticsearch is unreachable", **{"Retry-After": "3"}),
        Reply(200, SSE, events(("two", "c2")), drop=False),
        error(403, "an ingest token may not read"),
    ) as script:
        rec = Recorder(script)
        assert isinstance(rec.run_until_error(), AuthError)
    assert rec.printed == ["one", "two"]
    lost, back, _ended = rec.notices
    assert "connection to the collector" in lost
    assert "reconnecting" in lost
    assert back.startswith("reconnected after")
    assert "after the last line shown" in back
    assert rec.waits[1:3] == [2.0, 3.0]  # the collector's Retry-After
    assert [r.headers.get("Last-Event-ID") for r in script.requests] == [
        None,
        "c1",
        "c1",
        "c1",
        "c2",
    ]


def test_a_missed_event_is_told_and_following_goes_on() -> None:
    """`missed` becomes a notice with the count; the lines after it are printed."""
    missed = 'event: missed\ndata: {"missed": 1200}\n\n'
    with fake_collector(
        Reply(200, SSE, [*events(("one", "c1")), missed, *events(("two", "c9"))]),
        error(401, "no such read token"),
    ) as script:
        rec = Recorder(script)
        rec.run_until_error()
    assert rec.printed == ["one", "two"]
    assert any("missed 1200 lines" in n for n in rec.notices)
    assert script.requests[1].headers["Last-Event-ID"] == "c9"


def test_keepalives_and_unknown_events_print_nothing() -> None:
    """Comment lines and events of other types are read past without output."""
    with fake_collector(
        Reply(200, SSE, [": keepalive\n\n", "event: other\ndata: x\n\n", *events(("a", "c1"))]),
        error(400, "level: 'loud' is not a level"),
    ) as script:
        rec = Recorder(script)
        assert isinstance(rec.run_until_error(), BadQuery)
    assert rec.printed == ["a"]


def test_silence_longer_than_the_read_timeout_reconnects() -> None:
    """A connection that stays silent past the timeout (no keepalive) is dropped and
    reopened after the last line, as a lost one is."""
    with fake_collector(
        Reply(200, SSE, events(("one", "c1")), hold=3, drop=True),
        error(401, "no such read token"),
    ) as script:
        rec = Recorder(script, timeout=0.5)
        rec.run_until_error()
    assert "timed out" in rec.notices[0]
    assert script.requests[1].headers["Last-Event-ID"] == "c1"


def test_a_reconnect_before_any_line_asks_for_the_lines_since_it_first_connected() -> None:
    """With no id to resume from, the reconnect asks for every line since the first
    connection (less the in-flight margin), not for the last N again."""
    with fake_collector(
        Reply(200, SSE, [": keepalive\n\n"], drop=True),
        error(401, "no such read token"),
    ) as script:
        rec = Recorder(script, lines=0)
        rec.run_until_error()
    first, second = script.requests
    assert first.param("lines") == "0"
    assert first.param("since") is None
    assert second.param("lines") == str(MAX_LINES)
    assert second.param("since") == "2026-12-02T09:59:50Z"


def test_a_collector_down_at_start_ends_the_tail_at_once() -> None:
    """Before the first connection nothing is retried: the error comes out at once."""
    script = Script([], url=f"http://127.0.0.1:{free_port()}")
    rec = Recorder(script)
    error_seen = rec.run_until_error()
    assert isinstance(error_seen, Unreachable)
    assert "connection refused" in str(error_seen)
    assert rec.waits == []


def test_too_many_tails_is_waited_out_after_the_first_connection() -> None:
    """429 (too many tails) while following is retried like a lost connection."""
    with fake_collector(
        Reply(200, SSE, events(("one", "c1")), drop=True),
        error(429, "too many tails", **{"Retry-After": "5"}),
        Reply(200, SSE, events(("two", "c2"))),
        error(401, "no such read token"),
    ) as script:
        rec = Recorder(script)
        rec.run_until_error()
    assert rec.printed == ["one", "two"]
    assert 5.0 in rec.waits
    assert len(script.requests) == 4


def test_a_reconnect_without_an_id_keeps_a_later_since_of_the_user() -> None:
    """The user's --since wins over "since the first connection" when it is later; with an
    id, only the id and the filters are sent (the collector ignores `lines` then)."""
    since = nanos(datetime(2026, 12, 2, 9, 59, 55, tzinfo=UTC))
    request = TailRequest(Filters(since=since, level="warn"), lines=5)
    position = Position(connected_at=NOW)
    params, headers = position.params(request)
    assert dict(params)["since"] == "2026-12-02T09:59:55Z"
    assert (dict(params)["lines"], headers) == (str(MAX_LINES), {})
    position.last_id = "c7"
    params, headers = position.params(request)
    assert params == [("level", "warn")]  # no since: a late line with an old @timestamp is new
    assert headers == {"Last-Event-ID": "c7"}


def test_the_id_that_ends_the_starting_lines_is_resumed_from() -> None:
    """Before any line, the collector's id alone (where the tail stands) is what a
    reconnect sends: no `since`, so lines arriving late with old timestamps still come."""
    with fake_collector(
        Reply(200, SSE, ["id: p1\n\n", ": keepalive\n\n"], drop=True),
        error(401, "no such read token"),
    ) as script:
        since = nanos(datetime(2026, 12, 2, 9, 0, 0, tzinfo=UTC))
        rec = Recorder(script, lines=3)
        rec.tail.request = TailRequest(Filters(since=since, service=("api",)), 3)
        rec.run_until_error()
    first, second = script.requests
    assert first.param("since") == "2026-12-02T09:00:00Z"
    assert second.headers["Last-Event-ID"] == "p1"
    assert second.params == [("service", "api")]
    assert rec.printed == []


def test_the_reconnect_is_told_when_the_collector_answers() -> None:
    """The outage ends when the collector answers, not at its first event (a keepalive may
    take 15 s): the notice comes even if the new connection sends nothing."""
    with fake_collector(
        Reply(200, SSE, events(("one", "c1")), drop=True),
        Reply(200, SSE, [], drop=True),
        error(401, "no such read token"),
    ) as script:
        rec = Recorder(script)
        rec.run_until_error()
    assert len(script.requests) == 3
    assert rec.notices[1].startswith("reconnected after 0s; going on after the last line shown")


def test_closed_indices_are_told_once_across_reconnects() -> None:
    """Each connection's `closed` event is told only when it says something new: the same
    indices again after a reconnect, nothing; another one closed since, told."""
    one = 'event: closed\ndata: {"closed": 1, "indices": [".ds-x-1"]}\n\n'
    two = 'event: closed\ndata: {"closed": 2, "indices": [".ds-x-1", ".ds-x-2"]}\n\n'
    with fake_collector(
        Reply(200, SSE, [one, *events(("one", "c1"))], drop=True),
        Reply(200, SSE, [one, *events(("two", "c2"))], drop=True),
        Reply(200, SSE, [two, *events(("three", "c3"))], drop=True),
        error(401, "no such read token"),
    ) as script:
        rec = Recorder(script)
        rec.run_until_error()
    assert rec.printed == ["one", "two", "three"]
    told = [n for n in rec.notices if "closed" in n]
    assert told == [
        "warning: lines may be missing: Elasticsearch skips closed indices, and 1 index of "
        "the streams read is closed: .ds-x-1",
        "warning: lines may be missing: Elasticsearch skips closed indices, and 2 indices of "
        "the streams read are closed: .ds-x-1, .ds-x-2",
    ]
    assert script.requests[3].headers["Last-Event-ID"] == "c3"  # the event moves no id


def test_closed_indices_that_could_not_be_checked_are_told_once_until_the_reason_changes() -> None:
    """A `closed_unchecked` event (the collector could not list the closed indices) is one
    warning saying why; the same reason after a reconnect is not told again, another is;
    the lines come as ever."""
    denied = (
        'event: closed_unchecked\ndata: {"reason": "Elasticsearch refused to list them '
        '(HTTP 403)"}\n\n'
    )
    down = 'event: closed_unchecked\ndata: {"reason": "Elasticsearch did not answer"}\n\n'
    with fake_collector(
        Reply(200, SSE, [denied, *events(("one", "c1"))], drop=True),
        Reply(200, SSE, [denied, *events(("two", "c2"))], drop=True),
        Reply(200, SSE, [down, *events(("three", "c3"))], drop=True),
        error(401, "no such read token"),
    ) as script:
        rec = Recorder(script)
        rec.run_until_error()
    assert rec.printed == ["one", "two", "three"]
    told = [n for n in rec.notices if "closed" in n]
    assert told == [
        "warning: lines may be missing: the tail could not check for closed indices, which "
        "Elasticsearch skips: Elasticsearch refused to list them (HTTP 403)",
        "warning: lines may be missing: the tail could not check for closed indices, which "
        "Elasticsearch skips: Elasticsearch did not answer",
    ]
    assert script.requests[3].headers["Last-Event-ID"] == "c3"  # the event moves no id
