"""Unit tests of one event subscription (Supervisor._session) against dockerd's replay.

dockerd keeps its last DOCKERD_EVENTS_KEPT events of every kind in a ring and replays
those since the `since` asked for once it has answered the headers; the events it stamps
while the request is on its way are in that replay. The supervisor's replay check takes
its "live from here" time after the headers, so those count as replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from shipper import metrics
from shipper.catchup import DOCKERD_EVENTS_KEPT, caught_up_from
from shipper.config import load_config
from shipper.containers import Listed
from shipper.cursor import CursorStore
from shipper.events import ContainerEvent
from shipper.inbox import Inbox
from shipper.logfiles.watch import LogFiles
from shipper.source import Supervisor, _iso

CID = "c" * 64
MISSED = "logpipe_shipper_event_replays_short_total"
# What a busy host's ring is made of: a container's health checks and exits, its
# network's connects and disconnects, its volumes' mounts.
KINDS = [
    ("container", "exec_start"),
    ("network", "connect"),
    ("container", "die"),
    ("volume", "mount"),
    ("network", "disconnect"),
    ("container", "exec_die"),
]


def _event(n: int, ts: int) -> ContainerEvent:
    """The n-th event on the host, stamped `ts`, of the n-th kind in turn."""
    kind, action = KINDS[n % len(KINDS)]
    if kind == "container":
        attrs = {"name": "/busy", "image": "busybox:latest", "exitCode": "0"}
        return ContainerEvent(CID, action, "", ts, attrs)
    return ContainerEvent(f"{kind[0]}{n:063d}", action, "", ts, {"container": CID}, kind)


def _after(ts: int) -> int:
    """dockerd's clock once it has passed `ts`: a stamp later than anything taken by then."""
    while (now := time.time_ns()) <= ts:
        pass
    return now


class _RingDocker:
    """dockerd's event ring: it keeps the last DOCKERD_EVENTS_KEPT events and replays
    those since the time asked for. Answering the headers takes a while, during which
    `while_answering` more events happen on the host; after the replay, `live` events."""

    def __init__(self, while_answering: int, live: int) -> None:
        self.ring: deque[ContainerEvent] = deque(maxlen=DOCKERD_EVENTS_KEPT)
        self.happened = 0
        self.replayed: list[ContainerEvent] = []
        self._while_answering = while_answering
        self._live = live

    def happen(self, ts: int) -> None:
        """An event on the host, stamped `ts` (later than any before it)."""
        self.ring.append(_event(self.happened, ts))
        self.happened += 1

    async def list_all(self) -> list[Listed]:
        return []

    @contextlib.asynccontextmanager
    async def event_stream(
        self, since: str | None = None
    ) -> AsyncIterator[AsyncIterator[ContainerEvent]]:
        stamp = time.time_ns()  # the shipper asked; the answer is on its way
        for _ in range(self._while_answering):
            await asyncio.sleep(0)
            stamp = _after(stamp)
            self.happen(stamp)
        seconds, _, nanos = (since or "0.0").partition(".")
        start = int(seconds) * 1_000_000_000 + int(nanos)
        # The replay is taken as the headers go out.
        self.replayed = [e for e in self.ring if e.ts >= start]
        yield self._events(self.replayed)

    async def _events(self, replay: list[ContainerEvent]) -> AsyncIterator[ContainerEvent]:
        for event in replay:
            yield event
        stamp = time.time_ns()
        for _ in range(self._live):
            stamp = _after(stamp)
            self.happen(stamp)
            yield self.ring[-1]
        # Then dockerd closes the stream: the session ends.


def _away(tmp_path: Path) -> tuple[CursorStore, int]:
    """The state of a shipper last alive a minute ago; the `since` it subscribes from."""
    store = CursorStore(tmp_path)
    store.alive_ns = time.time_ns() - 60_000_000_000
    return store, caught_up_from(store.alive_ns)


async def _session(
    tmp_path: Path, docker: _RingDocker, store: CursorStore, caplog: pytest.LogCaptureFixture
) -> tuple[Supervisor, list[logging.LogRecord]]:
    """Run one subscription to its end; the warnings that dockerd had lost events."""
    fake: Any = docker
    out = Inbox(100, metrics.PerContainer(False, 10))
    sup = Supervisor(load_config(state_dir=tmp_path), fake, store, out, None)
    sup.files = LogFiles("")  # nothing watched: no root dir
    with caplog.at_level(logging.WARNING, logger="logpipe"):
        async with asyncio.timeout(30):
            await sup._session()
    said = [r for r in caplog.records if r.getMessage().startswith("dockerd no longer had")]
    return sup, said


async def test_events_stamped_while_dockerd_answered_the_headers_are_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The ring moved on while the subscription's headers were on their way: its last
    DOCKERD_EVENTS_KEPT events, of mixed kinds and all after `since`, are the replay, and
    the shipper says (once, with the oldest kept) that the ones before may be lost. Timed
    before the headers, the events of that while were counted as live and it said nothing.
    """
    store, since = _away(tmp_path)
    half = DOCKERD_EVENTS_KEPT // 2
    docker = _RingDocker(while_answering=half, live=DOCKERD_EVENTS_KEPT)
    for n in range(50):
        docker.happen(since - 1_000 + n)  # before `since`: pushed out of the ring meanwhile
    for n in range(DOCKERD_EVENTS_KEPT - half):
        docker.happen(since + 1_000 + n)
    before = REGISTRY.get_sample_value(MISSED) or 0
    sup, said = await _session(tmp_path, docker, store, caplog)
    assert len(docker.replayed) == DOCKERD_EVENTS_KEPT
    assert {e.kind for e in docker.replayed} == {"container", "network", "volume"}
    assert len(said) == 1
    assert said[0].oldest_kept == _iso(since + 1_000)  # type: ignore[attr-defined]
    assert said[0].asked_from == _iso(since)  # type: ignore[attr-defined]
    assert REGISTRY.get_sample_value(MISSED) == before + 1
    assert sup._last_event_ns == docker.ring[-1].ts  # the last live one


async def test_a_short_replay_followed_by_many_live_events_is_not_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """dockerd still had events from before `since`: the replay (those after it, some
    stamped while the headers were on their way) is short, and the many live events after
    it, of the same mixed kinds, are not counted with it: nothing is said."""
    store, since = _away(tmp_path)
    docker = _RingDocker(while_answering=10, live=2 * DOCKERD_EVENTS_KEPT)
    for n in range(20):
        docker.happen(since - 1_000 + n)
    for n in range(30):
        docker.happen(since + 1_000 + n)
    before = REGISTRY.get_sample_value(MISSED) or 0
    sup, said = await _session(tmp_path, docker, store, caplog)
    assert len(docker.replayed) == 40
    assert said == []
    assert REGISTRY.get_sample_value(MISSED) == before
    assert sup._last_event_ns == docker.ring[-1].ts  # the live events were all handled
