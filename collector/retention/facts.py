"""What Elasticsearch holds under our data streams: backing indices, sizes, newest documents.

Read-only. Lists data streams with ``_resolve/index`` (the node may lack the
``_data_stream`` API), sizes with ``_cat/indices``, and each backing index's newest
``@timestamp`` with one aggregation. Only logpipe's own streams are looked at, whatever
the pattern: on a cluster shared with Elastic Agent or Filebeat, their ``logs-*-*``
streams are never listed, read, rolled over or deleted.

The collector's own runs (``apply``) search no write index: a search wakes a shard that
nobody searched for 30 s, which then refreshes every second for 30 s more (and at once),
so every collector's run, every few minutes, would keep every stream refreshing; and
retention never deletes a write index, so its newest document decides nothing there.
A backing index no longer written to keeps its newest document, so a run that is given
a :class:`Newest` searches each such index once. Those searches are counted in their
own statistics group (``SEARCH_GROUP``), apart from the users': ``GET
<index>/_stats/search?groups=logpipe-retention`` shows what retention searched.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from elasticsearch import AsyncElasticsearch

from collector.errors import RetentionError
from collector.es_failures import Failure, answer, answer_unless
from collector.es_requests import name_groups, resolve_index
from collector.retention.rules import is_logpipe_stream
from collector.templates import INDEX_PATTERNS

log = logging.getLogger("logpipe.collector.retention")

ALL_STREAMS = ",".join(INDEX_PATTERNS)
SEARCH_GROUP = "logpipe-retention"  # the search statistics group of retention's searches
# Elasticsearch's words for the one name of a list it does not have.
_NO_SUCH_INDEX = re.compile(r"no such index \[([^\]]+)\]")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IndexFacts:
    """What Elasticsearch says about one backing index."""

    name: str
    docs: int | None  # None: not known (a closed index has no count)
    size_bytes: int
    created: float | None
    newest: float | None


class Newest:
    """The newest ``@timestamp`` of backing indices no longer written to, by name and
    UUID (a stream deleted and made again reuses its backing indices' names), kept from
    one run to the next. What a run no longer lists is forgotten."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], float] = {}

    def get(self, index: str, uuid: str) -> float | None:
        """The newest document of `index` (that UUID), if searched for before."""
        return self._known.get((index, uuid))

    def keep(self, found: dict[tuple[str, str], float], listed: set[tuple[str, str]]) -> None:
        """Remember `found`, and forget every index not in `listed` (deleted since)."""
        self._known = {key: at for key, at in {**self._known, **found}.items() if key in listed}


@dataclass(frozen=True, slots=True)
class StreamFacts:
    """A data stream and its backing indices, oldest first (the last one is written to)."""

    name: str
    indices: tuple[IndexFacts, ...]
    rolls_over: bool = False


async def es_step(what: str, call: Awaitable[T]) -> T:
    """Await an Elasticsearch call; its failures become RetentionError saying `what` failed."""
    return await answer(call, RetentionError, lambda failed: _failed_step(what, failed))


def _failed_step(what: str, failed: Failure) -> str:
    if failed.status is None:
        return (
            f"{what}: cannot reach Elasticsearch: {failed.text} "
            "(is it running where LOGPIPE_ES_URL says?)"
        )
    return f"{what}: Elasticsearch answered {failed.status}: {failed.text}"


async def gather_facts(
    es: AsyncElasticsearch,
    pattern: str = ALL_STREAMS,
    *,
    write_indices: bool = True,
    known: Newest | None = None,
) -> list[StreamFacts]:
    """logpipe's data streams matching `pattern`, with their backing indices' sizes and ages.

    Without `write_indices`, no write index is searched (its newest document is then
    unknown); with `known`, a backing index no longer written to is searched only the
    first time.
    """
    missing: list[str] = []

    def not_there(failed: Failure) -> bool:
        """A name without a wildcard that is not there (of several: the one it names)."""
        if failed.status != 404:
            return False
        named = _NO_SUCH_INDEX.search(failed.text)
        missing.append(named.group(1) if named else pattern)
        return True

    resolved = await answer_unless(
        resolve_index(es, pattern, {"expand_wildcards": "all"}),
        not_there,
        RetentionError,
        lambda failed: _failed_step("listing data streams", failed),
    )
    if resolved is None:
        raise RetentionError(
            f"no data stream or index named {missing[0]}: `logpipe-collector retention plan` "
            "lists logpipe's data streams"
        )
    found: list[dict[str, Any]] = resolved.body.get("data_streams", [])
    streams = [s for s in found if is_logpipe_stream(s["name"])]
    stats: dict[str, dict[str, Any]] = {}
    for group in name_groups([s["name"] for s in streams]):
        stats |= await _index_stats(es, ",".join(group))
    newest = await _newest(es, streams, stats, write_indices, known)
    return [
        StreamFacts(
            s["name"],
            tuple(
                _facts(name, stats.get(name, {}), newest.get(name)) for name in s["backing_indices"]
            ),
        )
        for s in streams
    ]


async def _newest(
    es: AsyncElasticsearch,
    streams: list[dict[str, Any]],
    stats: dict[str, dict[str, Any]],
    write_indices: bool,
    known: Newest | None,
) -> dict[str, float]:
    """The newest document of each backing index of `streams` (write indices only if
    `write_indices`), from `known` where it has it, else searched (and then kept there
    for an index no longer written to whose UUID the stats gave)."""

    # Each backing index no longer written to, with the key `known` keeps it under (None
    # when the stats gave no UUID: never kept).
    older: dict[str, tuple[str, str] | None] = {}
    for stream in streams:
        for name in stream["backing_indices"][:-1]:
            uuid = stats.get(name, {}).get("uuid")
            older[name] = None if uuid is None else (name, str(uuid))
    newest: dict[str, float] = {}
    asked: list[str] = []
    for stream in streams:
        backing: list[str] = stream["backing_indices"]
        for name in backing if write_indices else backing[:-1]:
            key = older.get(name)
            at = known.get(*key) if known is not None and key is not None else None
            if at is None:
                asked.append(name)
            else:
                newest[name] = at
    searched: dict[str, float] = {}
    for group in name_groups(asked):
        searched |= await _newest_documents(es, ",".join(group), len(group))
    newest |= searched
    if known is not None:
        found = {key: at for name, at in searched.items() if (key := older.get(name))}
        known.keep(found, {key for key in older.values() if key is not None})
    return newest


def _facts(name: str, row: dict[str, Any], newest: float | None) -> IndexFacts:
    created = row.get("creation.date")
    count = row.get("docs.count")
    return IndexFacts(
        name=name,
        # A closed index has no count: taken for empty, its age came from its creation
        # and retention deleted it by that, maybe days before its newest line's time.
        docs=None if count in (None, "") else int(count),
        size_bytes=int(row.get("pri.store.size") or 0),
        created=None if created is None else int(created) / 1000,
        newest=newest,
    )


async def _index_stats(es: AsyncElasticsearch, streams: str) -> dict[str, dict[str, Any]]:
    rows = await es_step(
        "reading index sizes",
        es.cat.indices(
            index=streams,
            format="json",
            bytes="b",
            h="index,uuid,docs.count,pri.store.size,creation.date",
            expand_wildcards="all",
        ),
    )
    table: list[dict[str, Any]] = rows.body if isinstance(rows.body, list) else []
    return {row["index"]: row for row in table}


async def _newest_documents(es: AsyncElasticsearch, indices: str, count: int) -> dict[str, float]:
    """Epoch seconds of the newest @timestamp of each of `indices` (backing indices)."""
    found = await es_step(
        "finding each index's newest document",
        es.search(
            index=indices,
            size=0,
            stats=[SEARCH_GROUP],
            ignore_unavailable=True,
            allow_no_indices=True,
            aggs={
                "index": {
                    "terms": {"field": "_index", "size": max(count, 10)},
                    "aggs": {"newest": {"max": {"field": "@timestamp"}}},
                }
            },
        ),
    )
    if found.body["_shards"].get("failed"):
        # Typically an index another collector just deleted. The indices without an
        # answer have no newest document here, so they are kept, never guessed at.
        failed = {f.get("index") for f in found.body["_shards"].get("failures", [])}
        log.info(
            "newest documents unknown for some indices", extra={"indices": sorted(map(str, failed))}
        )
    buckets = found.body["aggregations"]["index"]["buckets"]
    return {b["key"]: b["newest"]["value"] / 1000 for b in buckets if b["newest"]["value"]}
