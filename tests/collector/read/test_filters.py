"""Query parameters become filters, or a 400 naming the parameter; the filters become a
query on logpipe's own streams only."""

from __future__ import annotations

import pytest

from collector.errors import BadRequest
from collector.read.filters import Filters, check_params, parse_filters, parse_time
from collector.read.query import TEXT_FLAGS, nanos_iso, query

NOW = 1_796_000_000 * 10**9


def parse(**params: str) -> Filters:
    """Filters from `params`, with search's 24 h default."""
    return parse_filters(params, NOW, 1024, 24 * 3600 * 10**9)


@pytest.mark.parametrize(
    ("text", "before"), [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 7 * 86400)]
)
def test_relative_times_count_back_from_now(text: str, before: int) -> None:
    """`30s`, `15m`, `2h`, `7d` are that long before now."""
    assert parse_time("since", text, NOW) == NOW - before * 10**9


def test_absolute_times_keep_offsets_and_nanoseconds() -> None:
    """RFC 3339 with an offset and up to nine fraction digits is exact."""
    utc = parse_time("since", "2026-12-02T10:00:00.123456789Z", NOW)
    assert nanos_iso(utc) == "2026-12-02T10:00:00.123456789Z"
    assert parse_time("since", "2026-12-02T11:00:00.5+01:00", NOW) == utc - 123456789 + 5 * 10**8


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"since": "yesterday"}, "since:"),
        ({"since": "2026-12-02 10:00:00"}, "since:"),
        ({"until": "2026-02-30T00:00:00Z"}, "until:"),
        ({"since": "1h", "until": "2h"}, "until:"),
        ({"level": "loud"}, "level:"),
        ({"stream": "stdin"}, "stream:"),
        ({"host": "a b"}, "host:"),
        ({"service": "x" * 300}, "service:"),
        ({"name": "/re.*gex/["}, "name:"),
        ({"kind": "events"}, "kind:"),
        ({"q": "a" * 1025}, "q:"),
        # Outside what a date_nanos field holds: a 400 up front, not Elasticsearch's 500.
        ({"since": "1000000d"}, "since:"),
        ({"since": "30000000h"}, "since:"),
        ({"since": "99999999999999999999s"}, "since:"),
        ({"since": "1960-01-01T00:00:00Z"}, "since:"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since:"),
        ({"until": "9999-12-31T00:00:00Z"}, "until:"),
        ({"since": "1h", "until": "1h"}, "until:"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, str], name: str) -> None:
    """Each bad value is a 400 whose message starts with the parameter's name."""
    with pytest.raises(BadRequest, match=f"^{name}"):
        parse(**params)


def test_level_keeps_that_level_and_above() -> None:
    """`warning` is `warn`, and keeps warn, error and fatal."""
    assert parse(level="warning").levels == ("warn", "error", "fatal")
    assert parse(level="TRACE").levels == ("trace", "debug", "info", "warn", "error", "fatal")


def test_search_reads_the_last_day_by_default() -> None:
    """Without `since`, 24 hours before now; `until` open."""
    filters = parse()
    assert (filters.since, filters.until) == (NOW - 24 * 3600 * 10**9, None)


def test_the_default_day_ends_at_until() -> None:
    """With `until` alone, the 24 hours before it: not an empty range starting after it."""
    filters = parse(until="2d")
    assert (filters.since, filters.until) == (NOW - 3 * 86400 * 10**9, NOW - 2 * 86400 * 10**9)


def test_until_at_the_epoch_with_the_default_day_says_why_the_range_is_empty() -> None:
    """The default day before 1970-01-01T00:00:00Z is cut to nothing: the 400 says so,
    naming no `since` the request did not give."""
    with pytest.raises(BadRequest) as info:
        parse(until="1970-01-01T00:00:00Z")
    assert str(info.value).startswith("until: '1970-01-01T00:00:00Z' is the earliest time")
    assert "None" not in str(info.value)


def test_until_is_exclusive() -> None:
    """Lines before `until`: its own instant is the next window's."""
    bounds = query(parse(until="1h"))["bool"]["filter"][0]["range"]["@timestamp"]
    assert bounds["lt"] == nanos_iso(NOW - 3600 * 10**9)
    assert "lte" not in bounds


def test_query_reads_lines_only_unless_kind_all() -> None:
    """Lifecycle events and gaps (they have event.kind) are left out unless kind=all."""
    assert query(parse())["bool"]["must_not"] == [{"exists": {"field": "event.kind"}}]
    assert query(parse(kind="all"))["bool"]["must_not"] == []


def test_globs_and_names() -> None:
    """A plain name is a term, a glob a wildcard, a list any of them."""
    clauses = query(parse(host="web-1", service="api*,db"))["bool"]["filter"]
    assert {"term": {"host.name": "web-1"}} in clauses
    assert {
        "bool": {
            "should": [
                {"wildcard": {"service.name": {"value": "api*"}}},
                {"term": {"service.name": "db"}},
            ]
        }
    } in clauses


def test_free_text_has_no_regex_fuzzy_or_slop() -> None:
    """The text query allows only operators that cannot blow up, all words required."""
    (text,) = [
        c for c in query(parse(q="err~2 /x.*/"))["bool"]["filter"] if "simple_query_string" in c
    ]
    options = text["simple_query_string"]
    assert options["query"] == "err~2 /x.*/"
    assert set(TEXT_FLAGS.split("|")).isdisjoint({"FUZZY", "SLOP", "NEAR", "ALL"})
    assert options["flags"] == TEXT_FLAGS
    assert options["default_operator"] == "and"
    assert options["fields"] == ["message"]


def test_a_parameter_given_twice_is_refused_not_half_read() -> None:
    """`host=a&host=b` read only its first; it is now a 400 that says how to give both."""
    from multidict import MultiDict

    check_params(MultiDict([("host", "a,b"), ("since", "1h")]), ("host", "since"))
    with pytest.raises(BadRequest, match=r"^host: given more than once: .*comma-separated"):
        check_params(MultiDict([("host", "zzz"), ("host", "h1")]), ("host",))
