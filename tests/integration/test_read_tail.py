"""`GET /v1/tail` on real collector processes and the node: the last lines then new ones
from every collector, exact resumption, late lines, slow readers, limits, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import pytest
from elasticsearch import Elasticsearch

from collector.read.query import nanos_iso
from tests.conftest import free_port, wait_until
from tests.integration.readers import READ, Collector, Source, collectors, post, request
from tests.integration.sse import Tails

# The read API searches every logpipe stream on the node: a stream another test creates
# meanwhile, its shard not yet started, fails part of the read (no_shard_available).
pytestmark = [pytest.mark.integration, pytest.mark.alone]
__all__ = ["collectors"]  # the fixture


def messages(events: list) -> list[str]:  # type: ignore[type-arg]
    """The messages of line events."""
    return [e.doc()["message"] for e in events]


async def send(c: Collector, src: Source, *messages: str) -> None:
    """POST lines stamped now, one nanosecond apart, through collector `c`."""
    t = time.time_ns()
    body = src.batch(*[(m, t + i) for i, m in enumerate(messages)])
    assert await asyncio.to_thread(post, c, body) == 200


async def test_last_lines_then_lines_through_two_collectors(
    collectors: Callable[..., Collector],
) -> None:
    """The last 3 lines come oldest first, then every line sent through either collector, once."""
    a, b = collectors(), collectors()
    src = Source()
    await send(a, src, "old-1", "old-2", "old-3", "old-4")
    await asyncio.sleep(3)  # past the settle delay: these lines are the past
    async with Tails() as tails:
        status, tail = await tails.open(a.url, host=src.host, lines="3")
        assert status == 200
        assert messages(await tail.lines(3)) == ["old-2", "old-3", "old-4"]
        for i in range(5):
            await send(a if i % 2 else b, src, f"new-{i}a", f"new-{i}b")
        got = messages(await tail.lines(10))
        assert sorted(got) == sorted(f"new-{i}{x}" for i in range(5) for x in "ab")


def tail_answers(c: Collector) -> dict[str, float]:
    """The collector's count of tail requests, by the status answered."""
    text = request(f"{c.url}/metrics", None)[2].decode()
    prefix = 'logpipe_collector_read_requests_total{endpoint="tail",status="'
    counts = [
        line[len(prefix) :].split('"} ') for line in text.splitlines() if line.startswith(prefix)
    ]
    return {status: float(n) for status, n in counts}


