"""Send batches to the collector(s) over HTTP and learn whether they were taken.

The only module that touches aiohttp for the collector: answers and connection errors
become :mod:`shipper.errors`. Several collector URLs are used in turn; one that fails
is skipped for a while with exponential backoff and jitter. Every failure is counted by
reason (``connection``, ``tls``, ``unauthorized``, ``http_503``...) and the message
says what to fix; a certificate we do not trust or a refused token is retried like an
outage (the collector's certificate or token list may be fixed without restarting us).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDictProxy

from collector import watch
from collector.runtime import os_reason
from collector.wire import BODY_LIMIT, NDJSON, PATH_LOGS, SENT_AGAIN, UNWRITTEN
from shipper import metrics
from shipper.config import ShipperConfig
from shipper.errors import (
    ConfigError,
    DeliveryError,
    RejectedDelivery,
    RetryableDelivery,
    TooLarge,
    TooSlow,
)

log = logging.getLogger("logpipe.shipper.sink")

BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 30.0
# A batch a collector has not answered HANG_CHECK seconds after its body was sent is
# checked (the body's own time is not counted: over a slow link it may take longer than
# HANG_CHECK, and probes queued behind it on the same link would time out as if the
# collector had hung, giving up every try of a batch it was receiving); the collector
# is asked /healthz, which its event loop answers at once however long Elasticsearch takes
# with the batch. One that lets two such probes in a row time out (PROBE_TIMEOUT each) has
# hung (a paused process, a dead host): the batch is given up and sent again, to another
# collector where there are several, instead of waiting out request_timeout (the `_id`s
# keep a late answer of the hung one from indexing anything twice within a backing index).
# Behind a load balancer a probe may reach another collector, or the hung one.
# A body that stops moving while it is being sent (none of it taken by the connection for
# HANG_CHECK seconds: the collector stopped reading it) starts the same probes: a slow
# link moves it, however slowly, so only a collector that no longer reads, or a link
# that carries nothing, stalls it; one that answers /healthz is only busy and is waited for.
HANG_CHECK = 10.0
PROBE_TIMEOUT = 5.0
RETRY_AFTER_MAX = 300.0  # the longest a collector's (or a proxy's) Retry-After holds a batch
# A collector's body cap (Endpoint.cap: bodies larger are sent in parts, learnt after a
# 408 or 413) doubles once RAISE_AFTER bodies in a row of more than half of it went
# through, and is lifted once it reaches the size of the body that first failed. A
# raise that fails again (a body within it answered 408 or 413) doubles the count the
# next raise waits for, up to RAISE_AFTER_MAX: over a link that stays slow, the bytes of
# a try thrown away are spent ever more rarely, and once a raise holds the count is
# RAISE_AFTER again. So it is once a lift holds (RAISE_AFTER bodies larger than the size
# lifted went through whole): a link that got better is learnt afresh when it slows
# again, not with the count of the spell before (Endpoint.took). Counted in bodies, not
# seconds: a link the shipper sends little over learns little of its speed, and needs no
# cap for its small bodies anyway.
RAISE_AFTER = 16
RAISE_AFTER_MAX = 128


@dataclass(slots=True)
class Endpoint:
    """One collector and when it may be tried again."""

    url: str
    failures: int = 0
    next_try: float = 0.0
    asked_until: float = 0.0  # the end of the last Retry-After the collector gave
    # The largest body sent whole (None: any): learnt from a 408 or 413, see too_big.
    cap: int | None = None
    capped_from: int = 0  # the size of the body whose failure set the cap from none
    fitted: int = 0  # bodies of over half the cap that went through since it last changed
    raise_after: int = 0  # bodies that must go through before a raise; 0: RAISE_AFTER
    raised: bool = False  # the cap was last raised (or lifted), not lowered
    lifted_from: int = 0  # the cap last lifted, until the lift held (see took)
    # The largest body the collector said it takes (collector.wire.BODY_LIMIT), counted
    # as it counts it (see body_size); None while it said none (an older collector).
    # Said, not learnt: bodies larger are sent in parts under it, it is never raised.
    limit: int | None = None
    limit_inflated: bool = True  # it counts the body decompressed, not as sent

    def told(self, value: str | None) -> None:
        """Take the body limit an answer of the collector said (BODY_LIMIT's value). An
        answer without one (or with one this shipper cannot read) changes nothing: behind
        a load balancer it may come from an older collector, or from the balancer itself."""
        said = _body_limit(value)
        if said is None:
            return
        self.limit, self.limit_inflated = said
        metrics.BODY_LIMIT.labels(self.url).set(self.limit)

    def over_limit(self, body: bytes) -> bool:
        """Whether the gzip `body` is larger than the collector said it takes."""
        return self.limit is not None and body_size(body, self.limit_inflated) > self.limit

    def too_big(self, size: int, part: int) -> bool:
        """A body of `size` bytes was too large for this collector (413) or reached it
        too slowly (408), and is sent in parts of at most `part` bytes: bodies larger than
        those are sent in parts from now on. Whether this learnt a cap where none was."""
        cap = self.cap
        if self.raised and (cap is None or size <= cap):  # what the last raise let through
            self.raise_after = min(RAISE_AFTER_MAX, (self.raise_after or RAISE_AFTER) * 2)
        if cap is None:
            self.capped_from = size
            self.lifted_from = 0
        self.cap = part if cap is None else min(cap, part)
        self.fitted = 0
        self.raised = False
        metrics.BODY_CAP.labels(self.url).set(self.cap)
        return cap is None

    def took(self, size: int) -> bool:
        """A body of `size` bytes went through whole. Whether this lifted the cap.

        After a lift, RAISE_AFTER bodies larger than the cap lifted that go through
        whole say the lift held: the link got better, and a slow spell after it is
        learnt afresh, its first raise after RAISE_AFTER bodies again, however often
        the raises of the spell before failed. Until then a refusal counts as a raise
        that failed (too_big)."""
        cap = self.cap
        if cap is None:
            if self.lifted_from and size > self.lifted_from:
                self.fitted += 1
                if self.fitted >= RAISE_AFTER:  # the lift held
                    self.lifted_from = self.fitted = self.raise_after = 0
                    self.raised = False
            return False
        if size * 2 <= cap:
            return False  # a small body says nothing of whether larger ones would fit
        self.fitted += 1
        if self.fitted < (self.raise_after or RAISE_AFTER):
            return False
        if self.raised:  # the last raise held: the next one waits no longer than the first
            self.raise_after = 0
        self.fitted = 0
        self.raised = True
        if cap * 2 < self.capped_from:
            self.cap = cap * 2
            metrics.BODY_CAP.labels(self.url).set(self.cap)
            return False
        self.cap = None
        self.lifted_from = cap
        metrics.BODY_CAP.labels(self.url).set(0)
        return True

    def failed(self, retry_after: float | None) -> float:
        """Back off: exponential with jitter, at least what the collector asked for."""
        metrics.COLLECTOR_UP.labels(self.url).set(0)
        self.failures += 1
        delay: float = min(BACKOFF_MAX, BACKOFF_INITIAL * 2.0 ** min(self.failures, 10))
        delay *= random.uniform(0.5, 1.0)
        now = time.monotonic()
        if retry_after is not None:
            delay = max(delay, retry_after)
            self.asked_until = max(self.asked_until, now + retry_after)
        self.next_try = now + delay
        return delay

    def succeeded(self) -> bool:
        """Healthy again; whether it was failing before (a recovery). A Retry-After the
        collector gave still holds the other batches until it ends."""
        metrics.COLLECTOR_UP.labels(self.url).set(1)
        recovered = self.failures > 0
        self.failures = 0
        self.next_try = self.asked_until if self.asked_until > time.monotonic() else 0.0
        return recovered


def body_size(body: bytes, inflated: bool) -> int:
    """A gzip body's size as a limit counts it: its bytes as sent, or (`inflated`) the
    larger of those and its decompressed bytes (a logpipe collector refuses a body whose
    Content-Length is over its limit too). The decompressed size is read from the gzip
    trailer (ISIZE): the shipper's bodies are each one gzip member of under 4 GiB."""
    if not inflated or len(body) < 4:
        return len(body)
    return max(len(body), int.from_bytes(body[-4:], "little"))


def _body_limit(value: str | None) -> tuple[int, bool] | None:
    """BODY_LIMIT's value, ``<bytes> inflated`` or ``<bytes> sent``, as (bytes, inflated);
    None when absent or not of that form."""
    if value is None:
        return None
    size, _, counts = value.strip().partition(" ")
    if not size.isdigit() or int(size) < 1 or counts.strip() not in ("inflated", "sent"):
        return None
    return int(size), counts.strip() == "inflated"


class Hung(Exception):
    """A collector answered neither a batch in time nor a probe after it."""


class _Body(aiohttp.BytesPayload):
    """A batch's body that says when it has been handed to the connection whole: to the
    kernel's socket buffer, but for at most the transport's own (64 KiB); and, while it
    is being sent, how much of it the connection has yet to take (`unsent`)."""

    def __init__(self, value: bytes) -> None:
        super().__init__(value)
        self.sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._transport: asyncio.BaseTransport | None = None  # once its writing began

    @property
    def begun(self) -> bool:
        """Whether its writing began (the connection was made and the headers sent)."""
        return self._transport is not None

    def unsent(self) -> int | None:
        """Bytes written to the connection that the kernel has not taken yet (the whole
        body is handed over at once, and the transport keeps what the socket's buffer has
        no room for); None before the writing began or once the connection is gone. Read
        a few times per HANG_CHECK, instead of counting each chunk as it is sent."""
        transport = self._transport
        if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
            return None
        return transport.get_write_buffer_size()

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        self._transport = getattr(writer, "transport", None)
        await super().write_with_length(writer, content_length)
        await writer.drain()  # a body under the high-water mark is written without one
        if not self.sent.done():
            self.sent.set_result(None)


def client_ssl(config: ShipperConfig) -> ssl.SSLContext | None:
    """TLS context for https collectors: system store or the CA file, optional client cert."""
    if not any(url.startswith("https://") for url in config.collector_url):
        return None
    try:
        ctx = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"LOGPIPE_CA_FILE: cannot load {config.ca_file}: {os_reason(exc)}"
        ) from exc
    if config.client_cert is not None:
        try:
            ctx.load_cert_chain(config.client_cert, config.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"LOGPIPE_CLIENT_CERT/LOGPIPE_CLIENT_KEY: cannot load {config.client_cert}: "
                f"{os_reason(exc)}"
            ) from exc
    return ctx


