"""Retention on the real Elasticsearch: routing per rule, plan, apply, races, rule reloads."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from prometheus_client import REGISTRY

from collector.__main__ import parser as collector_parser
from collector.config import load_config
from collector.enrich import Context, log_document
from collector.errors import RetentionError
from collector.parse import Parsed
from collector.retention.facts import SEARCH_GROUP, Newest, gather_facts
from collector.retention.lifecycle import Applied, RetentionState, apply, lifecycle_loop, plan
from collector.retention.rules import RetentionConfig, RetentionRules, RulesHolder
from collector.routing import route
from collector.shape import nested
from collector.templates import TEMPLATE_NAME, index_template
from collector.wire import Hints, Log, Source

pytestmark = pytest.mark.integration

ES_URL = os.environ.get("LOGPIPE_TEST_ES_URL", "http://127.0.0.1:9200")
DAY = 86400.0
RULES: dict[str, Any] = {
    "default": "14d",
    "rules": [
        {"match": {"service": "payments-*"}, "keep": "400d"},
        {"match": {"level": ["debug", "trace"]}, "keep": "2d"},
        {"match": {"dataset": "audit*"}, "keep": "30d", "name": "audit"},
    ],
}


def _rules(**rollover: int | None) -> RetentionRules:
    return RetentionRules(RetentionConfig.model_validate({**RULES, "rollover": rollover}))


# Rollover conditions that the few test documents meet, and ones they never meet.
ROLL_EVERY_DOC = {"max_docs": 1}
NEVER_ROLL = {"max_docs": 1_000_000, "max_age": None}  # max_age would be 1d otherwise


@pytest.fixture
async def es() -> AsyncIterator[AsyncElasticsearch]:
    """A client of the real node, with logpipe's index template in place."""
    async with AsyncElasticsearch(ES_URL, request_timeout=60) as client:
        if not await client.indices.exists_index_template(name=TEMPLATE_NAME):
            await client.indices.put_index_template(name=TEMPLATE_NAME, **index_template())
        yield client


@pytest.fixture
async def ns(es: AsyncElasticsearch) -> AsyncIterator[str]:
    """A namespace of this test alone: data streams cannot be deleted on this node."""
    name = f"rt{uuid.uuid4().hex[:10]}"
    yield name
    # Leave one (write) index per stream behind, not every shard the test made.
    await apply(es, _rules(**NEVER_ROLL), _clock(10_000), f"logs-*-{name}")


def _source(name: str, ns: str, service: str | None = None, dataset: str | None = None) -> Source:
    labels = {"com.docker.compose.service": service} if service else {}
    return Source(
        kind="source",
        src=0,
        host="test-host",
        container_id=uuid.uuid4().hex,
        container_name=name,
        image="busybox:latest",
        labels=labels,
        hints=Hints(namespace=ns, dataset=dataset),
    )


async def _index(
    es: AsyncElasticsearch,
    ctx: Context,
    records: list[tuple[Source, str | None]],
    days_ahead: float = 0,
) -> None:
    """Enrich one log line per (source, level), stamped now (or days ahead), and write
    them with _bulk."""
    ops: list[dict[str, Any]] = []
    ts = time.time_ns() + int(days_ahead * DAY) * 10**9
    for seq, (source, level) in enumerate(records):
        log = Log(kind="log", src=0, stream="stdout", ts=ts, seq=seq, message="hello")
        doc = log_document(
            source, log, Parsed(message="hello", level=level), ctx, "2026-01-01T00:00:00Z"
        )
        ops += [{"create": {"_index": doc.stream, "_id": doc.id}}, doc.body]
    result = await es.bulk(operations=ops, refresh=True)
    assert not result["errors"], result


def _clock(days_ahead: float) -> Callable[[], float]:
    return lambda: time.time() + days_ahead * DAY


async def _backing(es: AsyncElasticsearch, ns: str) -> dict[str, list[str]]:
    return {s.name: [i.name for i in s.indices] for s in await gather_facts(es, f"logs-*-{ns}")}


def _deleted_count(rule: str) -> float:
    return (
        REGISTRY.get_sample_value("logpipe_retention_deleted_indices_total", {"rule": rule}) or 0.0
    )


