"""Deliver the disk buffer's segments, oldest first, until a collector takes each one.

Up to ``max_in_flight`` segments are sent at once, spread over the collectors. A segment
is retried until it is accepted: nothing written is dropped because a collector is
down, slow, refusing the token or presenting a certificate we do not trust. Accepted
segments are deleted after the cursors covering them were saved (see
:mod:`shipper.spool`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
from typing import Any

import orjson
from isal import igzip

from shipper import metrics
from shipper.config import ShipperConfig
from shipper.cursor import CursorStore
from shipper.errors import RejectedDelivery, RetryableDelivery, TooLarge, TooSlow
from shipper.inbox import Inbox
from shipper.sink import CollectorClient, Endpoint, body_size
from shipper.spool import Segment, Spool

log = logging.getLogger("logpipe.shipper.deliver")

RELEASE_EVERY = 0.2  # seconds between cursor saves that let acknowledged segments go
REPEAT_LOG = 30.0  # seconds before the same delivery failure is logged again


class Sender:
    """Sends the spool's segments through `client`; saves cursors and frees the spool."""

    def __init__(
        self,
        config: ShipperConfig,
        queue: Inbox,
        spool: Spool,
        client: CollectorClient,
        store: CursorStore,
    ) -> None:
        self.config = config
        self.queue = queue  # read by /status
        self.spool = spool
        self.tracker = spool  # /status reads tracker.pending_batches
        self.client = client
        self.store = store
        self.waiting_since: float | None = None
        self.last_error = ""
        self._logged_at = 0.0
        # Since when failures were logged and no recovery was (a collector that was
        # failing took a batch again): then the recovery is logged too.
        self._unreported: float | None = None
        self._in_flight: dict[asyncio.Task[Any] | None, float] = {}  # by worker: sent at
        self._acked = asyncio.Event()
        self._took = asyncio.Event()  # set (and replaced) each time a collector takes a batch
        self.hurry = asyncio.Event()  # set: drain() waits no more (a second stop signal)

    async def run(self) -> None:
        """Deliver and release until cancelled; a worker's failure is raised here, so that
        it stops the shipper instead of leaving the others to deliver nothing."""
        tasks = [
            asyncio.create_task(self._worker(), name=f"deliver-{i}")
            for i in range(self.config.max_in_flight)
        ]
        tasks.append(asyncio.create_task(self._release_loop(), name="release"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            ended = done.pop()
            ended.result()
            raise RuntimeError(f"delivery task {ended.get_name()} ended")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            segment = await self.spool.take()
            body = await self.spool.read(segment)
            if body is None:
                continue  # corrupt on disk: reported by the spool
            await self.spool.trying(segment)  # recorded on disk before any byte goes out
            await self._deliver(segment, body)
            metrics.BATCHES_ACKED.inc()
            if segment.first_ts:
                metrics.DELIVERY_SECONDS.observe(max(0.0, time.time_ns() - segment.first_ts) / 1e9)
            self.spool.acked(segment)
            self._acked.set()

    async def _release_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), 1.0)
            self._acked.clear()
            await self.release()
            _update_lag(self.spool)
            await asyncio.sleep(RELEASE_EVERY)

    async def release(self, quiet: bool = False) -> bool:
        """Save the cursors (the fsyncs off the event loop), then delete the acknowledged
        segments they cover: those acknowledged before the save began. False when the
        save failed (logged by the store unless `quiet`): the segments stay for a later
        save."""
        if self.spool.has_acked:
            covered = self.spool.acknowledged()
            if not await self.store.save_or_log(quiet):
                return False
            self.spool.release(covered)
        return True

    async def _deliver(
        self, segment: Segment, body: bytes, lines: int | None = None, again: bool = False
    ) -> None:
        """Send until some collector accepts the segment (or, once its body was too large
        for a collector or reached it too slowly, each of its halves: the segment is
        acknowledged when all are). `lines` and `again` are a half's (or a part's).

        A collector that answered so learns a cap (Endpoint.too_big): a later body larger
        than it is sent to that collector in parts at once, as if its halves had failed,
        instead of spending a try on the whole first."""
        whole = lines is None
        lines = segment.lines if lines is None else lines
        # Some of it may be indexed already (collector.wire.SENT_AGAIN): a try of it
        # failed after it may have written some, or an earlier run may have sent it.
        again = again or segment.earlier
        while True:
            endpoint, wait = self.client.pick()
            if wait > 0:
                await self._back_off(wait)
                continue  # which collector, and how long, may have changed meanwhile
            if endpoint.limit is not None and endpoint.over_limit(body):
                # Over the limit the collector said: in parts under it, in the bytes it counts.
                parts = await asyncio.to_thread(
                    split_under, body, endpoint.limit, endpoint.limit_inflated
                )
                if parts is not None:  # (one line alone is sent whole, and refused)
                    metrics.BATCHES_PRESPLIT.inc()
                    for part, part_lines in parts:
                        await self._deliver(segment, part, part_lines, again)
                    return
            if endpoint.cap is not None and len(body) > endpoint.cap:
                parts = await asyncio.to_thread(split_under, body, endpoint.cap)
                if parts is not None:  # (one line alone is sent whole, as without a cap)
                    metrics.BATCHES_PRESPLIT.inc()
                    for part, part_lines in parts:
                        await self._deliver(segment, part, part_lines, again)
                    return
            task = asyncio.current_task()
            self._in_flight[task] = time.monotonic()
            try:
                await self.client.send(body, endpoint, lines, again)
            except (TooLarge, TooSlow) as exc:
                # A body that reached the collector too slowly is split at its first 408 (or
                # request timeout mid-body), not its second: a second try of the whole would
                # spend another LOGPIPE_BODY_TIMEOUT of the link, the scarce thing, on bytes
                # thrown away, while halves sent needlessly after a passing stall cost one
                # request more and nothing else (the lines' `_id`s are the same in any batch).
                again = again or exc.may_have_written
                if isinstance(exc, TooLarge) and endpoint.over_limit(body):
                    # Its 413 said the limit (or an earlier answer did): nothing to learn,
                    # the body goes in parts under it, as later ones will before a try.
                    limit = endpoint.limit
                    parts = await asyncio.to_thread(
                        split_under, body, limit or 1, endpoint.limit_inflated
                    )
                    if parts is not None:
                        endpoint.succeeded()  # it answered: the body was the problem
                        metrics.BATCHES_SPLIT.labels("too_large").inc()
                        if whole:
                            log.info(
                                "a batch over the collector's body limit is sent in parts under it",
                                extra={
                                    "segment": segment.path.name,
                                    "limit_bytes": limit,
                                    "reason": str(exc),
                                },
                            )
                        for part, part_lines in parts:
                            await self._deliver(segment, part, part_lines, again)
                        return
                halves = await asyncio.to_thread(split_body, body)
                if halves is None:  # one line alone: the limit, or the link, must change
                    if isinstance(exc, TooLarge):
                        self._failed(
                            endpoint, f"{exc}; one line alone is over it", None, logging.ERROR
                        )
                    else:
                        self._failed(
                            endpoint,
                            f"{exc}; a batch of one line cannot be split and is sent whole "
                            "again: check the link's speed, or raise the collector's "
                            "LOGPIPE_BODY_TIMEOUT and the shipper's LOGPIPE_REQUEST_TIMEOUT",
                            exc.retry_after,
                            logging.WARNING,
                        )
                    continue
                if isinstance(exc, TooLarge) or exc.answered:
                    endpoint.succeeded()  # it answered: the body was the problem
                slow = isinstance(exc, TooSlow)
                reason = "too_slow" if slow else "too_large"
                if endpoint.too_big(len(body), max(len(half) for half, _ in halves)):
                    log.warning(
                        "bodies larger than the halves that go through are sent to this "
                        "collector in parts, until larger ones fit again",
                        extra={
                            "url": endpoint.url,
                            "cap_bytes": endpoint.cap,
                            "body_bytes": len(body),
                            "reason": reason,
                        },
                    )
                metrics.BATCHES_SPLIT.labels(reason).inc()
                if whole:  # once per segment; its halves' splits are counted only
                    log.log(
                        logging.WARNING if slow else logging.INFO,
                        "a batch whose body reached the collector too slowly is sent in halves"
                        if slow
                        else "a batch too large for the collector is sent in two halves",
                        extra={"segment": segment.path.name, "reason": str(exc)},
                    )
                for half, half_lines in halves:
                    await self._deliver(segment, half, half_lines, again)
                return
            except RetryableDelivery as exc:
                again = again or exc.may_have_written
                self._failed(endpoint, str(exc), exc.retry_after, logging.WARNING, exc.back_off)
            except RejectedDelivery as exc:
                again = again or exc.may_have_written
                self._failed(endpoint, str(exc), None, logging.ERROR)
            else:
                if endpoint.took(len(body)):
                    log.info(
                        "bodies of any size are sent whole to this collector again: bodies "
                        "up to the size that first failed went through",
                        extra={"url": endpoint.url, "body_bytes": endpoint.capped_from},
                    )
                recovered = endpoint.succeeded()
                if recovered:  # back after failing: the others try again now
                    self._took.set()
                    self._took = asyncio.Event()
                if recovered and self._unreported is not None:  # its failure was logged
                    log.info(
                        "batches delivered again",
                        extra={
                            "waited_seconds": round(time.monotonic() - self._unreported, 1),
                            "buffer_bytes": self.spool.used,
                        },
                    )
                    self._unreported = None
                    self.last_error = ""  # a failure after this one is logged again
                self.waiting_since = None
                return
            finally:
                self._in_flight.pop(task, None)

    def oldest_request(self) -> float:
        """Seconds the oldest request now waiting for a collector's answer has waited, 0
        when none waits: a collector that hangs shows here before anything fails."""
        if not self._in_flight:
            return 0.0
        return round(time.monotonic() - min(self._in_flight.values()), 1)

    async def _back_off(self, wait: float) -> None:
        """Wait `wait` seconds, or until a collector that was failing takes a batch again:
        after an outage each worker's backoff ends at another time (up to 30 s apart), and
        the segment of the one waiting longest, the oldest, would reach Elasticsearch last.
        (A Retry-After still holds: the worker picks again, and waits out what is left.)"""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._took.wait(), wait)

    def _failed(
        self,
        endpoint: Endpoint,
        reason: str,
        retry_after: float | None,
        level: int,
        back_off: bool = True,
    ) -> None:
        retry_in = endpoint.failed(retry_after) if back_off else 0.0
        now = time.monotonic()
        if self.waiting_since is None:
            self.waiting_since = now
        # A new reason is always logged; the same one again at most every REPEAT_LOG
        # seconds, so an error a person must fix stays visible without flooding the log.
        if reason != self.last_error or now - self._logged_at >= REPEAT_LOG:
            self._logged_at = now
            if self._unreported is None:
                self._unreported = now
            log.log(
                level,
                "batch not delivered, kept in the disk buffer and retried",
                extra={
                    "reason": reason,
                    "retry_in": round(retry_in, 2),
                    "buffer_bytes": self.spool.used,
                },
            )
        self.last_error = reason

    async def drain(self, wait_seconds: float) -> bool:
        """Wait until every segment was acknowledged and released, at most `wait_seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while not self.spool.empty:
            if not await self.release(quiet=True):
                return False  # the cursors cannot be saved: the last save at exit says why
            if self.spool.empty:
                break
            if loop.time() >= deadline or self.hurry.is_set():
                return False
            await asyncio.sleep(0.05)
        return True


def _update_lag(spool: Spool) -> None:
    oldest = spool.oldest_ts()
    metrics.CURSOR_LAG.set(max(0.0, (time.time_ns() - oldest) / 1e9) if oldest else 0.0)


def split_body(body: bytes) -> list[tuple[bytes, int]] | None:
    """A gzip batch body as two bodies of half its lines each, with their counts (the
    `source` lines not counted), or None when it holds one line or none besides them.

    Each half keeps every `source` line where it stood, so each line still follows the
    declaration of its container that it followed in the whole; the lines' `_id`s do not
    depend on the batch, so a half the collector had indexed already is answered "already
    there" when sent again.
    """
    split = _split_lines(_lines(body), 2)
    return None if split is None else [(_compress(raw), count) for raw, count in split]


def split_under(body: bytes, cap: int, inflated: bool = False) -> list[tuple[bytes, int]] | None:
    """A gzip batch body as parts of at most `cap` bytes each (a part of one line may be
    larger: it is sent whole), in the order of its lines, or None when it holds one line.
    Bytes as sent, or (`inflated`) as a collector's limit on decompressed bodies counts
    them (sink.body_size). Parts of equal line counts, as many as its size asks; more
    when one is still larger (gzip sizes differ from part to part: a body of the size one
    was learnt from goes in two or three parts, not in halves of halves). Each keeps the
    `source` lines, as halves do."""
    raw = _lines(body)
    count = max(2, -(-body_size(body, inflated) // max(1, cap)))
    while True:
        split = _split_lines(raw, count)
        if split is None:
            return None
        parts = [(_compress(lines), n) for lines, n in split]
        largest = max(body_size(part, inflated) for part, _ in parts)
        if largest <= cap or len(parts) < count:  # under the cap, or one line each
            return parts
        count = max(count + 1, -(-count * largest // cap))


def _lines(body: bytes) -> list[bytes]:
    return [line for line in gzip.decompress(body).split(b"\n") if line.strip()]


def _compress(raw: list[bytes]) -> bytes:
    return igzip.compress(b"\n".join(raw), 1)


def _split_lines(raw: list[bytes], parts: int) -> list[tuple[list[bytes], int]] | None:
    """`raw`'s wire lines as `parts` groups (at most one per line besides the `source`
    ones, each keeping all of those where they stood), with their counts of other lines."""
    sources = {i for i, line in enumerate(raw) if _is_source(line)}
    others = [i for i in range(len(raw)) if i not in sources]
    if len(others) < 2:
        return None
    parts = min(parts, len(others))
    groups = [
        set(others[k * len(others) // parts : (k + 1) * len(others) // parts]) for k in range(parts)
    ]
    return [
        ([line for i, line in enumerate(raw) if i in sources or i in group], len(group))
        for group in groups
    ]


def _is_source(line: bytes) -> bool:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return isinstance(record, dict) and record.get("kind") == "source"