async def test_a_reader_gone_before_its_first_lines_ends_its_tail_quietly(
    collectors: Callable[..., Collector],
) -> None:
    """A reader that leaves while its tail's last lines are read (Ctrl-C at once, a check
    that only connects) ends that tail: no 500 and no traceback in the collector's log
    (before: "internal error", the answer's start written to a closed connection), and
    the tails that stay are served."""
    c = collectors()
    src = Source()
    await send(c, src, "stays-1")
    ask = f"GET /v1/tail?lines=100&host={src.host} HTTP/1.1\r\nHost: x\r\n"
    ask += f"Authorization: Bearer {READ}\r\n\r\n"
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", c.port)
        writer.write(ask.encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    async with Tails() as tails:
        status, tail = await tails.open(c.url, host=src.host, lines="1")
        assert status == 200
        assert messages(await tail.lines(1)) == ["stays-1"]

    def all_answered() -> dict[str, float] | None:
        answers = tail_answers(c)
        return answers if sum(answers.values()) >= 4 else None

    assert wait_until(all_answered) == {"200": 4.0}
    assert "internal error" not in c.process.output()


async def test_resume_after_last_event_id_on_another_collector(
    collectors: Callable[..., Collector],
) -> None:
    """Reconnecting with Last-Event-ID, to another collector: what followed, no gap, no repeat."""
    a, b = collectors(), collectors()
    src = Source()
    async with Tails() as tails:
        _, tail = await tails.open(a.url, host=src.host, lines="0")
        await send(a, src, *[f"m{i:02d}" for i in range(10)])
        first = await tail.lines(6)
        tail.response.close()
        await send(b, src, *[f"m{i:02d}" for i in range(10, 20)])
        status, again = await tails.open(b.url, last_id=first[-1].id, host=src.host)
        assert status == 200
        rest = await again.lines(14)
        await send(a, src, "m20")
        rest += await again.lines(1)
    assert messages(first) + messages(rest) == [f"m{i:02d}" for i in range(21)]


async def test_a_line_searchable_late_is_still_sent(
    collectors: Callable[..., Collector], es: Elasticsearch
) -> None:
    """A line that arrived 10 s ago but became searchable only now is sent to open tails."""
    c = collectors()
    src = Source()
    async with Tails() as tails:
        _, tail = await tails.open(c.url, host=src.host, lines="0")
        await send(c, src, "on time")
        assert messages(await tail.lines(1)) == ["on time"]
        late = time.time_ns() - 10 * 10**9
        ingested = nanos_iso(late // 10**6 * 10**6)
        es.index(
            index="logs-readtest.keep_14d-default",
            op_type="create",
            document={
                "@timestamp": nanos_iso(late),
                "message": "late",
                "host": {"name": src.host},
                "event": {"ingested": ingested, "dataset": "readtest"},
            },
        )
        assert messages(await tail.lines(1)) == ["late"]


async def test_slow_reader_gets_missed_count(collectors: Callable[..., Collector]) -> None:
    """A reader that does not read while 3000 large lines pass is told how many it missed."""
    c = collectors(read_tail_buffer="10")
    src = Source()
    n = 3000
    async with Tails() as tails:
        _, tail = await tails.open(c.url, host=src.host, lines="0")
        assert (await tail.next()).type == "keepalive"  # subscribed
        filler = "x" * 8000
        for start in range(0, n, 500):
            await send(c, src, *[f"{i:05d} {filler}" for i in range(start, start + 500)])
        await asyncio.sleep(8)  # the poller reads everything while nobody reads the tail
        lines, missed = 0, 0
        while lines + missed < n:
            event = await tail.next()
            if event.type == "line":
                lines += 1
            elif event.type == "missed":
                missed += event.doc()["missed"]
        assert missed > 0
        assert lines + missed == n


async def test_too_many_tails_is_429(collectors: Callable[..., Collector]) -> None:
    """Past LOGPIPE_READ_TAIL_MAX open tails, another is answered 429 with Retry-After."""
    c = collectors(read_tail_max="2")
    async with Tails() as tails:
        assert (await tails.open(c.url, host="a"))[0] == 200
        assert (await tails.open(c.url, host="b"))[0] == 200
        status, third = await tails.open(c.url, host="c")
        assert status == 429
        assert "Retry-After" in third.response.headers
        assert "LOGPIPE_READ_TAIL_MAX" in (await third.response.json())["error"]


async def test_elasticsearch_gone_is_503(collectors: Callable[..., Collector]) -> None:
    """With no Elasticsearch to read, search and tail are answered 503 with Retry-After."""
    c = collectors(es_url=f"http://127.0.0.1:{free_port()}", ready=False)
    async with Tails() as tails:
        status, tail = await tails.open(c.url, host="x")
        assert status == 503
        assert "Retry-After" in tail.response.headers
        headers = {"Authorization": f"Bearer {READ}"}
        async with tails.session.get(f"{c.url}/v1/search", headers=headers) as resp:
            assert resp.status == 503
            assert "Elasticsearch" in (await resp.json())["error"]


async def test_idle_tail_gets_keepalives_and_ends_on_shutdown(
    collectors: Callable[..., Collector],
) -> None:
    """An idle tail gets keepalive comments; SIGTERM ends its stream and the collector exits 0."""
    c = collectors()
    async with Tails() as tails:
        _, tail = await tails.open(c.url, host="nobody-" + str(time.time_ns()), lines="0")
        assert [(await tail.next()).type for _ in range(2)] == ["keepalive", "keepalive"]
        stopping = asyncio.create_task(asyncio.to_thread(c.process.stop, 30))
        with pytest.raises((EOFError, aiohttp.ClientPayloadError)):
            await tail.lines(1)  # the stream ends: no line comes, and no keepalive for ever
        assert await stopping == 0


async def test_tail_parameters_are_checked(collectors: Callable[..., Collector]) -> None:
    """until, a bad lines count, or a Last-Event-ID that is no tail's id: 400 naming it."""
    c = collectors()
    search_cursor = "eyJ2IjoxLCJvIjoiZGVzYyIsImsiOlsxXSwiaSI6W119"  # a search cursor's shape
    async with Tails() as tails:
        for params, last_id, name in [
            ({"until": "1m"}, None, "until:"),
            ({"lines": "20000"}, None, "lines:"),
            ({}, "garbage!", "Last-Event-ID:"),
            ({}, search_cursor, "Last-Event-ID:"),
        ]:
            status, tail = await tails.open(c.url, last_id=last_id, **params)
            assert status == 400, params
            assert (await tail.response.json())["error"].startswith(name)


async def test_since_limits_the_starting_lines(collectors: Callable[..., Collector]) -> None:
    """lines=10&since=1m starts with the recent lines only, none older than a minute."""
    c = collectors()
    src = Source()
    t = time.time_ns()
    old = src.batch(("two minutes ago", t - 120 * 10**9), ("just now", t))
    assert await asyncio.to_thread(post, c, old) == 200
    await asyncio.sleep(3)
    async with Tails() as tails:
        _, tail = await tails.open(c.url, host=src.host, lines="10", since="1m")
        assert messages(await tail.lines(1)) == ["just now"]
        await send(c, src, "next")
        assert messages(await tail.lines(1)) == ["next"]
