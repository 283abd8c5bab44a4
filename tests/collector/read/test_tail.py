"""A tail's start: what it is sent before new lines, and from where a resume goes on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collector.errors import BadRequest
from collector.read.cursor import Position
from collector.read.events import position_event
from collector.read.filters import parse_filters
from collector.read.page import parse_search
from collector.read.poller import event_id
from collector.read.query import Clause, nanos_iso
from collector.read.search import Hit
from collector.read.tail import TailRequest, catch_up, parse_tail

NOW = 1_796_000_000 * 10**9


class FakeReader:
    """A reader that keeps the queries it is asked and finds nothing."""

    def __init__(self) -> None:
        self.queries: list[Clause] = []

    async def page(self, clause: Clause, *args: Any) -> list[Hit]:
        self.queries.append(clause)
        return []


async def test_a_resume_does_not_filter_by_since() -> None:
    """After Last-Event-ID, the lines that arrived are all new, whatever their @timestamp
    (a shipper catching up sends old ones): `since` does not drop them."""
    resume = event_id(Position((1_796_000_000_000, NOW), ("a",)))
    wanted = parse_tail({"since": "1m", "service": "api"}, resume, NOW, 1024)
    reader = FakeReader()
    async for _ in catch_up(reader, wanted, Position((1_796_000_001_000, NOW))):  # type: ignore[arg-type]
        pass
    text = json.dumps(reader.queries)
    assert nanos_iso(NOW - 60 * 10**9) not in text
    assert "service.name" in text


async def test_without_resume_since_limits_the_starting_lines() -> None:
    """The last lines a tail starts with are still limited by `since`."""
    wanted = TailRequest(parse_filters({"since": "1m"}, NOW, 1024, None), 10, None)
    reader = FakeReader()
    async for _ in catch_up(reader, wanted, Position((1_796_000_001_000, NOW))):  # type: ignore[arg-type]
        pass
    assert nanos_iso(NOW - 60 * 10**9) in json.dumps(reader.queries)


def test_the_position_event_is_an_id_without_data() -> None:
    """An SSE client keeps its id as the one to resume from, and dispatches nothing."""
    assert position_event("c9") == b"id: c9\n\n"


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"levle": "error"}, "^levle: no such parameter"),
        ({"line": "5"}, "^line: no such parameter"),
        ({"service": ""}, "^service: empty"),
        ({"host": ","}, "^host: empty"),
    ],
)
def test_unknown_and_empty_parameters_are_refused(params: dict[str, str], said: str) -> None:
    """A misspelled or empty filter is a 400, not a tail of everything."""
    with pytest.raises(BadRequest, match=said):
        parse_tail(params, None, NOW, 1024)
    with pytest.raises(BadRequest, match=said):
        parse_search(params, NOW, 1024)


def test_the_parameters_of_each_endpoint_pass() -> None:
    """Every documented parameter is known (`until` to search only, `lines` to tail)."""
    common = {"q": "", "since": "1h", "host": "a", "service": "b", "name": "c", "dataset": "d"}
    common |= {"level": "warn", "stream": "stdout", "kind": "all"}
    parse_search({**common, "until": "1m", "limit": "5", "order": "asc"}, NOW, 1024)
    parse_tail({**common, "lines": "5"}, None, NOW, 1024)
