"""Process-wide settings both logpipe processes start with: the garbage collector's
thresholds, the C allocator's heap trimming and the event loop."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import platform
from collections.abc import Callable
from typing import Literal

EventLoop = Literal["auto", "uvloop", "asyncio"]


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for the many short-lived records.

    Records and documents hold no cycles (reference counting frees them), yet their
    containers trigger a collection every 700 allocations, each scanning what is being
    built; that costs several CPU-µs per record. Objects alive at start are frozen out of
    the scans, and a collection waits for 50,000 allocations.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


# glibc's mallopt parameter, and how much freed memory the heap keeps (see tune_malloc).
M_TRIM_THRESHOLD = -1
HEAP_KEEP_BYTES = 64 * 1024 * 1024
MALLOC_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")


def tune_malloc(environ: dict[str, str] | None = None) -> bool:
    """Let glibc keep up to HEAP_KEEP_BYTES of freed heap instead of returning it at once.

    A batch of a few thousand records is built, encoded and freed several times a
    second. With glibc's default threshold the freed top of the heap goes back to the
    kernel after each batch and the next batch faults every page in again: 4,000 page
    faults a second in a shipper at 4k lines/s, and orjson.dumps of a 5,000-line batch
    4x slower than when the memory is kept. The cost is a resident size that stays at
    its peak. Settings of the user's own (MALLOC_TRIM_THRESHOLD_ and the like, or
    GLIBC_TUNABLES) win; other C libraries are left alone. True when it was applied.
    """
    env = os.environ if environ is None else environ
    if any(name in env for name in MALLOC_ENV) or "malloc." in env.get("GLIBC_TUNABLES", ""):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, HEAP_KEEP_BYTES))


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
