"""What Elasticsearch holds under our data streams: backing indices, sizes, newest documents.

Read-only. Lists data streams with ``_resolve/index`` (the node may lack the
``_data_stream`` API), sizes with ``_cat/indices``, and each backing index's newest
``@timestamp`` with one aggregation. Only logpipe's own streams are looked at, whatever
the pattern: on a cluster shared with Elastic Agent or Filebeat, their ``logs-*-*``
streams are never listed, read, rolled over or deleted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from elasticsearch import AsyncElasticsearch

from collector.errors import RetentionError
from collector.es_failures import Failure, answer, answer_unless
from collector.retention.rules import is_logpipe_stream
from collector.templates import INDEX_PATTERNS

log = logging.getLogger("logpipe.collector.retention")

ALL_STREAMS = ",".join(INDEX_PATTERNS)
# Stream names per _cat/_search request: Elasticsearch refuses request lines over 4 KiB.
_NAMES_PER_REQUEST = 2000
# Elasticsearch's words for the one name of a list it does not have.
_NO_SUCH_INDEX = re.compile(r"no such index \[([^\]]+)\]")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IndexFacts:
    """What Elasticsearch says about one backing index."""

    name: str
    docs: int
    size_bytes: int
    created: float | None
    newest: float | None


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


async def gather_facts(es: AsyncElasticsearch, pattern: str = ALL_STREAMS) -> list[StreamFacts]:
    """logpipe's data streams matching `pattern`, with their backing indices' sizes and ages."""
    missing: list[str] = []

    def not_there(failed: Failure) -> bool:
        """A name without a wildcard that is not there (of several: the one it names)."""
        if failed.status != 404:
            return False
        named = _NO_SUCH_INDEX.search(failed.text)
        missing.append(named.group(1) if named else pattern)
        return True

    # Client 9.5 POSTs _resolve/index; Elasticsearch 9.2 accepts only GET there (405).
    resolved = await answer_unless(
        es.perform_request(
            "GET",
            f"/_resolve/index/{quote(pattern, safe='*,')}",
            params={"expand_wildcards": "all"},
            headers={"accept": "application/json"},
        ),
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
    newest: dict[str, float] = {}
    for group in _groups(streams):
        names = ",".join(s["name"] for s in group)
        stats |= await _index_stats(es, names)
        newest |= await _newest_documents(es, names, sum(len(s["backing_indices"]) for s in group))
    return [
        StreamFacts(
            s["name"],
            tuple(
                _facts(name, stats.get(name, {}), newest.get(name)) for name in s["backing_indices"]
            ),
        )
        for s in streams
    ]


def _groups(streams: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The streams in groups whose comma-joined names fit one request line."""
    groups: list[list[dict[str, Any]]] = []
    length = _NAMES_PER_REQUEST
    for stream in streams:
        length += len(stream["name"]) + 1
        if length > _NAMES_PER_REQUEST:
            groups.append([])
            length = len(stream["name"])
        groups[-1].append(stream)
    return groups


def _facts(name: str, row: dict[str, Any], newest: float | None) -> IndexFacts:
    created = row.get("creation.date")
    return IndexFacts(
        name=name,
        docs=int(row.get("docs.count") or 0),
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
            h="index,docs.count,pri.store.size,creation.date",
            expand_wildcards="all",
        ),
    )
    table: list[dict[str, Any]] = rows.body if isinstance(rows.body, list) else []
    return {row["index"]: row for row in table}


async def _newest_documents(es: AsyncElasticsearch, streams: str, count: int) -> dict[str, float]:
    """Epoch seconds of each backing index's newest @timestamp."""
    found = await es_step(
        "finding each index's newest document",
        es.search(
            index=streams,
            size=0,
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
