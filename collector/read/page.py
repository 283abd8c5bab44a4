"""One page of `GET /v1/search`: the request's parameters, the read, the next cursor.

The cursor freezes what the first page resolved (its order and its time window, so a
relative `since=1h` does not move between pages) and carries a hash of the other
filters: a cursor sent back with other filters is refused, not silently misapplied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

from collector.errors import BadRequest
from collector.read import cursor
from collector.read.cursor import SEARCH_KEY, Order, Position
from collector.read.filters import (
    DEFAULT_SINCE_NS,
    FILTER_PARAMS,
    Filters,
    check_params,
    parse_filters,
    parse_int,
)
from collector.read.query import query
from collector.read.search import MAX_WINDOW, Reader

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000  # Elasticsearch's own bound on one answer
# Parameters that do not change which documents a search reads, in what order.
_PAGING = frozenset({"cursor", "limit", "since", "until", "order"})


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """What a search asks for: filters, order, page size, and where the last page ended."""

    filters: Filters
    order: Order
    limit: int
    position: Position | None
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Page:
    """The documents of one page, as JSON lines, and the cursor of the next (None: last)."""

    lines: list[bytes]
    next_cursor: str | None


def _fingerprint(params: Mapping[str, str]) -> str:
    kept = sorted((k, v) for k, v in params.items() if k not in _PAGING)
    return hashlib.blake2b(repr(kept).encode(), digest_size=6).hexdigest()


def _order(value: str | None) -> Order:
    if value is None or value == "desc":
        return "desc"
    if value == "asc":
        return "asc"
    raise BadRequest(f"order: '{value}' is neither desc (newest first) nor asc")


def parse_search(params: Mapping[str, str], now_ns: int, max_text: int) -> SearchRequest:
    """The search the parameters ask for (a cursor's frozen order and window win)."""
    check_params(params, (*FILTER_PARAMS, "limit", "order", "cursor"))
    filters = parse_filters(params, now_ns, max_text, DEFAULT_SINCE_NS)
    if filters.until is None:
        filters = replace(filters, until=now_ns)
    limit = parse_int("limit", params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    order = _order(params.get("order"))
    fingerprint = _fingerprint(params)
    if "cursor" not in params:
        return SearchRequest(filters, order, limit, None, fingerprint)
    fields = cursor.decode("cursor", params["cursor"])
    if fields.get("f") != fingerprint:
        raise BadRequest("cursor: made for other filters; send the same filters as the first page")
    window = fields.get("w")
    if not (isinstance(window, list) and len(window) == 2 and fields.get("o") in ("asc", "desc")):
        raise BadRequest("cursor: not a cursor of /v1/search (send it back unchanged)")
    since, until = window
    filters = replace(filters, since=since, until=until)
    position = cursor.position_of("cursor", fields, len(SEARCH_KEY))
    return SearchRequest(filters, fields["o"], limit, position, fingerprint)


async def read_page(reader: Reader, request: SearchRequest) -> Page:
    """The next page of the search; a cursor when more documents may follow."""
    extra = []
    if request.position is not None:
        extra.append(cursor.after(request.position, SEARCH_KEY, request.order))
    # One more than asked tells whether more follow (but for a page of the most a request
    # may ask: then a full page says "maybe", and the next may be empty).
    fetch = min(request.limit + 1, MAX_WINDOW)
    hits = await reader.page(query(request.filters, *extra), SEARCH_KEY, request.order, fetch)
    shown = hits[: request.limit]
    if len(hits) < fetch:
        return Page([h.line for h in shown], None)
    # A tie across pages keeps the ids the last page read at that key.
    position = request.position or Position(())
    for hit in shown:
        position = position.then(hit.key, hit.id)
    fields = {
        "v": 1,
        "o": request.order,
        "w": [request.filters.since, request.filters.until],
        "f": request.fingerprint,
        "k": list(position.key),
        "i": list(position.ids),
    }
    return Page([h.line for h in shown], cursor.encode(fields))