class CollectorClient:
    """``async with CollectorClient(config) as client: await client.send(batch)``."""

    def __init__(
        self,
        config: ShipperConfig,
        hang_check: float = HANG_CHECK,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self._config = config
        self._hang_check = hang_check
        self._probe_timeout = probe_timeout
        self._endpoints = [Endpoint(url) for url in config.collector_url]
        self._next = 0
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"Content-Type": NDJSON, "Content-Encoding": "gzip"}
        self._use_token(config.bearer_token())
        for endpoint in self._endpoints:
            metrics.COLLECTOR_UP.labels(endpoint.url).set(1)
            metrics.BODY_CAP.labels(endpoint.url).set(0)
            metrics.BODY_LIMIT.labels(endpoint.url).set(0)

    def _use_token(self, token: str | None) -> None:
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        else:
            self._headers.pop("Authorization", None)

    async def __aenter__(self) -> CollectorClient:
        ctx = client_ssl(self._config)
        # Room for a probe of each batch in flight beside it (a probe that waited for a
        # connection would take a busy collector for a hung one).
        limit = max(32, 2 * self._config.max_in_flight + 2)
        connector = aiohttp.TCPConnector(ssl=ctx if ctx is not None else True, limit=limit)
        timeout = aiohttp.ClientTimeout(total=self._config.request_timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def pick(self) -> tuple[Endpoint, float]:
        """The next collector to use and how long to wait before using it."""
        now = time.monotonic()
        count = len(self._endpoints)
        for i in range(count):
            endpoint = self._endpoints[(self._next + i) % count]
            if endpoint.next_try <= now:
                self._next = (self._next + i + 1) % count
                return endpoint, 0.0
        soonest = min(self._endpoints, key=lambda e: e.next_try)
        return soonest, soonest.next_try - now

    async def send(
        self, body: bytes, endpoint: Endpoint, lines: int = 0, again: bool = False
    ) -> None:
        """POST one gzip batch body of `lines` log lines (`again`: some of it may be
        indexed already, collector.wire.SENT_AGAIN); return when accepted, raise
        DeliveryError otherwise."""
        if self._session is None:
            raise DeliveryError("CollectorClient used outside 'async with'")
        metrics.BATCHES_SENT.inc()
        payload = _Body(body)
        post = asyncio.ensure_future(self._post(self._session, endpoint.url, payload, again))
        try:
            answer, status, headers = await self._answer(self._session, endpoint.url, post, payload)
        except Hung as exc:
            metrics.BATCHES_FAILED.labels("hung").inc()
            # Through the only URL (a load balancer, as a rule) the batch is sent again
            # at once: the balancer has other collectors, backing the URL off stalls them.
            alone = len(self._endpoints) == 1
            raise RetryableDelivery(str(exc), back_off=not alone) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError) and payload.begun and not payload.sent.done():
                # request_timeout ran out with the body still on its way: the link is too
                # slow for it (a collector that stopped reading it was probed, _sending).
                metrics.BATCHES_FAILED.labels("too_slow").inc()
                slow = TooSlow(
                    f"{endpoint.url}: the batch's body was still being sent when "
                    f"LOGPIPE_REQUEST_TIMEOUT ({self._config.request_timeout:g} s) ran out: "
                    "the link is too slow for it",
                    answered=False,
                )
                slow.may_have_written = True  # its end may have arrived at the last moment
                raise slow from exc
            refusal = await self._tls_refusal(endpoint.url, exc)
            if refusal is not None:
                metrics.BATCHES_FAILED.labels("tls").inc()
                raise RejectedDelivery(_tls_message(endpoint.url, refusal)) from exc
            metrics.BATCHES_FAILED.labels("connection").inc()
            failed = RetryableDelivery(f"{endpoint.url}: {_connection_failure(exc)}")
            # No connection (refused, no route, no name): nothing of the batch was sent.
            failed.may_have_written = not isinstance(exc, aiohttp.ClientConnectorError)
            raise failed from exc
        finally:
            if not post.done():  # given up (hung), or this task was cancelled
                post.cancel()
                await asyncio.gather(post, return_exceptions=True)
        endpoint.told(headers.get(BODY_LIMIT))
        retry_after = _retry_after(headers.get("Retry-After"))
        unreadable = ""
        if status == 401 and self._config.token_file is not None:
            try:
                self._use_token(self._config.bearer_token())  # the file may hold a new token
            except ConfigError as exc:
                # Being rewritten, or its volume away: keep the token we have, retry later.
                metrics.BATCHES_FAILED.labels("token_file").inc()
                unreadable = f"; and {exc} (the token read before is kept)"
        try:
            _judge(
                endpoint.url,
                status,
                answer,
                retry_after,
                lines,
                headers.get("Location"),
                _from_elasticsearch(headers.get("X-Elastic-Product"), answer),
            )
        except DeliveryError as exc:
            exc.may_have_written = headers.get(UNWRITTEN) != "1"
            if unreadable and isinstance(exc, RejectedDelivery):
                refused = RejectedDelivery(f"{exc}{unreadable}")
                refused.may_have_written = exc.may_have_written
                raise refused from exc
            raise

    async def _post(
        self, session: aiohttp.ClientSession, url: str, body: _Body, again: bool = False
    ) -> tuple[bytes, int, CIMultiDictProxy[str]]:
        """The collector's answer to one batch: body, status, headers."""
        headers = {**self._headers, SENT_AGAIN: "1"} if again else self._headers
        # A redirect is not followed: aiohttp would send the batch's POST on as a GET,
        # and whatever page answered that with 200 would pass for the collector's answer.
        async with session.post(
            url + PATH_LOGS, data=body, headers=headers, allow_redirects=False
        ) as resp:
            return await resp.read(), resp.status, resp.headers

    async def _answer(
        self,
        session: aiohttp.ClientSession,
        url: str,
        post: asyncio.Future[tuple[bytes, int, CIMultiDictProxy[str]]],
        body: _Body,
    ) -> tuple[bytes, int, CIMultiDictProxy[str]]:
        """The answer `post` gets from the collector at `url`; Hung when, once it has
        waited HANG_CHECK seconds after its `body` was sent, the collector lets two probes
        of /healthz in a row time out (behind a load balancer one may reach the hung
        collector and the next another; watch.answer), or when the body stopped moving
        while being sent (_sending). A body that moves is bounded by request_timeout alone."""
        await self._sending(session, url, post, body)
        started = time.monotonic()
        try:
            return await watch.answer(
                post, self._hang_check, lambda: self._answers(session, url), probes=2
            )
        except watch.Unanswered:
            waited = time.monotonic() - started
            raise Hung(
                f"{url}: answered neither the batch in {waited:.0f} s after its body was sent "
                "nor /healthz twice in a row (hung); the batch is sent again"
            ) from None

    async def _sending(
        self,
        session: aiohttp.ClientSession,
        url: str,
        post: asyncio.Future[tuple[bytes, int, CIMultiDictProxy[str]]],
        body: _Body,
    ) -> None:
        """Return once `body` was sent whole or `post` ended; Hung when the connection took
        none of the body for HANG_CHECK seconds and the collector then let two probes of
        /healthz in a row time out. One that answers a probe is only slow to read: the
        body is waited for again. A body that moves, however slowly, is not probed: on a
        saturated link the probes would wait behind it."""
        tick = self._hang_check / 4  # a stall is seen within 1.25 HANG_CHECK
        left = body.unsent()
        still_since = time.monotonic()
        while True:
            done, _ = await asyncio.wait(
                (post, body.sent), timeout=tick, return_when=asyncio.FIRST_COMPLETED
            )
            if done:
                return
            now = time.monotonic()
            unsent = body.unsent()
            if unsent is None or unsent != left:  # not begun yet, or moved
                left, still_since = unsent, now
            elif now - still_since >= self._hang_check:
                if not await watch.alive(post, lambda: self._answers(session, url), probes=2):
                    raise Hung(
                        f"{url}: took none of the batch's body for {now - still_since:.0f} s "
                        "and answered /healthz neither time of two (hung); the batch is "
                        "sent again"
                    )
                still_since = time.monotonic()

    async def _answers(self, session: aiohttp.ClientSession, url: str) -> bool:
        """Whether the collector at `url` answers /healthz (whatever it says) in time, or
        at least refuses it: only one that lets it time out has hung (one that closes its
        connections is shutting down, or gone, and the batch's request ends by itself)."""
        try:
            timeout = aiohttp.ClientTimeout(total=self._probe_timeout)
            async with session.get(url + "/healthz", timeout=timeout, allow_redirects=False):
                return True
        except TimeoutError:
            return False
        except aiohttp.ClientError:
            return True

    async def _tls_refusal(self, url: str, exc: BaseException) -> str | None:
        """What TLS said when the connection failed, if TLS is why."""
        if isinstance(exc, aiohttp.ClientSSLError):
            return str(getattr(exc, "certificate_error", "") or exc)
        if not url.startswith("https://") or isinstance(exc, TimeoutError):
            return None
        # A TLS 1.3 server refuses a missing or unknown client certificate after the
        # handshake, by closing the connection: it looks like a reset. Under TLS 1.2 the
        # refusal is part of the handshake, so one probe tells the two apart.
        return await asyncio.to_thread(_handshake_refusal, url, self._config)


