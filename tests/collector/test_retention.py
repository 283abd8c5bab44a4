"""Retention decisions and rule reloads, without Elasticsearch (edge cases)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from collector.config import load_config
from collector.errors import RetentionError
from collector.es_requests import NAMES_PER_REQUEST, name_groups
from collector.retention import lifecycle
from collector.retention.cli import render_table
from collector.retention.facts import IndexFacts, Newest, StreamFacts, _facts
from collector.retention.lifecycle import (
    RetentionState,
    _would_roll,
    decide,
    foresee_rollover,
    may_roll,
)
from collector.retention.rules import RetentionConfig, RetentionRules, size_bytes

DAY = 86400.0
NOW = 1_800_000_000.0
RULES = RetentionRules(
    RetentionConfig.model_validate(
        {"default": "14d", "rules": [{"match": {"level": "debug"}, "keep": "2d"}]}
    )
)


def _index(name: str, newest_days_ago: float | None, docs: int = 5) -> IndexFacts:
    """An index made half a day before its newest document (100 days ago without one)."""
    if newest_days_ago is None:
        return IndexFacts(name, docs, 1000, created=NOW - 100 * DAY, newest=None)
    newest = NOW - newest_days_ago * DAY
    return IndexFacts(name, docs, 1000, created=newest - DAY / 2, newest=newest)


def _deleted(*streams: StreamFacts) -> list[str]:
    plans = decide(streams, RULES, NOW)
    return [i.index for p in plans for i in p.indices if i.delete]


def test_only_non_write_indices_past_retention_are_deleted() -> None:
    """Indices whose newest document is older than the rule's keep go; the write index stays."""
    stream = StreamFacts(
        "logs-docker.keep_2d-default",
        (_index("a", 10), _index("b", 2.5), _index("c", 1.5), _index("w", 0)),
    )
    assert _deleted(stream) == ["a", "b"]


def test_write_index_that_rolls_over_can_go_in_the_same_run() -> None:
    """A write index that apply will roll over first is judged like any other index."""
    stream = StreamFacts("logs-docker.keep_2d-default", (_index("w", 9),), rolls_over=True)
    assert _deleted(stream) == ["w"]


def test_streams_without_our_rule_are_never_touched() -> None:
    """Foreign streams and streams of a named rule that no longer exists keep everything."""
    foreign = StreamFacts("logs-nginx.access-default", (_index("x", 999), _index("y", 0)))
    orphan = StreamFacts("logs-docker.keep_payments-default", (_index("z", 999), _index("v", 0)))
    assert _deleted(foreign, orphan) == []
    plans = decide([foreign], RULES, NOW)
    assert not plans[0].managed


def test_unknown_newest_document_keeps_the_index() -> None:
    """An index with documents but no newest timestamp is kept rather than guessed at."""
    stream = StreamFacts("logs-docker.keep_2d-default", (_index("a", None), _index("w", 0)))
    assert _deleted(stream) == []


def test_empty_index_ages_from_its_creation() -> None:
    """An empty non-write index is as old as its creation date."""
    stream = StreamFacts("logs-docker.keep_2d-default", (_index("a", None, docs=0), _index("w", 0)))
    assert _deleted(stream) == ["a"]


def test_a_closed_index_is_not_aged_from_its_creation() -> None:
    """A closed index has no document count: taken for empty, it aged from its creation
    and was deleted by that, maybe days before its newest line's time. Its count is
    unknown: kept, unless its newest document is known from when it was open."""
    closed = _facts("a", {"creation.date": str(int((NOW - 100 * DAY) * 1000))}, None)
    assert closed.docs is None
    stream = StreamFacts("logs-docker.keep_2d-default", (closed, _index("w", 0)))
    assert _deleted(stream) == []
    [plan] = decide([stream], RULES, NOW)
    assert "?" in render_table([plan]).splitlines()[1]
    known = _facts("a", {"creation.date": "0"}, NOW - 10 * DAY)
    stream = StreamFacts("logs-docker.keep_2d-default", (known, _index("w", 0)))
    assert _deleted(stream) == ["a"]


def test_index_missing_from_the_size_table_is_kept() -> None:
    """An index Elasticsearch gave no size row for (no creation date) is not aged at all."""
    unknown = IndexFacts("a", 0, 0, created=None, newest=None)
    stream = StreamFacts("logs-docker.keep_2d-default", (unknown, _index("w", 0)))
    assert _deleted(stream) == []


