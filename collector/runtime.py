"""Process-wide settings both logpipe processes start with: the garbage collector's
thresholds, the C allocator's heap trimming and the event loop;
and what both say about themselves: their version, command line, exit statuses and the
words for an OS error."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import socket
import ssl
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Literal, TypeVar

from collector import GC_THRESHOLDS

EventLoop = Literal["auto", "uvloop", "asyncio"]
Settings = TypeVar("Settings")

EXIT_RUNTIME = 1  # a service failed (Elasticsearch did not answer, ...)
EXIT_CONFIG = 2  # the settings or the command line must change (as argparse's own errors)


def installed_version() -> str:
    """The installed distribution's version, or a marker when run from a source tree."""
    try:
        return version("logpipe")
    except PackageNotFoundError:
        return "unknown (not installed)"


def os_reason(exc: OSError) -> str:
    """What went wrong, in the C library's words (no Python exception text); for TLS
    files, that they are no PEM certificate and key that belong together."""
    if isinstance(exc, ssl.SSLError):
        return f"not a PEM certificate and key that belong together ({exc.reason or exc})"
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


def listen_problem(exc: OSError) -> str:
    """Why a program cannot listen where its setting says, and what to do."""
    if isinstance(exc, socket.gaierror):  # os.strerror would say "unknown error -2"
        reason = (exc.strerror or str(exc)).lower()
        return f"no such address here ({reason}): give one of this machine's, or 0.0.0.0"
    return f"{os_reason(exc)}; choose a free port or stop what holds it"


def problems_of(
    config: Settings,
    checks: list[Callable[[Settings], object]],
    refused: type[Exception],
) -> list[str]:
    """What each start-up check says of `config`, for a `config` command to list every
    problem where starting stops at the first: the message of each check that raised
    `refused` (a program's error for settings that must change)."""
    found = []
    for check in checks:
        try:
            check(config)
        except refused as exc:
            found.append(str(exc))
    return found


def command_line(prog: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A program's parser: its description and epilog (the exit statuses) as written, and
    --version."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    return parser


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for the many short-lived records.

    Records and documents hold no cycles (reference counting frees them), yet their
    containers trigger a collection every 700 allocations, each scanning what is being
    built; that costs several CPU-µs per record. Objects alive at start are frozen out of
    the scans, and a collection waits for 50,000 allocations.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


# glibc's mallopt parameters and the values tune_malloc sets.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
HEAP_KEEP_BYTES = 64 * 1024 * 1024  # freed heap kept rather than given back
HEAP_UP_TO_BYTES = 32 * 1024 * 1024  # blocks up to this size come from the heap (glibc's max)
MALLOC_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")


def tune_malloc(environ: dict[str, str] | None = None) -> bool:
    """Let glibc reuse freed memory for the next batch instead of faulting it in afresh.

    A batch of a few thousand records, and its request bodies of a few MB, are built,
    encoded and freed several times a second. By default glibc gives the freed top of
    the heap back to the kernel after each batch and serves large bodies with mmap, so
    the next batch faults every page in again: 4,000 minor page faults a second in a
    shipper at 4k lines/s (11 with this), 1,000 in a collector at 16k docs/s (341).
    Both limits are set together: fixing the trim threshold alone also fixes the
    mmap threshold at 128 KiB, which made the collector fault 17,000 times a second.
    The cost is a resident size that stays near its peak.

    Settings of the user's own (MALLOC_TRIM_THRESHOLD_ and the like, or GLIBC_TUNABLES)
    win; other C libraries are left alone. True when both were applied.
    """
    env = os.environ if environ is None else environ
    if any(name in env for name in MALLOC_ENV) or "malloc." in env.get("GLIBC_TUNABLES", ""):
        return False
    try:  # the C library answers for itself (platform.libc_ver scans the executable)
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
    except (ValueError, OSError):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    kept = mallopt(M_TRIM_THRESHOLD, HEAP_KEEP_BYTES)
    return bool(kept and mallopt(M_MMAP_THRESHOLD, HEAP_UP_TO_BYTES))


def loop_factory(choice: EventLoop) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to run on: uvloop when asked or, for ``auto``, when installed.

    Raises ImportError for ``uvloop`` when it is not installed.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return None
    return uvloop.new_event_loop
