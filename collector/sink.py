"""Write documents to Elasticsearch with `_bulk`, classifying every item.

Each item is ok (2xx, or 409: already indexed by an earlier try), retry (429, 5xx,
connection errors, timeouts: resent with exponential backoff and full jitter until the
deadline, then :class:`~collector.errors.RetryableSinkError`, which the API answers
with 429/503 and ``Retry-After`` so the shipper sends the batch again), or reject (any
other 4xx: a stand-in goes to the dead-letter data stream with the reason, which counts
as delivered). This is the only module that catches the elasticsearch client's
exceptions.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, AsyncElasticsearch, TransportError

from collector import deadletter, metrics
from collector.bulk import FILTER, Outcome, Round, chunks, encode, encode_all, retryable, settle
from collector.enrich import Doc
from collector.errors import RetryableSinkError, SetupError, SinkError
from collector.templates import TEMPLATE_NAME, TEMPLATE_VERSION

__all__ = ["Outcome", "Sink", "SinkSettings", "encode"]

log = logging.getLogger("logpipe.collector.sink")

# A probe (ping, template check) must not hang on a node that stopped answering.
_PROBE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class SinkSettings:
    """Bounds of bulk requests and retries."""

    max_bytes: int = 8 * 1024 * 1024
    max_docs: int = 5000
    concurrency: int = 4
    retry_deadline: float = 30.0
    request_timeout: float = 30.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0


class Sink:
    """An Elasticsearch writer with an explicit lifecycle: ``async with Sink(...)``."""

    def __init__(self, es: AsyncElasticsearch, settings: SinkSettings | None = None) -> None:
        self._es = es
        self._settings = settings or SinkSettings()
        self._requests = asyncio.Semaphore(self._settings.concurrency)

    async def __aenter__(self) -> Sink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._es.close()

    async def write(self, docs: Sequence[Doc]) -> Outcome:
        """Index `docs`; return only when every one is ok or dead-lettered.

        Raises RetryableSinkError when Elasticsearch did not take them all before the
        deadline (what it did take stays: a resend finds those as duplicates).
        """
        outcome = Outcome()
        deadline = time.monotonic() + self._settings.retry_deadline
        refused = await self._settle(docs, outcome, deadline)
        if refused:
            _log_refused(refused)
            stand_ins = [deadletter.refused(doc, reason) for doc, reason in refused]
            again = await self._settle(stand_ins, outcome, deadline)
            if again:
                # The copy kept a field Elasticsearch refuses: keep only what we made.
                originals = {doc.id: doc for doc, _ in refused}
                bare = [deadletter.bare(originals[d.id], r) for d, r in again]
                last = await self._settle(bare, outcome, deadline)
                if last:
                    raise SinkError(
                        f"dead-letter stream refused {len(last)} documents: {last[0][1]}"
                    )
        return outcome

    async def _settle(
        self, docs: Sequence[Doc], outcome: Outcome, deadline: float
    ) -> list[tuple[Doc, str]]:
        """Send, resend the retryable ones with backoff; return the refused with reasons."""
        pending, rejected = encode_all(docs)
        delay = self._settings.backoff_initial
        while pending:
            result = await self._send_all(pending, outcome, deadline)
            rejected.extend(result.rejected)
            if not result.retry:
                break
            metrics.RECORDS_RETRIED.inc(len(result.retry))
            if time.monotonic() + delay >= deadline:
                raise RetryableSinkError(
                    f"Elasticsearch did not take {len(result.retry)} documents in time "
                    f"({result.why}); the shipper will send them again",
                    retry_after=max(1.0, delay),
                    status=429 if result.overloaded else 503,
                )
            # Full jitter: collectors that failed together do not retry together.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._settings.backoff_max)
            pending = result.retry
        return rejected

    async def _send_all(
        self, items: list[tuple[Doc, bytes]], outcome: Outcome, deadline: float
    ) -> Round:
        groups = chunks([b for _, b in items], self._settings.max_bytes, self._settings.max_docs)
        result = Round()
        await asyncio.gather(
            *(self._send([items[i] for i in g], outcome, result, deadline) for g in groups)
        )
        return result

    async def _send(
        self, items: list[tuple[Doc, bytes]], outcome: Outcome, result: Round, deadline: float
    ) -> None:
        """One _bulk request; classify each item into `outcome` and `result`."""
        body, status, why = await self._bulk(b"".join(b for _, b in items), deadline)
        if body is not None:
            settle(items, body, outcome, result)
        elif status == 413:  # over the node's http.max_content_length
            await self._halve(items, outcome, result, deadline)
        else:
            result.must_retry(items, why, status)

    async def _bulk(
        self, payload: bytes, deadline: float
    ) -> tuple[dict[str, Any] | None, int | None, str]:
        """The answer's body; or None, the status (None: no answer) and why."""
        async with self._requests:
            timeout = min(self._settings.request_timeout, max(1.0, deadline - time.monotonic()))
            started = time.perf_counter()
            try:
                # Pre-encoded NDJSON: the client passes bytes through, its stubs say otherwise.
                resp = await self._es.options(request_timeout=timeout).bulk(
                    operations=payload,  # type: ignore[arg-type]
                    filter_path=FILTER,
                )
            except ApiError as exc:
                status = exc.meta.status
                if status != 413 and not retryable(status):
                    raise SinkError(f"Elasticsearch refused the bulk request: {exc}") from exc
                return None, status, f"HTTP {status}: {exc.message}"
            except TransportError as exc:  # connection refused or reset, timeout, TLS
                return None, None, f"cannot reach Elasticsearch: {exc}"
            finally:
                metrics.BULK_SECONDS.observe(time.perf_counter() - started)
        return dict(resp.body), 200, ""

    async def _halve(
        self, items: list[tuple[Doc, bytes]], outcome: Outcome, result: Round, deadline: float
    ) -> None:
        """Send a request Elasticsearch found too large as two; one document alone is refused."""
        if len(items) == 1:
            size = len(items[0][1])
            result.rejected.append(
                (items[0][0], f"document of {size} bytes is over the node's limit")
            )
            return
        half = len(items) // 2
        await self._send(items[:half], outcome, result, deadline)
        await self._send(items[half:], outcome, result, deadline)

    async def ping(self) -> bool:
        """Whether Elasticsearch answers at all (within a few seconds)."""
        try:
            es = self._es.options(request_timeout=_PROBE_TIMEOUT)
            resp = await es.cluster.health(timeout="1s")
        except (ApiError, TransportError):
            return False
        return bool(resp.body.get("status"))

    async def check_template(self) -> None:
        """Raise SetupError unless our index template is installed and current."""
        try:
            es = self._es.options(request_timeout=_PROBE_TIMEOUT)
            resp = await es.indices.get_index_template(name=TEMPLATE_NAME)
        except ApiError as exc:
            if exc.meta.status == 404:
                raise SetupError(
                    f"index template '{TEMPLATE_NAME}' is missing: run `logpipe-collector setup` "
                    "against this Elasticsearch (until then batches are answered 503)"
                ) from exc
            raise SetupError(f"cannot read the index template: {exc}") from exc
        except TransportError as exc:
            raise SetupError(f"cannot reach Elasticsearch to check the template: {exc}") from exc
        templates = resp.body.get("index_templates", [])
        version = templates[0]["index_template"].get("version") if templates else None
        if version != TEMPLATE_VERSION:
            raise SetupError(
                f"index template '{TEMPLATE_NAME}' is version {version}, this collector needs "
                f"{TEMPLATE_VERSION}: run `logpipe-collector setup`"
            )

    async def install_template(self, body: dict[str, Any]) -> None:
        """Create or update our index template (idempotent)."""
        try:
            await self._es.indices.put_index_template(name=TEMPLATE_NAME, **body)
        except (ApiError, TransportError) as exc:
            raise SetupError(f"cannot install the index template: {exc}") from exc


def _log_refused(refused: list[tuple[Doc, str]]) -> None:
    for doc, reason in refused:
        log.warning(
            "document refused by Elasticsearch, dead-lettered",
            extra={"doc_id": doc.id, "stream": doc.stream, "reason": reason},
        )
