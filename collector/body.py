"""Receiving a request body: decompressed, within a size, a time and a shared memory bound.

A body is read before its batch takes one of the ``max_in_flight`` places, so a sender
that stalls mid-body (a host that lost power, a hostile client) holds only the bytes it
sent, and only until ``body_timeout``; those bytes count in one budget shared by every
body being received, so memory stays bounded however many senders stall at once.

Bodies are inflated here, not by aiohttp (the server runs with ``auto_decompress=False``):
aiohttp takes a gzip stream cut short for a whole one, and answers an encoding it cannot
read (``br``, ``zstd``) with a plain-text 400 and a traceback in the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from aiohttp import StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from zlib_ng import zlib_ng

from collector import metrics
from collector.errors import (
    BadRequest,
    BodyTimeout,
    Busy,
    PayloadTooLarge,
    SenderGone,
    ShuttingDown,
    UnsupportedMedia,
)

_CHUNK = 256 * 1024
_STEP = 1024 * 1024  # most bytes inflated at once
_GZIP_MAGIC = b"\x1f\x8b"
# What zlib-ng raises for a stream it cannot inflate (its stub declares an instance).
_INFLATE_ERROR = cast("type[Exception]", zlib_ng.error)


class BodyBudget:
    """The bytes held by bodies still being received, against one limit for them all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._receiving: set[StreamReader] = set()

    def take(self, size: int) -> None:
        """Count `size` more bytes, or raise Busy if they would go past the limit."""
        if self.held + size > self.limit:
            raise Busy(
                "collector busy: too many request bodies being received at once, retry shortly"
            )
        self.held += size

    @contextmanager
    def reading(self, content: StreamReader | None = None) -> Iterator[list[int]]:
        """A body being read (from `content`): what it took (the list's one item) is given
        back at the end."""
        taken = [0]
        metrics.BODIES_READING.inc()
        if content is not None:
            self._receiving.add(content)
        try:
            yield taken
        finally:
            self.held -= taken[0]
            self._receiving.discard(content)
            metrics.BODIES_READING.dec()

    def interrupt(self) -> None:
        """End every body still being received with ShuttingDown: once the server stops,
        aiohttp reads no more of them, so each would wait for body_timeout in vain."""
        for content in self._receiving:
            content.set_exception(
                ShuttingDown("collector shutting down: send the batch again (to another one)")
            )


def check_encoding(request: web.Request, limit: int) -> str:
    """The Content-Encoding, refused (415, 413) before any of the body is read."""
    encoding = request.headers.get("Content-Encoding", "identity").lower()
    if encoding not in ("identity", "", "gzip", "deflate"):
        raise UnsupportedMedia(
            f"Content-Encoding '{encoding}' not supported (use gzip, deflate or none)"
        )
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body of {request.content_length} bytes is over the {limit} limit")
    return encoding


async def read_body(request: web.Request, limit: int, budget: BodyBudget, seconds: float) -> bytes:
    """The request body, decompressed, never more than `limit` bytes, within `seconds`.

    A compressed body is inflated as it arrives, in steps bounded by what is left of
    `limit`, so a gzip bomb is a 413 without being inflated whole.
    """
    encoding = check_encoding(request, limit)
    try:
        async with asyncio.timeout(seconds):
            data = await _chunks(request, limit, budget, encoding)
    except TimeoutError:
        raise BodyTimeout(
            f"the request body did not arrive within {seconds:g}s (LOGPIPE_BODY_TIMEOUT): "
            "send it again"
        ) from None
    if encoding in ("identity", "") and data.startswith(_GZIP_MAGIC):
        raise BadRequest(
            "body is gzip-compressed but the request has no 'Content-Encoding: gzip' header: "
            "send the header, or the body uncompressed"
        )
    return data


class Inflater:
    """A gzip or deflate body inflated chunk by chunk, never past `limit` bytes in all.

    Gzip members may follow one another (RFC 1952). A stream that stops before its end
    (a body cut short) or bytes after it that start no member are a BadRequest: the
    lines cut off would be lost without a word.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self._room = limit
        self._limit = limit
        self._member: Any = None  # the stream being inflated; None between gzip members

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The inflated bytes of `data`, the next bytes of the body, a step at a time."""
        try:
            while data:
                if self._member is None:
                    # zlib-ng: 0.27 instead of zlib's 0.61 CPU-µs per wire line (BENCHMARKS).
                    self._member = zlib_ng.decompressobj(self._window(data))
                # In steps: the shared budget is checked between them.
                piece = self._member.decompress(data, min(self._room + 1, _STEP))
                self._room -= len(piece)
                if self._room < 0:
                    raise PayloadTooLarge(f"decompressed body is over the {self._limit} byte limit")
                data = self._next(self._member)
                yield piece
        except _INFLATE_ERROR as exc:
            raise BadRequest(f"body is not valid {self.encoding}: {exc}") from exc

    def end(self) -> None:
        """Raise BadRequest unless the body ended where its compressed stream does."""
        if self._member is not None:
            raise BadRequest(
                f"body is not valid {self.encoding}: it ends before its compressed stream "
                "does (cut short on the way?): send it again"
            )

    def _window(self, data: bytes) -> int:
        if self.encoding == "gzip":
            return 31
        # RFC 9110's deflate is zlib-wrapped; some clients send a raw stream all the same.
        return 15 if data[0] & 0x0F == 8 else -15

    def _next(self, member: Any) -> bytes:
        """What of the input is left to inflate: the rest of this stream, or the next member."""
        if not member.eof:
            return bytes(member.unconsumed_tail)
        rest = bytes(member.unused_data)
        self._member = None
        if rest and self.encoding != "gzip":
            raise BadRequest(f"body is not valid {self.encoding}: bytes after its end")
        return rest


async def _chunks(request: web.Request, limit: int, budget: BodyBudget, encoding: str) -> bytes:
    chunks: list[bytes] = []
    inflater = Inflater(encoding, limit) if encoding in ("gzip", "deflate") else None
    with budget.reading(request.content) as taken:
        try:
            async for chunk in request.content.iter_chunked(_CHUNK):
                for piece in inflater.feed(chunk) if inflater is not None else (chunk,):
                    if taken[0] + len(piece) > limit:
                        raise PayloadTooLarge(f"decompressed body is over the {limit} byte limit")
                    budget.take(len(piece))
                    taken[0] += len(piece)
                    chunks.append(piece)
        except (HttpProcessingError, RequestPayloadError) as exc:
            raise BadRequest(f"body cannot be read as sent: {_root_cause(exc)}") from exc
        except ConnectionError as exc:
            raise SenderGone("the sender closed the connection before the body ended") from exc
        if inflater is not None:
            inflater.end()
    return b"".join(chunks)


def _root_cause(exc: BaseException) -> str:
    """The innermost reason, not aiohttp's wrappers around it."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc) or type(exc).__name__
