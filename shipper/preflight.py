"""Settings that would only fail later, tried once at start.

Each failure is a ConfigError whose one line names the variable to change. What may
change while the shipper runs is left to the running code: dockerd that does not answer
on an existing socket (restarting) is waited for, a token file is re-read after a 401.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

from collector.runtime import loop_factory, os_reason, problems_of
from shipper.config import ShipperConfig
from shipper.docker_api import unknown_scheme
from shipper.errors import ConfigError
from shipper.sink import client_ssl

log = logging.getLogger("logpipe.shipper")

LOCK_FILE = "lock"
_held: dict[Path, int] = {}  # lock file -> descriptor, open for the process's life


def event_loop(config: ShipperConfig) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory of LOGPIPE_EVENT_LOOP (None: asyncio's)."""
    try:
        return loop_factory(config.event_loop)
    except ImportError:
        raise ConfigError(
            "LOGPIPE_EVENT_LOOP=uvloop, but uvloop is not installed "
            "(pip install uvloop, or set LOGPIPE_EVENT_LOOP=asyncio)"
        ) from None


def listen_address(config: ShipperConfig) -> tuple[str, int]:
    """Host and port of LOGPIPE_HTTP_LISTEN."""
    host, sep, port = config.http_listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"LOGPIPE_HTTP_LISTEN: '{config.http_listen}' is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def check_state_dir(state_dir: Path) -> None:
    """The state directory exists (made if need be) and takes a file."""
    probe = state_dir / ".write-test"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        # mkdir's "file exists" for a path that is a file would leave the reader puzzled.
        reason = "it is not a directory" if isinstance(exc, FileExistsError) else os_reason(exc)
        raise ConfigError(
            f"LOGPIPE_STATE_DIR: cannot write in {state_dir}: {reason}; choose a "
            "directory the shipper may write (cursors and the disk buffer live there)"
        ) from exc


def lock_state_dir(state_dir: Path) -> None:
    """Hold the state directory for as long as this process lives.

    Two shippers on one state directory would send, then delete, each other's disk
    buffer segments and save over each other's cursors: lines would be lost. The lock is
    flock(2) on ``<state_dir>/lock``, which the kernel releases when the process ends
    however it ends (kill -9 too), so a restart never finds a stale lock to clear.
    """
    path = state_dir / LOCK_FILE
    if path in _held:
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(f"LOGPIPE_STATE_DIR: cannot open {path}: {os_reason(exc)}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _holder(fd)
        os.close(fd)
        if isinstance(exc, BlockingIOError):
            raise ConfigError(
                f"LOGPIPE_STATE_DIR: another shipper{holder} uses {state_dir}; stop it, or "
                "give each shipper its own state directory"
            ) from None
        raise ConfigError(f"LOGPIPE_STATE_DIR: cannot lock {path}: {os_reason(exc)}") from exc
    # Who holds it, for the message of the next one (a pid in its own PID namespace).
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
    _held[path] = fd


def _holder(fd: int) -> str:
    """' (pid N on HOST)' from the lock file, or '' when it says nothing usable."""
    try:
        pid, _, host = os.pread(fd, 300, 0).decode().strip().partition(" ")
    except (OSError, UnicodeDecodeError):
        return ""
    if not pid.isdigit():
        return ""
    return f" (pid {pid} on {host})" if host else f" (pid {pid})"


def check_docker_socket(docker_host: str) -> None:
    """A unix:// DOCKER_HOST names a socket that exists and that we may use."""
    if docker_host.startswith(("tcp://", "http://")):
        return
    if not docker_host.startswith("unix://"):
        raise ConfigError(unknown_scheme(docker_host))
    path = Path(docker_host.removeprefix("unix://"))
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(
            f"DOCKER_HOST: no Docker socket at {path} ({os_reason(exc)}): start dockerd, mount "
            f"its socket into this container (-v {path}:{path}:ro), or set DOCKER_HOST"
        ) from exc
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"DOCKER_HOST: {path} is not a socket")
    if not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(
            f"DOCKER_HOST: no permission to use {path}: run the shipper as root or in the "
            "socket's group (usually docker)"
        )


def check_token(config: ShipperConfig) -> None:
    """Read the token file now (a ConfigError if it cannot be read); warn without a token."""
    if config.bearer_token() is None:
        log.warning(
            "no bearer token: set LOGPIPE_TOKEN (or LOGPIPE_TOKEN_FILE) to one of the "
            "collector's LOGPIPE_TOKENS, or every batch is refused (401) unless the collector "
            "runs with LOGPIPE_AUTH=none"
        )


def check(config: ShipperConfig) -> tuple[str, int]:
    """Every start-up check; the address to serve /healthz, /status and /metrics on."""
    address = listen_address(config)
    check_docker_socket(config.docker_host)
    check_state_dir(config.state_dir)
    lock_state_dir(config.state_dir)
    client_ssl(config)
    check_token(config)
    return address


def problems(config: ShipperConfig) -> list[str]:
    """Every problem of the settings that starting refuses (it stops at the first), for
    `config` to list them all. What only starting can tell or does is left out: the port
    being free, and the state directory, which starting makes and locks."""
    checks: list[Callable[[ShipperConfig], object]] = [
        event_loop,
        listen_address,
        lambda c: check_docker_socket(c.docker_host),
        client_ssl,
        lambda c: c.bearer_token(),
    ]
    return problems_of(config, checks, ConfigError)
