"""Group queued records into wire batches and write them to the disk buffer.

A batch is encoded once, by the line writers of :mod:`collector.wire`, with the stream
positions it completes (for a joined multiline record: past its last physical line).
The :class:`Batcher` writes each batch as a spool segment and only then moves the
cursors (see :mod:`shipper.spool` for why that gives exactly-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from collector.wire import event_line, gap_line, log_line, source_line
from shipper import metrics, native
from shipper.config import ShipperConfig
from shipper.cursor import CursorStore
from shipper.durable import WriteFailures, errno_name
from shipper.encoded import Batch
from shipper.inbox import Inbox
from shipper.record import (
    DoneRecord,
    EventRecord,
    GapRecord,
    LogRecord,
    MarkRecord,
    Meta,
    Record,
)
from shipper.spool import Spool

log = logging.getLogger("logpipe.shipper.batch")

COLLECT_POLL = 0.05  # seconds between two looks at an empty queue while a batch fills
WRITE_RETRY_INITIAL = 0.5  # seconds before a failed disk buffer write is tried again
WRITE_RETRY_MAX = 30.0


def _source_line(meta: Meta, src: int, host: str) -> bytes:
    return source_line(
        src,
        host,
        meta.id,
        meta.name,
        meta.image,
        meta.labels,
        meta.parser,
        meta.dataset,
        meta.namespace,
    )


def _record_line(record: LogRecord | EventRecord | GapRecord, src: int) -> bytes:
    if isinstance(record, LogRecord):
        return log_line(
            src, record.stream, record.ts, record.seq, record.data, record.truncated, record.lines
        )
    if isinstance(record, EventRecord):
        return event_line(src, record.ts, record.action, record.exit_code, record.detail)
    return gap_line(
        src, record.stream, record.from_ts, record.to_ts, record.reason, record.estimated_lines
    )


def _log_line(record: LogRecord, src: int) -> bytes:
    return log_line(
        src, record.stream, record.ts, record.seq, record.data, record.truncated, record.lines
    )


def encode(records: list[Record], host: str) -> Batch:
    """One NDJSON body for `records`, each container's metadata sent once."""
    if native.MODULE is not None:
        return _encode_natively(records, host)
    sources: dict[int, int] = {}
    out: list[bytes] = []
    # The last record of each stream completes it: its position is made once, at the end.
    last: dict[tuple[str, str], LogRecord | MarkRecord] = {}
    first_ts = 0
    done: list[DoneRecord] = []
    for record in records:
        if type(record) is LogRecord:  # nearly every record: the checks below cost more
            meta = record.meta
            src = sources.get(id(meta))
            if src is None:
                src = sources[id(meta)] = len(sources)
                out.append(_source_line(meta, src, host))
            stream, ts = record.stream, record.ts
            out.append(
                log_line(src, stream, ts, record.seq, record.data, record.truncated, record.lines)
            )
            last[(meta.id, stream)] = record
            if ts < first_ts or not first_ts:
                first_ts = ts
            continue
        if isinstance(record, MarkRecord):
            last[(record.meta.id, record.stream)] = record
            continue
        if isinstance(record, DoneRecord):
            done.append(record)
            continue
        meta = record.meta
        src = sources.get(id(meta))
        if src is None:
            src = sources[id(meta)] = len(sources)
            out.append(_source_line(meta, src, host))
        out.append(_record_line(record, src))
        if isinstance(record, LogRecord):
            last[(meta.id, record.stream)] = record
            if record.ts < first_ts or not first_ts:
                first_ts = record.ts
    lines = len(out) - len(sources)
    out.append(b"")
    body = b"\n".join(out) if lines else b""
    return _batch(body, lines, last, first_ts, done)


def _batch(
    body: bytes,
    lines: int,
    last: dict[tuple[str, str], LogRecord | MarkRecord],
    first_ts: int,
    done: list[DoneRecord],
) -> Batch:
    """The batch, with the positions its last record of each stream completes."""
    positions = {key: r.until if isinstance(r, MarkRecord) else r.end() for key, r in last.items()}
    written = {key: r.written for key, r in last.items() if r.written is not None}
    return Batch(body, lines, positions, first_ts=first_ts, done=done, written=written)


