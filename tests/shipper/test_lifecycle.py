"""Unit tests of the lifecycle events a clean stop holds in memory: written to the state
dir, queued first at the next start."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest

from shipper import metrics
from shipper.config import load_config
from shipper.cursor import CursorStore
from shipper.events import ContainerEvent
from shipper.inbox import Inbox
from shipper.lifecycle import HELD_FILE, EventRecords, load_held, save_held
from shipper.record import EventRecord, Meta

CID = "c" * 64


def _records(tmp_path: Path, out: Inbox) -> EventRecords:
    config = load_config(state_dir=tmp_path)
    return EventRecords(config, None, CursorStore(tmp_path), out, {}, {}, set())


def _event(action: str, ts: int) -> ContainerEvent:
    return ContainerEvent(
        CID, action, "", ts, {"name": "/web", "image": "busybox", "exitCode": "3"}
    )


async def test_the_events_a_clean_stop_held_are_written_and_queued_first_at_the_next_start(
    tmp_path: Path,
) -> None:
    """One event on disk, one queued behind a full disk buffer, one still in the backlog
    at the stop: the last two are written to the state dir and come back, in order,
    before any other, holding the sign of life back as they did."""
    out = Inbox(100, metrics.PerContainer(False, 10))
    events = _records(tmp_path, out)
    events.add(_event("create", 1_000))
    events.add(_event("start", 2_000))
    forward = asyncio.create_task(events.forward())
    try:
        async with asyncio.timeout(5):
            while out.qsize() < 2:
                await out.wait()
                await asyncio.sleep(0.01)
    finally:
        forward.cancel()
        await asyncio.gather(forward, return_exceptions=True)
    on_disk, _ = out.take(1, 10**6, 0)
    out.written += len(on_disk)  # the create is on disk; the start waits in the queue
    events.add(_event("die", 3_000))  # in the backlog: nothing moves it any more
    held = events.held()
    assert [(r.action, r.ts) for r in held] == [("start", 2_000), ("die", 3_000)]
    assert (held[1].exit_code, held[1].meta.name) == (3, "web")

    save_held(tmp_path, held)
    assert (tmp_path / HELD_FILE).exists()

    again = Inbox(100, metrics.PerContainer(False, 10))
    restarted = _records(tmp_path, again)
    loaded = load_held(tmp_path)
    assert loaded == held  # every field, the container's metadata too
    assert not (tmp_path / HELD_FILE).exists()  # the next stop writes them again if need be
    assert load_held(tmp_path) == []
    restarted.restore(loaded)
    assert restarted.held_since() == 2_000  # the sign of life stays behind them
    assert restarted.held() == held
    forward = asyncio.create_task(restarted.forward())
    try:
        got = [await asyncio.wait_for(again.get(), 5) for _ in held]
    finally:
        forward.cancel()
        await asyncio.gather(forward, return_exceptions=True)
    assert got == held
    again.written = again.put_total
    assert restarted.held() == []
    assert restarted.held_since() is None


def test_a_stop_with_nothing_held_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / HELD_FILE
    path.write_bytes(b"[]")  # one a start could not remove (a read-only state dir)
    save_held(tmp_path, [])
    assert not path.exists()


def test_a_state_dir_that_refuses_the_file_is_said_and_the_stop_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = EventRecord(Meta(CID, "web", "busybox"), 5, "die", 0)
    with caplog.at_level(logging.ERROR, logger="logpipe"):
        save_held(tmp_path / "missing", [record])
    [said] = caplog.records
    assert said.getMessage().startswith("cannot write the lifecycle events")
    assert said.path == str(tmp_path / "missing" / HELD_FILE)  # type: ignore[attr-defined]
    assert said.events == 1  # type: ignore[attr-defined]


def _entry(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "id": CID,
        "name": "web",
        "image": "busybox",
        "labels": {"a": "b"},
        "parser": "auto",
        "dataset": None,
        "namespace": None,
        "ts": 5,
        "action": "die",
        "exit_code": 0,
        "detail": None,
    }
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not json", "line 1 column 1"),
        (b'{"id": "x"}', "a JSON dict, not a list of events"),
        (b"[3]", "event 0: a JSON int, not an object"),
        (orjson.dumps([_entry(), {"id": CID}]), "event 1: no 'labels'"),
        (orjson.dumps([_entry(ts=-1)]), "event 0: ts -1 is no time in ns"),
        (orjson.dumps([_entry(ts="5")]), "event 0: ts '5' is no time in ns"),
        (orjson.dumps([_entry(labels=["a"])]), "event 0: labels is a JSON list, not an object"),
        (orjson.dumps([_entry(exit_code="0")]), "event 0: exit_code is '0', not a number"),
        (orjson.dumps([_entry(action="")]), "event 0: action is '', not a text"),
    ],
)
def test_a_held_events_file_that_is_not_readable_is_said_and_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, reason: str
) -> None:
    """A damaged file never stops the start: it is said, with why, and removed (the
    replay of dockerd's events remains)."""
    path = tmp_path / HELD_FILE
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="logpipe"):
        assert load_held(tmp_path) == []
    [said] = caplog.records
    assert "are not readable" in said.getMessage()
    assert said.path == str(path)  # type: ignore[attr-defined]
    assert reason in said.reason  # type: ignore[attr-defined]
    assert not path.exists()


def test_a_held_event_reads_back_with_every_field(tmp_path: Path) -> None:
    """Hints (parser, dataset, namespace) and detail too: the document is the same."""
    meta = Meta(CID, "web", "busybox", {"a": "b"}, "json", "web.app", "prod")
    records = [
        EventRecord(meta, 5, "health_status", None, "healthy"),
        EventRecord(Meta(CID, "web", "busybox"), 6, "die", 137),
    ]
    save_held(tmp_path, records)
    assert load_held(tmp_path) == records
