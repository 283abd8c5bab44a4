"""`logpipe-shipper`: follow every container's logs on this Docker host and ship them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from collector import jsonlog, settings_table
from collector.runtime import (
    EXIT_CONFIG,
    EXIT_RUNTIME,
    command_line,
    installed_version,
    listen_problem,
    tune_gc,
    tune_malloc,
)
from shipper import metrics, native, preflight
from shipper.batch import Batcher
from shipper.config import ShipperConfig, load_config
from shipper.cursor import CursorStore
from shipper.deliver import Sender
from shipper.docker_api import DockerClient
from shipper.durable import errno_name
from shipper.errors import (
    ConfigError,
    CursorsNotSaved,
    DockerUnavailable,
    ShipperError,
    TaskFailed,
)
from shipper.inbox import Inbox
from shipper.lifecycle import save_held
from shipper.sink import CollectorClient
from shipper.source import Supervisor
from shipper.spool import Spool
from shipper.status import Health, make_app
from shipper.tail.endpoint import Tail
from shipper.tail.tap import Tap
from shipper.tried import TriedMark

log = logging.getLogger("logpipe.shipper")

T = TypeVar("T")

DESCRIPTION = """\
logpipe shipper: follows the stdout/stderr of every container on this Docker host
through the Docker Engine API and ships each line, exactly once, to logpipe collectors.

Settings are environment variables (or a .env file):
  LOGPIPE_COLLECTOR_URL  collector URL(s), comma-separated (default http://localhost:8080)
  LOGPIPE_TOKEN          bearer token (or LOGPIPE_TOKEN_FILE)
  LOGPIPE_STATE_DIR      cursors and the disk buffer (default /var/lib/logpipe/shipper)
  LOGPIPE_START_AT       beginning (default): containers already there at the first start,
                         exited ones too, and new ones have their whole log shipped; end:
                         only lines logged since the first start with this state dir
  LOGPIPE_BUFFER_MAX_BYTES  bound of the disk buffer (default 1 GiB)
  DOCKER_HOST            Docker Engine API (default unix:///var/run/docker.sock;
                         LOGPIPE_DOCKER_HOST wins over it)
  LOGPIPE_HOST_NAME      host.name on documents (default: the Docker host's name)
  LOGPIPE_HTTP_LISTEN    /healthz, /status and /metrics (default 0.0.0.0:8081)
  LOGPIPE_TAIL_TOKEN     turns on GET /logs there: this host's lines, live (off when unset;
                         clients send Authorization: Bearer <token>); at most
                         LOGPIPE_TAIL_MAX_CLIENTS (default 4) at once
  LOGPIPE_EVENT_LOOP     uvloop, asyncio, or auto (default: uvloop when installed)
`logpipe-shipper config` prints every setting: its variable, the value in effect, where
it came from and what it means. See README.md for the per-container logpipe.* labels.

Watching this host live (with LOGPIPE_TAIL_TOKEN set):
  curl -N -H "Authorization: Bearer $LOGPIPE_TAIL_TOKEN" 'http://localhost:8081/logs'
  curl -N -H "Authorization: Bearer $LOGPIPE_TAIL_TOKEN" \\
      'http://localhost:8081/logs?name=api*,web&stream=stderr&format=ndjson'
filters: name and image (globs, comma = any), stream (stdout or stderr);
format: plain (name | line, the default) or ndjson."""

EPILOG = """\
`logpipe-shipper config` prints every setting: variable, value in effect, source, meaning;
then what starting would refuse in them (exit 2), to check a configuration before deploying.

exit status:
  0 stopped (SIGTERM/SIGINT)
  1 a runtime failure (an unexpected error, logged with its traceback, or the last save of
    the cursors at exit refused by the disk, logged as one line: restart it, nothing is
    lost)
  2 bad configuration or command line (the message names the setting to change: an
    unknown LOGPIPE_* variable, a bad value, an unreadable token file or certificate, a
    state directory it cannot write or that another shipper uses, no Docker socket or
    no permission to use it, the HTTP port taken)"""

LISTENER_CLOSE = 2.0  # seconds the HTTP listener's requests get to finish at exit

_CONTAINER_ID = re.compile(r"/(?:docker/|docker-|containers/)([0-9a-f]{64})")


def detect_self_id() -> str | None:
    """Our container id when we run in a container, so we never follow ourselves."""
    for path in ("/proc/self/cgroup", "/proc/self/mountinfo"):
        with contextlib.suppress(OSError):
            match = _CONTAINER_ID.search(Path(path).read_text())
            if match:
                return match.group(1)
    return None


async def host_name(config: ShipperConfig, docker: DockerClient, stop: asyncio.Event) -> str | None:
    """LOGPIPE_HOST_NAME, else the Docker host's name (waits for dockerd); None when
    SIGTERM/SIGINT came first."""
    if config.host_name:
        return config.host_name
    delay = 0.5
    while not stop.is_set():
        try:
            name = await until_stopped(docker.identify(), stop)
        except DockerUnavailable as exc:
            log.warning("waiting for dockerd", extra={"reason": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 10)
            continue
        return name
    return None


async def until_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """What `work` returns, or None as soon as `stop` is set (`work` is cancelled then)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, stopped, return_exceptions=True)
    return None if task.cancelled() else task.result()


