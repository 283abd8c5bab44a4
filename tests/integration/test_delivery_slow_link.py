"""A shipper and a collector, both real processes, over a link too slow for whole batches.

A throttling TCP proxy of the test's own sits between them and passes what the shipper
sends on at a few KB/s per connection (answers pass at once), as a WAN link would;
the collector's LOGPIPE_BODY_TIMEOUT is short, so a whole batch's body is answered 408.
The containers print random bytes in hex (gzip only halves them): their batches are
larger than the link carries in LOGPIPE_BODY_TIMEOUT, their halves or quarters are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from tests.conftest import Pipeline
from tests.integration.delivered import messages, metric, run, wait_lines

pytestmark = pytest.mark.integration

RATE = 16 * 1024  # bytes per second the link carries from the shipper, per connection
CHUNK = 1024


class ThrottlingProxy:
    """A TCP proxy on a free port of 127.0.0.1 to `upstream`'s port there: what a client
    sends passes at `rate` bytes/s per connection, what upstream answers at once. Its
    event loop runs in a thread of its own, so the test's blocking calls do not stall it."""

    def __init__(self, upstream: int, rate: int) -> None:
        self.upstream, self.rate = upstream, rate
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def __enter__(self) -> ThrottlingProxy:
        self._thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
            except OSError:
                return
            await asyncio.gather(
                self._pump(reader, up_writer, self.rate),
                self._pump(up_reader, writer, None),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            pass  # the proxy closes (its own task: nothing awaits it)
        finally:
            writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: int | None
    ) -> None:
        """Copy until the reading side ends, then close the writing one (a collector that
        closes after its 408 closes the shipper's connection too)."""
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
                if rate:
                    await asyncio.sleep(len(data) / rate)
        except ConnectionError:
            pass
        finally:
            writer.close()


@contextlib.contextmanager
def over_a_slow_link(p: Pipeline, rate: int) -> Iterator[ThrottlingProxy]:
    """`p`'s shipper sends to its collector through a ThrottlingProxy, for the block."""
    with ThrottlingProxy(p.port, rate) as proxy:
        p.shipper.env["LOGPIPE_COLLECTOR_URL"] = f"http://127.0.0.1:{proxy.port}"
        yield proxy


def hex_lines(n: int) -> str:
    """A script printing `n` lines of 16 random bytes in hex, each after its offset."""
    return f"od -v -A d -t x1 -N {16 * n} /dev/urandom"


def printed(container: object) -> Counter[str]:
    """The container's stdout lines, as Docker kept them."""
    logs = container.logs(stdout=True, stderr=False)  # type: ignore[attr-defined]
    return Counter(line for line in logs.decode().splitlines() if line)


def test_batches_too_large_for_a_slow_link_arrive_once_in_parts(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """The first batches are answered 408 and sent in halves, halves of those, until
    they cross the link in time; the size that went through is learnt, and a later
    container's batch goes in parts under it at once. Every line is indexed once."""
    p = pipeline_factory(collector_body_timeout="2")
    with over_a_slow_link(p, RATE):
        p.start()
        first = run(docker_client, p, hex_lines(3000), name=f"slowlink-{p.run}-first")
        first.wait(timeout=60)
        wait_lines(p, first.id, 3000, timeout=60)
        assert metric(p, "logpipe_shipper_batches_split_total", reason="too_slow") > 0
        assert metric(p, "logpipe_shipper_batches_failed_total", reason="http_408") > 0
        presplit = metric(p, "logpipe_shipper_batches_presplit_total")
        second = run(docker_client, p, hex_lines(2000), name=f"slowlink-{p.run}-second")
        second.wait(timeout=60)
        wait_lines(p, second.id, 2000, timeout=60)
        assert metric(p, "logpipe_shipper_batches_presplit_total") > presplit
    for container, lines in ((first, 3000), (second, 2000)):
        expected = printed(container)
        assert sum(expected.values()) == lines + 1  # od's last line: the offset at the end
        assert messages(p, container.id) == expected
