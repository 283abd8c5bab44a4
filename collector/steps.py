"""Work on a big batch done in steps, so that the event loop answers other requests
(`/healthz`, tails, other senders' batches) between two. Pure but for :func:`finish`.

A job in steps is a generator that yields between two steps of about `seconds` each
and returns its result (``Generator[None, None, T]``); `seconds=None` makes it one
step. :func:`finish` runs one on the event loop. A job looks at its :class:`Clock`
every PART items or so: the usual batch of a few thousand records is one step, and
looking costs nothing measurable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from time import perf_counter
from typing import TypeVar, cast

_T = TypeVar("_T")

# About how long one step lasts: the loop is never held much longer by a batch's work.
STEP_SECONDS = 0.01
# Items of a list a job handles between two looks at its clock (a document's encoding or
# freeing costs 0.1-10 µs).
PART = 512


class Clock:
    """When a job's step is over: `seconds` after it began (never, for None)."""

    __slots__ = ("seconds", "until")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.until = None if seconds is None else perf_counter() + seconds

    def due(self) -> bool:
        """Whether the step has lasted its time (the job then yields, then restarts)."""
        return self.until is not None and perf_counter() >= self.until

    def restart(self) -> None:
        """Begin the next step."""
        if self.seconds is not None:
            self.until = perf_counter() + self.seconds

    def pause(self) -> Generator[None, None, None]:
        """In a job (``yield from clock.pause()``): yield once, then begin the next step,
        when the step has lasted its time; nothing otherwise."""
        if self.due():
            yield
            self.restart()


def at_once(steps: Generator[None, None, _T]) -> _T:
    """The result of a job in steps, run without pause."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast("_T", done.value)


async def finish(steps: Generator[None, None, _T]) -> _T:
    """The result of a job in steps, letting the event loop run between two; and once
    more after its last step when that one took half a step or longer, so that the job
    after it (a batch's next phase) begins a step of its own rather than adding one."""
    began = perf_counter()
    while True:
        try:
            next(steps)
        except StopIteration as done:
            if perf_counter() - began >= STEP_SECONDS / 2:
                await asyncio.sleep(0)
            return cast("_T", done.value)
        await asyncio.sleep(0)
        began = perf_counter()


def releasing(items: list[_T], seconds: float | None) -> Generator[None, None, None]:
    """Empty `items` in steps, from its end: what only the list held is freed a part at a
    time (a 32 MiB body's 200,000 documents took 50-90 ms to free in one go)."""
    clock = Clock(seconds)
    while items:
        yield from clock.pause()
        del items[-PART:]
