"""The ``GET /logs`` handler: the token, the limit on clients, and the stream itself.

Off unless ``LOGPIPE_TAIL_TOKEN`` is set (the listener binds to every interface by
default, and logs are sensitive): then 404 with how to turn it on. A missing or wrong
``Authorization: Bearer`` token is 401 (compared in constant time), bad parameters 400,
a client over ``LOGPIPE_TAIL_MAX_CLIENTS`` 429, one while the shipper stops 503; each
with a JSON ``{"error": ...}``.
An accepted client gets a chunked stream that lasts until it disconnects or the shipper
stops. This module is the edge where a client's dropped connection is caught.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from aiohttp import web

from shipper.errors import TailRequestError
from shipper.tail.query import parse
from shipper.tail.render import CONTENT_TYPES, RENDER
from shipper.tail.tap import Subscriber, Tap

CHECK_EVERY = 1.0  # seconds without lines after which the client's connection is looked at

OFF = (
    "GET /logs is off: set LOGPIPE_TAIL_TOKEN on the shipper to a secret to turn it on, "
    "then send it as Authorization: Bearer <token>"
)
UNAUTHORIZED = (
    "missing or wrong token: send Authorization: Bearer <the shipper's LOGPIPE_TAIL_TOKEN>"
)


@dataclass(frozen=True)
class Tail:
    """What the handler needs: the tap, the token and the bounds."""

    tap: Tap
    token: str | None
    max_clients: int
    max_lines: int  # queued per client before it misses lines


TAIL: web.AppKey[Tail] = web.AppKey("tail", Tail)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON error answer."""
    return web.json_response({"error": message}, status=status, headers=headers)


def authorized(header: str, token: str) -> bool:
    """Whether an Authorization header carries the token (constant time)."""
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    digest = hashlib.sha256(given.strip().encode()).digest()
    return hmac.compare_digest(digest, hashlib.sha256(token.encode()).digest())


def refusal(tail: Tail, request: web.Request) -> web.Response | None:
    """The answer to a request that may not have the stream; None when it may."""
    if tail.token is None:
        return error(404, OFF)
    if not authorized(request.headers.get("Authorization", ""), tail.token):
        return error(401, UNAUTHORIZED, {"WWW-Authenticate": 'Bearer realm="logpipe-shipper"'})
    if tail.tap.closed:
        return error(503, "the shipper is stopping")
    if len(tail.tap.subscribers) >= tail.max_clients:
        return error(
            429,
            f"{len(tail.tap.subscribers)} clients of /logs are attached, the most "
            "LOGPIPE_TAIL_MAX_CLIENTS allows: try again once one has left",
        )
    return None


async def logs(request: web.Request) -> web.StreamResponse:
    """This host's lines, live, filtered and formatted as the request asks."""
    tail = request.app[TAIL]
    refused = refusal(tail, request)
    if refused is not None:
        return refused
    try:
        query = parse({key: request.query.getall(key) for key in set(request.query)})
    except TailRequestError as exc:
        return error(400, str(exc))
    subscriber = tail.tap.subscribe(query, tail.max_lines)
    try:
        return await stream(request, subscriber)
    finally:
        tail.tap.unsubscribe(subscriber)


async def stream(request: web.Request, subscriber: Subscriber) -> web.StreamResponse:
    """Write what the client's queue takes until it disconnects or the tap closes."""
    fmt = subscriber.query.format
    response = web.StreamResponse(
        headers={
            "Content-Type": CONTENT_TYPES[fmt],
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a proxy in front must not hold the stream back
        }
    )
    await response.prepare(request)
    render = RENDER[fmt]
    try:
        while (taken := await subscriber.take(CHECK_EVERY)) is not None:
            if taken.lines or taken.missed:
                await response.write(render(taken.lines, taken.missed))
            elif request.transport is None or request.transport.is_closing():
                break  # the client left while nothing came
    except ConnectionError:
        pass  # the client left while a write waited
    return response