def open_state(config: ShipperConfig) -> tuple[CursorStore, Spool]:
    """Cursors as saved, moved forward by every batch still in the disk buffer."""
    store = CursorStore(config.state_dir)
    store.load()
    tried = TriedMark(config.state_dir / "spool")
    tried.load()
    spool = Spool(tried.path.parent, config.buffer_max_bytes, tried)
    for cid, stream, position in spool.open():
        store.advance(cid, stream, position)
    for cid, stream, position in spool.written():
        store.wrote(cid, stream, position, earlier=True)
    return store, spool


async def run(config: ShipperConfig, address: tuple[str, int]) -> None:
    """Ship until SIGTERM/SIGINT, then write what was read to disk, flush, save cursors."""
    store, spool = open_state(config)
    counter = metrics.PerContainer(config.metrics_per_container, config.metrics_max_containers)
    inbox = Inbox(config.queue_lines, counter)
    spool.on_change = inbox.pressure
    inbox.pressure(spool.used, spool.max_bytes)
    stop = asyncio.Event()
    hurry = asyncio.Event()  # a second SIGTERM/SIGINT: stop waiting for the collectors

    def on_signal() -> None:
        if stop.is_set() and not hurry.is_set():
            log.warning(
                "second stop signal: not waiting for the collectors any more; the disk "
                "buffer keeps what they did not take, for next start"
            )
            hurry.set()
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)

    async with DockerClient(config.docker_host) as docker, CollectorClient(config) as client:
        self_id = config.self_container_id or detect_self_id()
        tap = Tap()
        tail = Tail(tap, config.tail_token, config.tail_max_clients, config.tail_buffer_lines)
        supervisor = Supervisor(config, docker, store, inbox, self_id, tap)
        batcher = Batcher(config, inbox, spool, store, "")  # the host name once dockerd answers
        sender = Sender(config, inbox, spool, client, store)
        sender.hurry = hurry
        health = Health(batcher)
        # A /logs client that stopped reading must not hold the exit up for aiohttp's 60 s.
        runner = web.AppRunner(
            make_app(supervisor, sender, tail, health),
            access_log=None,
            shutdown_timeout=LISTENER_CLOSE,
        )
        await runner.setup()
        saved = True
        try:
            await web.TCPSite(runner, *address).start()
        except OSError as exc:
            await runner.cleanup()
            spool.release()
            raise ConfigError(
                f"LOGPIPE_HTTP_LISTEN: cannot listen on {address[0]}:{address[1]}: "
                f"{listen_problem(exc)}"
            ) from exc
        try:
            # /healthz answers meanwhile, and SIGTERM/SIGINT end the wait.
            host = await host_name(config, docker, stop)
            if host is None:
                log.info("stopped while waiting for dockerd, exiting")
                return
            batcher.host = host
            health.waiting_for_dockerd = False
            log.info(
                "shipper started",
                extra={
                    "host": host,
                    "collectors": config.collector_url,
                    "state_dir": str(config.state_dir),
                    "logs_endpoint": "on" if config.tail_token else "off (no LOGPIPE_TAIL_TOKEN)",
                    "reading_path": native.describe(),
                },
            )
            await ship_until_stopped(config, stop, tap, supervisor, inbox, batcher, sender)
            # Lifecycle events not on disk yet: queued again at the next start.
            save_held(config.state_dir, supervisor.lifecycle.held())
            # Nothing reads or sends any more: one save covers every acknowledged segment.
            saved = save_at_exit(store)
        finally:
            if saved:
                spool.release()
            await runner.cleanup()
    if not saved:
        raise CursorsNotSaved("the cursors could not be saved at exit")
    log.info("cursors saved, exiting")


def save_at_exit(store: CursorStore) -> bool:
    """Save the cursors one last time; False, and one error line, when the disk refuses.

    The acknowledged segments are kept then (they are deleted only once a save covers
    them), so everything past the cursors saved last is in the disk buffer or was never
    written to it: the next start sends the one again and reads the other from Docker
    again, and the deterministic ``_id`` of each line keeps Elasticsearch from storing it
    twice.
    """
    try:
        store.save()
    except OSError as exc:
        code = errno_name(exc)
        log.error(
            "cannot save the cursors at exit: the next start resumes from the cursors saved "
            "last and the disk buffer, which is kept; nothing is lost, as what lies past "
            "those cursors is sent again or read again from Docker, and Elasticsearch keeps "
            "one copy of each line by its _id",
            extra={
                "path": str(store.path),
                "errno": code,
                "reason": exc.strerror or str(exc),
                "exit_status": EXIT_RUNTIME,
            },
        )
        return False
    return True


