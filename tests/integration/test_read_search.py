"""`GET /v1/search` on a real collector process and node: tokens, filters, paging, and
free text that can never become an Elasticsearch error."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.integration.readers import (
    INGEST,
    READ,
    Collector,
    Source,
    collectors,
    indexed,
    ndjson,
    post,
    request,
    start_collector,
)

# The read API searches every logpipe stream on the node: a stream another test creates
# meanwhile, its shard not yet started, fails part of the read (no_shard_available).
pytestmark = [pytest.mark.integration, pytest.mark.alone]
__all__ = ["collectors"]  # the fixture


def search(
    c: Collector, token: str | None = READ, **params: str
) -> tuple[int, dict[str, str], bytes]:
    """GET /v1/search with `params`."""
    return request(f"{c.url}/v1/search?{urllib.parse.urlencode(params)}", token)


def messages(c: Collector, **params: str) -> list[str]:
    """The messages a search answers, in its order."""
    status, _, body = search(c, **params)
    assert status == 200, body
    return [doc["message"] for doc in ndjson(body)]


def test_tokens(collectors: Callable[..., Collector]) -> None:
    """Read token reads, ingest token on read is 403, read token on ingest 403, others 401."""
    c = collectors()
    src = Source()
    assert search(c, host=src.host)[0] == 200
    assert search(c, INGEST, host=src.host)[0] == 403
    assert search(c, None)[0] == 401
    assert search(c, "nope")[0] == 401
    assert post(c, src.batch(("x", time.time_ns())), token=READ) == 403
    assert post(c, src.batch(("x", time.time_ns())), token=INGEST) == 200


def test_read_api_off_without_read_tokens(template: None, tmp_path: Path) -> None:
    """Without read tokens both endpoints answer 404 saying how to switch reading on."""
    c = start_collector(tmp_path, read_tokens="")
    try:
        for path in ("/v1/search", "/v1/tail"):
            status, _, body = request(c.url + path, READ)
            assert status == 404
            assert b"LOGPIPE_READ_TOKENS" in body
    finally:
        c.process.stop()


def test_each_filter(collectors: Callable[..., Collector], es: Elasticsearch) -> None:
    """host, service, name, level, stream, dataset, q, since and until each narrow the answer."""
    c = collectors()
    t = time.time_ns() - 60 * 10**9
    api = Source(name="api-1", service="api")
    web = Source(host=api.host, name="web-7", service="web")
    assert post(c, api.batch(("INFO started", t), ("ERROR db down", t + 1))) == 200
    assert post(c, api.batch(("WARN slow request", t + 2), stream="stderr")) == 200
    assert post(c, web.batch(("DEBUG GET /health", t + 3), ("fatal: out of memory", t + 4))) == 200
    indexed(es, api.host, 5)
    h = api.host
    assert messages(c, host=h, order="asc") == [
        "INFO started",
        "ERROR db down",
        "WARN slow request",
        "DEBUG GET /health",
        "fatal: out of memory",
    ]
    assert messages(c, host=h.replace("rh-", "rh*"), service="web") == [
        "fatal: out of memory",
        "DEBUG GET /health",
    ]
    assert messages(c, host=h, name="api*,nothing", order="asc") == [
        "INFO started",
        "ERROR db down",
        "WARN slow request",
    ]
    assert messages(c, host=h, level="warning", order="asc") == [
        "ERROR db down",
        "WARN slow request",
        "fatal: out of memory",
    ]
    assert messages(c, host=h, stream="stderr") == ["WARN slow request"]
    assert messages(c, host=h, dataset="readtest") != []
    assert messages(c, host=h, dataset="other*") == []
    assert messages(c, host=h, q="db down") == ["ERROR db down"]
    assert messages(c, host=h, q='"out of" | started', order="asc") == [
        "INFO started",
        "fatal: out of memory",
    ]

    def iso(ns: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"

    # until is exclusive: the lines before it, to the nanosecond.
    assert messages(c, host=h, until=iso(t + 2), order="asc") == ["INFO started", "ERROR db down"]
    assert messages(c, host=h, until=iso(t + 1), order="asc") == ["INFO started"]
    assert messages(c, host=h, since="10s") == []
    assert messages(c, host=h, since="2m", limit="1") == ["fatal: out of memory"]


def test_paging_without_loss_or_overlap(
    collectors: Callable[..., Collector], es: Elasticsearch
) -> None:
    """300 lines, some sharing a nanosecond, read 40 a page both ways: each once, in order."""
    c = collectors()
    src, other = Source(), Source(name="twin-1")
    other.host = src.host
    t = time.time_ns() - 10**9
    # Every fifth timestamp is shared by the two containers: ties across page boundaries.
    first = [(f"a{i:03d}", t + i) for i in range(250)]
    second = [(f"b{i:03d}", t + i) for i in range(0, 250, 5)]
    assert post(c, src.batch(*first)) == 200
    assert post(c, other.batch(*second)) == 200
    indexed(es, src.host, 300)
    for order in ("asc", "desc"):
        seen: list[str] = []
        params = {"host": src.host, "limit": "40", "order": order}
        pages = 0
        while True:
            status, headers, body = search(c, **params)
            assert status == 200, body
            seen += [d["message"] for d in ndjson(body)]
            pages += 1
            if "Logpipe-Next-Cursor" not in headers:
                break
            params["cursor"] = headers["Logpipe-Next-Cursor"]
        assert pages == 8
        assert len(seen) == len(set(seen)) == 300
        stamps = [int(m[1:]) for m in seen]
        assert stamps == sorted(stamps, reverse=order == "desc")


def test_documents_carry_id_and_index(
    collectors: Callable[..., Collector], es: Elasticsearch
) -> None:
    """Each line is the indexed _source plus its _id and _index."""
    c = collectors()
    src = Source()
    assert post(c, src.batch(("hello", time.time_ns()))) == 200
    indexed(es, src.host, 1)
    (doc,) = ndjson(search(c, host=src.host)[2])
    assert doc["message"] == "hello"
    assert doc["host"]["name"] == src.host
    assert doc["_index"].startswith(".ds-logs-readtest.keep_")
    assert len(doc["_id"]) == 22


@pytest.mark.parametrize(
    "q",
    [
        "/.*/",
        "/[a-z]+{1000}/",
        "err~2",
        "a~",
        '"unclosed',
        "((((",
        "-",
        "|||",
        "\\",
        "message:foo",
        "* AND *",
        "a" * 1024,
        "\U0001d518\U0001d52b \x00 \u202e",
    ],
)
def test_free_text_is_never_an_elasticsearch_error(
    collectors: Callable[..., Collector], q: str
) -> None:
    """Regexes, fuzzy and broken syntax in `q` are text: 200, never a 500 from Elasticsearch."""
    c = collectors()
    status, _, body = search(c, q=q, since="1m")
    assert status == 200, body


def test_bad_parameters_name_themselves(collectors: Callable[..., Collector]) -> None:
    """A long q, a bad level, time, limit, order or cursor is a 400 naming the parameter."""
    c = collectors()
    for params, name in [
        ({"q": "a" * 1025}, "q:"),
        ({"level": "loud"}, "level:"),
        ({"since": "yesterday"}, "since:"),
        ({"until": "2026-13-45T00:00:00Z"}, "until:"),
        ({"limit": "10001"}, "limit:"),
        ({"order": "up"}, "order:"),
        ({"cursor": "garbage!"}, "cursor:"),
        ({"stream": "stdin"}, "stream:"),
        ({"host": "a b"}, "host:"),
    ]:
        status, _, body = search(c, **params)
        assert status == 400, (params, body)
        assert name.encode() in body, (params, body)


def test_cursor_with_other_filters_is_refused(
    collectors: Callable[..., Collector], es: Elasticsearch
) -> None:
    """A cursor sent back with different filters is a 400, not a silently wrong page."""
    c = collectors()
    src = Source()
    t = time.time_ns()
    assert post(c, src.batch(("one", t), ("two", t + 1))) == 200
    indexed(es, src.host, 2)
    _, headers, _ = search(c, host=src.host, limit="1")
    cursor = headers["Logpipe-Next-Cursor"]
    assert messages(c, host=src.host, limit="1", cursor=cursor) == ["one"]
    status, _, body = search(c, host=src.host, level="error", cursor=cursor)
    assert status == 400
    assert b"cursor" in body
