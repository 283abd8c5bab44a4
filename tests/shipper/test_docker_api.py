"""Unit tests of the Docker client: log streams (end seen at once, pacing, ReadAhead), events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import ClientResponse, web

from shipper import docker_api
from shipper.docker_api import API_VERSION, JOIN_BYTES, DockerClient, Pace
from shipper.errors import DockerError, DockerUnavailable
from shipper.events import ContainerEvent
from shipper.readahead import ReadAhead


async def _chunks(parts: list[bytes], error: bool) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if error:
        raise DockerUnavailable("stream broke")


async def _read(ahead: ReadAhead) -> list[bytes]:
    return [chunk async for chunk in ahead.chunks()]


@contextlib.asynccontextmanager
async def _docker_at(
    sock: Path, route: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> AsyncIterator[DockerClient]:
    """A DockerClient of a one-route server on the unix socket `sock`: `handler` answers
    `/<API_VERSION><route>`."""
    app = web.Application()
    app.router.add_get(f"/{API_VERSION}{route}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, str(sock)).start()
    try:
        async with DockerClient(f"unix://{sock}") as docker:
            yield docker
    finally:
        await runner.cleanup()


async def test_what_waits_is_handed_over_joined() -> None:
    """A late consumer gets the chunks read ahead for it as one."""
    ahead = ReadAhead(_chunks([b"a", b"bc", b"d"], error=False))
    await asyncio.sleep(0.01)  # the pump read all of it, nobody consumed yet
    assert await _read(ahead) == [b"abcd"]


async def _serve_logs(
    unix_path: str, pieces: list[bytes], apart: float = 0.01, broken: bool = False
) -> tuple[web.AppRunner, list[float]]:
    """A dockerd stand-in whose log stream writes `pieces` `apart` seconds apart, then
    ends (or, `broken`, drops the connection in the middle of the response); with the
    seconds its writing took, once it is done."""
    writing: list[float] = []

    async def logs(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        began = time.monotonic()
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(apart)
        writing.append(time.monotonic() - began)
        if broken:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get(f"/{API_VERSION}/containers/{{cid}}/logs", logs)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, unix_path).start()
    return runner, writing


async def test_the_end_of_a_stream_is_seen_before_its_consumer_took_the_bytes(
    tmp_path: Path,
) -> None:
    """on_end runs as dockerd ends the stream, with every byte received, while the
    consumer has taken only the first piece; the rest is still handed over after it."""
    pieces = [b"first\n", b"second\n", b"third\n"]
    unix_path = str(tmp_path / "ends.sock")
    runner, _ = await _serve_logs(unix_path, pieces)
    ended: list[int] = []
    try:
        async with DockerClient(f"unix://{unix_path}") as docker:
            stream = docker.logs("c1", "0", on_end=ended.append)
            got = [await anext(stream)]
            for _ in range(100):  # the consumer is away; the server writes and ends
                if ended:
                    break
                await asyncio.sleep(0.01)
            assert ended == [sum(map(len, pieces))]
            got += [chunk async for chunk in stream]
    finally:
        await runner.cleanup()
    assert b"".join(got) == b"".join(pieces)


async def test_a_broken_rest_is_not_an_end(tmp_path: Path) -> None:
    """The rest of a log (no follow) dropped mid-stream raises DockerUnavailable and calls
    no on_end: only its real end says that the container's log was read whole."""
    unix_path = str(tmp_path / "broken.sock")
    runner, _ = await _serve_logs(unix_path, [b"only\n"], broken=True)
    ended: list[int] = []
    got: list[bytes] = []

    async def read(docker: DockerClient) -> None:
        async for chunk in docker.logs("c1", "0", follow=False, on_end=ended.append):
            got.append(chunk)

    try:
        async with DockerClient(f"unix://{unix_path}") as docker:
            with pytest.raises(DockerUnavailable, match="broke"):
                await read(docker)
    finally:
        await runner.cleanup()
    assert b"".join(got) == b"only\n"
    assert ended == []


