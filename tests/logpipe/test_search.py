"""`logpipe search` against a scripted collector: paging by cursor, limits and order."""

from __future__ import annotations

import json
import socket

import pytest

from logpipe.client import Endpoint
from logpipe.closed import Closed
from logpipe.document import Document
from logpipe.errors import Unreachable
from logpipe.query import Filters
from logpipe.search import SearchRequest, search
from tests.logpipe.fake_collector import Reply, doc, fake_collector

NDJSON = {"Content-Type": "application/x-ndjson"}


def page(messages: list[str], cursor: str | None = None, closed: str | None = None) -> Reply:
    """A search answer holding documents with these messages (and the header naming
    closed indices, if given)."""
    headers = NDJSON | ({"Logpipe-Next-Cursor": cursor} if cursor else {})
    headers |= {"Logpipe-Closed-Indices": closed} if closed else {}
    return Reply(200, headers, ["".join(json.dumps(doc(m)) + "\n" for m in messages)])


def run(url: str, request: SearchRequest) -> tuple[list[str], int]:
    """The messages printed and the count returned."""
    printed: list[str] = []

    def emit(page: list[Document]) -> None:
        printed.extend(d.message for d in page)

    return printed, search(Endpoint(url, "t"), request, emit).count


def test_pages_are_followed_by_their_cursor_with_the_same_filters() -> None:
    """Each next page sends the cursor of the previous one and the same filters; no
    header means the last page."""
    with fake_collector(page(["d", "c"], "k1"), page(["b", "a"])) as script:
        printed, count = run(
            script.url, SearchRequest(Filters(text="x", level="warn"), 10, False, 2)
        )
    first, second = script.requests
    assert first.param("cursor") is None
    assert second.param("cursor") == "k1"
    for r in (first, second):
        assert (r.param("q"), r.param("level"), r.param("order"), r.param("limit")) == (
            "x",
            "warn",
            "desc",
            "2",
        )
    assert (printed, count) == (["a", "b", "c", "d"], 4)  # newest last


def test_the_limit_stops_paging_and_asks_for_no_more_than_it_needs() -> None:
    """With --limit 3 and pages of 2 the second page asks for 1 line, and no third comes."""
    with fake_collector(page(["1", "2"], "k1"), page(["3"], "k2"), page(["x"])) as script:
        printed, count = run(script.url, SearchRequest(Filters(), 3, True, 2))
    assert [r.param("limit") for r in script.requests] == ["2", "1"]
    assert script.requests[0].param("order") == "asc"
    assert (printed, count) == (["1", "2", "3"], 3)  # oldest first, as they came


def test_an_empty_page_ends_the_search_even_with_a_cursor() -> None:
    """A page without documents ends paging, so a cursor cannot loop forever."""
    with fake_collector(page([], "k1"), page(["never"])) as script:
        printed, count = run(script.url, SearchRequest(Filters(), 10))
    assert (printed, count, len(script.requests)) == ([], 0, 1)


def test_a_path_and_a_token_beyond_ascii_are_sent() -> None:
    """A proxy path with `é` goes percent-encoded, a token beyond ASCII as UTF-8 (what the
    collector compares): neither is a traceback."""
    with fake_collector(page(["a"])) as script:
        printed: list[str] = []
        endpoint = Endpoint(f"{script.url}/logs é", "tok€")
        search(endpoint, SearchRequest(Filters()), lambda p: printed.extend(d.message for d in p))
    (sent,) = script.requests
    assert sent.path == "/logs%20%C3%A9/v1/search"
    assert sent.headers["Authorization"].encode("latin-1").decode() == "Bearer tok€"
    assert printed == ["a"]


def test_a_collector_that_never_answers_is_told_apart_from_one_not_reached() -> None:
    """Connected and sent, but no answer within the timeout: the message says the
    collector took the request and did not answer, not that it could not be reached."""
    with socket.create_server(("127.0.0.1", 0)) as server:  # listens, never answers
        port = server.getsockname()[1]
        endpoint = Endpoint(f"http://127.0.0.1:{port}", "t", timeout=0.3)
        with pytest.raises(Unreachable, match=r"took the request but did not answer within 0\.3 s"):
            search(endpoint, SearchRequest(Filters()), lambda _doc: None)
    with socket.socket() as unused:  # nothing listens there any more
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]
    with pytest.raises(Unreachable, match=r"cannot reach the collector .* connection refused"):
        search(
            Endpoint(f"http://127.0.0.1:{closed}", "t", timeout=0.3),
            SearchRequest(Filters()),
            lambda _doc: None,
        )


def test_closed_indices_named_by_any_page_are_kept_for_the_end() -> None:
    """The pages' header naming closed indices is kept, the most a page named; the lines
    are printed as without it."""
    with fake_collector(
        page(["d", "c"], "k1"),
        page(["b"], "k2", closed="1 .ds-x-1"),
        page(["a"], closed="2 .ds-x-1,.ds-y-1"),
    ) as script:
        printed: list[str] = []
        request = SearchRequest(Filters(), 10, False, 2)
        searched = search(
            Endpoint(script.url, "t"), request, lambda p: printed.extend(d.message for d in p)
        )
    assert printed == ["a", "b", "c", "d"]
    assert (searched.count, searched.closed) == (4, Closed(2, (".ds-x-1", ".ds-y-1")))
    with fake_collector(page(["a"])) as script:
        assert search(Endpoint(script.url, "t"), request, lambda _: None).closed is None


def test_https_to_a_plain_http_collector_says_to_write_http() -> None:
    """An https:// URL for a collector serving plain HTTP is told as such, not as
    OpenSSL's bare "wrong version number"."""
    with fake_collector(Reply(200, {"Content-Type": "application/x-ndjson"}, [])) as script:
        https = script.url.replace("http://", "https://")
        with pytest.raises(Unreachable, match=r"does not speak TLS there .*write http://"):
            search(Endpoint(https, "t", timeout=5), SearchRequest(Filters()), lambda _doc: None)
