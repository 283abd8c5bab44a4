"""Reading documents from Elasticsearch for the read API: pages in key order, counts.

:class:`Reader` is the read API's one way to Elasticsearch; its failures become the
collector's errors in ``es_failures.read_refused`` (503, 429 or 400 for the reader).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from elasticsearch import AsyncElasticsearch

from collector.es_failures import ES_ERRORS, read_refused
from collector.read.cursor import KeyField, Order, sort
from collector.read.query import READ_PATTERN, Clause


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


def _line(hit: dict[str, Any]) -> bytes:
    return orjson.dumps({**hit["_source"], "_id": hit["_id"], "_index": hit["_index"]})


class Reader:
    """Searches logpipe's log streams; a slow or failed read costs only its reader."""

    def __init__(self, es: AsyncElasticsearch, timeout: float = 30) -> None:
        self._es = es.options(request_timeout=timeout)
        self._timeout = f"{max(1, int(timeout) - 1)}s"

    async def _search(self, **body: Any) -> list[dict[str, Any]]:
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
            read_refused(exc)
        hits: list[dict[str, Any]] = resp.body["hits"]["hits"]
        return hits

    async def page(
        self, query: Clause, key: tuple[KeyField, ...], order: Order, size: int
    ) -> list[Hit]:
        """Up to `size` documents matching `query`, in `order` of `key`."""
        hits = await self._search(query=query, sort=sort(key, order), size=size)
        return [Hit(h["_id"], tuple(h["sort"]), _line(h)) for h in hits]

    async def seen(self, query: Clause, key: tuple[KeyField, ...], size: int) -> list[Seen]:
        """The ids and keys (no bodies) of up to `size` documents matching `query`."""
        hits = await self._search(query=query, sort=sort(key, "asc"), size=size, source=False)
        return [Seen(h["_id"], tuple(h["sort"])) for h in hits]

    async def count(self, query: Clause) -> int:
        """How many documents match `query` now."""
        try:
            resp = await self._es.count(
                index=READ_PATTERN, ignore_unavailable=True, allow_no_indices=True, query=query
            )
        except ES_ERRORS as exc:
            read_refused(exc)
        return int(resp.body["count"])
