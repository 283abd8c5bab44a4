"""Requests aiohttp cannot parse as HTTP: answered in the API's JSON shape, logged as one line.

A request line that is not HTTP, a header aiohttp refuses (no valid token, a
Content-Length that is no number, both Content-Length and Transfer-Encoding), chunk
framing broken within the bytes that came with the head, a line past 8190 bytes, too
many headers: aiohttp's parser rejects these before any middleware runs, and
``web.RequestHandler.handle_error`` answers them, by default with a plain-text page.
aiohttp offers no hook for that answer (aio-libs/aiohttp#3287), so the collector serves
its app with `Runner`, whose connections override that one public method: the same
status aiohttp chose (400 for all of these), the connection still closed, and the body
``{"error": "request is not valid HTTP: <aiohttp's reason>"}`` like every other error of
the API. tests/collector/test_badhttp.py fails loudly if aiohttp stops calling it.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from collector.app import error_response

__all__ = ["Runner", "problem"]

log = logging.getLogger("logpipe.collector")


def problem(exc: HttpProcessingError) -> str:
    """aiohttp's reason on one line (its message draws a caret under the bad byte on a
    line of its own), at most 512 characters."""
    said = (line.strip() for line in exc.message.splitlines())
    return " ".join(line for line in said if line.strip("^"))[:512]


class _NotHttp(logging.Filter):
    """aiohttp's record of a request it could not parse: one warning line naming the
    sender and the problem, instead of an error with the parser's traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and record.levelno > logging.WARNING:
            record.msg = "request from %s is not valid HTTP, answered 400: %s"
            record.args = (*(record.args or ("unknown",)), problem(exc))
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


_NOT_HTTP = _NotHttp()


class _Connection(web.RequestHandler):
    """aiohttp's connection, whose own error answers are the API's JSON error body."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer (it logs, and raises if a response was begun), in JSON."""
        super().handle_error(request, status, exc, message)
        if isinstance(exc, HttpProcessingError):
            text = f"request is not valid HTTP: {problem(exc)}"
        elif status == HTTPStatus.INTERNAL_SERVER_ERROR:
            text = "internal error in the collector (logged); retry later"
        else:
            text = f"{HTTPStatus(status).phrase}; retry later"
        response = error_response(status, text)
        response.force_close()
        return response


class _Server(web.Server):
    """aiohttp's protocol factory, making `_Connection`s."""

    def __call__(self) -> web.RequestHandler:
        return _Connection(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """aiohttp's AppRunner, whose server answers requests that are not HTTP in JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        if type(server) is not web.Server or not all(
            hasattr(server, name) for name in ("_loop", "_kwargs")
        ):
            # Another aiohttp than the one this was written for: its own plain-text
            # answers are better than a collector that does not start.
            log.warning(
                "requests that are not HTTP are answered by aiohttp's own page",
                extra={"server": type(server).__name__},
            )
            return server
        server.__class__ = _Server
        logging.getLogger("aiohttp.server").addFilter(_NOT_HTTP)  # a filter is kept once
        return server
