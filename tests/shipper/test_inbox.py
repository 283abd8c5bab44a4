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


async def test_a_read_handed_over_at_once_is_queued_in_order_and_waits_when_full() -> None:
    """put_many keeps a read's order and waits for room."""
    inbox = _inbox(3)
    gap = GapRecord(PLAIN, "stdout", 0, 1, "rotated")
    reads: list[LogRecord | GapRecord] = [gap, *(_line(PLAIN, i, f"line {i}") for i in range(1, 5))]
    await inbox.admit(reads)
    handing = asyncio.create_task(inbox.put_many(reads))
    await asyncio.sleep(0.05)
    assert not handing.done()  # three taken, two wait for room
    out = _drain(inbox)
    await asyncio.wait_for(handing, 5)
    out += _drain(inbox)
    assert out == reads
