"""Requests to Elasticsearch that need more than the client's call: names kept within a
request line, and ``_resolve/index`` asked the way the node takes it.

A node refuses a request line over 4 KiB, and an index or stream list can be longer
(hundreds of streams, a batch of many): :func:`name_groups` cuts it into requests that
fit. The client (9.5) POSTs ``_resolve/index``, which Elasticsearch 9.2 answers 405:
:func:`resolve_index` GETs it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from elastic_transport import ApiResponse
from elasticsearch import AsyncElasticsearch

# Characters of comma-joined names one request line holds at most (the node refuses
# request lines over 4 KiB; the rest of the line is the path and its parameters).
NAMES_PER_REQUEST = 2000


def name_groups(names: list[str]) -> list[list[str]]:
    """`names` in groups whose comma-joined names fit one request line (a name longer
    than that alone is a group of its own)."""
    groups: list[list[str]] = []
    length = NAMES_PER_REQUEST
    for name in names:
        length += len(name) + 1
        if length > NAMES_PER_REQUEST:
            groups.append([])
            length = len(name)
        groups[-1].append(name)
    return groups


async def resolve_index(
    es: AsyncElasticsearch, target: str, params: dict[str, Any]
) -> ApiResponse[Any]:
    """``GET /_resolve/index/<target>`` (names, comma-separated, wildcards kept) with
    `params`: the indices, aliases and data streams it names."""
    return await es.perform_request(
        "GET",
        f"/_resolve/index/{quote(target, safe='*,')}",
        params=params,
        headers={"accept": "application/json"},
    )
