"""Which closed indices a read is told of, and how often the collector asks Elasticsearch
for them (a lister standing in for Elasticsearch counts the requests; the real node's
answers are in tests/integration/test_read_closed.py)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import unquote

import orjson
import pytest

from collector.errors import ReadUnavailable
from collector.read.closed import (
    CLOCK_ALLOWANCE_NS,
    MAX_NAMED,
    ClosedIndex,
    ClosedIndices,
    Hidden,
    hidden,
    line_margin,
    with_ends,
)
from collector.read.cursor import Position
from collector.read.events import closed_event, closed_unchecked_event
from collector.read.filters import Filters
from collector.read.http import MAX_REASON, closed_header, tail_start, unchecked_reason
from collector.read.search import Reader
from collector.read.tail import TailRequest
from collector.rules.engine import Engine
from tests.collector.fake_es import fake_es


def backing(stream: str, generation: int = 1) -> ClosedIndex:
    """A closed backing index of `stream`, named as Elasticsearch names them."""
    return ClosedIndex(f".ds-{stream}-2026.12.01-{generation:06d}", stream)


API = "logs-api.keep_14d-default"
WEB = "logs-web.keep_400d-prod"
NGINX = "logs-nginx.access.keep_14d-default"


def _count(told: Hidden | None) -> int:
    """How many closed indices `told` says hide lines (some must)."""
    assert told is not None
    return told.count


def test_only_logpipes_log_streams_are_told_of() -> None:
    """Another tool's stream, the dead letters and a plain index are never named."""
    closed = [
        backing(API),
        backing("logs-nginx-default"),  # Filebeat's, on a shared cluster
        backing("logs-logpipe.deadletter-default"),
        ClosedIndex("archive-2025", "archive-2025"),
    ]
    assert hidden(closed, Filters()) == Hidden(1, (backing(API).name,))


def test_a_dataset_filter_leaves_out_the_other_datasets_streams() -> None:
    """`dataset=api*` reads only api streams: a closed web index hides none of its lines;
    a dataset with a dot is the whole part before `.keep_`."""
    closed = [backing(API), backing(WEB), backing(NGINX)]
    assert hidden(closed, Filters(datasets=("api*",))) == Hidden(1, (backing(API).name,))
    assert hidden(closed, Filters(datasets=("web", "nope"))) == Hidden(1, (backing(WEB).name,))
    assert hidden(closed, Filters(datasets=("nginx.access",))) == Hidden(1, (backing(NGINX).name,))
    assert hidden(closed, Filters(datasets=("nginx",))) is None
    assert hidden(closed, Filters(datasets=("API",))) is None  # as a keyword: case counts
    assert _count(hidden(closed, Filters(hosts=("h",)))) == 3  # other filters narrow nothing


def test_the_names_are_bounded_and_the_count_is_whole() -> None:
    """Twenty-five closed indices: all counted, the first ten by name listed."""
    closed = [backing(API, g) for g in range(25, 0, -1)]
    told = hidden(closed, Filters())
    assert told is not None
    assert told.count == 25
    assert told.names == tuple(backing(API, g).name for g in range(1, MAX_NAMED + 1))


def test_no_closed_index_tells_nothing() -> None:
    """Without a closed index of the streams read, an answer carries no warning."""
    assert hidden([], Filters()) is None
    assert hidden([backing("logs-nginx-default")], Filters()) is None


def test_the_header_and_the_event_carry_count_and_names() -> None:
    """The header is `<count> <names, comma-separated>`; the event's data is JSON."""
    told = Hidden(12, (".ds-a-1", ".ds-b-2"))
    assert closed_header(told) == "12 .ds-a-1,.ds-b-2"
    event = closed_event(told.count, told.names)
    head, _, data = event.partition(b"data: ")
    assert (head, data[-2:]) == (b"event: closed\n", b"\n\n")
    assert orjson.loads(data) == {"closed": 12, "indices": [".ds-a-1", ".ds-b-2"]}


class Lister:
    """Answers the list it holds, counting the requests; may fail, or hold its answer."""

    def __init__(self, closed: list[ClosedIndex], created: dict[str, int] | None = None) -> None:
        self.closed = closed
        self.created = created or {}
        self.asked = 0
        self.failing = False
        self.dates_failing = False
        self.dated: list[list[str]] = []
        self.gate: asyncio.Event | None = None

    async def closed_indices(self) -> list[ClosedIndex]:
        self.asked += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise ReadUnavailable("Elasticsearch cannot answer now: HTTP 503")
        return list(self.closed)

    async def creation_dates(self, streams: list[str]) -> dict[str, int]:
        self.dated.append(streams)
        if self.dates_failing:
            raise ReadUnavailable("Elasticsearch cannot answer now: HTTP 503")
        return dict(self.created)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_list_is_asked_for_once_in_its_time() -> None:
    """Reads within the kept time share one request; the first read after it asks again,
    and sees an index closed meanwhile."""
    lister, clock = Lister([backing(API)]), Clock()
    indices = ClosedIndices(lister, kept=10, clock=clock)
    for _ in range(5):
        assert (await indices.hiding(Filters(), None)) == Hidden(1, (backing(API).name,))
        clock.now += 1.9
    assert lister.asked == 1
    lister.closed.append(backing(WEB))
    clock.now += 0.6
    assert _count(await indices.hiding(Filters(), None)) == 2
    assert lister.asked == 2


