"""Unit tests of what a GET /logs request asks for: name and image globs, streams, format."""

from __future__ import annotations

import pytest

from shipper.errors import TailRequestError
from shipper.record import Meta
from shipper.tail.query import parse

API = Meta("c1", "api-1", "registry.local/api:2.1")
WEB = Meta("c2", "web", "nginx:1.27")
DB = Meta("c3", "db", "postgres:16")


def test_no_parameters_want_every_container_both_streams_as_plain_text() -> None:
    """Without parameters, every container and both streams are wanted, as plain text."""
    query = parse({})
    assert all(query.container(m) for m in (API, WEB, DB))
    assert query.streams == {"stdout", "stderr"}
    assert query.format == "plain"


def test_a_name_glob_matches_the_whole_name() -> None:
    """`name=api*` wants api-1 only; a glob is anchored at both ends (`ap` wants nothing)."""
    assert [m.name for m in (API, WEB, DB) if parse({"name": ["api*"]}).container(m)] == ["api-1"]
    assert not any(parse({"name": ["ap"]}).container(m) for m in (API, WEB, DB))


def test_commas_and_repeated_parameters_mean_any() -> None:
    """`name=api*,web` and `name=api*&name=web` both want api-1 and web, not db."""
    for params in ({"name": ["api*,web"]}, {"name": ["api*", "web"]}):
        query = parse(params)
        assert [m.name for m in (API, WEB, DB) if query.container(m)] == ["api-1", "web"]


def test_image_and_name_filters_must_both_match() -> None:
    """`image=nginx:*` with `name=api*` wants nothing; `image=*api*` alone wants api-1."""
    assert not any(parse({"image": ["nginx:*"], "name": ["api*"]}).container(m) for m in (API, WEB))
    assert [m.name for m in (API, WEB, DB) if parse({"image": ["*api*"]}).container(m)] == ["api-1"]


def test_stream_and_format_are_read() -> None:
    """`stream=stderr&format=ndjson` wants stderr only, as NDJSON."""
    query = parse({"stream": ["stderr"], "format": ["ndjson"]})
    assert query.streams == {"stderr"}
    assert query.format == "ndjson"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"stream": ["stdin"]}, "stream='stdin'"),
        ({"format": ["json"]}, "format='json'"),
        ({"container": ["x"]}, "unknown parameter 'container'"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, list[str]], named: str) -> None:
    """A bad stream, format or an unknown parameter is an error that names it."""
    with pytest.raises(TailRequestError, match=named):
        parse(params)
