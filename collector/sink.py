"""Write documents to Elasticsearch with `_bulk`, classifying every item.

Each item is ok (2xx, or 409: already indexed by an earlier try), retry (429, 5xx,
connection errors, timeouts: resent with exponential backoff and jitter until the
deadline), or reject (any other 4xx: rewritten into the dead-letter data stream with
the reason, which counts as delivered). This is the only module that catches the
elasticsearch client's exceptions.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, AsyncElasticsearch, TransportError

from collector import metrics
from collector.enrich import Doc
from collector.errors import RetryableSinkError, SetupError, SinkError
from collector.templates import DEADLETTER_STREAM, TEMPLATE_NAME, TEMPLATE_VERSION

log = logging.getLogger("logpipe.collector.sink")

_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"


@dataclass(slots=True)
class Outcome:
    """How the documents of one batch ended."""

    indexed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0

    def add(self, other: Outcome) -> None:
        """Fold another outcome into this one."""
        self.indexed += other.indexed
        self.duplicates += other.duplicates
        self.dead_lettered += other.dead_lettered


@dataclass(frozen=True, slots=True)
class SinkSettings:
    """Bounds of bulk requests and retries."""

    max_bytes: int = 8 * 1024 * 1024
    max_docs: int = 5000
    concurrency: int = 4
    retry_deadline: float = 30.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0


def encode(doc: Doc) -> bytes:
    """The two NDJSON lines of one `create` operation."""
    action = orjson.dumps({"create": {"_index": doc.stream, "_id": doc.id}})
    return action + b"\n" + orjson.dumps(doc.body) + b"\n"


def chunks(encoded: Sequence[bytes], max_bytes: int, max_docs: int) -> list[list[int]]:
    """Group item indexes into bulk requests bounded in bytes and documents."""
    groups: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, item in enumerate(encoded):
        if current and (size + len(item) > max_bytes or len(current) >= max_docs):
            groups.append(current)
            current, size = [], 0
        current.append(i)
        size += len(item)
    if current:
        groups.append(current)
    return groups


def dead_letter(doc: Doc, reason: str) -> Doc:
    """The document that stands for `doc` in the dead-letter stream."""
    body: dict[str, Any] = {
        "@timestamp": doc.body.get("@timestamp"),
        "message": doc.body.get("message", ""),
        "error": {"type": "rejected_by_elasticsearch", "message": reason},
        "event": {
            "dataset": "logpipe.deadletter",
            "original": orjson.dumps(doc.body).decode(),
            "reason": f"rejected for {doc.stream}",
        },
        "data_stream": {"type": "logs", "dataset": "logpipe.deadletter", "namespace": "default"},
        "tags": ["dead_letter"],
    }
    for key in ("container", "host", "service", "stream"):
        if key in doc.body:
            body[key] = doc.body[key]
    return Doc(doc.id, DEADLETTER_STREAM, body)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


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
        """Index `docs`; return only when every one is ok or dead-lettered."""
        outcome = Outcome()
        rejected = await self._write_until_settled(docs, outcome)
        if rejected:
            dead = [dead_letter(doc, reason) for doc, reason in rejected]
            for doc, reason in rejected:
                log.warning(
                    "document rejected, dead-lettered",
                    extra={"doc_id": doc.id, "stream": doc.stream, "reason": reason},
                )
            again = await self._write_until_settled(dead, Outcome())
            if again:
                raise SinkError(f"dead-letter stream refused {len(again)} documents: {again[0][1]}")
            outcome.dead_lettered += len(dead)
            metrics.RECORDS_DEAD_LETTERED.inc(len(dead))
        return outcome

    async def _write_until_settled(
        self, docs: Sequence[Doc], outcome: Outcome
    ) -> list[tuple[Doc, str]]:
        """Send, resend the retryable ones with backoff; return the rejected with reasons."""
        deadline = time.monotonic() + self._settings.retry_deadline
        pending = list(docs)
        rejected: list[tuple[Doc, str]] = []
        delay = self._settings.backoff_initial
        while pending:
            retry, why = await self._send_all(pending, outcome, rejected)
            if not retry:
                break
            metrics.RECORDS_RETRIED.inc(len(retry))
            if time.monotonic() + delay > deadline:
                raise RetryableSinkError(
                    f"Elasticsearch did not accept {len(retry)} documents in time: {why}",
                    retry_after=max(1.0, delay),
                )
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._settings.backoff_max)
            pending = retry
        return rejected

    async def _send_all(
        self, docs: Sequence[Doc], outcome: Outcome, rejected: list[tuple[Doc, str]]
    ) -> tuple[list[Doc], str]:
        encoded = [encode(doc) for doc in docs]
        groups = chunks(encoded, self._settings.max_bytes, self._settings.max_docs)
        results = await asyncio.gather(
            *(self._send([docs[i] for i in g], [encoded[i] for i in g]) for g in groups)
        )
        retry: list[Doc] = []
        why = ""
        for part, part_rejected, part_retry, part_why in results:
            outcome.add(part)
            rejected.extend(part_rejected)
            retry.extend(part_retry)
            why = part_why or why
        return retry, why

    async def _send(
        self, docs: list[Doc], encoded: list[bytes]
    ) -> tuple[Outcome, list[tuple[Doc, str]], list[Doc], str]:
        """One _bulk request; classify each item."""
        outcome = Outcome()
        try:
            async with self._requests:
                started = time.perf_counter()
                payload = b"".join(encoded)
                # Pre-encoded NDJSON: the client passes bytes through, its stubs say otherwise.
                resp = await self._es.bulk(operations=payload, filter_path=_FILTER)  # type: ignore[arg-type]
                metrics.BULK_SECONDS.observe(time.perf_counter() - started)
        except ApiError as exc:
            if _retryable(exc.meta.status):
                return outcome, [], docs, f"HTTP {exc.meta.status} {exc.message}"
            raise SinkError(f"Elasticsearch refused the bulk request: {exc}") from exc
        except (TransportConnectionError, ConnectionTimeout, TransportError) as exc:
            return outcome, [], docs, f"cannot reach Elasticsearch: {exc}"
        body = resp.body
        if not body.get("errors"):
            outcome.indexed = len(docs)
            metrics.RECORDS_INDEXED.inc(len(docs))
            return outcome, [], [], ""
        return self._classify(docs, body["items"], outcome)

    def _classify(
        self, docs: list[Doc], items: list[dict[str, Any]], outcome: Outcome
    ) -> tuple[Outcome, list[tuple[Doc, str]], list[Doc], str]:
        rejected: list[tuple[Doc, str]] = []
        retry: list[Doc] = []
        why = ""
        for doc, item in zip(docs, items, strict=True):
            result = item["create"]
            status = int(result["status"])
            if status < 300:
                outcome.indexed += 1
            elif status == 409:
                outcome.duplicates += 1
            elif _retryable(status):
                retry.append(doc)
                why = f"item status {status}: {_reason(result)}"
            else:
                rejected.append((doc, _reason(result)))
        metrics.RECORDS_INDEXED.inc(outcome.indexed)
        metrics.RECORDS_DUPLICATE.inc(outcome.duplicates)
        return outcome, rejected, retry, why

    async def ping(self) -> bool:
        """Whether Elasticsearch answers at all."""
        try:
            resp = await self._es.cluster.health(timeout="1s")
        except (ApiError, TransportError):
            return False
        return bool(resp.body.get("status"))

    async def check_template(self) -> None:
        """Raise SetupError unless our index template is installed and current."""
        try:
            resp = await self._es.indices.get_index_template(name=TEMPLATE_NAME)
        except ApiError as exc:
            if exc.meta.status == 404:
                raise SetupError(
                    "index template 'logpipe' is missing: run `logpipe-collector setup`"
                ) from exc
            raise SetupError(f"cannot read the index template: {exc}") from exc
        except TransportError as exc:
            raise SetupError(f"cannot reach Elasticsearch: {exc}") from exc
        templates = resp.body.get("index_templates", [])
        version = templates[0]["index_template"].get("version") if templates else None
        if version != TEMPLATE_VERSION:
            raise SetupError(
                f"index template 'logpipe' is version {version}, this collector needs "
                f"{TEMPLATE_VERSION}: run `logpipe-collector setup`"
            )

    async def install_template(self, body: dict[str, Any]) -> None:
        """Create or update our index template (idempotent)."""
        try:
            await self._es.indices.put_index_template(name=TEMPLATE_NAME, **body)
        except (ApiError, TransportError) as exc:
            raise SetupError(f"cannot install the index template: {exc}") from exc


def _reason(result: dict[str, Any]) -> str:
    error = result.get("error") or {}
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
    return str(error)
