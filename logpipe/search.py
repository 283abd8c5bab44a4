"""`logpipe search`: pages of `GET /v1/search`, followed by their cursor, printed.

Without `--asc` the newest `--limit` lines are asked for (newest first, as the collector
pages them) and printed oldest first, so the newest line ends up right above the prompt,
as `tail` and `docker compose logs` do; this holds them until the last page. With
`--asc` the oldest lines of the range come first and each page is printed as it comes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from logpipe.client import Endpoint, get
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


def search(
    endpoint: Endpoint, request: SearchRequest, emit: Callable[[list[Document]], None]
) -> int:
    """Print up to `limit` matching lines through `emit`, a page (or, newest first, all
    of them) at a time; how many there were."""
    held: list[Document] = []
    count, cursor = 0, None
    while count < request.limit:
        size = min(request.page_size, request.limit - count, MAX_PAGE)
        page, cursor = fetch_page(endpoint, request, size, cursor)
        page = page[: request.limit - count]
        count += len(page)
        if request.ascending:
            emit(page)
        else:
            held.extend(page)
        if not cursor or not page:
            break
    if held:
        emit(held[::-1])
    return count


def fetch_page(endpoint: Endpoint, request: SearchRequest, size: int,
               cursor: str | None) -> tuple[list[Document], str | None]:  # fmt: skip
    """One page of documents and the cursor of the next (None: this was the last)."""
    params = request.filters.params()
    params += [("limit", str(size)), ("order", "asc" if request.ascending else "desc")]
    if cursor:
        params.append(("cursor", cursor))
    answer = get(endpoint, "/v1/search", params, accept=NDJSON)
    try:
        docs = [parse_document(line) for line in answer.lines() if line.strip()]
        return docs, answer.header(NEXT_CURSOR)
    finally:
        answer.close()
