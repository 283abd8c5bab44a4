"""Receiving a request body: decompressed, within a size, a time and a shared memory bound.

A body is read before its batch takes one of the ``max_in_flight`` places, so a sender
that stalls mid-body (a host that lost power, a hostile client) holds only the bytes it
sent, and only until ``body_timeout``; those bytes count in one budget shared by every
body being received, so memory stays bounded however many senders stall at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from collector import metrics
from collector.errors import (
    BadRequest,
    BodyTimeout,
    Busy,
    PayloadTooLarge,
    SenderGone,
    UnsupportedMedia,
)

_CHUNK = 256 * 1024


class BodyBudget:
    """The bytes held by bodies still being received, against one limit for them all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> None:
        """Count `size` more bytes, or raise Busy if they would go past the limit."""
        if self.held + size > self.limit:
            raise Busy(
                "collector busy: too many request bodies being received at once, retry shortly"
            )
        self.held += size

    @contextmanager
    def reading(self) -> Iterator[list[int]]:
        """A body being read: what it took (the list's one item) is given back at the end."""
        taken = [0]
        metrics.BODIES_READING.inc()
        try:
            yield taken
        finally:
            self.held -= taken[0]
            metrics.BODIES_READING.dec()


def check_encoding(request: web.Request, limit: int) -> str:
    """The Content-Encoding, refused (415, 413) before any of the body is read."""
    encoding = request.headers.get("Content-Encoding", "identity").lower()
    if encoding not in ("identity", "", "gzip", "deflate"):
        raise UnsupportedMedia(f"Content-Encoding '{encoding}' not supported (use gzip or none)")
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body of {request.content_length} bytes is over the {limit} limit")
    return encoding


async def read_body(request: web.Request, limit: int, budget: BodyBudget, seconds: float) -> bytes:
    """The request body, decompressed, never more than `limit` bytes, within `seconds`.

    aiohttp inflates ``Content-Encoding: gzip`` itself, in bounded steps, so counting
    the bytes it hands out bounds the decompressed size too (a gzip bomb is a 413).
    """
    encoding = check_encoding(request, limit)
    try:
        async with asyncio.timeout(seconds):
            return await _chunks(request, limit, budget, encoding)
    except TimeoutError:
        raise BodyTimeout(
            f"the request body did not arrive within {seconds:g}s (LOGPIPE_BODY_TIMEOUT): "
            "send it again"
        ) from None


async def _chunks(request: web.Request, limit: int, budget: BodyBudget, encoding: str) -> bytes:
    chunks: list[bytes] = []
    with budget.reading() as taken:
        try:
            async for chunk in request.content.iter_chunked(_CHUNK):
                if taken[0] + len(chunk) > limit:
                    raise PayloadTooLarge(f"decompressed body is over the {limit} byte limit")
                budget.take(len(chunk))
                taken[0] += len(chunk)
                chunks.append(chunk)
        except (HttpProcessingError, RequestPayloadError) as exc:
            raise BadRequest(f"body is not valid {encoding}: {_root_cause(exc)}") from exc
        except ConnectionError as exc:
            raise SenderGone("the sender closed the connection before the body ended") from exc
    return b"".join(chunks)


def _root_cause(exc: BaseException) -> str:
    """The innermost reason (zlib's, say), not aiohttp's wrappers around it."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc) or type(exc).__name__