async def test_reads_at_once_wait_for_one_answer() -> None:
    """Ten reads arriving while the list is fetched make one request between them."""
    lister = Lister([backing(API)])
    lister.gate = asyncio.Event()
    indices = ClosedIndices(lister, clock=Clock())
    reads = [asyncio.create_task(indices.hiding(Filters(), None)) for _ in range(10)]
    await asyncio.sleep(0)
    lister.gate.set()
    told = await asyncio.gather(*reads)
    assert lister.asked == 1
    assert all(t == Hidden(1, (backing(API).name,)) for t in told)


async def test_a_failure_keeps_the_last_list_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Elasticsearch failing the list: reads go on with the last one known, it is asked
    again only after the kept time, and one warning says so until it answers again."""
    lister, clock = Lister([backing(API)]), Clock()
    indices = ClosedIndices(lister, kept=10, clock=clock)
    assert _count(await indices.hiding(Filters(), None)) == 1
    assert indices.unchecked is None
    lister.failing = True
    with caplog.at_level(logging.INFO, logger="logpipe.collector.read"):
        for _ in range(3):
            clock.now += 10
            assert _count(await indices.hiding(Filters(), None)) == 1
            assert indices.unchecked == "Elasticsearch cannot answer now: HTTP 503"
            assert _count(await indices.hiding(Filters(), None)) == 1
        lister.failing = False
        lister.closed = []
        clock.now += 10
        assert (await indices.hiding(Filters(), None)) is None
        assert indices.unchecked is None
    assert lister.asked == 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "cannot list closed indices: answers will not name those hiding lines"
    ]
    assert caplog.records[-1].getMessage() == "closed indices listed again"


async def test_the_reader_lists_the_closed_indices_elasticsearch_resolves() -> None:
    """One GET _resolve/index for the closed (hidden too) backing indices of logpipe's log
    streams; an index of no stream stands for itself; a failure is a read's."""
    async with fake_es() as fake:
        fake.resolved = [
            {
                "name": ".ds-logs-a.keep_1d-x-2026.12.01-000001",
                "attributes": ["hidden", "closed"],
                "data_stream": "logs-a.keep_1d-x",
            },
            {"name": "logs-b.keep_1d-x", "attributes": ["closed"]},
            {
                "name": ".ds-logs-c.keep_1d-x-2026.12.01-000002",
                "attributes": ["hidden", "open"],
                "data_stream": "logs-c.keep_1d-x",
            },
        ]
        es = fake.client()
        try:
            reader = Reader(es, timeout=5)
            assert await reader.closed_indices() == [
                ClosedIndex(".ds-logs-a.keep_1d-x-2026.12.01-000001", "logs-a.keep_1d-x"),
                ClosedIndex("logs-b.keep_1d-x", "logs-b.keep_1d-x"),
            ]
            fake.resolve_status = 503
            with pytest.raises(ReadUnavailable, match=r"^Elasticsearch failed to list them \(HTT"):
                await reader.closed_indices()
            fake.resolve_status = 403  # a user without view_index_metadata on the streams
            with pytest.raises(ReadUnavailable) as refused:
                await reader.closed_indices()
            assert str(refused.value) == (
                "Elasticsearch refused to list them (HTTP 403): the collector's Elasticsearch "
                "user lacks the view_index_metadata privilege on logpipe's streams"
            )
        finally:
            await es.close()
    path, _, query = unquote(fake.resolves[0]).partition("?")
    assert path == "/_resolve/index/*.ds-logs-*.keep_*-*"
    assert sorted(query.split("&")) == ["expand_wildcards=closed,hidden", "filter_path=indices"]


def test_why_the_list_was_not_had_is_a_header_and_an_event() -> None:
    """The reason goes on one line of printable ASCII (a header takes no more), bounded;
    the event's data is JSON."""
    assert unchecked_reason("Elasticsearch\nrefused \u00e9 it") == "Elasticsearch refused   it"
    long = unchecked_reason("x" * 1000)
    assert (len(long), long[-3:]) == (MAX_REASON, "...")
    event = closed_unchecked_event("Elasticsearch did not answer the collector")
    head, _, data = event.partition(b"data: ")
    assert (head, data[-2:]) == (b"event: closed_unchecked\n", b"\n\n")
    assert orjson.loads(data) == {"reason": "Elasticsearch did not answer the collector"}


