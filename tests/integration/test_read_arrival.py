"""Arrival to the millisecond on the real node: a tail orders lines by `event.ingested`
in ms, its horizon cuts inside a second, and nothing is sent twice or skipped at the cut.

The poller runs on a clock of the test's own (its `_now_ms`), so where the horizon falls
is chosen, not waited for; the documents are indexed with the arrival times wanted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from collector.read import cursor
from collector.read.cursor import TAIL_KEY
from collector.read.filters import Filters
from collector.read.poller import Pace, Poller, arrived_by
from collector.read.query import nanos_iso
from collector.read.search import Reader
from collector.read.subscriber import Subscriber
from collector.read.tail import TailRequest, catch_up
from tests.conftest import ES_URL
from tests.integration.readers import Collector, Source, collectors, post
from tests.integration.sse import Tails

# The read API searches every logpipe stream on the node: a stream another test creates
# meanwhile, its shard not yet started, fails part of the read (no_shard_available).
pytestmark = [pytest.mark.integration, pytest.mark.alone]
__all__ = ["collectors"]  # the fixture

STREAM = "logs-readtest.keep_14d-default"


class ClockPoller(Poller):
    """A poller whose clock the test sets (epoch ms)."""

    def __init__(self, reader: Reader, filters: Filters, pace: Pace, now_ms: int) -> None:
        self.now_ms = now_ms
        super().__init__(reader, filters, pace)

    def _now_ms(self) -> int:
        return self.now_ms


@pytest.fixture
async def reader(template: None) -> AsyncIterator[Reader]:
    """The read API's reader of the test node."""
    es = AsyncElasticsearch(ES_URL)
    yield Reader(es)
    await es.close()


def index(es: Elasticsearch, host: str, *docs: tuple[str, int, int]) -> None:
    """Index `(message, arrival ms, @timestamp ns)` lines of `host`, searchable on return."""
    operations: list[dict[str, object]] = []
    for message, arrival, ts in docs:
        operations.append({"create": {"_index": STREAM}})
        operations.append(
            {
                "@timestamp": nanos_iso(ts),
                "message": message,
                "host": {"name": host},
                "event": {"ingested": nanos_iso(arrival * 10**6), "dataset": "readtest"},
            }
        )
    result = es.bulk(operations=operations, refresh="wait_for")
    assert not result["errors"], result


async def sent(subscriber: Subscriber) -> list[str]:
    """The messages offered to `subscriber` since the last call."""
    lines, missed = await subscriber.take(0.01)
    assert missed == 0
    return [orjson.loads(d.document)["message"] for d in lines]


