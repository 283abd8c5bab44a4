"""`logpipe-shipper`: follow every container's logs on this Docker host and ship them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
from pathlib import Path

from aiohttp import web

from collector import jsonlog
from shipper.config import ShipperConfig, load_config
from shipper.cursor import CursorStore
from shipper.deliver import Sender
from shipper.docker_api import DockerClient
from shipper.errors import ConfigError, DockerUnavailable, ShipperError
from shipper.record import Record
from shipper.sink import CollectorClient
from shipper.source import Supervisor
from shipper.status import make_app

log = logging.getLogger("logpipe.shipper")

DESCRIPTION = """\
logpipe shipper: follows the stdout/stderr of every container on this Docker host
through the Docker Engine API and ships each line, exactly once, to logpipe collectors.

Settings are environment variables (or a .env file):
  LOGPIPE_COLLECTOR_URL  collector URL(s), comma-separated (default http://localhost:8080)
  LOGPIPE_TOKEN          bearer token (or LOGPIPE_TOKEN_FILE)
  LOGPIPE_STATE_DIR      cursors and buffers (default /var/lib/logpipe/shipper)
  DOCKER_HOST            Docker Engine API (default unix:///var/run/docker.sock)
  LOGPIPE_HOST_NAME      host.name on documents (default: the Docker host's name)
  LOGPIPE_HTTP_LISTEN    /healthz, /status and /metrics (default 0.0.0.0:8081)
See README.md for every setting and the per-container logpipe.* labels."""

_CONTAINER_ID = re.compile(r"/(?:docker/|docker-|containers/)([0-9a-f]{64})")


def detect_self_id() -> str | None:
    """Our container id when we run in a container, so we never follow ourselves."""
    for path in ("/proc/self/cgroup", "/proc/self/mountinfo"):
        with contextlib.suppress(OSError):
            match = _CONTAINER_ID.search(Path(path).read_text())
            if match:
                return match.group(1)
    return None


async def host_name(config: ShipperConfig, docker: DockerClient) -> str:
    """LOGPIPE_HOST_NAME, else the Docker host's name (waits for dockerd)."""
    if config.host_name:
        return config.host_name
    delay = 0.5
    while True:
        try:
            return str((await docker.info())["Name"])
        except DockerUnavailable as exc:
            log.warning("waiting for dockerd", extra={"reason": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


async def run(config: ShipperConfig) -> None:
    """Ship until SIGTERM/SIGINT, then flush what was read and save the cursors."""
    store = CursorStore(config.state_dir)
    store.load()
    queue: asyncio.Queue[Record] = asyncio.Queue(maxsize=config.queue_lines)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with DockerClient(config.docker_host) as docker, CollectorClient(config) as client:
        host = await host_name(config, docker)
        self_id = config.self_container_id or detect_self_id()
        supervisor = Supervisor(config, docker, store, queue, self_id)
        sender = Sender(config, queue, client, store, host)
        runner = web.AppRunner(make_app(supervisor, sender), access_log=None)
        await runner.setup()
        listen_host, _, port = config.http_listen.rpartition(":")
        await web.TCPSite(runner, listen_host or "0.0.0.0", int(port)).start()
        log.info(
            "shipper started",
            extra={
                "host": host,
                "collectors": config.collector_url,
                "state_dir": str(config.state_dir),
            },
        )
        tasks = [
            asyncio.create_task(supervisor.run(), name="supervisor"),
            asyncio.create_task(sender.run(), name="sender"),
        ]
        await stop.wait()
        log.info("stopping: no more reading, flushing what was read")
        tasks[0].cancel()
        await supervisor.stop()
        flushed = await sender.drain(config.shutdown_timeout)
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        store.save()
        await runner.cleanup()
        if flushed:
            log.info("stopped: everything read was delivered")
        else:
            log.warning(
                "stopped before everything read was delivered; it is read again at next start"
            )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `logpipe-shipper` and `python -m shipper`."""
    parser = argparse.ArgumentParser(
        prog="logpipe-shipper",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"logpipe-shipper: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    jsonlog.configure(config.log_level)
    try:
        asyncio.run(run(config))
    except ShipperError as exc:
        print(f"logpipe-shipper: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
