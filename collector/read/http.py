"""The read API's HTTP edge (aiohttp): `GET /v1/search` and `GET /v1/tail`.

The one module of the read API that touches aiohttp's request and response types, as
app.py is for ingest (app.py would pass 300 lines with them, and would import the read
API's Elasticsearch machinery). Handlers raise the collector's errors; app.py's error
middleware answers them as JSON. A tail's errors after its first byte end the stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import ClientConnectionResetError, web

from collector import metrics
from collector.config import CollectorConfig
from collector.errors import CollectorError
from collector.es_client import elasticsearch_client
from collector.read import events
from collector.read.access import Access
from collector.read.closed import ClosedIndices, Hidden, line_margin
from collector.read.cursor import Position
from collector.read.filters import Filters
from collector.read.hub import Hub
from collector.read.page import parse_search, read_page
from collector.read.poller import Pace, event_id, settle_problem
from collector.read.search import Reader
from collector.read.subscriber import Delivery, Subscriber
from collector.read.tail import TailRequest, catch_up, parse_tail
from collector.rules.engine import ParsingRules

NDJSON = "application/x-ndjson"
NEXT_CURSOR = "Logpipe-Next-Cursor"
CLOSED_INDICES = "Logpipe-Closed-Indices"
CLOSED_UNCHECKED = "Logpipe-Closed-Indices-Unchecked"
# The longest reason an answer gives for not checking the closed indices.
MAX_REASON = 300
PATH_SEARCH = "/v1/search"
PATH_TAIL = "/v1/tail"
_ENDPOINTS = {PATH_SEARCH: "search", PATH_TAIL: "tail"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("logpipe.collector.read")


class ReadState:
    """What the read handlers share: the config, who may read, and the reader."""

    def __init__(self, config: CollectorConfig, access: Access, parsing: ParsingRules) -> None:
        self.config = config
        self.access = access
        self.parsing = parsing  # the parsing rules in force, with their timestamp_max_skew
        self.reader: Reader | None = None
        self.hub: Hub | None = None
        self.closed: ClosedIndices | None = None


READ_KEY: web.AppKey[ReadState] = web.AppKey("read", ReadState)


def closed_header(hidden: Hidden) -> str:
    """The header naming closed indices: their count, then up to MAX_NAMED of their names,
    comma-separated (an index name holds no comma and no space)."""
    return f"{hidden.count} {','.join(hidden.names)}"


def unchecked_reason(reason: str) -> str:
    """Why the closed indices could not be checked, fit for a header and a terminal:
    printable ASCII on one line, at most MAX_REASON characters."""
    text = "".join(c if " " <= c <= "~" else " " for c in reason).strip()
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


async def _hiding(
    state: ReadState, filters: Filters, start: int | None
) -> tuple[Hidden | None, str | None]:
    """The closed indices that may hide lines of a read with `filters` starting at `start`
    (ns since the epoch; None: lines of any time), and why they could not be checked
    (None: they were)."""
    assert state.closed is not None, "the closed indices' list starts with the app"
    state.closed.widen(line_margin(state.parsing.engine.max_skew_ns))
    hidden = await state.closed.hiding(filters, start)
    unchecked = state.closed.unchecked
    return hidden, None if unchecked is None else unchecked_reason(unchecked)


def tail_start(wanted: TailRequest, now_ns: int) -> int | None:
    """Where the lines a tail starts with begin (ns; None: at any time): after a resume,
    at the arrival of its last line (the collector's clock stamps a line's arrival before
    Elasticsearch indexes it); else at its `since`; with no starting line, now (new lines
    go to write indices, which cannot be closed)."""
    if wanted.resume is not None:
        return wanted.resume.key[0] * 10**6  # event.ingested, in ms
    if wanted.lines == 0:
        return now_ns
    return wanted.filters.since


def _reader(request: web.Request) -> tuple[ReadState, Reader]:
    """The state and reader, once the request's read token is checked (401/403/404)."""
    state = request.app[READ_KEY]
    state.access.check(request.headers.get("Authorization", ""), "read")
    assert state.reader is not None, "the read API's client starts with the app"
    return state, state.reader


async def search(request: web.Request) -> web.StreamResponse:
    """GET /v1/search: one page of documents as NDJSON, and the next page's cursor."""
    state, reader = _reader(request)
    # The query as sent, a parameter given twice kept twice: check_params refuses it.
    wanted = parse_search(request.query, time.time_ns(), state.config.read_max_query_chars)
    page = await read_page(reader, wanted)
    headers = {NEXT_CURSOR: page.next_cursor} if page.next_cursor else {}
    hidden, unchecked = await _hiding(state, wanted.filters, wanted.filters.since)
    if hidden is not None:
        headers[CLOSED_INDICES] = closed_header(hidden)
    if unchecked is not None:
        headers[CLOSED_UNCHECKED] = unchecked
    body = b"".join(line + b"\n" for line in page.lines)
    return web.Response(body=body, content_type=NDJSON, headers=headers)