def _encode_natively(records: list[Record], host: str) -> Batch:
    """What encode() makes, the log lines written by the compiled extension in one call
    (the rest of the lines by the functions above, called back)."""
    assert native.MODULE is not None
    classes = (LogRecord, MarkRecord, DoneRecord)
    body, lines, last, first_ts, done = native.MODULE.encode(
        records, host, classes, _source_line, _record_line, _log_line
    )
    return _batch(body, lines, last, first_ts, done)


async def collect(
    inbox: Inbox, max_lines: int, max_bytes: int, max_age: float | Callable[[], float]
) -> list[Record]:
    """Records queued (one at least: wait for it first) until a bound or the age limit;
    a limit given as a function is read again at each look (a shutdown lowers it to 0 for
    the batch already filling)."""
    age = max_age if callable(max_age) else lambda: max_age
    records, size = inbox.take(max_lines, max_bytes, 0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    while len(records) < max_lines and size < max_bytes:
        if inbox.empty():
            remaining = start + age() - loop.time()
            if remaining <= 0:
                break
            # Waiting for each record (wait_for: a task and a timer apiece) cost more than
            # the record itself when lines trickle in; look again a little later instead.
            await asyncio.sleep(min(remaining, COLLECT_POLL))
            continue
        more, size = inbox.take(max_lines - len(records), max_bytes, size)
        records += more
    return records


class Batcher:
    """Moves records from the queue into the disk buffer a batch at a time; cursors follow."""

    def __init__(
        self,
        config: ShipperConfig,
        queue: Inbox,
        spool: Spool,
        store: CursorStore,
        host: str,
    ) -> None:
        self.queue = queue
        self.spool = spool
        self.store = store
        self.host = host
        self._max_lines = config.batch_max_lines
        self._max_bytes = config.batch_max_bytes
        self._max_age = config.batch_max_age
        self._busy = False
        self._failures = WriteFailures(spool.folder, metrics.BUFFER_WRITE_ERRORS)

    @property
    def write_error(self) -> str | None:
        """Why the disk buffer cannot be written now, if it cannot."""
        return self._failures.error

    async def run(self) -> None:
        """Batch and write until cancelled."""
        while True:
            await self.queue.wait()
            self._busy = True
            try:
                records = await collect(
                    self.queue, self._max_lines, self._max_bytes, lambda: self._max_age
                )
                metrics.QUEUED.set(self.queue.qsize())
                await self._write(encode(records, self.host))
                self.queue.written += len(records)
            finally:
                self._busy = False

    async def _write(self, batch: Batch) -> None:
        if batch.lines:
            batch.again = self.store.sent_before(batch.positions, batch.first_ts)
            await self._write_until_done(batch)
        # Durable now (or nothing but excluded lines): the cursors may pass these lines.
        for (cid, stream), pos in batch.positions.items():
            self.store.advance(cid, stream, pos)
        for (cid, stream), pos in batch.written.items():
            self.store.wrote(cid, stream, pos)
        for end in batch.done:
            self.store.finish(end.meta.id, end.follow)

    async def _write_until_done(self, batch: Batch) -> None:
        """Write `batch` to the disk buffer, retrying a failed write (a full disk, an I/O
        error) with backoff: the batch is kept and no later one passes it, so shipping
        resumes where it stopped once the disk takes writes again."""
        delay = WRITE_RETRY_INITIAL
        while True:
            try:
                await self.spool.write(batch)
            except OSError as exc:
                if self._failures.failed(exc):
                    log.error(
                        "cannot write the disk buffer: reading waits, the batch is retried",
                        extra={
                            "path": str(exc.filename or self.spool.folder),
                            "errno": errno_name(exc),
                            "reason": exc.strerror or str(exc),
                            "retry_in": round(delay, 2),
                        },
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, WRITE_RETRY_MAX)
                continue
            if self._failures.worked():
                log.info("disk buffer writable again", extra={"path": str(self.spool.folder)})
            return

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch being written."""
        return self.queue.empty() and not self._busy

    async def finish(self, wait_seconds: float, hurry: asyncio.Event | None = None) -> bool:
        """Write what is queued without waiting for batches to fill; False on timeout, or
        once `hurry` is set (a full disk buffer waits for the collectors too)."""
        self._max_age = 0.0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while not self.idle:
            if loop.time() >= deadline or (hurry is not None and hurry.is_set()):
                return False
            await asyncio.sleep(0.02)
        return True
