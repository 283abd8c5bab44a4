"""Reading documents from Elasticsearch for the read API: pages in key order, counts,
and the closed indices a search would skip.

:class:`Reader` is the read API's one way to Elasticsearch; its failures become the
collector's errors in ``es_failures.read_refused`` (503, 429 or 400 for the reader).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from elasticsearch import AsyncElasticsearch

from collector.errors import BadRequest, ReadUnavailable
from collector.es_failures import ES_ERRORS, closed_unlisted, read_refused
from collector.es_requests import resolve_index
from collector.read import cursor
from collector.read.closed import ClosedIndex
from collector.read.cursor import KeyField, Order, Position, sort
from collector.read.query import READ_PATTERN, Clause
from collector.shape import nested

# Elasticsearch answers at most this many documents a request (index.max_result_window).
MAX_WINDOW = 10_000
# The backing indices of logpipe's log streams, also those renamed by a restore or a
# shrink (`restored-.ds-...`). No stream name: that would list every stream's backing
# indices, open or not, in the answer's `data_streams`.
_BACKING_PATTERN = f"*.ds-{READ_PATTERN}"
# Characters of stream names the `_settings` request line names at most (a node takes a
# request line of 4 KiB); more streams than that are asked for by _BACKING_PATTERN.
MAX_NAMES_CHARS = 3000
# A shard of an index just made (a new stream's first, a rollover's) fails its part of a
# read until it has started, for a moment: such a read is made again after each of these
# waits before it is answered 503. The shard cannot be told from one lost for good, so
# a part missing is never skipped.
NOT_STARTED = "no_shard_available_action_exception"
NOT_STARTED_WAITS = (0.1, 0.2, 0.4, 0.8)
# Shard failures that mean the query itself is wrong, not the cluster.
_REFUSED_QUERY = frozenset(
    {"query_shard_exception", "illegal_argument_exception", "parse_exception", "too_many_clauses"}
)


@dataclass(frozen=True, slots=True)
class Hit:
    """One document read: its id, its sort key, and the JSON line a reader is sent."""

    id: str
    key: tuple[int, ...]
    line: bytes


@dataclass(frozen=True, slots=True)
class Seen:
    """A document's id and sort key, without its body."""

    id: str
    key: tuple[int, ...]


def _complete(body: dict[str, Any]) -> None:
    """Raise unless every shard answered in time: a partial answer would skip documents."""
    shards = body.get("_shards", {})
    if body.get("timed_out"):
        raise ReadUnavailable("Elasticsearch did not finish the read in time; retry")
    if shards.get("failed"):
        reasons = [f.get("reason", {}) for f in shards.get("failures", [])]
        text = "; ".join(f"{r.get('type')}: {r.get('reason')}" for r in reasons[:3])
        if any(r.get("type") in _REFUSED_QUERY for r in reasons):
            raise BadRequest(f"Elasticsearch refused the query: {text}")
        raise ReadUnavailable(f"Elasticsearch failed part of the read: {text}")


def _not_started(body: object) -> bool:
    """Whether every shard that failed a read (in a 200's `_shards`, or a 503's error)
    failed only for not having started yet."""
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    if isinstance(error, dict):
        causes = [
            *error.get("root_cause", []),
            *(f.get("reason", {}) for f in error.get("failed_shards", [])),
        ]
    else:
        shards = body.get("_shards", {})
        causes = (
            [f.get("reason", {}) for f in shards.get("failures", [])]
            if shards.get("failed")
            else []
        )
    types = {c.get("type") for c in causes if isinstance(c, dict)}
    return types == {NOT_STARTED}


def _line(hit: dict[str, Any]) -> bytes:
    """The document as readers get it: nested, whichever shape it was indexed in."""
    return orjson.dumps({**nested(hit["_source"]), "_id": hit["_id"], "_index": hit["_index"]})


