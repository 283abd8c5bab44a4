"""What a `GET /v1/tail` asks for, and what it is sent before it follows new lines: the
last `lines` lines, or everything after its `Last-Event-ID`, up to where its poller
starts (so nothing falls between the two).

A resume goes on after its id whatever the lines' `@timestamp`: `since` shapes only the
starting lines, as new lines are not filtered by time either (a shipper catching up
sends old lines that are new to the tail), so a resume ignores `since` and `lines`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from collector.errors import BadRequest
from collector.read import cursor
from collector.read.cursor import TAIL_KEY, Position
from collector.read.filters import FILTER_PARAMS, Filters, check_params, parse_filters, parse_int
from collector.read.poller import PAGE, event_id
from collector.read.query import Clause, query
from collector.read.search import Hit, Reader
from collector.read.subscriber import Delivery

DEFAULT_LINES = 10
MAX_LINES = 10_000


@dataclass(frozen=True, slots=True)
class TailRequest:
    """A tail's filters, and where it starts: the last `lines` lines, or after `resume`."""

    filters: Filters
    lines: int
    resume: Position | None


def parse_tail(
    params: Mapping[str, str], last_event_id: str | None, now_ns: int, max_text: int
) -> TailRequest:
    """The tail the parameters ask for; the `Last-Event-ID` header wins over the parameter."""
    if "until" in params:
        raise BadRequest("until: a tail follows new lines; /v1/search reads a window that ends")
    known = tuple(name for name in FILTER_PARAMS if name != "until")
    check_params(params, (*known, "lines", "last_event_id"))
    filters = parse_filters(params, now_ns, max_text, None)
    lines = parse_int("lines", params.get("lines"), DEFAULT_LINES, MAX_LINES, least=0)
    resume_from = last_event_id or params.get("last_event_id")
    if not resume_from:
        return TailRequest(filters, lines, None)
    fields = cursor.decode("Last-Event-ID", resume_from)
    if fields.get("t") != 1:
        raise BadRequest("Last-Event-ID: not the id of a tail's line (send it back unchanged)")
    return TailRequest(filters, lines, cursor.position_of("Last-Event-ID", fields, len(TAIL_KEY)))


def _not_after(position: Position) -> Clause:
    return {"bool": {"must_not": [cursor.after(position, TAIL_KEY, "asc")]}}


def _deliveries(hits: list[Hit], start: Position) -> tuple[list[Delivery], Position]:
    out = []
    for hit in hits:
        start = start.then(hit.key, hit.id)
        out.append(Delivery(event_id(start), hit.id, hit.line, hit.key[0]))
    return out, start


async def catch_up(
    reader: Reader, wanted: TailRequest, until: Position
) -> AsyncIterator[list[Delivery]]:
    """Pages of lines up to `until` (the poller's position when the tail opened)."""
    if wanted.resume is None:
        if wanted.lines:
            clause = query(wanted.filters, _not_after(until))
            hits = await reader.page(clause, TAIL_KEY, "desc", wanted.lines)
            yield _deliveries(hits[::-1], Position(()))[0]
        return
    position = wanted.resume
    filters = wanted.filters.without_times()
    while True:
        clause = query(filters, cursor.after(position, TAIL_KEY, "asc"), _not_after(until))
        hits = await reader.page(clause, TAIL_KEY, "asc", PAGE)
        page, position = _deliveries(hits, position)
        yield page
        if len(hits) < PAGE:
            return
