"""Unit tests of the inbox: label hints applied per stream, marks, order, and pausing."""

from __future__ import annotations

import asyncio

from shipper import inbox as inbox_module
from shipper import metrics
from shipper.cursor import Position
from shipper.inbox import Inbox
from shipper.record import (
    DoneRecord,
    EventRecord,
    GapRecord,
    LogRecord,
    MarkRecord,
    Meta,
    Record,
)

JAVA = Meta("c-java", "java-app", "busybox", labels={"logpipe.multiline": "java"})
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


async def test_labelled_lines_are_joined_and_others_pass_as_they_are() -> None:
    """A java-labelled container's trace becomes one record; an unlabelled one is untouched."""
    inbox = _inbox()
    for i, text in enumerate(
        ["ERROR boom", "\tat a.B.c(B.java:1)", "\tat a.B.d(B.java:2)", "next"]
    ):
        await inbox.put(_line(JAVA, i, text))
        await inbox.put(_line(PLAIN, i, text))
    out = _drain(inbox)
    joined = [r for r in out if isinstance(r, LogRecord) and r.meta is JAVA]
    assert [(r.data, r.lines, r.end()) for r in joined] == [
        (b"ERROR boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)", 3, Position(2, 1))
    ]
    assert [r.data for r in out if isinstance(r, LogRecord) and r.meta is PLAIN] == [
        b"ERROR boom",
        b"\tat a.B.c(B.java:1)",
        b"\tat a.B.d(B.java:2)",
        b"next",
    ]


async def test_a_container_stopping_flushes_its_held_event_before_the_event() -> None:
    """On die (and when read to the end), held multiline events are queued before it."""
    inbox = _inbox()
    await inbox.put(_line(JAVA, 1, "ERROR boom"))
    await inbox.put(_line(JAVA, 2, "\tat x.Y.z(Y.java:9)"))
    await inbox.put(EventRecord(JAVA, 3, "die", exit_code=1))
    out = _drain(inbox)
    assert isinstance(out[0], LogRecord)
    assert out[0].lines == 2
    assert isinstance(out[1], EventRecord)
    await inbox.put(_line(JAVA, 4, "printed after die"))
    await inbox.put(DoneRecord(JAVA))
    out = _drain(inbox)
    assert [type(r) for r in out] == [LogRecord, DoneRecord]


async def test_excluded_lines_leave_a_mark_for_the_cursor() -> None:
    """Excluded lines are not queued, but a mark past them is, once no later line covers it."""
    meta = Meta("c-x", "x", "busybox", labels={"logpipe.exclude_lines": "^DEBUG"})
    inbox = _inbox()
    await inbox.put(_line(meta, 1, "DEBUG a"))
    await inbox.put(_line(meta, 2, "INFO b"))
    await inbox.put(_line(meta, 3, "DEBUG c"))
    await inbox.put(_line(meta, 4, "DEBUG d"))
    assert [r.data for r in _drain(inbox) if isinstance(r, LogRecord)] == [b"INFO b"]
    await inbox.close()
    assert _drain(inbox) == [MarkRecord(meta, "stdout", Position(4, 1))]


async def test_a_timed_out_event_is_never_overtaken_by_a_later_line() -> None:
    """With the queue full, an event flushed on timeout still precedes its stream's next lines."""
    meta = Meta("c-t", "t", "busybox", labels={"logpipe.multiline": "java"})
    inbox = _inbox(2)
    await inbox.put(_line(PLAIN, 0, "filler"))
    await inbox.put(_line(PLAIN, 1, "filler"))  # the queue is now full
    await inbox.put(_line(meta, 1, "ERROR held"))
    ticker = asyncio.create_task(inbox.run())
    hinted = inbox._hinted["c-t"]
    assert hinted is not None
    hinted.joiners["stdout"]._deadline = 0  # due now
    await asyncio.sleep(inbox_module.TICK * 2)  # the ticker now waits to queue it
    await inbox.put(_line(meta, 2, "INFO later"))  # held: waits for its next line
    # The batcher takes two at once; before the ticker runs again, the follower goes on.
    inbox.get_nowait()
    inbox.get_nowait()
    await inbox.put(_line(meta, 3, "INFO third"))  # releases "INFO later"
    seen = [inbox.get_nowait(), inbox.get_nowait()]
    ticker.cancel()
    assert [r.data for r in seen if isinstance(r, LogRecord)] == [b"ERROR held", b"INFO later"]


async def test_the_busiest_container_is_paused_first_and_all_resume_later() -> None:
    """Near the bound the container with most recent bytes waits; below the low mark it goes on."""
    inbox = _inbox(1000)
    for i in range(20):
        await inbox.put(_line(PLAIN, i, "x" * 500))
    await inbox.put(_line(JAVA, 0, "quiet"))
    inbox.pressure(95, 100)
    assert inbox.paused == ["plain-app"]
    blocked = asyncio.create_task(inbox.put(_line(PLAIN, 99, "waits")))
    await inbox.put(_line(JAVA, 1, "still read"))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    inbox.pressure(50, 100)
    await asyncio.wait_for(blocked, 5)
    assert inbox.paused == []


async def test_a_read_handed_over_at_once_is_queued_in_order_and_waits_when_full() -> None:
    """put_many keeps a read's order, shapes it like put does, and waits for room."""
    inbox = _inbox(3)
    gap = GapRecord(PLAIN, "stdout", 0, 1, "rotated")
    reads: list[LogRecord | GapRecord] = [gap, *(_line(PLAIN, i, f"line {i}") for i in range(1, 5))]
    handing = asyncio.create_task(inbox.put_many(reads))
    await asyncio.sleep(0.05)
    assert not handing.done()  # three taken, two wait for room
    out = _drain(inbox)
    await asyncio.wait_for(handing, 5)
    out += _drain(inbox)
    assert out == reads
    await inbox.put_many([_line(JAVA, 10, "ERROR boom"), _line(JAVA, 11, "\tat a.B.c(B.java:1)")])
    await inbox.put(DoneRecord(JAVA))
    joined = _drain(inbox)
    assert [(r.data, r.lines) for r in joined if isinstance(r, LogRecord)] == [
        (b"ERROR boom\n\tat a.B.c(B.java:1)", 2)
    ]
    assert isinstance(joined[-1], DoneRecord)
