"""Unit tests of the GET /logs handler on a test server: off, token, parameters, limit, stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from shipper.record import LogRecord, Meta
from shipper.tail import endpoint
from shipper.tail.tap import Tap

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = Meta("c1", "api", "api:1")


@asynccontextmanager
async def serving(
    token: str | None = TOKEN, max_clients: int = 2
) -> AsyncIterator[tuple[TestClient[Any, Any], Tap]]:
    """A test server with only /logs, and its tap."""
    tap = Tap()
    app = web.Application()
    app[endpoint.TAIL] = endpoint.Tail(tap, token, max_clients, 100)
    app.router.add_get("/logs", endpoint.logs)
    async with TestClient(TestServer(app)) as client:
        yield client, tap
        tap.close()


async def _attached(tap: Tap, n: int) -> None:
    for _ in range(500):
        if len(tap.subscribers) == n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(tap.subscribers)} clients attached, not {n}")


async def test_without_a_token_setting_logs_is_404_saying_how_to_turn_it_on() -> None:
    """Unset LOGPIPE_TAIL_TOKEN: 404 with a message naming the setting."""
    async with serving(token=None) as (client, _):
        resp = await client.get("/logs", headers=AUTH)
        assert resp.status == 404
        assert "LOGPIPE_TAIL_TOKEN" in (await resp.json())["error"]


async def test_a_missing_or_wrong_token_is_401() -> None:
    """No Authorization, another token or another scheme: 401 with WWW-Authenticate."""
    async with serving() as (client, tap):
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
            resp = await client.get("/logs", headers=headers)
            assert resp.status == 401, headers
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert "LOGPIPE_TAIL_TOKEN" in (await resp.json())["error"]
        assert tap.subscribers == []


async def test_bad_parameters_are_400_naming_them() -> None:
    """A stream that does not exist is a 400 whose message names it."""
    async with serving() as (client, _):
        resp = await client.get("/logs?stream=stdin", headers=AUTH)
        assert resp.status == 400
        assert "stream='stdin'" in (await resp.json())["error"]


async def test_clients_past_the_limit_are_429_until_one_leaves() -> None:
    """With two clients attached the third is refused 429; once one left, a new one is let in."""
    async with serving(max_clients=2) as (client, tap):
        first = await client.get("/logs", headers=AUTH)
        second = await client.get("/logs", headers=AUTH)
        await _attached(tap, 2)
        third = await client.get("/logs", headers=AUTH)
        assert third.status == 429
        assert "LOGPIPE_TAIL_MAX_CLIENTS" in (await third.json())["error"]
        first.close()
        await _attached(tap, 1)
        fourth = await client.get("/logs", headers=AUTH)
        assert fourth.status == 200
        second.close()
        fourth.close()


async def test_an_accepted_client_reads_the_lines_it_asked_for_as_they_come() -> None:
    """A client of `format=ndjson&stream=stderr` reads published stderr lines as NDJSON."""
    async with serving() as (client, tap):
        resp = await client.get("/logs?format=ndjson&stream=stderr", headers=AUTH)
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        await _attached(tap, 1)
        tap.publish(
            [LogRecord(API, "stdout", 1, 0, b"not this"), LogRecord(API, "stderr", 2, 0, b"boom")]
        )
        line = await asyncio.wait_for(resp.content.readline(), 10)
        assert line.endswith(b"\n")
        assert b'"line":"boom"' in line
        assert b'"name":"api"' in line
        resp.close()


async def test_the_stream_ends_when_the_tap_closes() -> None:
    """At shutdown (the tap closes) an attached client's stream ends cleanly."""
    async with serving() as (client, tap):
        resp = await client.get("/logs", headers=AUTH)
        await _attached(tap, 1)
        tap.close()
        assert await asyncio.wait_for(resp.read(), 10) == b""
        await _attached(tap, 0)


async def test_a_client_coming_while_the_shipper_stops_is_503() -> None:
    """Once the tap closed (shutdown began), a new client is answered 503, not held open."""
    async with serving() as (client, tap):
        tap.close()
        resp = await client.get("/logs", headers=AUTH)
        assert resp.status == 503
        assert "stopping" in (await resp.json())["error"]
