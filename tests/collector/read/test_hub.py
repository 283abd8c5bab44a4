"""The hub's shutdown ends every tail, also those still opening when it came."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from collector.errors import ReadUnavailable
from collector.read.filters import Filters
from collector.read.hub import Hub
from collector.read.poller import Pace
from collector.read.search import Reader


class HeldReader:
    """A reader whose first read waits until released (a slow node), finding nothing."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.release = asyncio.Event()

    async def seen(self, *_: Any) -> list[Any]:
        self.asked.set()
        await self.release.wait()
        return []

    async def page(self, *_: Any) -> list[Any]:
        return []

    async def count(self, _: Any) -> int:
        return 0


async def test_a_tail_opening_while_the_hub_shuts_down_is_refused_not_left_open() -> None:
    """A tail whose poller was still reading its start when the collector began to stop
    is refused (503), its poller stopped: before, it was subscribed after the shutdown
    had closed every tail, streamed on, and held the collector's exit until aiohttp's
    shutdown timeout."""
    reader = HeldReader()
    hub = Hub(cast(Reader, reader), Pace(), max_tails=5, buffer=10)
    opening = asyncio.create_task(hub.open(Filters(hosts=("h",))))
    await reader.asked.wait()
    await hub.shutdown()
    reader.release.set()
    with pytest.raises(ReadUnavailable, match="stopping"):
        await opening
    assert (hub.open_tails, hub._pollers) == (0, {})
    with pytest.raises(ReadUnavailable, match="stopping"):
        await hub.open(Filters(hosts=("h",)))
    assert hub.open_tails == 0