async def _two_generations(
    es: AsyncElasticsearch, ns: str, all_rules: bool = True
) -> tuple[Context, dict[str, list[str]]]:
    """Data for several services and levels, rolled over once, then written to again."""
    ctx = Context(retention=RulesHolder(_rules(**ROLL_EVERY_DOC).config))
    payments = _source("pay-1", ns, service="payments-api")
    web = _source("web-1", ns)
    auditor = _source("auditor", ns, dataset="audit.events")
    records = [(web, "debug"), (web, "info"), (web, None)]
    if all_rules:
        records += [(payments, "info"), (auditor, "info")]
    await _index(es, ctx, records)
    first = await apply(es, ctx.retention.rules, _clock(0), f"logs-*-{ns}")
    assert len(first.rolled_over) == (4 if all_rules else 2)
    assert first.deleted == ()
    await _index(es, ctx, records)
    return ctx, await _backing(es, ns)


async def test_records_land_in_their_rules_streams(es: AsyncElasticsearch, ns: str) -> None:
    """Each service/level combination is stored in the data stream of the rule that matches it."""
    ctx, backing = await _two_generations(es, ns)
    assert sorted(backing) == sorted(
        [
            f"logs-docker.keep_400d-{ns}",
            f"logs-docker.keep_2d-{ns}",
            f"logs-docker.keep_14d-{ns}",
            f"logs-audit.events.keep_audit-{ns}",
        ]
    )
    assert all(len(indices) == 2 for indices in backing.values())
    found = await es.search(
        index=f"logs-*-{ns}",
        size=100,
        source_includes=["service.name", "log.level", "data_stream.dataset", "event.dataset"],
    )
    sources = [(nested(h["_source"]), h["_index"]) for h in found["hits"]["hits"]]
    where = {(s["service"]["name"], s.get("log", {}).get("level")): i for s, i in sources}
    assert ".keep_400d-" in where[("payments-api", "info")]
    assert ".keep_2d-" in where[("web-1", "debug")]
    assert ".keep_14d-" in where[("web-1", "info")]
    assert ".keep_14d-" in where[("web-1", None)]
    assert ".keep_audit-" in where[("auditor", "info")]
    assert route(_source("web-1", ns), ctx, "trace").stream == f"logs-docker.keep_2d-{ns}"


async def test_plan_shows_and_apply_deletes_exactly_what_is_past_retention(
    es: AsyncElasticsearch, ns: str
) -> None:
    """Twenty days on, only the old indices of the 2d and 14d streams go; write indices stay."""
    _, backing = await _two_generations(es, ns)
    rules, later, pattern = _rules(**NEVER_ROLL), _clock(20), f"logs-*-{ns}"
    expected = {
        backing[f"logs-docker.keep_2d-{ns}"][0],
        backing[f"logs-docker.keep_14d-{ns}"][0],
    }
    planned = await plan(es, rules, later, pattern)
    assert {i.index for p in planned for i in p.indices if i.delete} == expected
    assert all(not i.rolls_over for p in planned for i in p.indices)
    before = _deleted_count("2d")

    applied = await apply(es, rules, later, pattern)

    assert set(applied.deleted) == expected
    assert applied.rolled_over == ()
    after = await _backing(es, ns)
    for stream, indices in backing.items():
        assert after[stream] == [i for i in indices if i not in expected]
        assert after[stream][-1] == indices[-1], "the write index survives"
    assert _deleted_count("2d") == before + 1


async def test_an_index_whose_newest_line_is_dated_ahead_ages_from_its_rollover(
    es: AsyncElasticsearch, ns: str
) -> None:
    """A debug line stamped 30 days ahead (a host's clock) no longer keeps its index 30
    days past the 2d rule: a day on it is kept and the plan says how far ahead it is;
    three days on, two past its rollover, it is deleted, the write index not."""
    ctx = Context(retention=RulesHolder(_rules(**ROLL_EVERY_DOC).config))
    web = _source("web-1", ns)
    await _index(es, ctx, [(web, "debug")], days_ahead=30)
    await apply(es, ctx.retention.rules, _clock(0), f"logs-*-{ns}")
    await _index(es, ctx, [(web, "debug")])
    stream = f"logs-docker.keep_2d-{ns}"
    old, write = (await _backing(es, ns))[stream]
    rules, pattern = _rules(**NEVER_ROLL), f"logs-*-{ns}"

    [soon] = await plan(es, rules, _clock(1), pattern)
    assert [(i.index, i.delete) for i in soon.indices] == [(old, False), (write, False)]
    assert soon.indices[0].future_seconds is not None, "the plan names the line dated ahead"
    assert soon.indices[1].future_seconds is None

    applied = await apply(es, rules, _clock(3), pattern)

    assert applied.deleted == (old,)
    assert (await _backing(es, ns))[stream] == [write]


