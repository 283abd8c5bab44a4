"""Process-wide settings both logpipe processes start with: the garbage collector's
thresholds and the event loop."""

from __future__ import annotations

import asyncio
import gc
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