async def test_follow_streams_come_unchunked_over_http_1_0(tmp_path: Path) -> None:
    """A follow stream is asked for over HTTP/1.0 (dockerd then sends plain bytes, not an
    HTTP chunk per log entry), the rest of a log over HTTP/1.1; both bytes arrive whole."""
    seen: list[tuple[str, tuple[int, ...]]] = []

    async def logs(request: web.Request) -> web.StreamResponse:
        seen.append((request.query["follow"], tuple(request.version)))
        response = web.StreamResponse()
        await response.prepare(request)
        for piece in (b"one\n", b"two\n"):
            await response.write(piece)
        await response.write_eof()
        return response

    async with _docker_at(tmp_path / "versions.sock", "/containers/{cid}/logs", logs) as docker:
        followed = b"".join([c async for c in docker.logs("c1", "0", follow=True)])
        rest = b"".join([c async for c in docker.logs("c1", "0", follow=False)])
    assert followed == rest == b"one\ntwo\n"
    assert seen == [("1", (1, 0)), ("0", (1, 1))]


async def test_an_error_comes_after_the_bytes_before_it() -> None:
    """A broken stream raises only once everything read before the break was handed over."""
    ahead = ReadAhead(_chunks([b"x", b"y"], error=True))
    await asyncio.sleep(0.01)
    got: list[bytes] = []

    async def consume() -> None:
        async for chunk in ahead.chunks():
            got.append(chunk)

    with pytest.raises(DockerUnavailable, match="stream broke"):
        await consume()
    assert got == [b"xy"]


async def test_a_consumer_that_keeps_up_gets_each_chunk() -> None:
    """Nothing waits, nothing is joined: every chunk arrives as it was read."""
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        for part in (b"1", b"2", b"3"):
            await gate.wait()
            gate.clear()
            yield part

    ahead = ReadAhead(slow())
    got: list[bytes] = []
    reader = ahead.chunks()
    for _ in range(3):
        gate.set()
        got.append(await anext(reader))
    assert got == [b"1", b"2", b"3"]
    ahead.close()


async def test_a_join_stays_under_its_bound_and_keeps_the_order() -> None:
    """What waits is joined only up to JOIN_BYTES; the rest follows in order."""
    part = JOIN_BYTES * 3 // 7
    chunks = [bytes([65 + i]) * part for i in range(5)]
    ahead = ReadAhead(_chunks(chunks, error=False))
    await asyncio.sleep(0.01)
    got = await _read(ahead)
    assert [len(c) for c in got] == [2 * part, 2 * part, part]
    assert b"".join(got) == b"".join(chunks)


async def _paced_reads(
    pace: Pace | None, unix_path: str, count: int = 100, apart: float = 0.002
) -> tuple[list[bytes], float]:
    """Read a log stream whose server writes `count` small pieces `apart` seconds apart:
    the reads, and how long the server took to write them."""
    pieces = [b"line %03d\n" % i for i in range(count)]
    runner, writing = await _serve_logs(unix_path, pieces, apart)
    try:
        async with DockerClient(f"unix://{unix_path}") as docker:
            reads = [chunk async for chunk in docker.logs("c1", "0", pace=pace)]
    finally:
        await runner.cleanup()
    assert b"".join(reads) == b"".join(pieces)  # nothing lost, nothing reordered
    return reads, writing[0]


PACE = 0.05  # shorter than LOGPIPE_READ_PACE's default, so that the test is quick


async def test_a_paced_stream_takes_what_comes_during_a_pause_in_one_read(
    tmp_path: Path,
) -> None:
    """After a small read the socket is left unread for a while: 100 pieces, few reads."""
    reads, writing = await _paced_reads(Pace(PACE), str(tmp_path / "paced.sock"))
    # The first read is not paused (nothing came shortly before it); the second, 2 ms
    # later, is, and so is every read after a pause (a timer may fire a little early):
    # while the server writes, two reads and at most one per pause; then the last.
    assert len(reads) <= writing / (0.9 * PACE) + 3
    assert len(reads) < 50  # (~0.2 s of writing: 5-8 reads here)