async def test_rolled_write_index_past_retention_goes_in_the_same_run(
    es: AsyncElasticsearch, ns: str
) -> None:
    """When apply rolls a stream over, the former write index is deleted if expired, as planned."""
    _, backing = await _two_generations(es, ns, all_rules=False)
    rules, later, pattern = _rules(**ROLL_EVERY_DOC), _clock(3), f"logs-*-{ns}"
    planned = await plan(es, rules, later, pattern)
    planned_deletes = {i.index for p in planned for i in p.indices if i.delete}
    assert planned_deletes == set(backing[f"logs-docker.keep_2d-{ns}"])

    applied = await apply(es, rules, later, pattern)

    assert set(applied.deleted) == planned_deletes
    after = await _backing(es, ns)
    assert len(after[f"logs-docker.keep_2d-{ns}"]) == 1
    assert after[f"logs-docker.keep_2d-{ns}"][0] not in backing[f"logs-docker.keep_2d-{ns}"]


async def _queries(es: AsyncElasticsearch, indices: list[str]) -> dict[str, int]:
    """How many of retention's searches each index's shards have answered (their own
    statistics group: other tests' searches of `logs-*` beside this one count apart)."""
    stats = await es.indices.stats(index=",".join(indices), metric="search", groups=SEARCH_GROUP)
    return {
        i: stats["indices"][i]["primaries"]["search"]
        .get("groups", {})
        .get(SEARCH_GROUP, {})
        .get("query_total", 0)
        for i in indices
    }


async def test_a_run_searches_no_write_index_and_an_older_index_once(
    es: AsyncElasticsearch, ns: str
) -> None:
    """The collector's runs never search a write index (a search wakes a shard nobody
    searches, which then refreshes every second), and search an index no longer written
    to once: what the first run found still decides twenty days on."""
    _, backing = await _two_generations(es, ns, all_rules=False)
    indices = [i for stream in backing.values() for i in stream]
    writes = [stream[-1] for stream in backing.values()]
    olds = [i for i in indices if i not in writes]
    rules, pattern, known = _rules(**NEVER_ROLL), f"logs-*-{ns}", Newest()
    before = await _queries(es, indices)

    first = await apply(es, rules, _clock(0), pattern, known)
    once = await _queries(es, indices)
    again = await apply(es, rules, _clock(0), pattern, known)

    assert first.deleted == again.deleted == ()
    assert {i: once[i] - before[i] for i in writes} == dict.fromkeys(writes, 0)
    assert all(once[i] > before[i] for i in olds)
    assert await _queries(es, indices) == once, "searched again"
    later = await apply(es, rules, _clock(20), pattern, known)
    assert set(later.deleted) == set(olds)
    assert {i: n - once[i] for i, n in (await _queries(es, writes)).items()} == dict.fromkeys(
        writes, 0
    )


async def test_a_rollover_elasticsearch_refuses_does_not_stop_the_deletions(
    es: AsyncElasticsearch, ns: str
) -> None:
    """A stream whose rollover is refused (a 400, as when the cluster's shard limit is
    reached) fails alone: the other streams still roll over and what is past retention
    is still deleted (which may be what frees the cluster), and the run says it failed."""
    _, backing = await _two_generations(es, ns, all_rules=False)
    refused = f"logs-docker.keep_14d-{ns}"
    # A template of this stream alone, whose new backing index cannot be created.
    template = f"refuse-{ns}"
    await es.indices.put_index_template(
        name=template,
        index_patterns=[refused],
        priority=900,
        data_stream={},
        template={"settings": {"index.sort.field": "no_such_field"}},
    )
    try:
        applied = await apply(es, _rules(**ROLL_EVERY_DOC), _clock(3), f"logs-*-{ns}")
    finally:
        await es.indices.delete_index_template(name=template)

    [why] = applied.refused
    assert why.startswith(f"rolling over {refused}: ")
    assert "no_such_field" in why
    assert applied.rolled_over == (f"logs-docker.keep_2d-{ns}",)
    assert set(applied.deleted) == set(backing[f"logs-docker.keep_2d-{ns}"])
    assert (await _backing(es, ns))[refused] == backing[refused]


