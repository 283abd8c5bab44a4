"""Turn queued records into batches, deliver each until a collector takes it, save cursors.

Batches are made and registered in order; up to ``max_in_flight`` are delivered at once
(spread over the collectors). A batch is retried until it is accepted: nothing read is
dropped because a collector is down, slow or refusing the token.
"""

from __future__ import annotations

import asyncio
import logging
import time

from shipper import metrics
from shipper.batch import AckTracker, Batch, collect, encode
from shipper.config import ShipperConfig
from shipper.cursor import CursorStore
from shipper.errors import RejectedDelivery, RetryableDelivery
from shipper.record import Record
from shipper.sink import CollectorClient

log = logging.getLogger("logpipe.shipper.deliver")


class Sender:
    """Batches records from `queue` and delivers them through `client`."""

    def __init__(
        self,
        config: ShipperConfig,
        queue: asyncio.Queue[Record],
        client: CollectorClient,
        store: CursorStore,
        host: str,
    ) -> None:
        self.config = config
        self.queue = queue
        self.client = client
        self.store = store
        self.host = host
        self.tracker = AckTracker(store)
        self.batches: asyncio.Queue[Batch] = asyncio.Queue(maxsize=config.max_in_flight)
        self.waiting_since: float | None = None
        self.last_error = ""
        self._unfinished = 0

    async def run(self) -> None:
        """Batch and deliver until cancelled."""
        workers = [
            asyncio.create_task(self._worker(), name=f"deliver-{i}")
            for i in range(self.config.max_in_flight)
        ]
        try:
            while True:
                first = await self.queue.get()
                self._unfinished += 1  # from here on the records are ours to deliver
                records = await collect(
                    self.queue,
                    first,
                    self.config.batch_max_lines,
                    self.config.batch_max_bytes,
                    self.config.batch_max_age,
                )
                metrics.QUEUED.set(self.queue.qsize())
                batch = encode(records, self.host)
                self.tracker.register(batch)
                await self.batches.put(batch)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing in flight."""
        return self.queue.empty() and self._unfinished == 0

    async def _worker(self) -> None:
        while True:
            batch = await self.batches.get()
            await self._deliver(batch)
            metrics.BATCHES_ACKED.inc()
            if self.tracker.ack(batch):
                self.store.save()
            self._unfinished -= 1

    async def _deliver(self, batch: Batch) -> None:
        """Send until some collector accepts the batch."""
        while True:
            endpoint, wait = self.client.pick()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self.client.send(batch, endpoint)
            except RetryableDelivery as exc:
                self._failed(str(exc), endpoint.failed(exc.retry_after), logging.WARNING)
            except RejectedDelivery as exc:
                self._failed(str(exc), endpoint.failed(None), logging.ERROR)
            else:
                endpoint.succeeded()
                self.waiting_since = None
                return

    def _failed(self, reason: str, retry_in: float, level: int) -> None:
        if self.waiting_since is None:
            self.waiting_since = time.monotonic()
        if reason != self.last_error or level >= logging.ERROR:
            log.log(
                level,
                "batch not delivered, will retry",
                extra={"reason": reason, "retry_in": round(retry_in, 2)},
            )
        self.last_error = reason

    async def drain(self, wait_seconds: float) -> bool:
        """Wait until everything read was delivered, at most `wait_seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while not self.idle:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True
