"""Send batches to the collector(s) over HTTP and learn whether they were taken.

The only module that touches aiohttp for the collector: answers and connection errors
become :mod:`shipper.errors`. Several collector URLs are used in turn; one that fails
is skipped for a while with exponential backoff and jitter.
"""

from __future__ import annotations

import gzip
import logging
import random
import ssl
import time
from dataclasses import dataclass

import aiohttp
import orjson

from collector.wire import NDJSON, PATH_LOGS
from shipper import metrics
from shipper.batch import Batch
from shipper.config import ShipperConfig
from shipper.errors import DeliveryError, RejectedDelivery, RetryableDelivery

log = logging.getLogger("logpipe.shipper.sink")

BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 30.0


@dataclass(slots=True)
class Endpoint:
    """One collector and when it may be tried again."""

    url: str
    failures: int = 0
    next_try: float = 0.0

    def failed(self, retry_after: float | None) -> float:
        """Back off: exponential with jitter, at least what the collector asked for."""
        self.failures += 1
        delay: float = min(BACKOFF_MAX, BACKOFF_INITIAL * 2.0 ** min(self.failures, 10))
        delay *= random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        self.next_try = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        """Healthy again."""
        self.failures = 0
        self.next_try = 0.0


def client_ssl(config: ShipperConfig) -> ssl.SSLContext | None:
    """TLS context for https collectors: system store or the CA file, optional client cert."""
    if not any(url.startswith("https://") for url in config.collector_url):
        return None
    ctx = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if config.client_cert is not None:
        ctx.load_cert_chain(config.client_cert, config.client_key)
    return ctx


class CollectorClient:
    """``async with CollectorClient(config) as client: await client.send(batch)``."""

    def __init__(self, config: ShipperConfig) -> None:
        self._config = config
        self._endpoints = [Endpoint(url) for url in config.collector_url]
        self._next = 0
        self._session: aiohttp.ClientSession | None = None
        token = config.bearer_token()
        self._headers = {"Content-Type": NDJSON, "Content-Encoding": "gzip"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    async def __aenter__(self) -> CollectorClient:
        connector = aiohttp.TCPConnector(ssl=client_ssl(self._config) or True, limit=32)
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

    async def send(self, batch: Batch, endpoint: Endpoint) -> None:
        """POST one batch; return when accepted, raise DeliveryError otherwise."""
        if self._session is None:
            raise DeliveryError("CollectorClient used outside 'async with'")
        body = gzip.compress(batch.body, compresslevel=1)
        metrics.BATCHES_SENT.inc()
        try:
            async with self._session.post(
                endpoint.url + PATH_LOGS, data=body, headers=self._headers
            ) as resp:
                answer = await resp.read()
                status = resp.status
                retry_after = _retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            metrics.BATCHES_FAILED.labels("connection").inc()
            raise RetryableDelivery(f"{endpoint.url}: {type(exc).__name__}: {exc}") from exc
        _judge(endpoint.url, status, answer, retry_after)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _message(answer: bytes) -> str:
    try:
        return str(orjson.loads(answer).get("error", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return answer[:300].decode("utf-8", "replace")


def _judge(url: str, status: int, answer: bytes, retry_after: float | None) -> None:
    """Classify the collector's answer: ok, retry later, or refused."""
    if status == 200:
        return
    message = _message(answer)
    if status == 400 and b'"result"' in answer:
        # The good lines were indexed and the bad ones dead-lettered: the batch is done.
        metrics.BATCHES_FAILED.labels("partial").inc()
        log.error("collector rejected lines of a batch", extra={"url": url, "reason": message})
        return
    if status == 429 or status >= 500:
        metrics.BATCHES_FAILED.labels(f"http_{status}").inc()
        raise RetryableDelivery(f"{url} answered {status}: {message}", retry_after)
    reason = {401: "unauthorized", 403: "forbidden", 413: "too_large"}.get(status, f"http_{status}")
    metrics.BATCHES_FAILED.labels(reason).inc()
    raise RejectedDelivery(f"{url} answered {status}: {message}")
