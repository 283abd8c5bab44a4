"""Closed backing indices that may hide lines from a read, and the list of them, kept.

Elasticsearch skips a closed index without a word when a search covers it (the read
API asks it to ignore unavailable indices: a search must not fail because an operator
closed last month's index), so a search or a tail would answer fewer lines than the
streams hold. Each answer names the closed indices of the streams it read instead: those
of logpipe's log streams (:data:`~collector.read.query.READ_PATTERN`) whose dataset a
``dataset`` filter keeps. Never another tool's indices, nor the dead letters, which no
read token may read.

The time a read starts from narrows it too. A data stream writes only to its write
index (logpipe's collectors write with `create` to the stream, never to a backing
index), so a backing index received its last line when its stream rolled over to the
next one: before the ``index.creation_date`` of its successor, the stream's backing
index of the next generation (:attr:`ClosedIndex.ended`). A line's ``@timestamp`` is
Docker's time of the line, which is before its indexing but for a Docker host's clock
running ahead of the node's, or a time a rule took from the line itself, which the rules
keep within ``timestamp_max_skew`` of Docker's (collector.rules.compiled); lifecycle
events and gaps carry the Docker host's times too. So no line of the index is stamped
later than ``ended`` plus that skew plus :data:`CLOCK_ALLOWANCE_NS`, the margin a read
is given (the largest skew in force since the collector started: a reload may raise it,
never lower it); a read starting after it (a search's ``since``, a tail's
``since``, the arrival of a resumed tail's last line, which the collector's clock
stamps before the line is indexed) cannot match a line of that index, and is not told
of it. An index whose end is unknown (the write index, an index backing no stream, a
failed lookup) is told of to every read of its stream.

Asking costs one ``_resolve/index`` request, and, when a closed index backs a stream,
one ``_settings`` request for the creation dates of those streams' backing indices,
both answered by the node from its cluster state (no shard is searched);
:class:`ClosedIndices` keeps the answer for :data:`KEPT_SECONDS`, so a collector asks at
most once in that time however many reads it serves, and only while it serves reads.
When it cannot have the list (Elasticsearch failed the request, or refused the
collector's user), :attr:`ClosedIndices.unchecked` says why, and each answer passes that
on: the reader learns that lines may be missing without anything to name. When only the
creation dates cannot be had, the indices are named as if their ends were unknown, and
the collector logs it.
"""

from __future__ import annotations

import asyncio
import logging
import re
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
# How far a Docker host's clock may run ahead of the node's: Docker's time of a line may
# be that much after its indexing. Clocks kept by NTP are within a second of each other.
CLOCK_ALLOWANCE_NS = 3600 * 10**9
# A backing index named by a rollover, `.ds-<stream>-<yyyy.MM.dd>-<generation>`, as a
# restore or a shrink renames it too (`restored-.ds-...`): the generation.
_GENERATION = re.compile(r"-\d{4}\.\d{2}\.\d{2}-(\d+)$")


@dataclass(frozen=True, slots=True)
class ClosedIndex:
    """A closed index, the data stream it backs (its own name when it backs none), and
    when its stream rolled over from it, in ms since the epoch (None: not known)."""

    name: str
    stream: str
    ended: int | None = None


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

    async def creation_dates(self, streams: list[str]) -> dict[str, int]:
        """The `index.creation_date` (ms) of each backing index of `streams`, by name."""
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


def generation(index: str, stream: str) -> int | None:
    """The generation of a backing index of `stream` by its name; None: not so named."""
    found = _GENERATION.search(index)
    if found is None or not index[: found.start()].endswith(f".ds-{stream}"):
        return None
    return int(found.group(1))


