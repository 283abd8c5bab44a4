"""The retention command line: arguments, the plan table and its words."""

from __future__ import annotations

import argparse
import io

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from elasticsearch import AsyncElasticsearch

from collector.errors import RetentionError
from collector.retention import cli
from collector.retention.cli import action, add_commands, human_age, human_size, render_table
from collector.retention.facts import gather_facts
from collector.retention.lifecycle import Applied, IndexPlan, StreamPlan
from tests.collector.fake_es import HEADERS


def _parse(*argv: str) -> argparse.Namespace:
    top = argparse.ArgumentParser()
    add_commands(top.add_subparsers(dest="command"))
    return top.parse_args(["retention", *argv])


def _index(name: str, **kw: object) -> IndexPlan:
    fields: dict[str, object] = {
        "age_seconds": 3 * 86400 + 3600,
        "size_bytes": 2048,
        "docs": 7,
        "write_index": False,
        "rolls_over": False,
        "delete": False,
    }
    fields.update(kw)
    return IndexPlan(index=name, **fields)  # type: ignore[arg-type]


def test_plan_and_apply_parse_their_options() -> None:
    """plan takes --json, --ahead and --streams; apply takes --streams; both get a handler."""
    args = _parse("plan", "--json", "--ahead", "7d", "--streams", "logs-*-prod")
    assert (args.json, args.ahead, args.streams) == (True, "7d", "logs-*-prod")
    assert callable(args.handler)
    assert _parse("apply").streams == "logs-*.keep_*-*,logs-logpipe.deadletter-*"


def test_ahead_must_be_a_duration(capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt --ahead is refused by the parser with a message."""
    with pytest.raises(SystemExit):
        _parse("plan", "--ahead", "7 days")
    assert "is not a duration" in capsys.readouterr().err


@pytest.mark.parametrize("streams", ["", "logs-a-x,", " , "])
def test_an_empty_stream_name_is_a_usage_error(
    streams: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--streams '' is refused by the parser (exit 2), not sent to Elasticsearch, whose
    400 for the bare `_resolve/index/` made it a runtime failure."""
    for command in ("plan", "apply"):
        with pytest.raises(SystemExit) as exited:
            _parse(command, "--streams", streams)
        assert exited.value.code == 2
        assert "has an empty name" in capsys.readouterr().err
    assert _parse("plan", "--streams", "logs-a-x, logs-b-*").streams == "logs-a-x,logs-b-*"


@pytest.mark.parametrize("zero", ["0s", "0d", "00h"])
def test_a_zero_ahead_plans_for_now_whatever_its_unit(zero: str) -> None:
    """--ahead 0d is now, as the default 0s is, rather than "not a duration"."""
    assert _parse("plan", "--ahead", zero).ahead == "0s"


def test_table_has_a_row_per_index_and_a_summary() -> None:
    """Each backing index is a row with its stream, rule, age, size, docs and action."""
    managed = StreamPlan(
        "logs-docker.keep_2d-default",
        "2d",
        2 * 86400,
        (_index("old", delete=True), _index("w", write_index=True, rolls_over=True, delete=True)),
    )
    foreign = StreamPlan("logs-nginx-default", None, None, (_index("n", write_index=True),))
    lines = render_table([managed, foreign]).splitlines()
    assert lines[0].split() == ["STREAM", "RULE", "KEEP", "INDEX", "AGE", "SIZE", "DOCS", "ACTION"]
    assert lines[1].split() == [
        "logs-docker.keep_2d-default", "2d", "2d", "old", "3d1h", "2.0KiB", "7", "delete"
    ]  # fmt: skip
    assert lines[2].endswith("roll over, delete")
    assert lines[3].endswith("keep (no retention rule)")
    assert lines[4] == "apply would delete 2 backing indices (4.0KiB) and roll over 1 data streams"


@pytest.mark.parametrize(
    ("index", "words"),
    [
        (_index("a"), "keep"),
        (_index("a", write_index=True), "keep (write index)"),
        (_index("a", write_index=True, rolls_over=True), "roll over"),
        (_index("a", age_seconds=None), "keep (newest document unknown)"),
    ],
)
def test_action_words(index: IndexPlan, words: str) -> None:
    """Each reason to keep an index is spelt out."""
    stream = StreamPlan("logs-docker.keep_2d-default", "2d", 2 * 86400, (index,))
    assert action(stream, index) == words


def test_ages_and_sizes_read_like_people_write_them() -> None:
    """Ages show the two largest units; sizes use binary units."""
    assert [human_age(a) for a in (None, 0, 59, 3661, 90061, -120)] == [
        "-", "0s", "59s", "1h1m", "1d1h", "-2m"
    ]  # fmt: skip
    assert [human_size(s) for s in (0, 1023, 1536, 5 * 1024**3)] == [
        "0B", "1023B", "1.5KiB", "5.0GiB"
    ]  # fmt: skip


async def test_a_stream_that_is_not_there_is_named() -> None:
    """--streams with a name Elasticsearch does not know says so, not a raw 404."""

    async def not_found(request: web.Request) -> web.Response:
        reason = f"no such index [{request.match_info['name']}]"
        body = {"error": {"type": "index_not_found_exception", "reason": reason}, "status": 404}
        return web.json_response(body, status=404, headers=HEADERS)

    app = web.Application()
    app.router.add_get("/_resolve/index/{name}", not_found)
    async with TestServer(app) as server, AsyncElasticsearch(str(server.make_url("/"))) as es:
        with pytest.raises(RetentionError) as caught:
            await gather_facts(es, "logs-nosuch.keep_1d-default")
    assert str(caught.value).startswith(
        "no data stream or index named logs-nosuch.keep_1d-default: "
    )


def test_plan_ahead_says_what_it_does_not_foresee(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table planned ahead ends by saying which rollovers it could not foresee."""

    async def no_streams(*_: object) -> list[StreamPlan]:
        return []

    monkeypatch.setattr(cli, "_plan", no_streams)
    monkeypatch.setattr(cli, "_config", lambda args: None)
    out = io.StringIO()
    cli.run_plan(_parse("plan", "--ahead", "7d"), out)
    assert out.getvalue().splitlines()[-1].startswith("as 7d from now: rollovers by max_age")
    out = io.StringIO()
    cli.run_plan(_parse("plan"), out)
    assert "from now" not in out.getvalue()


def test_apply_prints_what_it_did_and_fails_on_a_refused_rollover(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """apply prints its deletions, then each refused rollover on stderr, and exits 1."""
    refusal = "rolling over logs-a.keep_2d-x: BadRequestError(400, 'validation_exception')"

    async def refused(*_: object) -> Applied:
        return Applied((), (), (".ds-logs-a.keep_2d-x-1",), (), (refusal,))

    monkeypatch.setattr(cli, "_apply", refused)
    monkeypatch.delenv("LOGPIPE_CONFIG", raising=False)
    out = io.StringIO()
    assert cli.run_apply(_parse("apply"), out) == 1
    assert "deleted .ds-logs-a.keep_2d-x-1" in out.getvalue()
    assert capsys.readouterr().err == f"logpipe-collector: {refusal}\n"