async def tail(request: web.Request) -> web.StreamResponse:
    """GET /v1/tail: the last lines (or those after Last-Event-ID), then new ones as SSE."""
    state, reader = _reader(request)
    assert state.hub is not None, "the tails' hub starts with the app"
    wanted = parse_tail(
        request.query,
        request.headers.get("Last-Event-ID"),
        time.time_ns(),
        state.config.read_max_query_chars,
    )
    told = await _hiding(state, wanted.filters, tail_start(wanted, time.time_ns()))
    subscriber, poller = await state.hub.open(wanted.filters)
    try:
        start = poller.position
        return await _stream(request, state, reader, wanted, subscriber, start, told)
    finally:
        state.hub.close(subscriber, poller)


async def _stream(
    request: web.Request,
    state: ReadState,
    reader: Reader,
    wanted: TailRequest,
    subscriber: Subscriber,
    start: Position,
    told: tuple[Hidden | None, str | None],
) -> web.StreamResponse:
    pages = catch_up(reader, wanted, start)
    # Before the answer starts, a failure is still a JSON 503.
    first: list[Delivery] = await anext(pages, [])
    response = web.StreamResponse(headers=_SSE_HEADERS)
    hidden, unchecked = told
    # The ids a late line of the poller may repeat: those of the poller's late window.
    sent = Sent(start.key[0] - int(state.config.read_tail_late_window * 1000))
    try:
        # A reader may leave while the first page is read: then the answer cannot start.
        await response.prepare(request)
        # Told once, first: new lines go to write indices, which cannot be closed, so only
        # the lines a tail starts with (or resumes with) may be hidden.
        if hidden is not None:
            await response.write(events.closed_event(hidden.count, hidden.names))
        if unchecked is not None:
            await response.write(events.closed_unchecked_event(unchecked))
        await _send(response, first, sent)
        async for page in pages:
            await _send(response, page, sent)
        await response.write(events.position_event(event_id(start)))
        await _follow(response, subscriber, sent.ids, state.config.read_tail_heartbeat)
    except CollectorError:
        pass  # Elasticsearch failed during the catch-up: the reader resumes with its last id
    except (ConnectionResetError, ClientConnectionResetError):
        pass  # the reader went away
    return response


_SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx in front must not hold events back
}


class Sent:
    """The ids of the lines a tail's start sent that arrived since `since` (epoch ms)."""

    def __init__(self, since: int) -> None:
        self.since = since
        self.ids: set[str] = set()


async def _send(response: web.StreamResponse, page: list[Delivery], sent: Sent) -> None:
    sent.ids.update(d.doc_id for d in page if d.arrival >= sent.since)
    metrics.TAIL_LINES_SENT.inc(len(page))
    if page:
        await response.write(b"".join(events.line_event(d.event_id, d.document) for d in page))


async def _follow(
    response: web.StreamResponse, subscriber: Subscriber, caught_up: set[str], heartbeat: float
) -> None:
    """New lines as the poller hands them over; a keepalive when there were none."""
    while not subscriber.closed:
        lines, missed = await subscriber.take(heartbeat)
        # A late line the catch-up already sent is not sent twice.
        fresh = [d for d in lines if d.doc_id not in caught_up]
        chunk = b"".join(events.line_event(d.event_id, d.document) for d in fresh)
        metrics.TAIL_LINES_SENT.inc(len(fresh))
        if missed:
            chunk += events.missed_event(missed)
            metrics.TAIL_LINES_MISSED.inc(missed)
        await response.write(chunk or events.KEEPALIVE)


@web.middleware
async def count_reads(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count read requests by endpoint and the status answered (errors made JSON included:
    this middleware runs outside app.py's)."""
    response = await handler(request)
    endpoint = _ENDPOINTS.get(request.path)
    if endpoint is not None:
        metrics.READ_REQUESTS.labels(endpoint, str(response.status)).inc()
    return response


def add_routes(
    app: web.Application, config: CollectorConfig, access: Access, parsing: ParsingRules
) -> None:
    """Serve the read API on `app`; its Elasticsearch client lives as long as the app.
    `parsing` holds the parsing rules in force (their timestamp_max_skew bounds how far
    after its index's end a line may be stamped)."""
    state = ReadState(config, access, parsing)
    app[READ_KEY] = state
    app.router.add_get(PATH_SEARCH, search)
    app.router.add_get(PATH_TAIL, tail)
    app.middlewares.insert(0, count_reads)

    async def client(app: web.Application) -> AsyncIterator[None]:
        if not access.reading_on:
            yield
            return
        problem = settle_problem(config.read_tail_settle, config.index.refresh_interval)
        if problem:
            log.warning(problem)
        es = elasticsearch_client(config)
        state.reader = Reader(es, config.read_timeout)
        margin = line_margin(parsing.engine.max_skew_ns)
        state.closed = ClosedIndices(state.reader, margin=margin)
        pace = Pace(
            config.read_tail_poll_interval, config.read_tail_settle, config.read_tail_late_window
        )
        state.hub = Hub(state.reader, pace, config.read_tail_max, config.read_tail_buffer)
        yield
        await es.close()

    async def end_tails(app: web.Application) -> None:
        if state.hub is not None:
            await state.hub.shutdown()

    app.cleanup_ctx.append(client)
    app.on_shutdown.append(end_tails)
