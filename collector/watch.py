"""Waiting for an answer while making sure the peer still answers at all.

The collector's `_bulk` requests to Elasticsearch and the shipper's batches to a
collector wait up to a long timeout for their answer: a busy peer is slow, not gone. A
peer that hung (a paused process, a dead host: the kernel takes the connection, nothing
answers) held each request for the whole timeout. So once a request has waited a while,
its peer is probed with something cheap, raced with the request: an answer that comes
meanwhile is taken at once; a peer that answers the probe is waited for; one that lets
the probes time out has hung.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Unanswered(Exception):
    """The peer answered neither the request in time nor the probes after it."""


async def answer(
    request: asyncio.Future[T],
    check_after: float,
    probe: Callable[[], Awaitable[bool]],
    probes: int = 1,
) -> T:
    """The result of `request`; Unanswered when, each time it has waited `check_after`
    seconds more, `probes` probes in a row (each `probe()`: whether the peer answers)
    say no. The caller cancels `request` then."""
    while True:
        done, _ = await asyncio.wait((request,), timeout=check_after)
        if done:
            return request.result()
        if not await alive(request, probe, probes):
            raise Unanswered
        if request.done():
            return request.result()


async def alive(
    request: asyncio.Future[T], probe: Callable[[], Awaitable[bool]], probes: int = 1
) -> bool:
    """Whether one of `probes` probes in a row, each raced with `request`, says the peer
    answers, or `request` ends meanwhile."""
    for _ in range(probes):
        check = asyncio.ensure_future(probe())
        try:
            await asyncio.wait((request, check), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not check.done():
                check.cancel()
                await asyncio.gather(check, return_exceptions=True)
        if request.done() or check.result():
            return True
    return False
