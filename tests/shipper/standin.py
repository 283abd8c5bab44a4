"""The base of the unit tests' stand-ins for dockerd: every call the shipper makes, none expected.

A stand-in subclasses StandIn and overrides only what its test expects dockerd to be
asked; mypy checks each override against shipper.dockerd.Dockerd's signatures, and any
other call fails the test with the name of what was asked.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, NoReturn

from shipper.containers import ContainerSummary, Listed
from shipper.dockerd import Dockerd
from shipper.events import ContainerEvent


def _unexpected(call: str) -> NoReturn:
    raise AssertionError(f"dockerd's {call} not expected in this test")


class StandIn(Dockerd):
    """dockerd that expects no call at all."""

    async def inspect(self, cid: str) -> ContainerSummary:
        _unexpected("inspect")

    def logs(self, cid: str, since: str, **options: Any) -> AsyncGenerator[bytes, None]:
        _unexpected("logs")  # Any: an override names the options it reads, checked by Dockerd

    async def wait_stopped(self, cid: str) -> None:
        _unexpected("wait_stopped")

    async def list_all(self) -> list[Listed]:
        _unexpected("list_all")

    async def info(self) -> dict[str, Any]:
        _unexpected("info")

    def event_stream(
        self, since: str | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[ContainerEvent]]:
        _unexpected("event_stream")
