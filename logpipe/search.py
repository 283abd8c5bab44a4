"""`logpipe search`: pages of `GET /v1/search`, followed by their cursor, printed.

Without `--asc` the newest `--limit` lines are asked for (newest first, as the collector
pages them) and printed oldest first, so the newest line ends up right above the prompt,
as `tail` and `docker compose logs` do; this holds them until the last page. With
`--asc` the oldest lines of the range come first and each page is printed as it comes.
Closed indices a page names (Elasticsearch skipped them) are kept for one warning at
the end, however many pages named them; so is the collector's word that it could not
check for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from logpipe.client import Endpoint, get
from logpipe.closed import HEADER, UNCHECKED_HEADER, Closed, from_header
from logpipe.document import Document, parse_document
from logpipe.query import Filters

NDJSON = "application/x-ndjson"
NEXT_CURSOR = "Logpipe-Next-Cursor"
MAX_PAGE = 10_000  # the collector's largest `limit`


@dataclass(frozen=True)
class SearchRequest:
    """What to search for, how many lines, in which order, in pages of what size."""

    filters: Filters
    limit: int = 100
    ascending: bool = False
    page_size: int = 1000


@dataclass(frozen=True)
class Searched:
    """What a search printed: how many lines, the closed indices that may hide more, and
    why the collector could not check for them (None: it did)."""

    count: int
    closed: Closed | None = None
    unchecked: str | None = None


@dataclass(frozen=True)
class Page:
    """One page: its documents, the next page's cursor (None: the last), closed indices,
    and why they could not be checked."""

    docs: list[Document]
    cursor: str | None
    closed: Closed | None
    unchecked: str | None = None


def search(
    endpoint: Endpoint, request: SearchRequest, emit: Callable[[list[Document]], None]
) -> Searched:
    """Print up to `limit` matching lines through `emit`, a page (or, newest first, all
    of them) at a time; how many there were, and the most closed indices a page named."""
    held: list[Document] = []
    count, cursor, closed = 0, None, None
    unchecked: str | None = None
    while count < request.limit:
        size = min(request.page_size, request.limit - count, MAX_PAGE)
        fetched = fetch_page(endpoint, request, size, cursor)
        cursor = fetched.cursor
        if fetched.closed and (closed is None or fetched.closed.count > closed.count):
            closed = fetched.closed
        unchecked = unchecked or fetched.unchecked
        page = fetched.docs[: request.limit - count]
        count += len(page)
        if request.ascending:
            emit(page)
        else:
            held.extend(page)
        if not cursor or not page:
            break
    if held:
        emit(held[::-1])
    return Searched(count, closed, unchecked)


def fetch_page(endpoint: Endpoint, request: SearchRequest, size: int,
               cursor: str | None) -> Page:  # fmt: skip
    """One page of documents, the cursor of the next, and the closed indices it names."""
    params = request.filters.params()
    params += [("limit", str(size)), ("order", "asc" if request.ascending else "desc")]
    if cursor:
        params.append(("cursor", cursor))
    answer = get(endpoint, "/v1/search", params, accept=NDJSON)
    try:
        docs = [parse_document(line) for line in answer.lines() if line.strip()]
        closed = from_header(answer.header(HEADER))
        return Page(docs, answer.header(NEXT_CURSOR), closed, answer.header(UNCHECKED_HEADER))
    finally:
        answer.close()
