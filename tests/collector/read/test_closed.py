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
from collector.read.closed import MAX_NAMED, ClosedIndex, ClosedIndices, Hidden, hidden
from collector.read.events import closed_event, closed_unchecked_event
from collector.read.filters import Filters
from collector.read.http import MAX_REASON, closed_header, unchecked_reason
from collector.read.search import Reader
from tests.collector.fake_es import fake_es


def backing(stream: str, generation: int = 1) -> ClosedIndex:
    """A closed backing index of `stream`, named as Elasticsearch names them."""
    return ClosedIndex(f".ds-{stream}-2026.12.01-{generation:06d}", stream)


API = "logs-api.keep_14d-default"
WEB = "logs-web.keep_400d-prod"
NGINX = "logs-nginx.access.keep_14d-default"


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
    assert hidden(closed, Filters(hosts=("h",))).count == 3  # other filters narrow nothing


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

    def __init__(self, closed: list[ClosedIndex]) -> None:
        self.closed = closed
        self.asked = 0
        self.failing = False
        self.gate: asyncio.Event | None = None

    async def closed_indices(self) -> list[ClosedIndex]:
        self.asked += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise ReadUnavailable("Elasticsearch cannot answer now: HTTP 503")
        return list(self.closed)


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
        assert (await indices.hiding(Filters())) == Hidden(1, (backing(API).name,))
        clock.now += 1.9
    assert lister.asked == 1
    lister.closed.append(backing(WEB))
    clock.now += 0.6
    assert (await indices.hiding(Filters())).count == 2
    assert lister.asked == 2


async def test_reads_at_once_wait_for_one_answer() -> None:
    """Ten reads arriving while the list is fetched make one request between them."""
    lister = Lister([backing(API)])
    lister.gate = asyncio.Event()
    indices = ClosedIndices(lister, clock=Clock())
    reads = [asyncio.create_task(indices.hiding(Filters())) for _ in range(10)]
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
    assert (await indices.hiding(Filters())).count == 1
    assert indices.unchecked is None
    lister.failing = True
    with caplog.at_level(logging.INFO, logger="logpipe.collector.read"):
        for _ in range(3):
            clock.now += 10
            assert (await indices.hiding(Filters())).count == 1
            assert indices.unchecked == "Elasticsearch cannot answer now: HTTP 503"
            assert (await indices.hiding(Filters())).count == 1
        lister.failing = False
        lister.closed = []
        clock.now += 10
        assert (await indices.hiding(Filters())) is None
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
