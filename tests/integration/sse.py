"""Reading a tail's Server-Sent Events with aiohttp, as a browser's EventSource would."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from tests.integration.readers import READ


@dataclass(frozen=True)
class Event:
    """One event: its type (`line`, `missed`, or `keepalive` for a comment), id and data."""

    type: str
    id: str | None
    data: str

    def doc(self) -> dict[str, Any]:
        """The data as JSON."""
        return dict(orjson.loads(self.data))


class Tail:
    """An open `GET /v1/tail` response, read event by event."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.position: str | None = None  # the id of the last event without data
        self.closed: list[Event] = []  # the `closed` events, which `next` keeps aside

    async def next(self, patience: float = 30) -> Event:
        """The next event (a keepalive comment is one too; an id alone is kept, as
        `position`, as EventSource does; a `closed` event, which any test's tail may get
        while another test has an index closed, is kept in `closed`)."""
        fields: dict[str, str] = {}
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), patience)
            if not raw:
                raise EOFError("the tail ended")
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                return Event("keepalive", None, line)
            if not line:
                if fields and "data" not in fields:
                    self.position = fields.get("id", self.position)
                    fields = {}
                elif fields:
                    event = Event(fields.get("event", "message"), fields.get("id"), fields["data"])
                    fields = {}
                    if event.type != "closed":
                        return event
                    self.closed.append(event)
                continue
            name, _, value = line.partition(": ")
            fields[name] = value

    async def lines(self, n: int, patience: float = 60) -> list[Event]:
        """The next `n` line events, skipping keepalives (fails on a missed event)."""
        got: list[Event] = []
        while len(got) < n:
            event = await self.next(patience)
            assert event.type != "missed", event
            if event.type == "line":
                got.append(event)
        return got


class Tails:
    """A client session opening tails; every response is closed on leaving it."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession(read_bufsize=2**16)
        self.opened: list[aiohttp.ClientResponse] = []

    async def __aenter__(self) -> Tails:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for response in self.opened:
            response.close()
        await self.session.close()

    async def open(
        self, url: str, token: str = READ, last_id: str | None = None, **params: str
    ) -> tuple[int, Tail]:
        """Open a tail; (status, reader)."""
        headers = {"Authorization": f"Bearer {token}"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        response = await self.session.get(f"{url}/v1/tail", params=params, headers=headers)
        self.opened.append(response)
        return response.status, Tail(response)
