"""Write documents to Elasticsearch with `_bulk`, classifying every item.

Each item is ok (2xx, or 409: already indexed by an earlier try), retry (429, 5xx,
connection errors, timeouts: resent with exponential backoff and full jitter until the
deadline, then :class:`~collector.errors.RetryableSinkError`, which the API answers
with 429/503 and ``Retry-After`` so the shipper sends the batch again), or reject (any
other 4xx: a stand-in goes to the dead-letter data stream with the reason, which counts
as delivered). A request too large for the node (413 over http.max_content_length, or a
429 of indexing pressure for an operation over the whole limit on its own, or with its
request's bytes on the node that coordinates it) is sent again
in halves; one document alone still too large is rejected: no load lets the node take it.
What the elasticsearch client's exceptions mean is decided in es_failures.py.
Requests of fewer than merge_below documents share one `_bulk` with others (merge.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elastic_transport import BaseAsyncNode, BaseNode, ConnectionTimeout, HttpHeaders
from elasticsearch import ApiError, AsyncElasticsearch, TransportError
from isal import igzip

from collector import deadletter, metrics, steps, watch
from collector.bulk import (
    FILTER,
    Outcome,
    Round,
    encode,
    encoding,
    grouping,
    over_limit_alone,
    read_answer,
    refusal,
    settle,
)
from collector.enrich import Doc
from collector.errors import RetryableSinkError, SetupError, SinkError
from collector.es_failures import (
    ES_ERRORS,
    answer,
    bulk_failure,
    bulk_refusal,
    failure,
    template_not_installed,
    template_unchecked,
    template_unreadable,
)
from collector.es_requests import name_groups, resolve_index
from collector.merge import Answer, Merger
from collector.reach import RETRY_AFTER, Reach
from collector.templates import (
    CUSTOM_TEMPLATE,
    INDEX_PATTERNS,
    TEMPLATE_NAME,
    TEMPLATE_VERSION,
    mapped_fields,
    probe_template,
)

__all__ = ["Outcome", "Sink", "SinkSettings", "TemplateCheck", "encode"]


@dataclass(frozen=True)
class TemplateCheck:
    """The installed index template, as far as a collector that may take logs needs it."""

    version: int
    fields: dict[str, str]  # the typed fields it maps (name -> type), for the parsing rules
    composes_custom: bool  # whether new backing indices get the operator's `logpipe@custom`


log = logging.getLogger("logpipe.collector.sink")

# A probe (ping, template check) must not hang on a node that stopped answering; it only
# reads, so one that timed out is sent to the next node listed (retry_on_timeout).
_PROBE_TIMEOUT = 5.0

# require_data_stream: a stream whose template is gone (a node wiped, and `setup` not
# run again yet) is not made a plain index, with dynamic mappings and outside retention,
# that every later line of its name would go to: its lines wait (bulk.py, _waits).
_BULK_TARGET = f"/_bulk?require_data_stream=true&filter_path={FILTER}"
# Ids a search of `known` asks for at once (under index.max_result_window, 10,000).
_KNOWN_PER_SEARCH = 5000
_BULK_HEADERS = {"content-type": "application/x-ndjson", "accept": "application/json"}


@dataclass(frozen=True, slots=True)
class SinkSettings:
    """Bounds of bulk requests and retries."""

    max_bytes: int = 8 * 1024 * 1024
    max_docs: int = 5000
    concurrency: int = 4
    # Requests of fewer documents share a _bulk request when they wait at the same time.
    merge_below: int = 500
    # How long such a request waits for others (unless they reach merge_below documents
    # sooner). A waiting batch holds one of the collector's in-flight places: 20 ms made a
    # collector taking 200 small batches a second refuse a quarter of them (503), 5 ms as
    # few as without merging (BENCHMARKS, tenth pass).
    merge_wait: float = 0.005
    retry_deadline: float = 30.0
    request_timeout: float = 30.0
    # A _bulk its node has not answered after this long is checked: the node is asked
    # `HEAD /` (answered by its HTTP threads, not queued behind indexing); one that answers
    # neither within probe_timeout has hung (a paused process, a dead host), and the
    # batch goes to another node instead of waiting out request_timeout. One that answers
    # is only slow: the _bulk is waited for, and checked again as long as it lasts.
    hang_check: float = 5.0
    probe_timeout: float = _PROBE_TIMEOUT
    # A node found hung is asked `HEAD /` again this long after each probe it let time
    # out, and gets no _bulk until it answers one.
    reprobe: float = 1.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    # gzip (ISA-L's level 1) every _bulk body: fewer bytes on the network, more CPU here
    # and in Elasticsearch.
    compress: bool = False


class NodeHung(Exception):
    """A node answered neither a `_bulk` in time nor a probe after it."""


def _matches(pattern: str, name: str) -> bool:
    """Whether an index template's pattern (`*` its only wildcard) matches `name`."""
    return re.fullmatch(".*".join(map(re.escape, str(pattern).split("*"))), name) is not None