def with_ends(closed: list[ClosedIndex], created: dict[str, int]) -> list[ClosedIndex]:
    """The closed indices with their ends: the creation of their stream's rollover-made
    backing index (`.ds-<stream>-...`) of the least generation after theirs (`created`:
    the creation dates of the streams' backing indices, by name). A later one than the
    true successor (that one deleted) only makes the end later: the index is then named
    to more reads, never to fewer."""
    made: dict[str, list[tuple[int, int]]] = {}  # stream: (generation, creation ms)
    for name, when in created.items():
        found = _GENERATION.search(name)
        if found is not None and name.startswith(".ds-"):
            made.setdefault(name[4 : found.start()], []).append((int(found.group(1)), when))
    out = []
    for index in closed:
        own = generation(index.name, index.stream)
        later = [
            made_ for made_ in made.get(index.stream, []) if own is not None and made_[0] > own
        ]
        out.append(ClosedIndex(index.name, index.stream, min(later)[1] if later else None))
    return out


def line_margin(max_skew_ns: int) -> int:
    """How far after its index's end (ns) a line may be stamped: the farthest a rule's
    time may lie from Docker's (`timestamp_max_skew`, in ns), plus a Docker host's clock
    running ahead of the node's."""
    return max_skew_ns + CLOCK_ALLOWANCE_NS


def may_hold(index: ClosedIndex, start: int | None, margin: int) -> bool:
    """Whether `index` may hold a line of a read starting at `start` (ns since the epoch;
    None: from the first line): its end is unknown, or not `margin` ns before `start`."""
    return start is None or index.ended is None or start <= index.ended * 10**6 + margin


def hidden(
    closed: Iterable[ClosedIndex], filters: Filters, start: int | None = None, margin: int = 0
) -> Hidden | None:
    """The closed indices of the streams a read with `filters` covers that may hold lines
    from `start` on (ns; None: any line); None: no such index."""
    names = sorted(
        {
            index.name
            for index in closed
            if read_by(filters, index.stream) and may_hold(index, start, margin)
        }
    )
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
        margin: int = CLOCK_ALLOWANCE_NS,
    ) -> None:
        self._lister, self._kept, self._clock = lister, kept, clock
        self._margin = margin  # ns a line may be stamped after its index's end
        self._undated = False
        self._closed: list[ClosedIndex] = []
        self._asked: float | None = None
        self._asking = asyncio.Lock()
        self._failing = False
        self._unchecked: str | None = None

    def widen(self, margin: int) -> None:
        """Allow lines stamped `margin` ns after their index's end, if more than allowed:
        a reload raising timestamp_max_skew widens it; none narrows it (lines stamped
        under the larger skew stay in their indices)."""
        self._margin = max(self._margin, margin)

    @property
    def unchecked(self) -> str | None:
        """Why the closed indices could not be listed when last asked for, in a few words
        (an answer then says it could not check them); None when they were listed."""
        return self._unchecked

    def _fresh(self) -> bool:
        return self._asked is not None and self._clock() - self._asked < self._kept

    async def hiding(self, filters: Filters, start: int | None) -> Hidden | None:
        """The closed indices that may hide lines of a read with `filters` starting at
        `start` (ns since the epoch; None: a read of lines of any time)."""
        if not self._fresh():
            async with self._asking:
                if not self._fresh():  # not fetched by another read while this one waited
                    await self._refresh()
        return hidden(self._closed, filters, start, self._margin)

    async def _dated(self, closed: list[ClosedIndex]) -> list[ClosedIndex]:
        """The closed indices with their ends; as they are (ends unknown: each is named)
        when the creation dates cannot be had, logged once until they come again."""
        streams = sorted({i.stream for i in closed if i.stream != i.name})
        if not streams:
            return closed
        try:
            created = await self._lister.creation_dates(streams)
        except CollectorError as exc:
            if not self._undated:
                log.warning(
                    "cannot read when the streams of closed indices rolled over: answers "
                    "name those indices whatever the time read",
                    extra={"reason": str(exc)},
                )
            self._undated = True
            return closed
        if self._undated:
            log.info("rollover times of closed indices read again")
        self._undated = False
        return with_ends(closed, created)

    async def _refresh(self) -> None:
        try:
            self._closed = await self._dated(await self._lister.closed_indices())
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
