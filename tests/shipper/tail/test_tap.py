"""Unit tests of the /logs tap: each client's bounded queue, filters, missed counts, closing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shipper import metrics
from shipper.follow.handoff import Handoff
from shipper.inbox import Inbox
from shipper.record import GapRecord, LogRecord, Meta, Record
from shipper.tail.query import parse
from shipper.tail.tap import Tap

API = Meta("c1", "api", "api:1")
WEB = Meta("c2", "web", "nginx:1")


class CountingTap(Tap):
    """A tap that counts the reads published to it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def publish(self, records: Sequence[Record]) -> None:
        """Count, then publish."""
        self.calls += 1
        super().publish(records)


def _lines(meta: Meta, n: int, stream: str = "stdout", start: int = 0) -> list[Record]:
    return [
        LogRecord(meta, stream, start + i, 0, f"{stream} {start + i}".encode()) for i in range(n)
    ]


async def test_lines_reach_the_clients_that_want_them() -> None:
    """Each client gets the lines of the containers and streams it asked for, in order."""
    tap = Tap()
    everything = tap.subscribe(parse({}), 100)
    web_errors = tap.subscribe(parse({"name": ["web"], "stream": ["stderr"]}), 100)
    tap.publish(_lines(API, 2))
    tap.publish([*_lines(WEB, 1), *_lines(WEB, 2, "stderr", start=5)])
    all_taken = await everything.take(1)
    web_taken = await web_errors.take(1)
    assert all_taken is not None
    assert web_taken is not None
    assert [r.data for r in all_taken.lines] == [
        b"stdout 0",
        b"stdout 1",
        b"stdout 0",
        b"stderr 5",
        b"stderr 6",
    ]
    assert [r.data for r in web_taken.lines] == [b"stderr 5", b"stderr 6"]
    assert (all_taken.missed, web_taken.missed) == (0, 0)


async def test_gaps_and_events_are_not_lines() -> None:
    """Records other than lines (a gap) are not given to clients."""
    tap = Tap()
    client = tap.subscribe(parse({}), 10)
    tap.publish([GapRecord(API, "stdout", 1, 2, "rotated"), *_lines(API, 1)])
    taken = await client.take(1)
    assert taken is not None
    assert [type(r) for r in taken.lines] == [LogRecord]


async def test_a_full_queue_drops_for_that_client_only_and_counts_it() -> None:
    """Past its bound a client misses lines (counted, reported after what it holds); another
    client with room gets them all, and publishing never waits."""
    tap = Tap()
    slow = tap.subscribe(parse({}), 3)
    roomy = tap.subscribe(parse({}), 100)
    tap.publish(_lines(API, 2))
    tap.publish(_lines(API, 4, start=2))
    tap.publish(_lines(API, 5, start=6))
    slow_taken = await slow.take(1)
    roomy_taken = await roomy.take(1)
    assert slow_taken is not None
    assert roomy_taken is not None
    assert [r.ts for r in slow_taken.lines] == [0, 1, 2]
    assert slow_taken.missed == 8
    assert len(roomy_taken.lines) == 11
    assert roomy_taken.missed == 0
    tap.publish(_lines(API, 1, start=11))
    again = await slow.take(1)
    assert again is not None
    assert ([r.ts for r in again.lines], again.missed) == ([11], 0)


async def test_take_waits_for_lines_and_gives_nothing_after_the_idle_time() -> None:
    """A waiting client wakes when lines come; with none it gets an empty take after `idle`."""
    tap = Tap()
    client = tap.subscribe(parse({}), 10)
    empty = await client.take(0.01)
    assert empty is not None
    assert (empty.lines, empty.missed) == ([], 0)
    waiting = asyncio.create_task(client.take(30))
    await asyncio.sleep(0)
    tap.publish(_lines(API, 1))
    taken = await asyncio.wait_for(waiting, 5)
    assert taken is not None
    assert len(taken.lines) == 1


async def test_closing_ends_every_stream_and_unsubscribing_detaches() -> None:
    """After close, take answers None at once; an unsubscribed client gets nothing more."""
    tap = Tap()
    client = tap.subscribe(parse({}), 10)
    gone = tap.subscribe(parse({}), 10)
    tap.unsubscribe(gone)
    assert tap.subscribers == [client]
    tap.publish(_lines(API, 1))
    empty = await gone.take(0.01)
    assert empty is not None
    assert empty.lines == []
    waiting = asyncio.create_task(client.take(30))
    tap.close()
    assert await asyncio.wait_for(waiting, 5) is None


async def test_the_hand_off_gives_lines_as_read_and_only_while_a_client_is_attached() -> None:
    """A container's hand-off publishes its physical lines before multiline joining (the
    queue gets the joined event), and publishes nothing while no client is attached."""
    java = Meta("c3", "java-app", "app:1", labels={"logpipe.multiline": "java"})
    tap = CountingTap()
    inbox = Inbox(100, metrics.PerContainer(False, 10))
    handoff = Handoff(inbox, tap)
    trace = [
        LogRecord(java, "stdout", 1, 0, b"java.lang.IllegalStateException: boom"),
        LogRecord(java, "stdout", 2, 0, b"\tat a.B.c(B.java:1)"),
        LogRecord(java, "stdout", 3, 0, b"INFO next"),
    ]
    await handoff.put_many(trace[:1])
    assert tap.calls == 0
    client = tap.subscribe(parse({}), 10)
    await handoff.put_many(trace[1:])
    taken = await client.take(1)
    assert tap.calls == 1
    assert taken is not None
    assert [r.data for r in taken.lines] == [b"\tat a.B.c(B.java:1)", b"INFO next"]
    joined = inbox.get_nowait()
    assert isinstance(joined, LogRecord)
    assert joined.lines == 2
    await handoff.close()
