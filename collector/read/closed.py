"""Closed backing indices that may hide lines from a read, and the list of them, kept.

Elasticsearch skips a closed index without a word when a search covers it (the read
API asks it to ignore unavailable indices: a search must not fail because an operator
closed last month's index), so a search or a tail would answer fewer lines than the
streams hold. Each answer names the closed indices of the streams it read instead: those
of logpipe's log streams (:data:`~collector.read.query.READ_PATTERN`) whose dataset a
``dataset`` filter keeps. Never another tool's indices, nor the dead letters, which no
read token may read. Time filters do not narrow it: a closed index gives no account of
the times of its lines.

Asking costs one ``_resolve/index`` request, which the node answers from its cluster
state (no shard is searched); :class:`ClosedIndices` keeps its answer for
:data:`KEPT_SECONDS`, so a collector asks at most once in that time however many reads
it serves, and only while it serves reads. When it cannot have the list (Elasticsearch
failed the request, or refused the collector's user), :attr:`ClosedIndices.unchecked`
says why, and each answer passes that on: the reader learns that lines may be missing
without anything to name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

from collector.errors import CollectorError
from collector.read.filters import Filters
from collector.read.query import READ_PATTERN
from collector.retention.rules import STREAM_MARKER

log = logging.getLogger("logpipe.collector.read")

# How long the list of closed indices is used before it is asked for again.
KEPT_SECONDS = 10.0
# Names an answer lists at most (with the count of all of them).
MAX_NAMED = 10


@dataclass(frozen=True, slots=True)
class ClosedIndex:
    """A closed index, and the data stream it backs (its own name when it backs none)."""

    name: str
    stream: str


@dataclass(frozen=True, slots=True)
class Hidden:
    """The closed indices that may hide lines of a read: how many, and the first names."""

    count: int
    names: tuple[str, ...]


class Lister(Protocol):
    """What lists the closed indices (the read API's Reader)."""

    async def closed_indices(self) -> list[ClosedIndex]:
        """Every closed index whose stream may be logpipe's."""
        ...


def _dataset(stream: str) -> str:
    """The dataset of a stream named `logs-<dataset>.keep_<rule>-<namespace>`."""
    return stream.removeprefix("logs-").rpartition(STREAM_MARKER)[0]


def read_by(filters: Filters, stream: str) -> bool:
    """Whether a read with `filters` covers the data stream `stream`."""
    if not fnmatchcase(stream, READ_PATTERN):
        return False
    # The stream's dataset is the `event.dataset` of every record in it.
    return not filters.datasets or any(fnmatchcase(_dataset(stream), g) for g in filters.datasets)


def hidden(closed: Iterable[ClosedIndex], filters: Filters) -> Hidden | None:
    """The closed indices of the streams a read with `filters` covers; None: no such index."""
    names = sorted({index.name for index in closed if read_by(filters, index.stream)})
    if not names:
        return None
    return Hidden(len(names), tuple(names[:MAX_NAMED]))


class ClosedIndices:
    """The closed indices, asked for at most once every `kept` seconds; reads asking while
    the list is being fetched wait for that one answer."""

    def __init__(
        self,
        lister: Lister,
        kept: float = KEPT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lister, self._kept, self._clock = lister, kept, clock
        self._closed: list[ClosedIndex] = []
        self._asked: float | None = None
        self._asking = asyncio.Lock()
        self._failing = False
        self._unchecked: str | None = None

    @property
    def unchecked(self) -> str | None:
        """Why the closed indices could not be listed when last asked for, in a few words
        (an answer then says it could not check them); None when they were listed."""
        return self._unchecked

    def _fresh(self) -> bool:
        return self._asked is not None and self._clock() - self._asked < self._kept

    async def hiding(self, filters: Filters) -> Hidden | None:
        """The closed indices that may hide lines of a read with `filters`."""
        if not self._fresh():
            async with self._asking:
                if not self._fresh():  # not fetched by another read while this one waited
                    await self._refresh()
        return hidden(self._closed, filters)

    async def _refresh(self) -> None:
        try:
            self._closed = await self._lister.closed_indices()
        except CollectorError as exc:
            # The read itself goes on with the last list known: its lines are right, only
            # the warning may be out of date, and the answer says it could not check. The
            # failure is kept as long as an answer, so a failing node is not asked once per
            # read; it is logged once until the list comes again.
            if not self._failing:
                log.warning(
                    "cannot list closed indices: answers will not name those hiding lines",
                    extra={"reason": str(exc)},
                )
            self._failing = True
            self._unchecked = str(exc)
        else:
            if self._failing:
                log.info("closed indices listed again")
            self._failing = False
            self._unchecked = None
        self._asked = self._clock()
