"""A small async client for the Docker Engine API over its unix socket (or TCP).

The only module that touches aiohttp for Docker: it turns its exceptions into
:mod:`shipper.errors`. Log streams are handed out as raw byte chunks so the demuxer
keeps byte-exact control of frames; events and inspect answers, parsed by
:mod:`shipper.events` and :mod:`shipper.containers`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from shipper.containers import ContainerSummary, Listed, summary_from_inspect
from shipper.errors import ConfigError, ContainerGone, DockerError, DockerUnavailable
from shipper.events import ContainerEvent, parse_event

API_VERSION = "v1.41"
# dockerd writes a follow stream one log entry at a time, so a reader that keeps up with
# a container that logs a line every few ms takes one line per read, and a read's fixed
# cost (socket, HTTP parser, wake-ups of the reading tasks) outweighs the line's own.
# After a small read a paced stream is not read from the socket for a while (the
# setting read_pace): what comes meanwhile waits in the kernel and arrives as one read
# (docs/BENCHMARKS.md). Only a stream whose reads come closer together than that is
# paused: a container that prints now and then would gain nothing from a pause, and a
# pause costs a wake-up of its own (its timer, and the socket's readiness that the event
# loop takes once more to stop watching it).
PACE_BELOW = 16 * 1024  # bytes: a larger read means the stream is busy, read on at once
# A log stream's bytes aiohttp buffers ahead of its consumer (the socket is left unread
# once twice this waits): the end of a stream is seen at once while its consumer lags
# by less than that. While backlogs drain every stream's buffer is full, so this times
# the streams is resident: 1 MiB made a shipper draining 10 backlogs peak at 92 MB, 256
# KiB at 81 MB for the same CPU per line (docs/BENCHMARKS.md). The kernel's socket
# buffer holds what comes meanwhile; a --rm container's few hundred KB still fit.
READ_BUFFER = 256 * 1024
# Follow streams are asked for over HTTP/1.0. Over HTTP/1.1 dockerd sends every log entry
# as an HTTP chunk of its own, and aiohttp handles each chunk in Python (its chunk
# bookkeeping and buffer steps); over HTTP/1.0 the body is plain bytes up to the
# connection's end: 0.3-0.7 CPU-us less per line for a reader that lags, dockerd's CPU
# unchanged (docs/BENCHMARKS.md). The price: a follow stream
# cut short (dockerd killed) looks like its end, which the follower checks anyway (it
# reads the rest from the positions reached and inspects the container). The rest of
# a log, whose end says the container's log was read whole, stays on HTTP/1.1.
FOLLOW_HTTP = aiohttp.HttpVersion10
JOIN_BYTES = 64 * 1024  # at most this much of what waits is handed over at once


class Pace:
    """How long a follow stream pauses after a small read that came within that long of
    the previous one; 0 (the default) reads at once.

    Settable while the stream runs: a follower learns only after its request went out
    whether pausing is safe (the end of a ``--rm`` container's stream must be seen at
    once, so the rest of its log is asked for before it is removed).
    """

    __slots__ = ("seconds",)

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds


def unknown_scheme(docker_host: str) -> str:
    """What is wrong with a DOCKER_HOST parse_host cannot read (no https://: the shipper
    has no client TLS for Docker)."""
    return (
        f"DOCKER_HOST: '{docker_host}' is none of unix://, tcp:// or http:// "
        "(e.g. unix:///var/run/docker.sock or tcp://10.0.0.1:2375)"
    )


def parse_host(docker_host: str) -> tuple[aiohttp.BaseConnector, str]:
    """A connector and base URL for DOCKER_HOST (unix://, tcp:// or http://)."""
    # No connection limit: every followed container holds one connection for its stream.
    if docker_host.startswith("unix://"):
        path = docker_host[len("unix://") :]
        return aiohttp.UnixConnector(path=path, limit=0), "http://docker"
    if docker_host.startswith(("tcp://", "http://")):
        return aiohttp.TCPConnector(limit=0), "http://" + docker_host.split("://", 1)[1]
    raise DockerError(unknown_scheme(docker_host))


class DockerClient:
    """``async with DockerClient(host) as docker:``; one connection pool for all streams."""

    def __init__(self, docker_host: str) -> None:
        self._host = docker_host
        self._session: aiohttp.ClientSession | None = None
        self._follow: aiohttp.ClientSession | None = None  # the same pool, for follow streams
        self._base = ""

    async def __aenter__(self) -> DockerClient:
        connector, self._base = parse_host(self._host)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        self._follow = aiohttp.ClientSession(
            connector=connector,
            connector_owner=False,
            timeout=timeout,
            version=FOLLOW_HTTP,
            headers={"Connection": "close"},  # aiohttp asks HTTP/1.0 for keep-alive: the
        )  # body's end would then never come
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._follow is not None:
            await self._follow.close()
        if self._session is not None:
            await self._session.close()

    def _url(self, path: str) -> str:
        return f"{self._base}/{API_VERSION}{path}"

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session (inside ``async with``)."""
        if self._session is None:
            raise DockerError("DockerClient used outside 'async with'")
        return self._session

    async def _get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            async with self.session.get(
                self._url(path), params=params, timeout=aiohttp.ClientTimeout(total=30)
            ) as resp:
                body = await resp.read()
                _check(resp.status, body, path)
                return orjson.loads(body)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise DockerUnavailable(f"cannot reach dockerd at {self._host}: {exc}") from exc

    async def info(self) -> dict[str, Any]:
        """`GET /info` (host name, daemon id, root folder)."""
        data: dict[str, Any] = await self._get_json("/info")
        return data

    async def identify(self) -> str:
        """The Docker host's name, from `GET /info`; a ConfigError when what answers at
        DOCKER_HOST is no Docker Engine (a 4xx, or JSON without a host name). A proxy that
        refuses /info (docker-socket-proxy's default) must then give LOGPIPE_HOST_NAME."""
        what = "is no Docker Engine API: set DOCKER_HOST (or LOGPIPE_DOCKER_HOST) to dockerd's"
        try:
            data = await self._get_json("/info")
        except DockerUnavailable:
            raise
        except DockerError as exc:
            answer = " ".join(str(exc).split())[:120]  # a web page's HTML on one short line
            raise ConfigError(
                f"DOCKER_HOST: {self._host} {what}, or one that refuses /info: then set "
                f"LOGPIPE_HOST_NAME ({answer})"
            ) from None
        except orjson.JSONDecodeError:
            raise ConfigError(f"DOCKER_HOST: {self._host} {what} (its /info is no JSON)") from None
        if not isinstance(data, dict) or not isinstance(data.get("Name"), str):
            raise ConfigError(f"DOCKER_HOST: {self._host} {what} (its /info names no host)")
        return str(data["Name"])

    async def list_ids(self) -> list[str]:
        """Ids of all running containers."""
        return [c["id"] for c in await self.list_all() if c["state"] == "running"]

    async def list_all(self) -> list[Listed]:
        """Every container, running or not, with its state."""
        items = await self._get_json("/containers/json", {"all": "1"})
        return [Listed(id=item["Id"], state=str(item.get("State", ""))) for item in items]

    async def inspect(self, cid: str) -> ContainerSummary:
        """Inspect one container."""
        return summary_from_inspect(await self._get_json(f"/containers/{quote(cid)}/json"))

    async def wait_stopped(self, cid: str) -> None:
        """Return once the container is not running (at once if it is not now).

        ``POST /containers/{id}/wait?condition=not-running``: one idle request for as long
        as the container runs, whatever it logs. dockerd answers only after it closed the
        container's log, so its files hold every line by then."""
        path = f"/containers/{quote(cid)}/wait"
        try:
            async with self.session.post(
                self._url(path), params={"condition": "not-running"}
            ) as resp:
                _check(resp.status, await resp.read(), path)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            raise DockerUnavailable(f"wait for {cid[:12]} to stop broke: {exc}") from exc

    @contextlib.asynccontextmanager
    async def event_stream(
        self, since: str | None = None
    ) -> AsyncIterator[AsyncIterator[ContainerEvent]]:
        """Subscribe to dockerd's events (replayed from `since`); live once entered.

        Every kind, not only the containers': dockerd keeps the last 256 of all kinds
        together, and a replay filtered to containers could never show that it lost some
        (events.ContainerEvent.kind tells them apart). Events that name no object or
        action are left out."""
        params: dict[str, str] = {}
        if since is not None:
            params["since"] = since
        try:
            async with self.session.get(self._url("/events"), params=params) as resp:
                if resp.status != 200:
                    _check(resp.status, await resp.read(), "/events")
                yield _events(resp)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            raise DockerUnavailable(f"event stream from dockerd broke: {exc}") from exc

    async def logs(
        self,
        cid: str,
        since: str,
        follow: bool = True,
        until: str | None = None,
        pace: Pace | None = None,
        on_end: Callable[[int], None] | None = None,
        tail: int | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Raw chunks of the container's log stream, with timestamps, since (inclusive);
        with `tail`, only the last `tail` entries of those (dockerd reads them from the
        end of the log instead of decoding it from its start).

        With `pace`, a small chunk that came within `pace` seconds of the previous read is
        followed by a pause of that long in reading the socket. `on_end` is called with
        the bytes received the moment dockerd ends the stream, however many of them the
        consumer has still to take (up to twice READ_BUFFER): a follow stream ends
        when its container stops, and what must happen then (asking for the rest before
        the container is removed) cannot wait.
        """
        params = {
            "follow": "1" if follow else "0",
            "stdout": "1",
            "stderr": "1",
            "timestamps": "1",
            "since": since,
        }
        if until is not None:
            params["until"] = until
        if tail is not None:
            params["tail"] = str(tail)
        path = f"/containers/{quote(cid)}/logs"
        loop = asyncio.get_running_loop()
        try:
            session = self._follow if follow and self._follow is not None else self.session
            async with session.get(
                self._url(path), params=params, read_bufsize=READ_BUFFER
            ) as resp:
                if resp.status != 200:
                    _check(resp.status, await resp.read(), path)
                if on_end is not None:
                    content = resp.content
                    content.on_eof(lambda: on_end(content.total_bytes))
                read_at = -1e9  # when the previous read (or pause) ended
                async for chunk in resp.content.iter_chunked(JOIN_BYTES):
                    yield chunk
                    if pace is None or not pace.seconds or len(chunk) >= PACE_BELOW:
                        continue
                    now = loop.time()
                    if now - read_at < pace.seconds:
                        await _paused(resp, pace.seconds)
                        now = loop.time()
                    read_at = now
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            raise DockerUnavailable(f"log stream of {cid[:12]} broke: {exc}") from exc


async def _paused(resp: aiohttp.ClientResponse, seconds: float) -> None:
    """Leave the response's socket unread for `seconds` (the kernel keeps what comes).

    Only the transport pauses, not aiohttp's parser: a paused parser keeps the bytes it
    has not parsed yet and hands them over alone on resuming, a read of its own. A
    transport aiohttp has paused already (its buffer is full) is left to aiohttp.
    """
    transport = resp.connection.transport if resp.connection is not None else None
    if transport is None or transport.is_closing() or not transport.is_reading():
        return
    transport.pause_reading()
    try:
        await asyncio.sleep(seconds)
    finally:
        if not transport.is_closing():
            transport.resume_reading()


async def _events(resp: aiohttp.ClientResponse) -> AsyncIterator[ContainerEvent]:
    buf = b""
    async for chunk in resp.content.iter_any():
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                event = parse_event(orjson.loads(line))
                if event is not None:
                    yield event


def _check(status: int, body: bytes, path: str) -> None:
    if status < 300:
        return
    try:
        message = orjson.loads(body).get("message", "")
    except orjson.JSONDecodeError:
        message = body[:200].decode("utf-8", "replace")
    if status in (404, 409) and path.startswith("/containers/"):
        raise ContainerGone(f"{path}: {message}")
    if status >= 500:
        raise DockerUnavailable(f"dockerd answered {status} for {path}: {message}")
    raise DockerError(f"dockerd answered {status} for {path}: {message}")
