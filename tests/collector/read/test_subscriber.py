"""A tail's buffer never blocks its poller: past its capacity lines are counted missed,
and the count comes after the lines that were kept, before any later ones."""

from __future__ import annotations

from collector.read import events
from collector.read.subscriber import Delivery, Subscriber


def delivery(n: int) -> Delivery:
    """A line numbered `n`."""
    return Delivery(f"id{n}", f"doc{n}", b'{"n":%d}' % n, n)


async def test_overflow_is_counted_after_the_kept_lines() -> None:
    """15 lines into a buffer of 10: 10 lines, then 5 missed; then later lines as usual."""
    sub = Subscriber(10)
    for n in range(15):
        sub.offer(delivery(n))
    lines, missed = await sub.take(1)
    assert [d.doc_id for d in lines] == [f"doc{n}" for n in range(10)]
    assert missed == 5
    sub.offer(delivery(15))
    lines, missed = await sub.take(1)
    assert ([d.doc_id for d in lines], missed) == (["doc15"], 0)


async def test_nothing_to_take_is_a_heartbeat() -> None:
    """With nothing offered, take() comes back empty after its patience."""
    assert await Subscriber(10).take(0.01) == ([], 0)


async def test_close_wakes_the_reader() -> None:
    """A closed subscriber's reader wakes at once."""
    sub = Subscriber(10)
    sub.close()
    assert await sub.take(60) == ([], 0)
    assert sub.closed


def test_event_wire_format() -> None:
    """Line, missed and keepalive events are what Server-Sent Events readers parse."""
    assert events.line_event("abc", b'{"m":1}') == b'id: abc\nevent: line\ndata: {"m":1}\n\n'
    assert events.missed_event(7) == b'event: missed\ndata: {"missed":7}\n\n'
    assert events.KEEPALIVE == b": keepalive\n\n"
