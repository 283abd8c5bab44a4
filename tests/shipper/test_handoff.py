"""Unit tests of a container's hand-off to the queue: held events on time, in order, at the end."""

from __future__ import annotations

import asyncio

from shipper import metrics
from shipper.cursor import Position
from shipper.follow.handoff import Handoff
from shipper.inbox import Inbox
from shipper.record import LogRecord, MarkRecord, Meta, Record

QUICK = Meta(
    "c-q",
    "quick",
    "busybox",
    labels={"logpipe.multiline": "java", "logpipe.multiline.timeout": "1ms"},
)
SLOW = Meta(
    "c-s",
    "slow",
    "busybox",
    labels={"logpipe.multiline": "java", "logpipe.exclude_lines": "^DEBUG"},
)
PLAIN = Meta("c-plain", "plain-app", "busybox")


def _inbox(size: int = 100) -> Inbox:
    return Inbox(size, metrics.PerContainer(False, 10))


def _line(meta: Meta, ts: int, text: str) -> LogRecord:
    return LogRecord(meta, "stdout", ts, 0, text.encode())


def _drain(inbox: Inbox) -> list[Record]:
    out = []
    while not inbox.empty():
        out.append(inbox.get_nowait())
    return out


async def test_a_held_event_goes_out_on_its_timeout_though_nothing_more_is_printed() -> None:
    """The last line of a quiet container is queued once its timeout passed, without a next line."""
    inbox = _inbox()
    handoff = Handoff(inbox)
    await handoff.put_many([_line(QUICK, 1, "ERROR boom"), _line(QUICK, 2, "\tat a.B.c(B.java:1)")])
    record = await asyncio.wait_for(inbox.get(), 5)
    assert isinstance(record, LogRecord)
    assert (record.data, record.lines) == (b"ERROR boom\n\tat a.B.c(B.java:1)", 2)
    await handoff.close()


async def test_an_event_sent_on_its_timeout_is_never_overtaken_by_a_later_line() -> None:
    """With the queue full, the timed-out event still precedes the lines read after it."""
    inbox = _inbox(2)
    await inbox.put_many([_line(PLAIN, 0, "filler"), _line(PLAIN, 1, "filler")])  # full
    handoff = Handoff(inbox)
    await handoff.put_many([_line(QUICK, 1, "ERROR held")])
    for _ in range(500):
        if handoff._turn.locked():  # the timer now waits for room to queue it
            break
        await asyncio.sleep(0.01)
    assert handoff._turn.locked()
    later = asyncio.create_task(
        handoff.put_many([_line(QUICK, 2, "INFO later"), _line(QUICK, 3, "INFO third")])
    )
    await asyncio.sleep(0.01)
    inbox.get_nowait()
    inbox.get_nowait()  # the batcher takes two: room for the timer and the read
    await asyncio.wait_for(later, 5)
    seen = [inbox.get_nowait(), inbox.get_nowait()]
    assert [r.data for r in seen if isinstance(r, LogRecord)] == [b"ERROR held", b"INFO later"]
    await handoff.close()


async def test_flush_and_close_queue_what_is_held_even_for_a_paused_container() -> None:
    """The end of a log and the end of following queue held events and marks, paused or not."""
    inbox = _inbox()
    handoff = Handoff(inbox)
    await handoff.put_many([_line(SLOW, 1, "ERROR boom"), _line(SLOW, 2, "\tat a.B.c(B.java:1)")])
    assert inbox.empty()
    await handoff.flush()
    assert [(r.data, r.lines) for r in _drain(inbox) if isinstance(r, LogRecord)] == [
        (b"ERROR boom\n\tat a.B.c(B.java:1)", 2)
    ]
    await handoff.put_many([_line(SLOW, 3, "INFO kept"), _line(SLOW, 4, "DEBUG dropped")])
    inbox.pressure(95, 100)
    assert inbox.paused == ["slow"]
    await asyncio.wait_for(handoff.close(), 5)
    out = _drain(inbox)
    assert [r.data for r in out if isinstance(r, LogRecord)] == [b"INFO kept"]
    assert isinstance(out[-1], MarkRecord)
    assert out[-1].until.ts == 4


async def test_a_hand_off_cut_short_at_shutdown_leaves_what_was_held_unqueued() -> None:
    """Lines of a read the shutdown kept out of the full queue are not passed by a held one."""
    inbox = _inbox(1)
    await inbox.put(_line(PLAIN, 0, "filler"))  # full
    handoff = Handoff(inbox)
    read = [_line(SLOW, 1, "INFO a"), _line(SLOW, 2, "INFO b"), _line(SLOW, 3, "INFO c")]
    handing = asyncio.create_task(handoff.put_many(read))  # "a" and "b" wait, "c" is held
    await asyncio.sleep(0.05)
    handing.cancel()
    await asyncio.gather(handing, return_exceptions=True)
    assert _drain(inbox) == [_line(PLAIN, 0, "filler")]
    await asyncio.wait_for(handoff.close(), 5)
    assert inbox.empty()


async def test_a_release_queues_what_is_held_before_its_marks() -> None:
    """The marks that let a cursor pass lines held at an audited window come after every
    event and mark the container's shaping still held: a mark ahead of a held event would
    let the saved cursor pass it before it is queued."""
    inbox = _inbox()
    handoff = Handoff(inbox)
    await handoff.put_many([_line(SLOW, 1, "ERROR boom"), _line(SLOW, 2, "\tat a.B.c(B.java:1)")])
    await handoff.put_many([_line(SLOW, 3, "DEBUG dropped")])
    release = MarkRecord(SLOW, "stdout", Position(3, 1))
    await handoff.release([release])
    out = _drain(inbox)
    assert [(r.data, r.lines) for r in out if isinstance(r, LogRecord)] == [
        (b"ERROR boom\n\tat a.B.c(B.java:1)", 2)
    ]
    assert out[-1] is release
    assert [type(r) for r in out] == [
        LogRecord,
        MarkRecord,
        MarkRecord,
    ]  # the excluded line's, then ours
    await handoff.close()
    assert inbox.empty()