async def test_a_missing_stream_among_several_given_is_named_alone(
    es: AsyncElasticsearch, ns: str
) -> None:
    """--streams A,B where B is not there names B, not the whole list."""
    ctx = Context(retention=RulesHolder(_rules().config))
    await _index(es, ctx, [(_source("web-1", ns), "info")])
    there, missing = f"logs-docker.keep_14d-{ns}", f"logs-nosuch.keep_1d-{ns}"
    with pytest.raises(RetentionError) as caught:
        await gather_facts(es, f"{there},{missing}")
    assert str(caught.value).startswith(f"no data stream or index named {missing}: ")


async def test_two_collectors_applying_at_once_delete_each_index_once(
    es: AsyncElasticsearch, ns: str
) -> None:
    """Concurrent applies roll over once, delete every expired index exactly once, raise nothing."""
    _, backing = await _two_generations(es, ns, all_rules=False)
    rules, later, pattern = _rules(**ROLL_EVERY_DOC), _clock(20), f"logs-*-{ns}"
    expected = {i for s in ("2d", "14d") for i in backing[f"logs-docker.keep_{s}-{ns}"]}
    async with AsyncElasticsearch(ES_URL, request_timeout=60) as other:
        results: tuple[Applied, Applied] = await asyncio.gather(
            apply(es, rules, later, pattern), apply(other, rules, later, pattern)
        )
    first, second = (set(r.deleted) for r in results)
    assert not first & second
    assert first | second == expected
    rolled = [s for r in results for s in r.rolled_over]
    assert sorted(rolled) == sorted(set(rolled)), "each stream rolled over at most once"
    after = await _backing(es, ns)
    assert all(
        len(after[s]) == len(backing[s]) + 1 - len(expected & set(backing[s])) for s in backing
    )


@pytest.fixture
async def ns_alone(es: AsyncElasticsearch) -> AsyncIterator[str]:
    """A second namespace of this test alone, for the same data under one collector."""
    name = f"rt{uuid.uuid4().hex[:10]}"
    yield name
    await apply(es, _rules(**NEVER_ROLL), _clock(10_000), f"logs-*-{name}")


def _shape(
    before: dict[str, list[str]], after: dict[str, list[str]], ns: str
) -> dict[str, tuple[tuple[int, ...], int]]:
    """Per stream (namespace left out): which of its former indices remain, by position,
    and how many indices it has that it did not have before."""
    return {
        stream.removesuffix(ns): (
            tuple(i for i, name in enumerate(before[stream]) if name in after[stream]),
            len([name for name in after[stream] if name not in before[stream]]),
        )
        for stream in before
    }


def _changed(results: list[Applied], ns: str) -> tuple[list[str], list[str]]:
    """Streams rolled over and indices deleted by these steps together, sorted, each once
    per time it happened (namespace left out of the stream names)."""
    rolled = sorted(s.removesuffix(ns) for r in results for s in r.rolled_over)
    deleted = sorted(i for r in results for i in r.deleted)
    return rolled, deleted


@pytest.mark.parametrize("rollover", [ROLL_EVERY_DOC, NEVER_ROLL], ids=["rolls", "keeps"])
async def test_three_collectors_stepping_at_once_do_what_one_step_does(
    es: AsyncElasticsearch, ns: str, ns_alone: str, rollover: dict[str, int]
) -> None:
    """Three lifecycle steps at the same (injected) moment, each with its own client, leave
    every stream as one step alone leaves the same data: each rollover and each deletion
    happens once, no step fails, and every stream keeps a write index that takes writes."""
    rules, later = _rules(**rollover), _clock(20)
    ctx, backing = await _two_generations(es, ns)
    _, backing_alone = await _two_generations(es, ns_alone)

    alone = await apply(es, rules, later, f"logs-*-{ns_alone}")
    async with (
        AsyncElasticsearch(ES_URL, request_timeout=60) as second,
        AsyncElasticsearch(ES_URL, request_timeout=60) as third,
    ):
        together: list[Applied] = await asyncio.gather(
            *(apply(client, rules, later, f"logs-*-{ns}") for client in (es, second, third))
        )

    after, after_alone = await _backing(es, ns), await _backing(es, ns_alone)
    assert _shape(backing, after, ns) == _shape(backing_alone, after_alone, ns_alone)
    rolled, deleted = _changed(together, ns)
    assert rolled == _changed([alone], ns_alone)[0]
    assert len(deleted) == len(set(deleted)) == len(alone.deleted)
    assert all(after[stream] for stream in backing), "a stream lost its write index"
    web = _source("web-1", ns)
    await _index(es, ctx, [(web, "debug"), (web, "info")])
    assert sum([len(i) for i in (await _backing(es, ns)).values()]) == sum(map(len, after.values()))


