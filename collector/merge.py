"""Small `_bulk` payloads that wait for Elasticsearch at the same time, sent as one request.

Elasticsearch spends a few CPU-ms on each _bulk request beyond its documents, so many
shippers sending small batches cost it far more per document than a few big requests do
(BENCHMARKS, tenth pass). A small payload waits up to a short time for others, less once
the waiting ones add up to enough documents; each gets its own slice of the answer. A
merged request refused as a whole or too large is sent again payload by payload, so that
each learns its own answer (and its own error). An answer whose items do not line up
with the documents is no answer (bulk.read_answer): each payload is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from collector import metrics
from collector.errors import SinkError

__all__ = ["Answer", "Merger", "Send"]

# A request's answer: its body, or None with the status (None: no answer) and why.
Answer = tuple[dict[str, Any] | None, int | None, str]
# Sends one _bulk payload of so many documents before a deadline (monotonic time): the
# answer.
Send = Callable[[bytes, int, float], Awaitable[Answer]]


@dataclass(slots=True)
class _Part:
    """A small request's payload waiting to be sent together with others."""

    payload: bytes
    count: int
    deadline: float
    send_at: float  # event loop time at which it waits no longer for others
    answer: asyncio.Future[Answer]


class Merger:
    """The small payloads waiting to share a request, and the tasks that send them."""

    def __init__(
        self,
        send: Send,
        *,
        below: int,
        wait: float,
        tasks: int,
        max_bytes: int,
        max_docs: int,
    ) -> None:
        self._send = send
        self._below = below  # documents that are enough: no need to wait more
        self._wait = wait
        self._tasks = tasks
        self._max_bytes = max_bytes
        self._max_docs = max_docs
        self._parts: deque[_Part] = deque()
        self._parts_count = 0  # documents in them
        self._enough = asyncio.Event()  # they add up to `below`: no need to wait more
        self._mergers: set[asyncio.Task[None] | None] = set()

    async def send(self, payload: bytes, count: int, deadline: float) -> Answer:
        """The answer to `payload` (`count` items), sent in one request with other small ones."""
        loop = asyncio.get_running_loop()
        part = _Part(payload, count, deadline, loop.time() + self._wait, loop.create_future())
        self._parts.append(part)
        self._parts_count += count
        if self._parts_count >= self._below:
            self._enough.set()
        # Up to `tasks` merging tasks, each waiting, then sending what waits.
        if len(self._mergers) < self._tasks:
            self._mergers.add(asyncio.create_task(self._merge()))
        return await part.answer

    async def _merge(self) -> None:
        """Send the waiting small payloads, as many per request as the bounds allow."""
        me = asyncio.current_task()
        try:
            await self._merge_waiting()
        finally:
            # At once, with no await since the last look: a part that comes next starts
            # a merger of its own instead of waiting for one that has ended.
            self._mergers.discard(me)

    async def _merge_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self._parts:
            wait = self._parts[0].send_at - loop.time()
            if wait > 0 and not self._enough.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._enough.wait(), wait)
                continue
            group = self._take()
            try:
                if len(group) == 1:
                    part = group[0]
                    await _settle_part(part, self._send(part.payload, part.count, part.deadline))
                else:
                    await self._send_group(group)
            except BaseException as exc:  # never leave a caller waiting forever
                for part in group:
                    _fail(part, exc)
                if not isinstance(exc, Exception):
                    raise

    def _take(self) -> list[_Part]:
        group: list[_Part] = []
        size = count = 0
        while self._parts:
            part = self._parts[0]
            if group and (
                size + len(part.payload) > self._max_bytes or count + part.count > self._max_docs
            ):
                break
            group.append(self._parts.popleft())
            size += len(part.payload)
            count += part.count
        self._parts_count -= count
        if self._parts_count < self._below:
            self._enough.clear()
        return group

    async def _send_group(self, group: list[_Part]) -> None:
        """One request for several parts; each part gets its own slice of the answer."""
        deadline = min(part.deadline for part in group)
        answers: list[dict[str, Any]] | None = None
        try:
            count = sum(p.count for p in group)
            body, status, why = await self._send(
                b"".join(p.payload for p in group), count, deadline
            )
            if body is not None:
                answers = _split(body, group)
            alone = status == 413 or (body is not None and answers is None)
        except SinkError:  # the request was refused as a whole: whose part was it?
            alone = True
        if alone:
            # Too large together, refused, or an answer that does not line up with the
            # items: each part alone gets its own answer (and its own error).
            await asyncio.gather(
                *(_settle_part(p, self._send(p.payload, p.count, p.deadline)) for p in group)
            )
            return
        metrics.BULK_MERGED.inc(len(group))
        for i, part in enumerate(group):
            if not part.answer.done():
                part.answer.set_result((answers[i], 200, "") if answers else (None, status, why))


def _split(body: dict[str, Any], group: list[_Part]) -> list[dict[str, Any]] | None:
    """Each part's share of a merged request's answer; None when the items do not add up."""
    if not body.get("errors"):
        return [{"errors": False} for _ in group]
    items = body.get("items")
    if not isinstance(items, list) or len(items) != sum(p.count for p in group):
        return None
    shares: list[dict[str, Any]] = []
    start = 0
    for part in group:
        shares.append({"errors": True, "items": items[start : start + part.count]})
        start += part.count
    return shares


async def _settle_part(part: _Part, sending: Awaitable[Answer]) -> None:
    """Give `part` the answer `sending` (awaited) ends with, or the error it raises."""
    try:
        answer = await sending
    except Exception as exc:
        _fail(part, exc)
        return
    if not part.answer.done():
        part.answer.set_result(answer)


def _fail(part: _Part, exc: BaseException) -> None:
    if part.answer.done():
        return
    if isinstance(exc, Exception):
        part.answer.set_exception(exc)
    else:
        part.answer.cancel()