def _stream(*indices: tuple[str, float | None, float]) -> StreamFacts:
    """A 2d stream of (name, newest, created) indices, in days from NOW (negative: ahead)."""
    return StreamFacts(
        "logs-docker.keep_2d-default",
        tuple(
            IndexFacts(name, 5, 1000, NOW - created * DAY, None if new is None else NOW - new * DAY)
            for name, new, created in indices
        ),
    )


def test_a_document_dated_in_the_future_neither_keeps_nor_deletes_its_index_wrongly() -> None:
    """A @timestamp 30 days ahead (a clock ahead) ages the index from when it stopped
    taking lines (the next one's creation), not from 30 days hence: gone 2d after that,
    and kept until then; the write index stays, and the plan says how far ahead it is."""
    stream = _stream(("stale", -30, 20), ("recent", -30, 10), ("fresh", 1.5, 1), ("w", -30, 1))
    assert _deleted(stream) == ["stale"]
    [plan] = decide([stream], RULES, NOW)
    ages = {i.index: i.age_seconds for i in plan.indices}
    assert ages == {"stale": 10 * DAY, "recent": 1 * DAY, "fresh": 1.5 * DAY, "w": 0}
    ahead = {i.index: i.future_seconds for i in plan.indices}
    assert ahead == {"stale": 30 * DAY, "recent": 30 * DAY, "fresh": None, "w": 30 * DAY}
    lines = render_table([plan]).splitlines()
    assert lines[-2] == (
        "w: its newest document is dated 30d in the future (a clock running ahead): "
        "aged from the last moment it took lines instead"
    )
    assert [line.split()[4] for line in lines[1:5]] == ["10d", "1d", "1d12h", "0s"]


def test_an_index_whose_age_is_still_in_the_future_says_so() -> None:
    """Where the time it stopped taking lines is unknown (no creation date for the next
    index), a future @timestamp leaves the age negative: kept, shown as "in the future"."""
    stream = _stream(("a", -3, 20), ("w", 0, 1))
    stream = StreamFacts(stream.name, (stream.indices[0], replace(stream.indices[1], created=None)))
    assert _deleted(stream) == []
    [plan] = decide([stream], RULES, NOW)
    assert "in the future" in render_table([plan]).splitlines()[1]


@pytest.mark.parametrize(
    ("met", "rolls"),
    [
        ({"[min_docs: 1]": True, "[max_docs: 1]": True, "[max_age: 1d]": False}, True),
        ({"[min_docs: 1]": False, "[max_docs: 1]": True}, False),
        ({"[min_docs: 1]": True, "[max_age: 1d]": False}, False),
    ],
)
def test_dry_run_conditions_read_like_elasticsearch(met: dict[str, bool], rolls: bool) -> None:
    """A rollover happens when every min_* and at least one max_* condition holds."""
    assert _would_roll(met) is rolls


def _write(path: Path, rules: str) -> None:
    path.write_text(f"retention:\n  rules:\n{rules}")