def _write_rules(path: Path, keep_debug: str) -> None:
    rule = f"{{match: {{level: debug}}, keep: {keep_debug}, name: debug}}"
    path.write_text(f"retention:\n  rules:\n    - {rule}\n")


async def _until(check: Callable[[], bool]) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_loop_rejects_bad_rule_file_and_takes_good_edits(
    es: AsyncElasticsearch, ns: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The loop rejects a bad edit, naming rule and key, keeps the old rules, takes a fix."""
    path = tmp_path / "collector.yaml"
    _write_rules(path, "2d")
    state = RetentionState(load_config(path).retention, path)
    ctx, web = Context(retention=state), _source("web-1", ns)
    task = asyncio.create_task(lifecycle_loop(state, es, _clock(0), 0.05, f"logs-*-{ns}"))
    try:
        with caplog.at_level(logging.INFO, "logpipe.collector.retention"):
            _write_rules(path, "2 days")
            await _until(lambda: "not reloaded" in caplog.text)
            assert "rule 1 (debug): 'keep'" in caplog.text
            assert state.rules.config.rules[0].keep == "2d"
            assert route(web, ctx, "debug").stream == f"logs-docker.keep_debug-{ns}"
            _write_rules(path, "10d")
            await _until(lambda: state.rules.config.rules[0].keep == "10d")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_sighup_reloads_rules_at_once(
    es: AsyncElasticsearch, ns: str, tmp_path: Path
) -> None:
    """SIGHUP rereads the rules while the loop sleeps, without waiting for the next run."""
    path = tmp_path / "collector.yaml"
    _write_rules(path, "2d")
    state = RetentionState(load_config(path).retention, path)
    task = asyncio.create_task(lifecycle_loop(state, es, _clock(0), 3600, f"logs-*-{ns}"))
    try:
        await asyncio.sleep(0.2)  # let the first run finish; the loop now sleeps an hour
        _write_rules(path, "10d")
        os.kill(os.getpid(), signal.SIGHUP)
        await _until(lambda: state.rules.config.rules[0].keep == "10d")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_cli_plan_json_and_apply_use_the_config_file(
    es: AsyncElasticsearch, ns: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`retention plan --json --ahead` lists what apply would delete; `apply` now deletes none."""
    _, backing = await _two_generations(es, ns, all_rules=False)
    path = tmp_path / "collector.yaml"
    path.write_text(f"es_url: {ES_URL}\nretention:\n  default: 30d\n")
    pattern = f"logs-*-{ns}"

    def cli(*argv: str) -> str:
        capsys.readouterr()
        args = collector_parser().parse_args(["--config", str(path), "retention", *argv])
        assert args.handler(args) == 0
        return capsys.readouterr().out

    out = await asyncio.to_thread(cli, "plan", "--json", "--ahead", "20d", "--streams", pattern)
    streams = {s["stream"]: s for s in json.loads(out)}
    assert set(streams) == set(backing)
    doomed = {i["index"] for s in streams.values() for i in s["indices"] if i["delete"]}
    # Streams are kept per the rule in their name (2d, 14d), not the config's new default;
    # twenty days ahead their write indices have rolled over too (max_age 1d, the default).
    assert doomed == {index for indices in backing.values() for index in indices}
    table = await asyncio.to_thread(cli, "plan", "--streams", pattern)
    assert "keep (write index)" in table
    assert "apply would delete 0 backing indices" in table
    out = await asyncio.to_thread(cli, "apply", "--streams", pattern)
    assert "0 backing indices deleted" in out
    assert await _backing(es, ns) == backing
