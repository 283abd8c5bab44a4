"""A request aiohttp cannot parse as HTTP is answered in the API's JSON error shape.

Raw bytes on a socket to a real collector app, served by the runner `serve` uses; no
Elasticsearch is needed (the sink points at a closed port).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from unittest import mock

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from collector.badhttp import Runner
from collector.wire import PATH_LOGS
from tests.collector.test_app import json_body, running
from tests.conftest import free_port

HEAD = f"POST {PATH_LOGS} HTTP/1.1\r\nHost: x\r\n"


@asynccontextmanager
async def collector_port() -> AsyncIterator[int]:
    """The port of a running collector app whose Elasticsearch does not answer."""
    async with running(es_url=f"http://127.0.0.1:{free_port()}") as api:
        assert api.client.port is not None
        yield api.client.port


async def exchange(port: int, data: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes: (status line, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    answer = await asyncio.wait_for(reader.read(), 10)  # to EOF: the server closed
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = dict(line.decode().split(": ", 1) for line in lines)
    return status, {k.lower(): v for k, v in headers.items()}, body


CASES = {
    "not a request line": (b"GARBAGE\r\n\r\n", "Invalid method encountered: b'GARBAGE'"),
    "TLS to the plain port": (
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        "Received HTTPS traffic on an HTTP port",
    ),
    "a header with no valid name": (
        (HEAD + "Bad Header: y\r\n\r\n").encode(),
        "Invalid header token: b'Bad Header: y'",
    ),
    "a Content-Length that is no number": (
        (HEAD + "Content-Length: abc\r\n\r\n").encode(),
        "Invalid character in Content-Length: b'Content-Length: abc'",
    ),
    "both Content-Length and Transfer-Encoding": (
        (HEAD + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").encode(),
        "Transfer-Encoding can't be present with Content-Length: b'Transfer-Encoding: chunked'",
    ),
    "chunk framing broken in the head's bytes": (
        (HEAD + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n").encode(),
        "Invalid character in chunk size: b'zz'",
    ),
    "a header line too long": (
        (HEAD + "X-Long: " + "a" * 9000 + "\r\n\r\n").encode(),
        "Got more than 8190 bytes when reading: b'aaaa",
    ),
    "too many headers": (
        (HEAD + "".join(f"H{i}: v\r\n" for i in range(200)) + "\r\n").encode(),
        "Too many headers received",
    ),
}


@pytest.mark.parametrize(("sent", "reason"), CASES.values(), ids=CASES.keys())
async def test_garbage_is_answered_in_json_with_aiohttps_reason(sent: bytes, reason: str) -> None:
    """The status aiohttp chose (400), the connection closed, and a JSON error naming what
    was wrong, as every other error of the API."""
    async with collector_port() as port:
        status, headers, body = await exchange(port, sent)
    assert status == b"HTTP/1.0 400 Bad Request"
    assert headers["content-type"] == "application/json; charset=utf-8"
    answer = orjson.loads(body)
    assert list(answer) == ["error"]
    assert answer["error"].startswith("request is not valid HTTP: " + reason)
    assert "^" not in answer["error"]  # aiohttp's caret line is not part of the reason
    assert len(answer["error"]) <= len("request is not valid HTTP: ") + 512


async def test_good_requests_before_garbage_on_one_connection_are_answered_as_before() -> None:
    """Requests on a kept-alive connection are answered as before (200, a JSON 404); the
    garbage after them is answered in JSON, and the connection closed."""
    async with collector_port() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        ok = await asyncio.wait_for(reader.readuntil(b"}"), 10)
        writer.write(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        missing = await asyncio.wait_for(reader.readuntil(b'"}'), 10)
        writer.write(b"@@\r\n\r\n")
        garbage = await asyncio.wait_for(reader.read(), 10)  # to EOF: the server closed
        writer.close()
    assert ok.startswith(b"HTTP/1.1 200 OK\r\n")
    assert missing.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b'\r\n\r\n{"error": "no such endpoint: GET /nowhere' in missing
    assert garbage.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert orjson.loads(garbage.partition(b"\r\n\r\n")[2]) == {
        "error": "request is not valid HTTP: Invalid method encountered: b'@@'"
    }


async def test_garbage_is_one_warning_line_naming_the_sender(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The collector's log says so in one warning line naming the sender and the problem,
    without the parser's traceback."""
    async with collector_port() as port:
        await exchange(port, (HEAD + "Content-Length: abc\r\n\r\n").encode())
    [record] = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert record.levelname == "WARNING"
    assert record.exc_info is None
    assert record.getMessage() == (
        "request from 127.0.0.1 is not valid HTTP, answered 400: "
        "Invalid character in Content-Length: b'Content-Length: abc'"
    )


def test_aiohttp_still_has_the_hook_the_runner_overrides() -> None:
    """aiohttp has no public hook for these answers: the runner overrides
    RequestHandler.handle_error and builds connections as web.Server does. If aiohttp
    renames or reshapes these, this fails before any garbage goes unanswered in JSON."""
    params = list(inspect.signature(web.RequestHandler.handle_error).parameters)
    assert params == ["self", "request", "status", "exc", "message"], (
        "aiohttp changed RequestHandler.handle_error: collector/badhttp.py overrides it"
    )


async def test_the_runner_makes_connections_that_answer_in_json() -> None:
    """The runner's server builds the collector's connections, not aiohttp's own."""
    runner = Runner(web.Application())
    await runner.setup()
    try:
        assert runner.server is not None
        connection = runner.server()
        assert type(connection).handle_error is not web.RequestHandler.handle_error
        assert isinstance(connection, web.RequestHandler)
    finally:
        await runner.cleanup()


async def test_another_aiohttps_server_is_served_as_it_is(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where aiohttp's server is not what the runner was written for (here: without the
    attribute it reads), the collector still starts, with aiohttp's own answers, and
    says so."""
    make = web.AppRunner._make_server

    async def other(self: web.AppRunner) -> web.Server:
        server = await make(self)
        del server._kwargs
        return server

    monkeypatch.setattr(web.AppRunner, "_make_server", other)
    runner = Runner(web.Application())
    await runner.setup()
    try:
        assert type(runner.server) is web.Server
    finally:
        await runner.cleanup()
    assert "answered by aiohttp's own page" in caplog.text


async def test_aiohttps_own_500_and_504_are_json_too() -> None:
    """The other answers aiohttp makes itself (a handler's error escaping the app, a
    timeout) take the same shape, with aiohttp's status."""
    runner = Runner(web.Application())
    await runner.setup()
    try:
        assert runner.server is not None
        connection = runner.server()
        writer = mock.Mock(output_size=0)
        request = make_mocked_request("GET", "/", writer=writer)
        failed = connection.handle_error(request, 500, RuntimeError("bug"))
        late = connection.handle_error(request, 504)
    finally:
        await runner.cleanup()
    assert isinstance(failed, web.Response)
    assert isinstance(late, web.Response)
    assert (failed.status, failed.content_type) == (500, "application/json")
    assert json_body(failed) == {"error": "internal error in the collector (logged); retry later"}
    assert (late.status, json_body(late)) == (
        504,
        {"error": "Gateway Timeout; retry later"},
    )
