"""Unit tests of the inbox: records queued in order, waiting for room, and pausing."""

from __future__ import annotations

import asyncio

from shipper import metrics
from shipper.inbox import Inbox
from shipper.record import GapRecord, LogRecord, Meta, Record

BUSY = Meta("c-busy", "busy-app", "busybox")
PLAIN = Meta("c-plain", "plain-app", "busybox")


def _inbox(size: int = 100) -> Inbox:
    return Inbox(size, metrics.PerContainer(False, 10))


def _drain(inbox: Inbox) -> list[Record]:
    out = []
    while not inbox.empty():
        out.append(inbox.get_nowait())
    return out


def _drained_lines(inbox: Inbox) -> list[bytes]:
    """The text of each record queued, every one a log line."""
    out = []
    for record in _drain(inbox):
        assert isinstance(record, LogRecord), record
        out.append(record.data)
    return out


def _line(meta: Meta, ts: int, text: str, stream: str = "stdout") -> LogRecord:
    return LogRecord(meta, stream, ts, 0, text.encode())


async def _read(inbox: Inbox, record: LogRecord) -> None:
    """A follower's hand-off of a one-line read."""
    await inbox.admit([record])
    await inbox.put_many([record])


async def test_the_busiest_container_is_paused_first_and_all_resume_later() -> None:
    """Near the bound the container with most recent bytes waits; below the low mark it goes on."""
    inbox = _inbox(1000)
    for i in range(20):
        await _read(inbox, _line(PLAIN, i, "x" * 500))
    await _read(inbox, _line(BUSY, 0, "quiet"))
    inbox.pressure(95, 100)
    assert inbox.paused == ["plain-app"]
    blocked = asyncio.create_task(_read(inbox, _line(PLAIN, 99, "waits")))
    await _read(inbox, _line(BUSY, 1, "still read"))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    inbox.pressure(50, 100)
    await asyncio.wait_for(blocked, 5)
    assert inbox.paused == []


async def test_a_read_handed_over_at_once_is_queued_whole_in_order_and_waits_when_full() -> None:
    """put_many queues a read whole while there is room (the bound is passed by less
    than that read), and the next read waits until the batcher took some."""
    inbox = _inbox(3)
    gap = GapRecord(PLAIN, "stdout", 0, 1, "rotated")
    reads: list[LogRecord | GapRecord] = [gap, *(_line(PLAIN, i, f"line {i}") for i in range(1, 5))]
    await inbox.admit(reads)
    await asyncio.wait_for(inbox.put_many(reads), 5)
    assert inbox.qsize() == 5
    assert inbox.full()
    later = [_line(BUSY, 9, "later")]
    handing = asyncio.create_task(inbox.put_many(later))
    await asyncio.sleep(0.05)
    assert not handing.done()  # full: it waits for room
    taken, _ = inbox.take(1, 10**6, 0)
    assert taken == [gap]
    await asyncio.sleep(0.02)
    assert not handing.done()  # four left: still at the bound
    taken += inbox.take(3, 10**6, 0)[0]
    await asyncio.wait_for(handing, 5)
    assert taken + _drain(inbox) == [*reads, *later]


async def test_reads_waiting_for_room_go_in_turn_and_a_cancelled_one_queues_nothing() -> None:
    """Waiting hand-offs are served in the order they came; one cancelled while it waits
    leaves nothing in the queue (its lines are read again), and the next one goes on."""
    inbox = _inbox(1)
    await inbox.put(_line(PLAIN, 0, "fills it"))
    first = asyncio.create_task(inbox.put_many([_line(PLAIN, 1, "a"), _line(PLAIN, 2, "b")]))
    cut = asyncio.create_task(inbox.put_many([_line(BUSY, 1, "cut")]))
    last = asyncio.create_task(inbox.put_many([_line(BUSY, 2, "c")]))
    await asyncio.sleep(0.05)
    assert not first.done()
    assert not cut.done()
    assert not last.done()
    cut.cancel()
    assert _drained_lines(inbox) == [b"fills it"]
    await asyncio.wait_for(first, 5)
    assert not last.done()  # first's two lines fill it again
    assert _drained_lines(inbox) == [b"a", b"b"]
    await asyncio.wait_for(last, 5)
    assert _drained_lines(inbox) == [b"c"]
    assert cut.cancelled()


async def test_the_batcher_waits_for_a_record_and_takes_within_its_bounds() -> None:
    """wait returns once something is queued; take stops at the line and byte bounds,
    taking the record that passes the byte bound, and splits a read where it stops."""
    inbox = _inbox(100)
    waiting = asyncio.create_task(inbox.wait())
    await asyncio.sleep(0.02)
    assert not waiting.done()
    read = [_line(PLAIN, i, "x" * 36) for i in range(6)]  # 100 bytes each, counted
    await inbox.put_many(read)
    await asyncio.wait_for(waiting, 5)
    assert inbox.take(2, 10**6, 0) == (read[:2], 200)
    assert inbox.take(10, 250, 0) == (read[2:5], 300)
    assert inbox.take(10, 10**6, 50) == (read[5:], 150)
    assert inbox.empty()
    assert inbox.take(10, 10**6, 0) == ([], 0)