async def ship_until_stopped(
    config: ShipperConfig,
    stop: asyncio.Event,
    tap: Tap,
    supervisor: Supervisor,
    inbox: Inbox,
    batcher: Batcher,
    sender: Sender,
) -> None:
    """Run the reading, batching and delivery tasks until `stop`, then shut down. None of
    them ends by itself: one that does (an unexpected error) raises TaskFailed, after the
    others were stopped, so that the process exits non-zero and is restarted instead of
    running on without shipping (what is on disk makes the restart lose nothing)."""
    reading = asyncio.create_task(supervisor.run(), name="supervisor")
    tasks = [
        reading,
        asyncio.create_task(inbox.run(), name="inbox"),
        asyncio.create_task(batcher.run(), name="batcher"),
        asyncio.create_task(sender.run(), name="sender"),
    ]
    stopping = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = next((task for task in tasks if task.done()), None)
        tap.close()  # the /logs streams end, so that the listener can close at once
        if failed is None:
            await shut_down(config, reading, supervisor, batcher, sender)
            failed = next((task for task in tasks if _failure(task)), None)
    finally:
        stopping.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(stopping, *tasks, return_exceptions=True)
    if failed is not None:
        error = _failure(failed) or RuntimeError("it returned")
        log.error(
            "internal error: a task of the shipper ended, exiting so that it is restarted",
            extra={"task": failed.get_name()},
            exc_info=error,
        )
        raise TaskFailed(f"task {failed.get_name()} failed: {type(error).__name__}: {error}")


def _failure(task: asyncio.Task[None]) -> BaseException | None:
    """The exception `task` ended with, if it ended other than by being cancelled."""
    if not task.done() or task.cancelled():
        return None
    return task.exception()


async def shut_down(
    config: ShipperConfig,
    reading: asyncio.Task[None],
    supervisor: Supervisor,
    batcher: Batcher,
    sender: Sender,
) -> None:
    """Stop reading, put what was read in the disk buffer, deliver it within the timeout."""
    log.info("stopping: no more reading; flushing what was read")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.shutdown_timeout
    reading.cancel()
    await supervisor.stop()  # each follower queues the events it held as it ends
    await asyncio.gather(reading, return_exceptions=True)
    written = await batcher.finish(max(0.5, deadline - loop.time()), sender.hurry)
    if not written and batcher.write_error is not None:
        log.error(
            "disk buffer not writable at exit: lines still queued are read again at next start",
            extra={"reason": batcher.write_error},
        )
    elif not written:
        log.warning(
            "lines still queued did not reach the disk buffer before LOGPIPE_SHUTDOWN_TIMEOUT "
            "(the buffer is full, or the disk slow): they are read again at next start, but "
            "for those of containers removed meanwhile",
            extra={"queued": batcher.queue.qsize(), "buffer_bytes": sender.spool.used},
        )
    delivered = await sender.drain(max(0.0, deadline - loop.time()))
    if delivered and written:
        log.info("stopped: everything read was delivered")
    elif delivered:
        log.warning("stopped: the disk buffer was delivered, not the lines still queued")
    else:
        log.warning(
            "stopped before a collector took everything: the disk buffer keeps it for next start",
            extra={"batches": spool_batches(sender), "buffer_bytes": sender.spool.used},
        )


def spool_batches(sender: Sender) -> int:
    """Batches left in the disk buffer."""
    return sender.spool.pending_batches


def parser() -> argparse.ArgumentParser:
    """The command line: no command runs the shipper."""
    p = command_line("logpipe-shipper", DESCRIPTION, EPILOG)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    c = settings_table.add_command(sub, "shipper", "default, .env or the environment")
    c.epilog = EPILOG
    c.add_argument("--version", action="version", version=f"logpipe-shipper {installed_version()}")
    return p


def config_error(exc: Exception) -> None:
    """Each configuration problem as one line on stderr."""
    for line in str(exc).splitlines():
        print(f"logpipe-shipper: invalid configuration: {line}", file=sys.stderr)


def ship(config: ShipperConfig) -> int:
    """Check the settings, then run until stopped."""
    jsonlog.configure(config.log_level)
    factory = preflight.event_loop(config)
    address = preflight.check(config)
    tune_gc()
    tune_malloc()
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run(config, address))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `logpipe-shipper` and `python -m shipper`."""
    args = parser().parse_args(argv)
    try:
        config = load_config()
        if args.command == "config":
            table = settings_table.rows(config)
            table.append(settings_table.native_row("logpipe_shipper_native", native.describe()))
            settings_table.write(table, args.json)
            problems = preflight.problems(config)
            if not problems:
                return 0
            sys.stdout.flush()  # the table, then what starting would refuse in it
            raise ConfigError("\n".join(problems))
        return ship(config)
    except ConfigError as exc:
        config_error(exc)
        return EXIT_CONFIG
    except CursorsNotSaved:
        return EXIT_RUNTIME  # said in the log, as one line
    except ShipperError as exc:
        print(f"logpipe-shipper: {exc}", file=sys.stderr)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