def _url(node: BaseNode) -> str:
    config = node.config
    return f"{config.scheme}://{config.host}:{config.port}"


class Sink:
    """An Elasticsearch writer with an explicit lifecycle: ``async with Sink(...)``."""

    def __init__(self, es: AsyncElasticsearch, settings: SinkSettings | None = None) -> None:
        self._es = es
        self._settings = settings or SinkSettings()
        self.impostor: str | None = None  # what answers at the URL, when no Elasticsearch
        self.unhealthy: str | None = None  # the error a node answered the last probe with
        self._requests = asyncio.Semaphore(self._settings.concurrency)
        self.reach = Reach()
        # The client's own headers (credentials), for the _bulk requests sent past it.
        self._bulk_headers = HttpHeaders({**es._headers, **_BULK_HEADERS})
        if self._settings.compress:
            self._bulk_headers["content-encoding"] = "gzip"
        self._probe_headers = HttpHeaders({**es._headers, "accept": "application/json"})
        self._hung: set[str] = set()  # nodes given up on as hung, until one answers a _bulk
        # Nodes found hung that have answered no probe since: their watch, by URL.
        self._shunned: dict[str, asyncio.Task[None]] = {}
        self._merger = Merger(
            self._bulk,
            below=self._settings.merge_below,
            wait=self._settings.merge_wait,
            tasks=self._settings.concurrency,
            max_bytes=self._settings.max_bytes,
            max_docs=self._settings.max_docs,
        )

    async def __aenter__(self) -> Sink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        watches = list(self._shunned.values())
        for task in watches:
            task.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
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
        pending, rejected = await steps.finish(encoding(docs, seconds=steps.STEP_SECONDS))
        delay = self._settings.backoff_initial
        while pending:
            result = await self._send_all(pending, outcome, deadline)
            # Freed a part at a time: a big batch's items took 10-40 ms to free at once.
            await steps.finish(steps.releasing(pending, steps.STEP_SECONDS))
            rejected.extend(result.rejected)
            if not result.retry:
                break
            metrics.RECORDS_RETRIED.inc(len(result.retry))
            if await self._lost(result.why):
                raise RetryableSinkError(self.reach.refusal(), retry_after=RETRY_AFTER)
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
        settings = self._settings
        groups = await steps.finish(
            grouping(items, settings.max_bytes, settings.max_docs, seconds=steps.STEP_SECONDS)
        )
        result = Round()
        if len(groups) == 1:  # the usual batch: one request, no copy of the list, no gather
            await self._send(items, outcome, result, deadline)
            return result
        # No more requests made ready than can be sent at once: each one's list and payload
        # is made when a sender takes it, not all of a big batch's in one turn of the loop
        # (40 requests took 60-80 ms), nor all held in memory while they wait their turn.
        waiting = iter(groups)

        async def sender() -> None:
            for group in waiting:
                await self._send(items[group.start : group.stop], outcome, result, deadline)

        senders = min(len(groups), self._settings.concurrency)
        await asyncio.gather(*(sender() for _ in range(senders)))
        return result

    async def _send(
        self, items: list[tuple[Doc, bytes]], outcome: Outcome, result: Round, deadline: float
    ) -> None:
        """One _bulk request; classify each item into `outcome` and `result`."""
        payload = b"".join([b for _, b in items])
        if len(items) < self._settings.merge_below:
            body, status, why = await self._merger.send(payload, len(items), deadline)
        else:
            body, status, why = await self._bulk(payload, len(items), deadline)
        if body is not None:
            too_large, why = settle(items, body, outcome, result)
            if too_large:
                await self._halve(too_large, outcome, result, deadline, why)
        elif status == 413:  # over the node's http.max_content_length
            await self._halve(items, outcome, result, deadline, "")
        elif status == 429 and over_limit_alone(why, len(payload)):
            await self._halve(items, outcome, result, deadline, why)
        else:
            result.must_retry(items, why, status)

    async def _bulk(self, payload: bytes, count: int, deadline: float) -> Answer:
        """The answer's body; or None, the status (None: no answer) and why.

        The payload goes as it is to a node of the client's pool, past the client's
        `bulk()`: that one copied every payload twice (its NDJSON serializer) and parsed
        the status of every item even when none failed, 1.3 of 2.5 CPU-ms per request of
        500 documents (BENCHMARKS, "Collector CPU per line").
        """
        if self._settings.compress:  # off the loop, as the shipper compresses its bodies
            payload = await asyncio.to_thread(igzip.compress, payload, 1)
        async with self._requests:
            pool = self._es.transport.node_pool
            node = pool.get()
            if self._shunned:
                node = self._unshunned(node)
            assert isinstance(node, BaseAsyncNode)  # an async client's pool holds async nodes
            started = time.perf_counter()
            request = asyncio.ensure_future(
                node.perform_request(
                    "POST",
                    _BULK_TARGET,
                    body=payload,
                    headers=self._bulk_headers,
                    request_timeout=self._timeout(deadline - time.monotonic()),
                )
            )
            try:
                resp = await self._answer(node, request, started)
            except (TransportError, NodeHung) as exc:  # refused, reset, timed out, TLS, hung
                pool.mark_dead(node)  # as the client does: another node, if any, goes next
                self.reach.no_answer(node)
                return None, None, str(exc) if isinstance(exc, NodeHung) else bulk_failure(exc).why
            finally:
                if not request.done():  # given up (hung), or this task was cancelled
                    request.cancel()
                    await asyncio.gather(request, return_exceptions=True)
                metrics.BULK_SECONDS.observe(time.perf_counter() - started)
        pool.mark_live(node)
        self.reach.answered()
        if self._hung:
            self._answered(node)
        status = resp.meta.status
        if status >= 300:  # a refusal as a whole raises SinkError
            return None, status, bulk_refusal(status, refusal(resp.body)).why
        try:
            body = read_answer(resp.body, count)
        except ValueError as exc:  # a proxy's page, say: as if no answer came
            return None, None, str(exc)
        return body, 200, ""

    async def _answer(
        self, node: BaseAsyncNode, request: asyncio.Future[Any], started: float
    ) -> Any:
        """The answer to `request` (a `_bulk` sent to `node`); NodeHung when, once it took
        hang_check seconds, the node does not answer a probe either (watch.answer)."""
        try:
            return await watch.answer(
                request, self._settings.hang_check, lambda: self._answers(node)
            )
        except watch.Unanswered:
            metrics.BULK_HUNG.inc()
            url = _url(node)
            waited = time.perf_counter() - started
            if url not in self._shunned:
                self._shunned[url] = asyncio.create_task(self._shun(node, url))
            if url not in self._hung:  # once a spell
                self._hung.add(url)
                log.warning(
                    "Elasticsearch node answers neither a _bulk nor a probe: the _bulk "
                    "is given up and sent again, to another node if there is one, and "
                    "the node gets no other until it answers a probe",
                    extra={"node": url, "waited_seconds": round(waited, 1)},
                )
            raise NodeHung(
                f"{url} answered neither a _bulk in {waited:.0f} s nor a probe (hung)"
            ) from None

    def _unshunned(self, node: BaseNode) -> BaseNode:
        """`node`, or the next the pool gives when `node` hung and has answered no probe
        since: the pool brings a dead node back after its backoff (1 s, doubling up to 30
        s), and each _bulk sent to a hung one waited hang_check + probe_timeout. A hung
        node when every live one is (or it is the only one): the _bulk waits for it."""
        pool = self._es.transport.node_pool
        for _ in range(len(pool.all()) - 1):
            if _url(node) not in self._shunned:
                break
            node = pool.get()  # the next one: the pool takes turns
        return node

    async def _shun(self, node: BaseAsyncNode, url: str) -> None:
        """Probe `node`, found hung, until it answers (or refuses: it restarts, and a
        _bulk to it fails at once); until then `_unshunned` keeps _bulk requests off it."""
        try:
            while True:
                if await self._answers(node):
                    return
                await asyncio.sleep(self._settings.reprobe)
        finally:
            self._shunned.pop(url, None)

    async def _answers(self, node: BaseAsyncNode) -> bool:
        """Whether `node` answers `HEAD /` (whatever it says) within probe_timeout, or at
        least refuses it: only a node that lets it time out has hung (one that closes
        its connections is shutting down, or gone, and its `_bulk` fails by itself)."""
        try:
            await node.perform_request(
                "HEAD",
                "/",
                headers=self._probe_headers,
                request_timeout=self._settings.probe_timeout,
            )
        except ConnectionTimeout:
            return False
        except TransportError:
            return True
        return True

    def _answered(self, node: BaseAsyncNode) -> None:
        """`node` answered a `_bulk`: if it had hung, say that it is back."""
        url = _url(node)
        if url in self._hung:
            self._hung.discard(url)
            log.warning("Elasticsearch node answers _bulk requests again", extra={"node": url})

    def _timeout(self, remaining: float) -> float:
        """request_timeout, or the whole seconds left before the deadline (at least one)
        when they are fewer."""
        timeout = self._settings.request_timeout
        if remaining < timeout:
            timeout = max(1.0, float(int(remaining)))
        return timeout

    async def _halve(
        self,
        items: list[tuple[Doc, bytes]],
        outcome: Outcome,
        result: Round,
        deadline: float,
        why: str,
    ) -> None:
        """Send a request Elasticsearch found too large as two; one document alone is refused
        (`why`: Elasticsearch's reason; none for a 413, which comes with no body)."""
        if len(items) == 1:
            size = len(items[0][1])
            limit = f"over the node's limit: {why}" if why else "over the node's limit"
            result.rejected.append((items[0][0], f"document of {size} bytes is {limit}"))
            return
        half = len(items) // 2
        await self._send(items[:half], outcome, result, deadline)
        await self._send(items[half:], outcome, result, deadline)

    async def _lost(self, why: str) -> bool:
        """Whether Elasticsearch is lost: already known, or no node answered and a probe
        fails now too (one dropped connection alone is retried as usual)."""
        nodes = len(self._es.transport.node_pool.all())
        silent = not self.reach.lost and self.reach.every_node_silent(nodes)
        if silent and not await self.ping():
            self.lose(why)
        return self.reach.lost

    def _probe(self, **options: Any) -> AsyncElasticsearch:
        """The client as the probes use it: a few seconds a node, the next node listed
        after one that timed out (they only read), and `options`."""
        return self._es.options(request_timeout=_PROBE_TIMEOUT, retry_on_timeout=True, **options)

    def lose(self, why: str) -> None:
        """Elasticsearch is lost, as the last probe found it: the error a node answered
        it with, if one did (no elected master), else `why` no node answered."""
        self.reach.lose(self.unhealthy or why, answering=self.unhealthy is not None)

    async def ping(self) -> bool:
        """Whether Elasticsearch answers its health (within a few seconds). Something else
        answering at LOGPIPE_ES_URL is said in `impostor`, a node answering an error (a
        cluster without an elected master) in `unhealthy` (else each is None)."""
        try:
            es = self._probe()
            # master_timeout: a node without a master answers 503 after it, not after 30 s.
            resp = await es.cluster.health(timeout="1s", master_timeout="1s")
        except ApiError as exc:
            # Every answer of Elasticsearch 8 and 9, errors too, names the product; a
            # proxy passes the header on. Without it, another program answered.
            product = exc.meta.headers.get("X-Elastic-Product")
            if exc.meta.status in (400, 404, 405) and product != "Elasticsearch":
                node = exc.meta.node
                self.impostor = (
                    f"{node.scheme}://{node.host}:{node.port} answers (HTTP {exc.meta.status} to "
                    "/_cluster/health) but is no Elasticsearch: set LOGPIPE_ES_URL to the "
                    "cluster's URL"
                )
                self.unhealthy = None
            else:
                self.impostor, self.unhealthy = None, _unhealthy(exc)
            return False
        except ES_ERRORS:
            self.impostor = self.unhealthy = None
            return False
        self.impostor = self.unhealthy = None
        self.reach.answered()
        return bool(resp.body.get("status"))

    async def check_template(self) -> TemplateCheck:
        """Raise SetupError unless our index template is installed and takes this
        collector's documents: of this version, or a newer logpipe's that says it takes
        them (its `_meta.collectors_from`, templates.COLLECTORS_FROM), so that in a
        rolling upgrade the older collectors go on taking logs once the newer `setup` ran."""
        try:
            es = self._probe()
            resp = await es.indices.get_index_template(name=TEMPLATE_NAME)
        except ES_ERRORS as exc:
            # No answer, and none to a probe either: lost, as a _bulk request finds it, so
            # that an idle collector (or one that never reached it) says so too.
            if isinstance(exc, TransportError):
                if not await self.ping():
                    self.lose(failure(exc).why)
                template_unchecked(exc)
            if failure(exc).retryable:  # 429, 5xx: busy or failing now, no verdict either
                template_unchecked(exc)
            template_unreadable(exc)
        templates = resp.body.get("index_templates", [])
        installed = templates[0]["index_template"] if templates else {}
        version = installed.get("version")
        patterns = installed.get("index_patterns")
        if isinstance(version, int) and version > TEMPLATE_VERSION:
            meta = installed.get("_meta")
            takes = meta.get("collectors_from") if isinstance(meta, dict) else None
            if not isinstance(takes, int) or takes > TEMPLATE_VERSION or patterns != INDEX_PATTERNS:
                raise SetupError(
                    f"index template '{TEMPLATE_NAME}' is version {version}, installed by a "
                    f"newer logpipe whose template no longer takes the documents of this "
                    f"collector (version {TEMPLATE_VERSION}): upgrade this collector (its "
                    "setup never replaces a newer template)"
                )
        else:
            # An older setup's template matched every logs-*-* stream, other tools' included.
            if patterns != INDEX_PATTERNS:
                raise SetupError(
                    f"index template '{TEMPLATE_NAME}' matches "
                    f"{' '.join(map(str, patterns or []))}, this collector needs "
                    f"{' '.join(INDEX_PATTERNS)}: run `logpipe-collector setup`"
                )
            if version != TEMPLATE_VERSION:
                raise SetupError(
                    f"index template '{TEMPLATE_NAME}' is version {version}, this collector "
                    f"needs {TEMPLATE_VERSION}: run `logpipe-collector setup`"
                )
        composed = installed.get("composed_of")
        return TemplateCheck(
            version=int(version),
            fields=mapped_fields(installed),
            composes_custom=isinstance(composed, list) and CUSTOM_TEMPLATE in composed,
        )

    async def known(self, docs: Sequence[Doc]) -> set[str]:
        """Of `docs` (a batch sent again: a try of it failed, some may be indexed), the ids
        their streams hold already. `create` finds an id in a stream's write index only:
        one indexed before a rollover was indexed twice when its batch came again after
        it. A search of the whole stream finds it; one `_msearch` asks every stream of the
        batch at once. A search sees only what a refresh made searchable, so each stream's
        backing indices other than its write index are refreshed first (`_refresh_older`):
        a line indexed less than a refresh interval before a rollover is found too. Where
        a search fails, `create` judges as before."""
        by_stream: dict[str, list[str]] = {}
        for doc in docs:
            by_stream.setdefault(doc.stream, []).append(doc.id)
        searches: list[dict[str, Any]] = []
        streams: list[str] = []
        for stream, ids in by_stream.items():
            for start in range(0, len(ids), _KNOWN_PER_SEARCH):
                part = ids[start : start + _KNOWN_PER_SEARCH]
                searches.append(
                    {"index": stream, "ignore_unavailable": True, "allow_no_indices": True}
                )
                searches.append(
                    {"query": {"ids": {"values": part}}, "size": len(part), "_source": False}
                )
                streams.append(stream)
        es = self._es.options(request_timeout=self._settings.request_timeout)
        await self._refresh_older(es, list(by_stream))
        try:
            resp = await es.msearch(
                searches=searches,
                filter_path="responses.hits.hits._id,responses.error.reason",
            )
        except ES_ERRORS as exc:
            log.info(
                "a batch sent again not looked up in its streams",
                extra={"streams": sorted(by_stream), "reason": failure(exc).why},
            )
            return set()
        found: set[str] = set()
        answers = resp.body.get("responses", [])
        for stream, one in zip(streams, answers, strict=False):
            if "error" in one:
                log.info(
                    "a batch sent again not looked up in its stream",
                    extra={"stream": stream, "reason": one["error"].get("reason", "")},
                )
                continue
            found.update(str(hit["_id"]) for hit in one.get("hits", {}).get("hits", []))
        return found

    async def _refresh_older(self, es: AsyncElasticsearch, streams: list[str]) -> None:
        """Refresh the backing indices of `streams` other than their write indices.

        A search sees only what a refresh made searchable: an index refreshes every
        second by default (or at the interval set; with `-1`, never), a shard idle for
        searches only when the next search comes, and a search does not wait for the
        refresh of a shard searched in the last 30 s. So a line indexed less than a
        refresh interval before its stream rolled over may be in no segment a search
        sees, and `create` looks in the new write index. The write index needs nothing:
        `create` finds its ids without a refresh, and refreshing it at every lookup would
        make small segments of the lines being written. Every older index is refreshed,
        not only the last one: a stream rolled over twice within one interval (by hand,
        or a retention run just after a rollover) holds unrefreshed lines in the one
        before. A refresh of an index with nothing new changes nothing: a lookup of
        1,000 ids took 0.5-1 ms longer with it and the `_resolve/index` that names the
        indices, for a stream of one backing index as of sixteen (docs/delivery.md); a
        realtime `_mget`, which sees unrefreshed lines without a refresh, took twice the
        time of the search. Where either request fails (a user without the privilege to
        refresh, say), that is logged and the search goes on as without it."""
        older: list[str] = []
        try:
            for group in name_groups(streams):
                resolved = await resolve_index(
                    es,
                    ",".join(group),
                    {"ignore_unavailable": "true", "allow_no_indices": "true"},
                )
                for stream in resolved.body.get("data_streams", []):
                    backing = stream.get("backing_indices") or []
                    older.extend(str(name) for name in backing[:-1])  # the last one writes
            for group in name_groups(older):
                resp = await es.indices.refresh(
                    index=group, ignore_unavailable=True, allow_no_indices=True
                )
                failed = resp.body.get("_shards", {}).get("failed", 0)
                if failed:
                    log.info(
                        "a batch sent again looked up before a refresh of some shards",
                        extra={"indices": group, "failed_shards": failed},
                    )
        except ES_ERRORS as exc:
            log.info(
                "a batch sent again looked up without a refresh of older backing indices",
                extra={"streams": sorted(streams), "reason": failure(exc).why},
            )

    async def other_templates(self, names: Sequence[str]) -> dict[str, tuple[str, int]]:
        """Of the data streams `names`, those a new backing index of which an index template
        other than ours would make (one of higher priority matching it): stream -> that
        template's name and priority. Its mappings replace ours there, silently. Empty
        when the templates could not be read (the template check says why)."""
        try:
            resp = await self._probe().indices.get_index_template()
        except ES_ERRORS:
            return {}
        templates = [
            (t["name"], int(t["index_template"].get("priority") or 0), t["index_template"])
            for t in resp.body.get("index_templates", [])
        ]
        found: dict[str, tuple[str, int]] = {}
        for name in names:
            matching = [
                (priority, template_name)
                for template_name, priority, body in templates
                if any(_matches(p, name) for p in body.get("index_patterns") or [])
            ]
            if matching:
                priority, winner = max(matching)
                if winner != TEMPLATE_NAME:
                    found[name] = (winner, priority)
        return found

    async def installed_template_version(self) -> int | None:
        """The version of our index template as Elasticsearch holds it; None without one."""
        try:
            es = self._probe(ignore_status=404)
            resp = await es.indices.get_index_template(name=TEMPLATE_NAME)
        except ES_ERRORS as exc:
            template_unreadable(exc)
        templates = resp.body.get("index_templates", []) if resp.meta.status == 200 else []
        version = templates[0]["index_template"].get("version") if templates else None
        return version if isinstance(version, int) else None

    async def custom_template(self) -> dict[str, Any] | None:
        """The operator's component template `logpipe@custom` as Elasticsearch holds it;
        None where there is none. SetupError if it could not be read."""
        try:
            es = self._probe(ignore_status=404)
            resp = await es.cluster.get_component_template(name=CUSTOM_TEMPLATE)
        except ES_ERRORS as exc:
            raise SetupError(
                f"cannot read the component template '{CUSTOM_TEMPLATE}': {failure(exc).text}"
            ) from exc
        if resp.meta.status == 404:
            return None
        found = resp.body.get("component_templates", [])
        return dict(found[0]["component_template"]) if found else None

    async def has_pipeline(self, name: str) -> bool:
        """Whether the ingest pipeline `name` exists; SetupError if that could not be asked
        (no privilege to read pipelines, say)."""
        es = self._probe(ignore_status=404)
        resp = await answer(
            es.ingest.get_pipeline(id=name, summary=True),
            SetupError,
            lambda f: f"cannot read the ingest pipeline '{name}': {f.text}",
        )
        return resp.meta.status != 404 and name in resp.body

    async def has_constant_keyword(self) -> bool:
        """Whether the cluster has the constant_keyword type: Elasticsearch's default
        distribution does, some builds (the integration-test one, some managed offers)
        do not. Asked by simulating a template that uses it, which creates nothing; any
        refusal (unknown type, no privilege) says no, and the keyword mapping is used."""
        try:
            es = self._probe()
            await es.indices.simulate_template(**probe_template())
        except ES_ERRORS:
            return False
        return True

    async def add_mappings(self, properties: dict[str, Any]) -> str | None:
        """Map `properties` in every backing index of logpipe's streams made before,
        which keep the template they were made from until they roll over; adding a field
        changes nothing of those there. None when done (or there is none), else why not."""
        try:
            await self._es.indices.put_mapping(
                index=",".join(INDEX_PATTERNS),
                properties=properties,
                allow_no_indices=True,
                expand_wildcards="open,hidden",
            )
        except ES_ERRORS as exc:
            return failure(exc).text
        return None

    async def install_template(self, body: dict[str, Any]) -> None:
        """Create or update our index template (idempotent)."""
        try:
            await self._es.indices.put_index_template(name=TEMPLATE_NAME, **body)
        except ES_ERRORS as exc:
            template_not_installed(exc)


def _unhealthy(exc: ApiError) -> str:
    """What a node's error answer to the health probe says, in the words of the log."""
    node = exc.meta.node
    reason = failure(exc).reason
    why = (
        f"{node.scheme}://{node.host}:{node.port} answers HTTP {exc.meta.status} to "
        f"/_cluster/health ({reason})"
    )
    if reason == "master_not_discovered_exception":
        why += ": the cluster has no elected master (too few master-eligible nodes are up)"
    return why


def _log_refused(refused: list[tuple[Doc, str]]) -> None:
    """One warning per data stream, not per document: a stream that refuses every
    document (closed, blocked) would otherwise cost a log line for each of them."""
    by_stream: dict[str, list[tuple[Doc, str]]] = {}
    for doc, reason in refused:
        by_stream.setdefault(doc.stream, []).append((doc, reason))
    for stream, items in by_stream.items():
        first, reason = items[0]
        log.warning(
            "documents refused by Elasticsearch, dead-lettered",
            extra={"stream": stream, "count": len(items), "doc_id": first.id, "reason": reason},
        )
