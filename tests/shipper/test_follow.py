"""Unit tests of a follower against a fake dockerd: what a --rm container's race leaves."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

from shipper import metrics
from shipper.cursor import Position
from shipper.errors import ContainerGone
from shipper.follow import Follower
from shipper.inbox import Inbox
from shipper.record import LogRecord, Meta

CID = "f" * 64
LINES = 10


def _frame(n: int) -> bytes:
    payload = b"2026-11-28T03:00:00.%09dZ line %d\n" % (n, n)
    return struct.pack(">BxxxL", 1, len(payload)) + payload


class _RacingDocker:
    """A --rm container that started while the shipper's poll was on its way: the follow
    stream carried its first lines and ended when it stopped (its reader was behind);
    a request sent at once gets the rest, any later one finds the container removed."""

    def __init__(self) -> None:
        self.requests: list[bool] = []

    async def logs(self, cid: str, since: str, follow: bool = True) -> AsyncIterator[bytes]:
        self.requests.append(follow)
        if len(self.requests) > 2:
            raise ContainerGone(f"/containers/{cid}/logs: no such container")
        upto = LINES // 2 if follow else LINES
        for n in range(1, upto + 1):
            await asyncio.sleep(0)
            yield _frame(n)

    async def inspect(self, cid: str) -> None:
        raise ContainerGone(f"/containers/{cid}/json: no such container")


async def test_a_container_that_ran_during_a_poll_is_drained_before_it_is_removed() -> None:
    """The poll's stream ends after half the lines: the rest is asked for at that moment."""
    docker = _RacingDocker()
    inbox = Inbox(100, metrics.PerContainer(False, 10))
    meta = Meta(CID, "racer", "busybox")
    positions = {"stdout": Position(0, 0), "stderr": Position(0, 0)}
    follower = Follower(docker, meta, positions, inbox, 1 << 20, prestart=True)  # type: ignore[arg-type]
    follower.learn(None, meta, skip=False)
    await asyncio.wait_for(follower.run(), 10)
    got = []
    while not inbox.empty():
        record = inbox.get_nowait()
        assert isinstance(record, LogRecord)
        got.append(record.data)
    assert got == [b"line %d" % n for n in range(1, LINES + 1)]
    assert docker.requests[:2] == [True, False]
