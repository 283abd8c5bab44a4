"""The read API's HTTP edge (aiohttp): `GET /v1/search` and `GET /v1/tail`.

The one module of the read API that touches aiohttp's request and response types, as
app.py is for ingest (app.py would pass 300 lines with them, and would import the read
API's Elasticsearch machinery). Handlers raise the collector's errors; app.py's error
middleware answers them as JSON. A tail's errors after its first byte end the stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from aiohttp import web

from collector.config import CollectorConfig
from collector.es_client import elasticsearch_client
from collector.read.access import Access
from collector.read.page import parse_search, read_page
from collector.read.search import Reader

NDJSON = "application/x-ndjson"
NEXT_CURSOR = "Logpipe-Next-Cursor"
PATH_SEARCH = "/v1/search"
PATH_TAIL = "/v1/tail"


class ReadState:
    """What the read handlers share: the config, who may read, and the reader."""

    def __init__(self, config: CollectorConfig, access: Access) -> None:
        self.config = config
        self.access = access
        self.reader: Reader | None = None


READ_KEY: web.AppKey[ReadState] = web.AppKey("read", ReadState)


def _reader(request: web.Request) -> tuple[ReadState, Reader]:
    """The state and reader, once the request's read token is checked (401/403/404)."""
    state = request.app[READ_KEY]
    state.access.check(request.headers.get("Authorization", ""), "read")
    assert state.reader is not None, "the read API's client starts with the app"
    return state, state.reader


async def search(request: web.Request) -> web.StreamResponse:
    """GET /v1/search: one page of documents as NDJSON, and the next page's cursor."""
    state, reader = _reader(request)
    params = dict(request.query)
    wanted = parse_search(params, time.time_ns(), state.config.read_max_query_chars)
    page = await read_page(reader, wanted)
    headers = {NEXT_CURSOR: page.next_cursor} if page.next_cursor else {}
    body = b"".join(line + b"\n" for line in page.lines)
    return web.Response(body=body, content_type=NDJSON, headers=headers)


def add_routes(app: web.Application, config: CollectorConfig, access: Access) -> None:
    """Serve the read API on `app`; its Elasticsearch client lives as long as the app."""
    state = ReadState(config, access)
    app[READ_KEY] = state
    app.router.add_get(PATH_SEARCH, search)

    async def client(app: web.Application) -> AsyncIterator[None]:
        if not access.reading_on:
            yield
            return
        es = elasticsearch_client(config)
        state.reader = Reader(es, config.read_timeout)
        yield
        await es.close()

    app.cleanup_ctx.append(client)