class Reader:
    """Searches logpipe's log streams; a slow or failed read costs only its reader."""

    def __init__(self, es: AsyncElasticsearch, timeout: float = 30) -> None:
        self._es = es.options(request_timeout=timeout)
        self._timeout = f"{max(1, int(timeout) - 1)}s"

    async def _search(self, **body: Any) -> list[dict[str, Any]]:
        for wait in (*NOT_STARTED_WAITS, None):
            try:
                resp = await self._es.search(
                    index=READ_PATTERN,
                    ignore_unavailable=True,
                    allow_no_indices=True,
                    track_total_hits=False,
                    timeout=self._timeout,
                    **body,
                )
            except ES_ERRORS as exc:
                if wait is None or not _not_started(getattr(exc, "body", None)):
                    read_refused(exc)
                await asyncio.sleep(wait)
                continue
            if wait is None or not _not_started(resp.body):
                break
            await asyncio.sleep(wait)
        _complete(resp.body)
        hits: list[dict[str, Any]] = resp.body["hits"]["hits"]
        return hits

    async def page(
        self, query: Clause, key: tuple[KeyField, ...], order: Order, size: int
    ) -> list[Hit]:
        """Up to `size` documents matching `query`, in `order` of `key`."""
        hits = await self._search(query=query, sort=sort(key, order), size=size)
        return [Hit(h["_id"], tuple(h["sort"]), _line(h)) for h in hits]

    async def seen(
        self, query: Clause, key: tuple[KeyField, ...], most: int, order: Order
    ) -> list[Seen]:
        """The ids and keys (no bodies) of up to `most` documents matching `query`, read
        in pages (Elasticsearch answers at most 10,000 documents a request)."""
        found: list[Seen] = []
        position: Position | None = None
        while len(found) < most:
            after = [] if position is None else [cursor.after(position, key, order)]
            clause = {"bool": {"filter": [query, *after]}}
            size = min(MAX_WINDOW, most - len(found))
            hits = await self._search(query=clause, sort=sort(key, order), size=size, source=False)
            for hit in hits:
                found.append(Seen(hit["_id"], tuple(hit["sort"])))
                position = (position or Position(())).then(found[-1].key, hit["_id"])
            if len(hits) < size:
                break
        return found

    async def count(self, query: Clause) -> int:
        """How many documents match `query` now."""
        try:
            resp = await self._es.count(
                index=READ_PATTERN, ignore_unavailable=True, allow_no_indices=True, query=query
            )
        except ES_ERRORS as exc:
            read_refused(exc)
        return int(resp.body["count"])

    async def closed_indices(self) -> list[ClosedIndex]:
        """Every closed index that may back one of logpipe's log streams, with its stream;
        ReadUnavailable saying in a few words why they could not be listed."""
        try:
            resp = await resolve_index(
                self._es,
                _BACKING_PATTERN,
                {"expand_wildcards": "closed,hidden", "filter_path": "indices"},
            )
        except ES_ERRORS as exc:
            closed_unlisted(exc)
        found: list[dict[str, Any]] = resp.body.get("indices", [])
        return [
            ClosedIndex(i["name"], i.get("data_stream") or i["name"])
            for i in found
            if "closed" in i.get("attributes", [])
        ]

    async def creation_dates(self, streams: list[str]) -> dict[str, int]:
        """The `index.creation_date` (ms since the epoch) of each backing index of
        `streams`, closed ones too, by name; ReadUnavailable when it cannot be had. A
        stream's name stands for all its backing indices, whatever their state."""
        names = ",".join(streams)
        target = names if len(names) <= MAX_NAMES_CHARS else _BACKING_PATTERN
        try:
            resp = await self._es.perform_request(
                "GET",
                f"/{quote(target, safe=',*')}/_settings/index.creation_date",
                params={
                    "expand_wildcards": "all",
                    "ignore_unavailable": "true",
                    "allow_no_indices": "true",
                    "filter_path": "*.settings.index.creation_date",
                },
                headers={"accept": "application/json"},
            )
        except ES_ERRORS as exc:
            closed_unlisted(exc)
        body: dict[str, Any] = resp.body or {}
        dates = {}
        for name, found in body.items():
            # An index without a date in the answer has no known rollover: it is named.
            when = found.get("settings", {}).get("index", {}).get("creation_date")
            if isinstance(when, str | int) and str(when).isdigit():
                dates[name] = int(when)
        return dates