def _handshake_refusal(url: str, config: ShipperConfig) -> str | None:
    """The TLS error of a TLS 1.2 handshake with the collector, or None when it succeeds."""
    parsed = urlsplit(url)
    host, port = parsed.hostname or "", parsed.port or 443
    ctx = client_ssl(config)
    if ctx is None:
        return None
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=host),
        ):
            return None
    except ssl.SSLError as exc:
        if "VERSION" in str(exc).upper():
            return None  # the server only speaks TLS 1.3: the probe cannot tell
        return f"the collector ended the TLS handshake ({exc}); it may require a client certificate"
    except OSError:
        return None


def _connection_failure(exc: BaseException) -> str:
    """Why no answer came, in the words of the setting to check: aiohttp's own text
    ("Cannot connect to host ... ssl:default [...]") names neither."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return (
            f"cannot resolve the collector's host name ({exc.os_error.strerror or exc.os_error}): "
            "check the host in LOGPIPE_COLLECTOR_URL"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return (
                "connection refused: nothing listens there; check the port in "
                "LOGPIPE_COLLECTOR_URL and that the collector runs"
            )
        return (
            f"cannot connect ({exc.os_error.strerror or exc.os_error}): check LOGPIPE_COLLECTOR_URL"
        )
    return f"{type(exc).__name__}: {exc}"


def _tls_message(url: str, detail: str) -> str:
    if "WRONG_VERSION_NUMBER" in detail:  # what a plain HTTP answer to a TLS hello reads as
        return (
            f"{url}: the collector does not speak TLS there ({detail}): write http:// in "
            "LOGPIPE_COLLECTOR_URL, or serve HTTPS from the collector (LOGPIPE_TLS_CERT)"
        )
    return (
        f"{url}: TLS failed ({detail}): check that LOGPIPE_CA_FILE holds the CA that signed "
        "the collector's certificate (and that its name matches the URL), and for mutual "
        "TLS that LOGPIPE_CLIENT_CERT/LOGPIPE_CLIENT_KEY are signed by the CA the collector trusts"
    )


def _retry_after(value: str | None) -> float | None:
    """Retry-After's seconds, at most RETRY_AFTER_MAX (a proxy's maintenance page asking
    for a day would stop shipping for a day), or None."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    if seconds is None or not seconds >= 0:  # nan, or negative
        return None
    return min(seconds, RETRY_AFTER_MAX)