async def test_a_stream_that_prints_now_and_then_is_never_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads further apart than the pace would join nothing: no pause, no wake-up for it;
    a stream whose reads come close together is paused (the same counter sees it)."""
    pauses: list[float] = []

    async def counted(resp: ClientResponse, seconds: float) -> None:
        pauses.append(seconds)
        await paused(resp, seconds)

    paused = docker_api._paused
    monkeypatch.setattr(docker_api, "_paused", counted)
    reads, _ = await _paced_reads(Pace(PACE), str(tmp_path / "apart.sock"), 5, 3 * PACE)
    assert len(reads) == 5  # each piece read as it came
    assert pauses == []
    await _paced_reads(Pace(PACE), str(tmp_path / "close.sock"), 20, 0.002)
    assert set(pauses) == {PACE}  # not empty either


async def test_events_come_typed_and_those_naming_no_container_are_left_out(
    tmp_path: Path,
) -> None:
    """The event stream hands out ContainerEvents, exact to the ns, split across reads;
    those of other kinds too, marked so: it asks dockerd for every kind."""
    lines = [
        b'{"Type":"container","Action":"start","Actor":{"ID":"c1","Attributes":{"name":"/web"}},'
        b'"timeNano":1795812919123456789}\n',
        b'{"Action":"start","Actor":{}}\n\n',
        b'{"Type":"network","Action":"connect","Actor":{"ID":"n1","Attributes":{"name":"none"}},'
        b'"timeNano":6}\n',
        b'{"status":"die","id":"c2","Actor":{"Attributes":{"exitCode":"3"}},"timeNano":5}\n',
    ]
    asked: list[dict[str, str]] = []

    async def events(request: web.Request) -> web.StreamResponse:
        asked.append(dict(request.query))
        response = web.StreamResponse()
        await response.prepare(request)
        for line in lines:
            await response.write(line[:20])
            await response.write(line[20:])
        await response.write_eof()
        return response

    async with (
        _docker_at(tmp_path / "events.sock", "/events", events) as docker,
        docker.event_stream("12.000000005") as stream,
    ):
        got = [event async for event in stream]
    assert got == [
        ContainerEvent("c1", "start", "", 1795812919123456789, {"name": "/web"}),
        ContainerEvent("n1", "connect", "", 6, {"name": "none"}, "network"),
        ContainerEvent("c2", "die", "", 5, {"exitCode": "3"}),
    ]
    # Unfiltered: dockerd's ring holds every kind, and only all of them count its replay.
    assert asked == [{"since": "12.000000005"}]
    assert (got[0].name, got[2].exit_code) == ("web", 3)


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (
            404,
            b"<html>\n<h1>Not Found</h1>\n</html>",
            "dockerd answered 404 for /info: <html> <h1>",
        ),
        (400, b'{"error": "no handler"}', "dockerd answered 400 for /info"),
        (200, b"<html>welcome</html>", "its /info is no JSON"),
        (200, b'{"cluster_name": "es"}', "its /info names no host"),
    ],
)
async def test_a_docker_host_that_is_no_docker_engine_is_a_config_error(
    tmp_path: Path, status: int, body: bytes, why: str
) -> None:
    """Another HTTP service at DOCKER_HOST (a web server, Elasticsearch) is named as
    such in one line (exit 2 at start), not 'dockerd answered 404' (exit 1) or a
    traceback."""
    from shipper.errors import ConfigError

    async def info(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body)

    unix_path = tmp_path / "other.sock"
    async with _docker_at(unix_path, "/info", info) as docker:
        with pytest.raises(ConfigError) as caught:
            await docker.identify()
        if status >= 400:  # what reads /info for other things still gets dockerd's error
            with pytest.raises(DockerError):
                await docker.info()
    message = str(caught.value)
    assert message.startswith(f"DOCKER_HOST: unix://{unix_path} is no Docker Engine API")
    assert why in message
    assert "\n" not in message


async def test_a_proxy_that_refuses_info_still_lets_the_log_files_be_looked_for(
    tmp_path: Path,
) -> None:
    """docker-socket-proxy refuses /info (403) by default; with LOGPIPE_HOST_NAME set the
    shipper never needs it, and looking for the log files goes on without the root
    folder instead of ending the shipper."""
    from shipper.logfiles.root import find_log_files

    async def info(request: web.Request) -> web.Response:
        return web.json_response({"message": "forbidden"}, status=403)

    async with _docker_at(tmp_path / "proxy.sock", "/info", info) as docker:
        files = await find_log_files(docker)
    assert files.root_dir == ""