async def test_the_horizon_cuts_a_second_to_the_millisecond(
    es: Elasticsearch, reader: Reader
) -> None:
    """Lines that arrived 100 ms apart within one second, their @timestamps in the other
    order: a horizon in the middle of the second sends those before it in arrival order,
    the next poll the rest; a line stamped with the very millisecond of the cut, and one
    that became searchable after the horizon passed its arrival, each come once."""
    host = "arr-" + uuid.uuid4().hex[:10]
    second = (time.time_ns() // 10**9 - 10) * 1000  # a whole second, 10 s ago (ms)
    ts = second * 10**6
    index(es, host, *[(f"a{k}", second + 100 * k, ts + 10**6 - k) for k in range(10)])
    index(es, host, ("at-cut", second + 450, ts + 10**6 + 1))
    pace = Pace(interval=0.5, settle=0.0, late_window=30.0)
    poller = ClockPoller(reader, Filters(hosts=(host,)), pace, second - 1)
    await poller.start()
    subscriber = Subscriber(100)
    poller.subscribers.add(subscriber)

    poller.now_ms = second + 450
    await poller.poll()
    assert await sent(subscriber) == ["a0", "a1", "a2", "a3", "a4", "at-cut"]
    await poller.poll()
    assert await sent(subscriber) == []

    poller.now_ms = second + 899
    await poller.poll()
    assert await sent(subscriber) == ["a5", "a6", "a7", "a8"]

    # Arrived before the position reached, searchable only now: sent once, after.
    index(es, host, ("late", second + 300, ts))
    poller.now_ms = second + 2000
    await poller.poll()
    assert await sent(subscriber) == ["a9", "late"]
    poller.now_ms = second + 3500
    await poller.poll()
    assert await sent(subscriber) == []


async def test_a_resumed_tail_continues_inside_the_second(
    es: Elasticsearch, reader: Reader
) -> None:
    """The event id of a line holds its arrival in ms: resuming from it (on any collector)
    sends exactly the lines after it, though all arrived within the same second, and
    whatever `since` says of their @timestamp."""
    host = "arr-" + uuid.uuid4().hex[:10]
    second = (time.time_ns() // 10**9 - 10) * 1000
    ts = second * 10**6
    index(es, host, *[(f"b{k}", second + 10 * k, ts + 100 - k) for k in range(8)])
    pace = Pace(interval=0.5, settle=0.0, late_window=0.0)
    first = ClockPoller(reader, Filters(hosts=(host,)), pace, second - 1)
    subscriber = Subscriber(100)
    first.subscribers.add(subscriber)
    first.now_ms = second + 35
    await first.poll()
    lines, _ = await subscriber.take(0.01)
    assert [orjson.loads(d.document)["message"] for d in lines] == ["b0", "b1", "b2", "b3"]

    fields = cursor.decode("Last-Event-ID", lines[-1].event_id)
    resume = cursor.position_of("Last-Event-ID", fields, len(TAIL_KEY))
    wanted = TailRequest(Filters(hosts=(host,)), 0, resume)
    pages = catch_up(reader, wanted, arrived_by(second + 1000))
    rest = [orjson.loads(d.document)["message"] async for page in pages for d in page]
    assert rest == ["b4", "b5", "b6", "b7"]
    # A `since` after their @timestamp does not drop them: after the id, they are new.
    wanted = TailRequest(Filters(hosts=(host,), since=time.time_ns()), 0, resume)
    pages = catch_up(reader, wanted, arrived_by(second + 1000))
    rest = [orjson.loads(d.document)["message"] async for page in pages for d in page]
    assert rest == ["b4", "b5", "b6", "b7"]


async def test_batches_of_one_second_come_in_arrival_order(
    collectors: Callable[..., Collector],
) -> None:
    """Batches sent one after the other through two collectors, each stamped earlier by
    Docker than the one before: the tail sends them in the order they arrived (ms apart,
    mostly within one second), each batch's lines in @timestamp order."""
    a, b = collectors(), collectors()
    src = Source()
    t = time.time_ns()
    expected = []
    async with Tails() as tails:
        _, tail = await tails.open(a.url, host=src.host, lines="0")
        for i in range(8):
            lines = [(f"batch{i}-{j}", t - i * 10**6 + j) for j in range(3)]
            body = src.batch(*lines)
            assert await asyncio.to_thread(post, b if i % 2 else a, body) == 200
            expected += [message for message, _ in lines]
        events = await tail.lines(len(expected))
    assert [e.doc()["message"] for e in events] == expected


def test_a_settle_delay_short_of_the_refresh_interval_is_warned_of(
    collectors: Callable[..., Collector],
) -> None:
    """A collector whose tails would send many lines late says so as it starts, with the
    value to set; at the defaults it says nothing of the kind."""
    fine = collectors()
    short = collectors(index__refresh_interval="5s", ready=False)
    assert "LOGPIPE_READ_TAIL_SETTLE" not in fine.process.output()
    warning = next(
        orjson.loads(line)
        for line in short.process.output().splitlines()
        if "LOGPIPE_READ_TAIL_SETTLE" in line
    )
    assert warning["log.level"] == "warning"
    assert warning["message"].endswith("set it to 5.5 or more")