def _message(answer: bytes) -> str:
    try:
        error = orjson.loads(answer).get("error", "")
    except (orjson.JSONDecodeError, AttributeError):
        return answer[:300].decode("utf-8", "replace")
    if isinstance(error, dict):  # Elasticsearch's {"error": {"type", "reason", ...}}
        return str(error.get("reason") or error.get("type") or error)
    return str(error)


# Said of a refusal that Elasticsearch gave (_from_elasticsearch).
NOT_A_COLLECTOR = (
    "this looks like Elasticsearch, not a logpipe collector: set LOGPIPE_COLLECTOR_URL to a "
    "collector's URL (the collector is the one that writes to Elasticsearch)"
)


def _from_elasticsearch(product: str | None, answer: bytes) -> bool:
    """Whether an answer is Elasticsearch's: its `X-Elastic-Product` header, or its JSON
    error (`{"error": {"root_cause": ...}, "status": 401}`, or a bare `no handler found
    for uri [...]` for a path it has not) that a collector never gives."""
    if product == "Elasticsearch":
        return True
    try:
        body = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    if isinstance(error, dict) and "root_cause" in error:
        return True
    if isinstance(error, str) and error.startswith("no handler found for uri ["):
        return True
    return "error" in body and type(body.get("status")) is int


# The counts a collector's 200 holds (collector.wire.IngestResult).
_COUNTS = ("received", "indexed", "duplicates", "dead_lettered")