def test_bad_reload_names_rule_and_key_and_keeps_old_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload of a bad rule file logs the rule and key, and the previous rules stay."""
    path = tmp_path / "collector.yaml"
    _write(path, "    - {match: {level: debug}, keep: 2d, name: debug}\n")
    state = RetentionState(load_config(path).retention, path)
    before = state.rules
    _write(path, "    - {match: {level: debug}, keep: 2 days, name: debug}\n")
    with caplog.at_level(logging.ERROR, "logpipe.collector.retention"):
        assert state.reload() is False
    assert state.rules is before
    assert "rule 1 (debug): 'keep'" in caplog.text
    assert "previous rules stay in force" in caplog.text


def test_file_change_is_noticed_and_unchanged_file_is_not_reread(tmp_path: Path) -> None:
    """reload_if_changed rereads only after the file changed."""
    path = tmp_path / "collector.yaml"
    _write(path, "    - {match: {level: debug}, keep: 2d}\n")
    state = RetentionState(load_config(path).retention, path)
    first = state.rules
    assert state.reload_if_changed() is True
    assert state.rules is first
    _write(path, "    - {match: {level: debug}, keep: 30d}\n")
    assert state.reload_if_changed() is True
    assert state.rules.config.rules[0].keep == "30d"


def test_many_streams_are_read_in_requests_elasticsearch_accepts() -> None:
    """Hundreds of stream or index names are split into groups whose joined names fit a
    request line."""
    names = [f".ds-logs-app{n:04d}.keep_14d-default-2026.12.05-000001" for n in range(500)]
    groups = name_groups(names)
    assert len(groups) > 1
    assert [s for group in groups for s in group] == names
    assert all(len(",".join(g)) <= NAMES_PER_REQUEST for g in groups)
    assert name_groups([]) == []


def test_newest_documents_are_kept_by_name_and_uuid_while_listed() -> None:
    """A backing index's newest document is kept across runs by name and UUID: one made
    again under the same name (its stream deleted and made again) is not taken for it,
    and an index a run no longer lists is forgotten."""
    known = Newest()
    known.keep({("a", "u1"): 10.0, ("b", "u2"): 20.0}, {("a", "u1"), ("b", "u2")})
    assert known.get("a", "u1") == 10.0
    assert known.get("a", "u9") is None
    known.keep({}, {("a", "u1")})
    assert known.get("b", "u2") is None
    assert known.get("a", "u1") == 10.0


def test_plan_ahead_foresees_the_rollover_of_max_age() -> None:
    """Planned 14d ahead, a write index created now (max_age 1d) has rolled over by then
    and, its lines taken to come until that rollover, passed its 2d too."""
    created = NOW - 3600
    write = IndexFacts("w", 5, 1000, created=created, newest=NOW - 60)
    stream = StreamFacts("logs-docker.keep_2d-default", (write,))
    ahead = foresee_rollover(stream, RULES, NOW + 14 * DAY)
    assert ahead.rolls_over
    assert ahead.indices[0].newest == created + DAY
    assert [
        i.index for p in decide([ahead], RULES, NOW + 14 * DAY) for i in p.indices if i.delete
    ] == ["w"]
    # Two days ahead it has rolled over, but its lines of tomorrow are not 2d old yet.
    soon = foresee_rollover(stream, RULES, NOW + 2 * DAY)
    assert soon.rolls_over
    assert not decide([soon], RULES, NOW + 2 * DAY)[0].indices[0].delete
    # Before max_age, or with no documents (min_docs), nothing rolls over.
    assert not foresee_rollover(stream, RULES, NOW + 3600).rolls_over
    empty = StreamFacts(stream.name, (IndexFacts("w", 0, 0, created=created, newest=None),))
    assert not foresee_rollover(empty, RULES, NOW + 14 * DAY).rolls_over


async def test_a_reloaded_interval_applies_to_the_wait_already_begun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shortening retention.interval (1d to 1s) by a reload brings the next run within
    the new interval, not after the day the loop had begun to wait."""
    runs: list[float] = []

    async def counted(*_: Any) -> lifecycle.Applied:
        runs.append(asyncio.get_running_loop().time())
        return lifecycle.Applied((), (), (), ())

    monkeypatch.setattr(lifecycle, "apply", counted)
    monkeypatch.setattr(lifecycle, "INTERVAL_LOOK_SECONDS", 0.05, raising=False)
    path = tmp_path / "collector.yaml"
    path.write_text("retention:\n  interval: 1d\n")
    state = RetentionState(load_config(path).retention, path)
    task = asyncio.create_task(lifecycle.lifecycle_loop(state, None))  # type: ignore[arg-type]
    try:
        await asyncio.sleep(0.2)
        assert len(runs) == 1
        path.write_text("retention:\n  interval: 1s\n")
        assert state.reload() is True
        await asyncio.sleep(1.5)
        assert len(runs) == 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_every_run_is_counted_and_the_failed_ones_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """logpipe_retention_runs_total counts each run that ended, failed or not (a reader
    learns that the start's run is over); the failed ones count in runs_failed too."""
    outcomes: list[RetentionError | None] = [RetentionError("Elasticsearch unreachable"), None]
    third = asyncio.Event()

    async def run(*_: Any) -> lifecycle.Applied:
        if not outcomes:
            third.set()
            return lifecycle.Applied((), (), (), ())
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return lifecycle.Applied((), (), (), ())

    monkeypatch.setattr(lifecycle, "apply", run)
    path = tmp_path / "collector.yaml"
    path.write_text("retention:\n  interval: 1d\n")
    state = RetentionState(load_config(path).retention, path)
    runs, failed = lifecycle.RUNS._value.get(), lifecycle.RUNS_FAILED._value.get()
    loop = lifecycle.lifecycle_loop(state, None, interval=0.01)  # type: ignore[arg-type]
    task = asyncio.create_task(loop)
    try:
        await asyncio.wait_for(third.wait(), 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Three runs ended (the loop counts the third before it waits again): one failed.
    assert lifecycle.RUNS._value.get() - runs == 3
    assert lifecycle.RUNS_FAILED._value.get() - failed == 1


def _write_index(docs: int, size: int, age: float | None) -> StreamFacts:
    created = None if age is None else NOW - age
    write = IndexFacts("w", docs, size, created=created, newest=None)
    return StreamFacts("logs-docker.keep_2d-default", (_index("a", 3), write))


@pytest.mark.parametrize(
    ("docs", "size", "age", "asked"),
    [
        (5, 1000, 3600, False),  # young, small, few: Elasticsearch would say no
        (0, 60 * 1024**3, 30 * DAY, False),  # empty: min_docs 1 keeps it, however old and large
        (5, 1000, DAY, True),  # max_age 1d reached
        (5, 1000, DAY - 1, False),
        (5, 50 * 1024**3, 3600, True),  # the primaries' store at max_primary_shard_size
        (5, 50 * 1024**3 - 1, 3600, False),
        (1000, 1000, 3600, True),  # max_docs
        (999, 1000, 3600, False),
        (0, 0, None, True),  # not in the index stats: asked, Elasticsearch decides
    ],
)
def test_a_rollover_is_asked_only_where_the_facts_may_meet_its_conditions(
    docs: int, size: int, age: float | None, asked: bool
) -> None:
    """The write index's documents, primaries' store and age against the conditions
    (max_age 1d, max_primary_shard_size 50gb, max_docs 1000), as Elasticsearch reads them."""
    rules = RetentionRules(
        RetentionConfig.model_validate({"default": "14d", "rollover": {"max_docs": 1000}})
    )
    assert may_roll(_write_index(docs, size, age), rules, NOW) is asked


def test_a_stream_without_indices_is_asked() -> None:
    """No backing index in the facts (a stream made between two reads): Elasticsearch decides."""
    assert may_roll(StreamFacts("logs-docker.keep_2d-default", ()), RULES, NOW)


def test_sizes_read_in_powers_of_1024() -> None:
    """50gb is Elasticsearch's 50 GiB; a size that is not one is refused."""
    assert size_bytes("50gb") == 50 * 1024**3
    assert size_bytes("1b") == 1
    assert size_bytes("3pb") == 3 * 1024**5
    with pytest.raises(ValueError, match="not a size"):
        size_bytes("50 GB")


class _Indices:
    """The rollover calls of Elasticsearch's client, counted; none rolls over."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def rollover(self, alias: str, **_: Any) -> Any:
        self.asked.append(alias)
        return type("Answer", (), {"body": {"rolled_over": False}})()


def test_apply_asks_elasticsearch_only_for_streams_that_may_roll_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Of many streams, only the one whose write index is past max_age is asked to roll
    over; the others (young, or empty) get no request."""
    young = [
        StreamFacts(f"logs-app{n}.keep_14d-default", (IndexFacts("w", 5, 1000, NOW - 60, None),))
        for n in range(200)
    ]
    empty = StreamFacts("logs-idle.keep_14d-default", (IndexFacts("w", 0, 0, NOW - 9 * DAY, None),))
    old = StreamFacts("logs-old.keep_14d-default", (IndexFacts("w", 5, 1000, NOW - 2 * DAY, None),))

    async def facts(*_: object, **__: object) -> list[StreamFacts]:
        return [*young, empty, old]

    monkeypatch.setattr(lifecycle, "gather_facts", facts)
    monkeypatch.setattr(lifecycle, "now_for_rollovers", lambda: NOW)
    es = type("Client", (), {"indices": _Indices()})()
    applied = asyncio.run(lifecycle.apply(es, RULES, lambda: NOW))
    assert es.indices.asked == ["logs-old.keep_14d-default"]
    assert applied.rolled_over == ()