HOUR_NS = 3600 * 10**9
ROLLED_MS = 1_796_000_000_000  # when API's stream rolled over from generation 1 to 2


def dated(stream: str, generation: int, ended_ms: int | None) -> ClosedIndex:
    """A closed backing index of `stream` whose stream rolled over from it at `ended_ms`."""
    return ClosedIndex(backing(stream, generation).name, stream, ended_ms)


def test_a_read_starting_after_the_end_plus_the_margin_is_not_told_of_it() -> None:
    """The index's lines are stamped at most `margin` after its stream rolled over from
    it: a read from before that bound is told of it, one from after it is not."""
    closed = [dated(API, 1, ROLLED_MS)]
    end, margin = ROLLED_MS * 10**6, 2 * HOUR_NS
    told = Hidden(1, (backing(API).name,))
    assert hidden(closed, Filters(), end - HOUR_NS, margin) == told  # before the end
    assert hidden(closed, Filters(), end + HOUR_NS, margin) == told  # within the margin
    assert hidden(closed, Filters(), end + margin, margin) == told  # at the bound itself
    assert hidden(closed, Filters(), end + margin + 1, margin) is None
    assert hidden(closed, Filters(), end + HOUR_NS, 0) is None  # no margin, after the end
    assert hidden(closed, Filters(), None, margin) == told  # a read of any time


def test_an_index_of_unknown_end_is_told_of_to_every_read() -> None:
    """No known rollover (an index of no stream, a failed lookup): named whatever the
    time read, as are those of a read of any time."""
    closed = [dated(API, 1, None), ClosedIndex("logs-b.keep_1d-x", "logs-b.keep_1d-x")]
    assert hidden(closed, Filters(), 2**62, CLOCK_ALLOWANCE_NS) == Hidden(
        2, (backing(API).name, "logs-b.keep_1d-x")
    )


