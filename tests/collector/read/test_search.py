"""The read API's searches: a part of a read failed by a shard that has not started yet
(an index just made) is read again; any other failure is answered at once."""

from __future__ import annotations

from typing import Any

import pytest

from collector.errors import ReadUnavailable
from collector.read import search
from collector.read.cursor import KeyField
from collector.read.search import NOT_STARTED, Reader
from tests.collector.fake_es import fake_es

KEY: tuple[KeyField, ...] = (("@timestamp", "ms"),)
HIT = {"_id": "a", "_index": "x", "_source": {"message": "m"}, "sort": [1]}


def _whole(hits: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    return 200, {"_shards": {"total": 2, "failed": 0}, "hits": {"hits": hits}}


def _part_failed(kind: str) -> tuple[int, dict[str, Any]]:
    failure = {"shard": 0, "index": "x", "reason": {"type": kind, "reason": "r"}}
    shards = {"total": 2, "failed": 1, "failures": [failure]}
    return 200, {"_shards": shards, "hits": {"hits": []}}


def _all_failed(kind: str) -> tuple[int, dict[str, Any]]:
    cause = {"type": kind, "reason": "r"}
    error = {
        "type": "search_phase_execution_exception",
        "reason": "all shards failed",
        "root_cause": [cause],
        "failed_shards": [{"shard": 0, "index": "x", "reason": cause}],
    }
    return 503, {"error": error, "status": 503}


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "NOT_STARTED_WAITS", (0.0,) * len(search.NOT_STARTED_WAITS))


async def _page(answers: list[tuple[int, dict[str, Any]]]) -> tuple[list[str] | Exception, int]:
    """One page read through a fake node answering `answers` in turn: the ids read (or
    what was raised), and how many searches were made."""
    async with fake_es() as fake:
        fake.search_answers = answers
        es = fake.client()
        try:
            hits = await Reader(es, timeout=5).page({"match_all": {}}, KEY, "asc", 10)
            got: list[str] | Exception = [h.id for h in hits]
        except ReadUnavailable as exc:
            got = exc
        finally:
            await es.close()
    return got, fake.searches


@pytest.mark.parametrize("failed", [_part_failed, _all_failed])
async def test_a_shard_not_started_yet_is_waited_for(failed: Any) -> None:
    """A read whose only failures are shards not started is made again until whole."""
    got, searches = await _page([failed(NOT_STARTED), failed(NOT_STARTED), _whole([HIT])])
    assert (got, searches) == (["a"], 3)


@pytest.mark.parametrize("failed", [_part_failed, _all_failed])
async def test_a_shard_that_never_starts_is_answered_503_after_the_waits(failed: Any) -> None:
    """Never a part missing: after the last wait, the read is unavailable."""
    tries = len(search.NOT_STARTED_WAITS) + 1
    got, searches = await _page([failed(NOT_STARTED)] * tries + [_whole([HIT])])
    assert isinstance(got, ReadUnavailable)
    assert searches == tries


def _mixed(kind: str) -> tuple[int, dict[str, Any]]:
    """Two shards failed: one not started, one for `kind`."""
    status, body = _part_failed(kind)
    first = body["_shards"]["failures"][0]
    not_started = {**first, "shard": 1, "reason": {"type": NOT_STARTED, "reason": "r"}}
    body["_shards"] |= {"failed": 2, "failures": [not_started, first]}
    return status, body


@pytest.mark.parametrize("failed", [_part_failed, _all_failed, _mixed])
async def test_any_other_failure_is_answered_at_once(failed: Any) -> None:
    """A shard failed for another reason (or with one not started beside it) is not
    waited for: the reader hears of it at once."""
    got, searches = await _page([failed("circuit_breaking_exception"), _whole([HIT])])
    assert isinstance(got, ReadUnavailable)
    assert searches == 1