def _acknowledged(answer: bytes, lines: int) -> bool:
    """Whether a 200's body is a collector's answer to a batch of `lines` log lines: its
    counts, `received` (which counts the batch's `source` lines too) at least `lines`. A
    web server's page, or another program's JSON, is not: the batch was never indexed."""
    try:
        result = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(result, dict):
        return False
    counts = [result.get(name) for name in _COUNTS]
    if not all(type(count) is int and count >= 0 for count in counts):
        return False
    return bool(result["received"] >= lines)


def _judge(
    url: str,
    status: int,
    answer: bytes,
    retry_after: float | None,
    lines: int = 0,
    location: str | None = None,
    elasticsearch: bool = False,
) -> None:
    """Classify the collector's answer to a batch of `lines` log lines: ok, retry later,
    or refused (`elasticsearch`: the answer is Elasticsearch's, _from_elasticsearch)."""
    if status == 200:
        if _acknowledged(answer, lines):
            return
        metrics.BATCHES_FAILED.labels("not_a_collector").inc()
        raise RejectedDelivery(
            f"{url} answered 200 with what is no logpipe collector's answer "
            f"({answer[:120].decode('utf-8', 'replace')!r}): the batch is kept and sent again; "
            "check that LOGPIPE_COLLECTOR_URL is a collector's"
        )
    message = _message(answer)
    if 300 <= status < 400:
        metrics.BATCHES_FAILED.labels(f"http_{status}").inc()
        raise RejectedDelivery(
            f"{url} answered {status}, a redirect to {location or 'nowhere said'}, which a "
            "batch does not follow: set LOGPIPE_COLLECTOR_URL to the collector's own URL"
        )
    if status == 400 and b'"result"' in answer:
        # The good lines were indexed and the bad ones dead-lettered: the batch is done.
        metrics.BATCHES_FAILED.labels("partial").inc()
        log.error("collector rejected lines of a batch", extra={"url": url, "reason": message})
        return
    if status == 408:
        # The body reached it too slowly (past its LOGPIPE_BODY_TIMEOUT): sent whole again
        # over the same link, it would fail the same way; the caller sends it in halves.
        metrics.BATCHES_FAILED.labels("http_408").inc()
        raise TooSlow(
            f"{url} answered 408, the batch's body reached it too slowly: {message}", retry_after
        )
    if status == 429 or status >= 500:
        metrics.BATCHES_FAILED.labels(f"http_{status}").inc()
        raise RetryableDelivery(f"{url} answered {status}: {message}", retry_after)
    reason = {401: "unauthorized", 403: "forbidden", 413: "too_large"}.get(status, f"http_{status}")
    metrics.BATCHES_FAILED.labels(reason).inc()
    if elasticsearch:
        raise RejectedDelivery(f"{url} answered {status}: {message}; {NOT_A_COLLECTOR}")
    if status == 413:
        raise TooLarge(f"{url} answered 413: {message}")
    if status in (401, 403) and "LOGPIPE_TOKEN" not in message:
        message += " (check LOGPIPE_TOKEN / LOGPIPE_TOKEN_FILE against the collector's tokens)"
    raise RejectedDelivery(f"{url} answered {status}: {message}")
