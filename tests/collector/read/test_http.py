"""The read API's HTTP edge hands the handlers every query parameter as sent, so a filter
given twice is refused as the docs say, not half read."""

from __future__ import annotations

from typing import cast

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from collector.config import CollectorConfig
from collector.errors import BadRequest
from collector.read import http
from collector.read.access import Access
from collector.read.hub import Hub
from collector.read.search import Reader
from collector.rules.engine import ParsingRules


def app() -> web.Application:
    """An app whose read state takes the read token `r` (its reader and hub are never
    reached)."""
    application = web.Application()
    state = http.ReadState(
        CollectorConfig(tokens=["i"]), Access(frozenset({"r"}), frozenset({"i"})), ParsingRules()
    )
    state.reader = cast(Reader, object())
    state.hub = cast(Hub, object())
    application[http.READ_KEY] = state
    return application


@pytest.mark.parametrize(
    ("handler", "path", "name"),
    [
        (http.search, "/v1/search?host=zzz&host=h1&since=1h", "host"),
        (http.tail, "/v1/tail?service=api&lines=0&service=web", "service"),
    ],
)
async def test_a_filter_given_twice_in_the_url_is_refused(
    handler: http.Handler, path: str, name: str
) -> None:
    """`host=zzz&host=h1` is a 400 naming the parameter and how to give both (`host=a,b`),
    on both endpoints: read as one value, it would search one host silently."""
    request = make_mocked_request("GET", path, headers={"Authorization": "Bearer r"}, app=app())
    with pytest.raises(BadRequest, match=rf"^{name}: given more than once: .*comma-separated"):
        await handler(request)