def test_each_stream_has_its_own_end_and_the_dataset_filter_still_applies() -> None:
    """Two streams rolled over a day apart: a read between the two bounds is told of the
    later one only, and with a dataset filter only of its datasets' streams."""
    day_ms = 24 * 3600 * 1000
    closed = [dated(API, 1, ROLLED_MS), dated(WEB, 3, ROLLED_MS + day_ms), dated(WEB, 4, None)]
    between = (ROLLED_MS + day_ms // 2) * 10**6
    web = (backing(WEB, 3).name, backing(WEB, 4).name)
    assert hidden(closed, Filters(), between, HOUR_NS) == Hidden(2, web)
    assert _count(hidden(closed, Filters(), between - day_ms * 10**6, HOUR_NS)) == 3
    assert hidden(closed, Filters(datasets=("api",)), between, HOUR_NS) is None
    assert hidden(closed, Filters(datasets=("api",)), 0, HOUR_NS) == Hidden(1, (backing(API).name,))


def test_the_end_is_the_creation_of_the_next_generation_of_the_same_stream() -> None:
    """Generation 3 ends when the least later generation of its stream was made (4 was
    deleted: 5); the write index has no later one; another stream's and a restored
    copy's dates count for nothing; a restored copy ends with its generation's successor."""
    created = {
        backing(API, 3).name: 300,
        backing(API, 5).name: 500,
        backing(API, 6).name: 600,
        backing(WEB, 4).name: 450,
        "restored-" + backing(API, 4).name: 999,
    }
    closed = [
        ClosedIndex(backing(API, 3).name, API),
        ClosedIndex(backing(API, 6).name, API),
        ClosedIndex("restored-" + backing(API, 2).name, API),
        ClosedIndex("logs-b.keep_1d-x", "logs-b.keep_1d-x"),
    ]
    assert [i.ended for i in with_ends(closed, created)] == [500, None, 300, None]


async def test_the_creation_dates_are_asked_with_the_list_and_a_failure_names_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One lookup of the dates per refresh of the list, for the streams of the closed
    indices; when it fails, every index is named, the read says nothing is unchecked, and
    one warning is logged until the dates come again."""
    lister = Lister([backing(API, 1)], {backing(API, 1).name: 1, backing(API, 2).name: ROLLED_MS})
    clock = Clock()
    indices = ClosedIndices(lister, kept=10, clock=clock, margin=HOUR_NS)
    late = ROLLED_MS * 10**6 + 2 * HOUR_NS
    assert await indices.hiding(Filters(), late) is None
    assert await indices.hiding(Filters(), late - 2 * HOUR_NS) == Hidden(1, (backing(API).name,))
    assert lister.dated == [[API]]
    lister.dates_failing = True
    with caplog.at_level(logging.INFO, logger="logpipe.collector.read"):
        for _ in range(2):
            clock.now += 10
            assert await indices.hiding(Filters(), late) == Hidden(1, (backing(API).name,))
            assert indices.unchecked is None
        lister.dates_failing = False
        clock.now += 10
        assert await indices.hiding(Filters(), late) is None
    assert len(lister.dated) == 4
    assert [r.getMessage() for r in caplog.records] == [
        "cannot read when the streams of closed indices rolled over: answers name those "
        "indices whatever the time read",
        "rollover times of closed indices read again",
    ]


async def test_no_dates_are_asked_without_a_closed_backing_index() -> None:
    """Only closed indices backing no stream, or none: no second request."""
    lister = Lister([ClosedIndex("archive", "archive")])
    indices = ClosedIndices(lister, clock=Clock())
    assert (await indices.hiding(Filters(), 0)) is None  # not logpipe's
    assert lister.dated == []


def test_a_tail_starts_at_its_since_its_resume_or_now() -> None:
    """A resume starts at its last line's arrival, a tail of no starting line now, a tail
    with starting lines at its `since` (None: its last lines may be of any time)."""
    now = 5 * 10**18
    resume = Position((1_796_000_000_123, 7), ("id",))
    assert tail_start(TailRequest(Filters(since=1), 10, resume), now) == 1_796_000_000_123 * 10**6
    assert tail_start(TailRequest(Filters(since=1), 0, None), now) == now
    assert tail_start(TailRequest(Filters(since=1), 10, None), now) == 1
    assert tail_start(TailRequest(Filters(), 10, None), now) is None


async def test_the_reader_asks_the_creation_dates_of_the_streams_named() -> None:
    """One GET <streams>/_settings/index.creation_date, every state expanded, answered as
    creation dates by name; a failure is the list's; too many names: the backing pattern."""
    async with fake_es() as fake:
        fake.creation_dates = {
            backing(API, 1).name: "1796000000000",
            backing(API, 2).name: "2",
            backing(API, 3).name: "soon",  # not a date: left out, its index named
        }
        es = fake.client()
        try:
            reader = Reader(es, timeout=5)
            assert await reader.creation_dates([API, WEB]) == {
                backing(API, 1).name: 1_796_000_000_000,
                backing(API, 2).name: 2,
            }
            assert await reader.creation_dates([f"logs-s{n:04}.keep_1d-x" for n in range(300)])
            fake.settings_status = 503
            with pytest.raises(ReadUnavailable, match=r"^Elasticsearch failed to list them"):
                await reader.creation_dates([API])
        finally:
            await es.close()
    path, _, query = unquote(fake.settings[0]).partition("?")
    assert path == f"/{API},{WEB}/_settings/index.creation_date"
    assert sorted(query.split("&")) == [
        "allow_no_indices=true",
        "expand_wildcards=all",
        "filter_path=*.settings.index.creation_date",
        "ignore_unavailable=true",
    ]
    assert unquote(fake.settings[1]).partition("?")[0] == (
        "/*.ds-logs-*.keep_*-*/_settings/index.creation_date"
    )


def test_the_margin_is_the_rules_skew_and_an_hour_of_clocks() -> None:
    """A rule's time may lie timestamp_max_skew after Docker's, Docker's an hour after
    the node's: 1d by default is 25 hours; a skew of 7d, 7 days and an hour."""
    assert line_margin(Engine().max_skew_ns) == 25 * HOUR_NS == 24 * HOUR_NS + CLOCK_ALLOWANCE_NS
    assert line_margin(Engine(max_skew="7d").max_skew_ns) == (7 * 24 + 1) * HOUR_NS


async def test_a_reload_raising_the_skew_widens_the_margin_and_none_narrows_it() -> None:
    """A read from 3 hours after the end: told of the index once the margin is 7 days,
    and still once a reload brings it back to 2 hours."""
    lister = Lister([backing(API, 1)], {backing(API, 1).name: 1, backing(API, 2).name: ROLLED_MS})
    indices = ClosedIndices(lister, clock=Clock(), margin=2 * HOUR_NS)
    start = ROLLED_MS * 10**6 + 3 * HOUR_NS
    assert await indices.hiding(Filters(), start) is None
    indices.widen(line_margin(Engine(max_skew="7d").max_skew_ns))
    assert await indices.hiding(Filters(), start) == Hidden(1, (backing(API).name,))
    indices.widen(2 * HOUR_NS)
    assert await indices.hiding(Filters(), start) == Hidden(1, (backing(API).name,))
