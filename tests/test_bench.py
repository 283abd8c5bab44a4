"""The benchmarks' own logic that a wrong answer would hide in a table: how a profile's
samples are counted, how shippers are named on the command line, what a document-cost
variant changes."""

from __future__ import annotations

import argparse
import copy
import inspect
import os
import re
import time
import types
import urllib.error
from collections.abc import Callable, Mapping
from email.message import Message
from pathlib import Path
from typing import Any, cast

import pytest

from bench import (
    at_least,
    collector_load,
    containers,
    doc_cost,
    es_profile,
    logdriver,
    pipeline,
    procstat,
    read_cost,
    services,
    shippers,
    sidebyside,
)
from collector import templates
from collector.attributes import UNINDEXED
from collector.enrich import Doc
from collector.read import cursor
from collector.read.cursor import Position

SAMPLE = """\
jdk.ExecutionSample {{
  startTime = 13:28:48.161 (2026-12-03)
  sampledThread = "{thread}" (javaThreadId = 29)
  state = "STATE_RUNNABLE"
  stackTrace = [
{frames}
    ...
  ]
}}
"""


def sample(thread: str, *frames: str) -> str:
    lines = "\n".join(f"    {f}(Object, int) line: 12" for f in frames)
    return SAMPLE.format(thread=thread, frames=lines)


WRITE = "elasticsearch[node-1][write][T#2]"


def test_a_sample_counts_once_in_the_first_bucket_its_frames_belong_to() -> None:
    text = "\n".join(
        [
            # a date parsed while the id is looked up counts as the lookup (first bucket)
            sample(
                WRITE,
                "org.elasticsearch.index.mapper.DateFieldMapper.parseCreateField",
                "org.elasticsearch.index.engine.InternalEngine.resolveDocVersion",
                "org.elasticsearch.action.bulk.TransportShardBulkAction.performOnPrimary",
            ),
            sample(
                WRITE,
                "org.apache.lucene.index.IndexingChain$PerField.invertTokenStream",
                "org.apache.lucene.index.IndexingChain.processDocument",
            ),
            sample(WRITE, "java.lang.Object.wait"),
            sample(
                "elasticsearch[node-1][[.ds-logs-x][0]: Lucene Merge Thread #3]",
                "org.apache.lucene.index.SegmentMerger.merge",
            ),
        ]
    )
    got = es_profile.parse(text, "run")
    assert got.samples == 4
    assert got.buckets == {
        "_id lookup (a given id: is it indexed?)": 1,
        "text analysis and its terms": 1,
        "merges": 1,
        es_profile.OTHER: 1,
    }
    assert got.pools == {"write": 3, "merge": 1}


def test_frames_without_line_numbers_count_and_other_fields_do_not() -> None:
    text = SAMPLE.format(
        thread="elasticsearch[node-1][refresh][T#1]",
        frames="    org.apache.lucene.search.ReferenceManager.maybeRefresh()\n"
        "    sun.nio.ch.FileDispatcherImpl.force0(FileDescriptor, boolean)",
    )
    got = es_profile.parse(text, "run")
    assert got.buckets == {"refresh": 1}
    assert got.pools == {"refresh": 1}


def test_no_samples_make_an_empty_profile_and_its_table_says_zero() -> None:
    got = es_profile.parse("jdk.CPULoad {\n  machineTotal = 1.0\n}\n", "empty")
    assert got.samples == 0
    assert "| other | 0 |" in es_profile.tables([got])


def test_tables_give_each_recording_a_column_of_counts_and_shares() -> None:
    a = es_profile.parse(sample(WRITE, "org.x.BulkRequestParser.parse") * 3, "a")
    b = es_profile.parse(sample(WRITE, "org.x.Foo.bar"), "b")
    text = es_profile.tables([a, b])
    assert "| what the node did | a | b |" in text
    assert "| bulk request handling | 3 (100.0%) | 0 (0.0%) |" in text
    assert "| other | 0 (0.0%) | 1 (100.0%) |" in text
    assert "| thread pool `write` | 3 (100.0%) | 1 (100.0%) |" in text


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ("logpipe", ["logpipe"]),
        ("Fluent-Bit,logpipe", ["Fluent Bit", "logpipe"]),
        ("logspout, logspout", ["logspout"]),
    ],
)
def test_shippers_are_named_in_any_case_with_a_hyphen_for_a_space(
    given: str, names: list[str]
) -> None:
    assert sidebyside._names(given) == names


@pytest.mark.parametrize("given", ["", "fluentbit", "logpipe,vector"])
def test_an_unknown_shipper_is_refused_with_the_names_known(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="logpipe, fluent-bit, logspout"):
        sidebyside._names(given)


def test_a_collector_setting_is_a_key_of_its_config_and_not_one_the_benchmark_sets() -> None:
    assert sidebyside._setting("document_labels=") == ("document_labels", "")
    assert sidebyside._setting(" indexed_attributes=a,b") == ("indexed_attributes", "a,b")
    for given, says in (
        ("document_labels", "give NAME=VALUE"),
        ("labels=x", "a key of the collector's config"),
        ("tokens=t", "the benchmark sets it itself"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=says):
            sidebyside._setting(given)


def test_the_collector_settings_reach_logpipes_collector(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: dict[str, str] = {}

    def start(*args: object, settings: Mapping[str, str] | None = None, **extra: str) -> object:
        started.update({**(settings or {}), **extra})
        return types.SimpleNamespace(pid=1)

    monkeypatch.setattr(services, "start_collector", start)
    monkeypatch.setattr(services, "install_run_template", lambda name, pattern, index: None)
    ctx = shippers.Context("r", tmp_path, [], 0, {}, {"indexed_attributes": "user_id"})
    shippers.LogpipeRun(ctx, "t").prepare()
    assert started == {"indexed_attributes": "user_id"}


def test_a_variant_without_some_attributes_drops_only_those_and_an_emptied_object() -> None:
    drop = doc_cost.VARIANTS["attrs-no-time"].body
    assert drop is not None
    body = {"message": "m", "attributes": {"ts": "1", "time": "2", "caller": "main.go:1"}}
    assert drop(body) == {"message": "m", "attributes": {"caller": "main.go:1"}}
    assert body["attributes"] == {"ts": "1", "time": "2", "caller": "main.go:1"}  # a copy
    assert drop({"message": "m", "attributes": {"@timestamp": "x"}}) == {"message": "m"}
    assert drop({"message": "m"}) == {"message": "m"}


def test_the_traefik_variants_differ_by_the_traefik_labels_alone() -> None:
    many = doc_cost.VARIANTS["traefik-labels"].body
    chosen = doc_cost.VARIANTS["traefik-chosen"].body
    assert many is not None
    assert chosen is not None
    body = {"container": {"name": "web", "labels": {"team": "a"}}}
    labels = many(body)["container"]["labels"]
    assert sum(key.startswith("traefik.") for key in labels) == 8
    assert "com.docker.compose.project" in labels
    assert "com.docker.compose.config-hash" not in labels
    assert chosen(body)["container"]["labels"] == {
        k: v for k, v in labels.items() if not k.startswith("traefik.")
    }
    assert body == {"container": {"name": "web", "labels": {"team": "a"}}}  # copies


def test_the_attribute_variants_split_the_keys_as_the_collector_does() -> None:
    chosen = doc_cost.VARIANTS["attrs-chosen"].body
    wide = doc_cost.VARIANTS["attrs-wide"].body
    wide_chosen = doc_cost.VARIANTS["attrs-wide-chosen"].body
    assert chosen is not None
    assert wide is not None
    assert wide_chosen is not None
    body = {"message": "m", "attributes": {"ts": "t", "caller": "a.go:1", "user_id": 7}}
    assert chosen(body) == {
        "message": "m",
        "attributes": {"user_id": 7},
        UNINDEXED: {"ts": "t", "caller": "a.go:1"},
    }
    widened = wide(body)["attributes"]
    assert len(widened) == 3 + 12
    assert widened["session_id"] != wide({"attributes": {"user_id": 8}})["attributes"]["session_id"]
    split = wide_chosen(body)
    assert split["attributes"] == {"user_id": 7, "session_id": widened["session_id"]}
    assert {**split["attributes"], **split[UNINDEXED]} == widened  # nothing lost
    assert wide({"message": "plain"}) == {"message": "plain"}  # no keys of its own: as it is
    assert body == {"message": "m", "attributes": {"ts": "t", "caller": "a.go:1", "user_id": 7}}


def test_a_variant_without_a_label_drops_it_from_the_nested_labels_and_keeps_the_rest() -> None:
    drop = doc_cost.VARIANTS["labels-no-service"].body
    assert drop is not None
    service = "com.docker.compose.service"
    body = {"container": {"name": "web", "labels": {service: "web", "team": "a"}}}
    assert drop(body) == {"container": {"name": "web", "labels": {"team": "a"}}}
    assert body["container"]["labels"] == {service: "web", "team": "a"}  # a copy
    assert drop({"container": {"name": "web", "labels": {service: "web"}}}) == {
        "container": {"name": "web"}
    }
    assert drop({"container": {"name": "web"}}) == {"container": {"name": "web"}}


def test_the_dynamic_attributes_variant_maps_each_key_as_a_keyword_before_the_catch_all() -> None:
    remap = doc_cost.VARIANTS["attrs-dynamic"].mappings
    assert remap is not None
    m = copy.deepcopy(templates.mappings())
    remap(m)
    assert "attributes" not in m["properties"]
    first = m["dynamic_templates"][0]["attributes"]
    assert first["path_match"] == "attributes.*"
    assert first["mapping"]["type"] == "keyword"
    assert m["dynamic_templates"][-1] == templates.mappings()["dynamic_templates"][-1]


NO_DOC_VALUES = {"doc_values": False}
STORED_ONLY = {"index": False, "doc_values": False}


@pytest.mark.parametrize(
    ("name", "paths", "change"),
    [
        ("attrs-no-dv", ["attributes"], NO_DOC_VALUES),
        ("labels-no-dv", ["container.labels"], NO_DOC_VALUES),
        ("flattened-no-dv", ["attributes", "container.labels"], NO_DOC_VALUES),
        ("attrs-stored", ["attributes"], STORED_ONLY),
    ],
)
def test_flattened_fields_lose_what_the_variant_says_and_nothing_else(
    name: str, paths: list[str], change: dict[str, bool]
) -> None:
    remap = doc_cost.VARIANTS[name].mappings
    assert remap is not None
    before = templates.mappings()
    m = copy.deepcopy(before)
    remap(m)
    for path in paths:
        assert m["properties"][path] == {**before["properties"][path], **change}
    others = {k: v for k, v in m["properties"].items() if k not in paths}
    assert others == {k: v for k, v in before["properties"].items() if k not in paths}


def test_a_load_run_built_elsewhere_has_every_option_the_load_reads() -> None:
    # bench.profile and bench.rsyslog drive collector_load.load with options of their own;
    # each attribute `load` reads must be there with the benchmark's own default
    args = collector_load.options("r1", seconds=3.0)
    source = inspect.getsource(collector_load.load) + inspect.getsource(collector_load.batches_for)
    for name in set(re.findall(r"\bargs\.(\w+)", source)):
        assert hasattr(args, name), name
    assert (args.run, args.seconds, args.settle, args.rate) == ("r1", 3.0, False, 0)
    assert args.batch_lines == 5000
    with pytest.raises(TypeError, match="batch_size"):
        collector_load.options("r1", batch_size=10)


def _result(shipper: str, es_cpu: float, caught_up: float | None = 0.4) -> sidebyside.Result:
    r = sidebyside.Result(shipper, 1, 1000, arrived=1000, seconds=2.0, load=0.5)
    r.cpu = {"shipper": 0.01, "collector": 0.01, "dockerd": 0.02, "elasticsearch": es_cpu}
    r.rss = {"shipper": 60, "collector": 80, "dockerd": 90, "elasticsearch": 1400}
    r.docs, r.idle_after, r.caught_up = 1000, 2.1, caught_up
    return r


def test_a_live_row_says_when_its_last_line_came_and_a_drain_row_does_not() -> None:
    live = sidebyside.row(_result(shippers.LOGPIPE, 0.05), live=True)
    assert len(live) == len(sidebyside.LIVE_HEADER) == len(sidebyside.HEADER) + 1
    assert live[-1] == "0.4"
    assert live[10] == "50.0"  # ES CPU-µs per document
    assert live[11] == "-"  # no thread times were taken
    assert sidebyside.row(_result(shippers.LOGPIPE, 0.05, None), live=True)[-1] == "never"
    assert len(sidebyside.row(_result(shippers.LOGPIPE, 0.05))) == len(sidebyside.HEADER)


def test_a_logpipe_run_indexes_with_this_checkouts_template_whatever_the_node_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, str, Any]] = []

    def es(method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        calls.append((method, path, body))
        if path.endswith("_simulate"):  # a node without constant_keyword
            raise urllib.error.HTTPError(path, 400, "unknown type", Message(), None)
        return {}

    monkeypatch.setattr(services, "es", es)
    services.install_run_template("logpipe-bench-r1", "logs-bench.sider1*")
    (_, _, probe), (method, path, body) = calls
    assert probe["template"]["mappings"]["properties"]["probe"]["type"] == "constant_keyword"
    assert (method, path) == ("PUT", "/_index_template/logpipe-bench-r1")
    assert body["index_patterns"] == ["logs-bench.sider1*"]
    assert body["priority"] > 550
    assert body["template"] == templates.index_template()["template"]
    services.install_run_template("logpipe-bench-r2", "logs-bench.sider2*", '{"codec":"default"}')
    assert calls[-1][2]["template"]["settings"]["codec"] == "default"
    services.delete_run_template("logpipe-bench-r1")
    assert calls[-1][:2] == ("DELETE", "/_index_template/logpipe-bench-r1")


def test_disk_per_doc_is_the_primaries_merged_to_one_segment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, str]] = []
    stats = {
        "_all": {
            "primaries": {
                "docs": {"count": 400, "total_size_in_bytes": 100_000},
                # cached by the node for up to 10 s: not what the merge left
                "store": {"size_in_bytes": 20_000},
            }
        }
    }

    def es(method: str, path: str, timeout: float = 60) -> Any:
        asked.append((method, path.partition("?")[0]))
        return stats if method == "GET" else {}

    monkeypatch.setattr(services, "es", es)
    assert services.disk_per_doc("logs-bench.sider1*") == 250.0
    assert asked == [
        ("POST", "/logs-bench.sider1*/_flush"),
        ("POST", "/logs-bench.sider1*/_forcemerge"),
        ("POST", "/logs-bench.sider1*/_refresh"),
        ("GET", "/logs-bench.sider1*/_stats/docs"),
    ]
    stats["_all"]["primaries"]["docs"]["count"] = 0
    assert services.disk_per_doc("logs-bench.sider1*") is None
    r, other = _result(shippers.LOGPIPE, 0.05), _result(shippers.FLUENT_BIT, 0.05)
    r.disk, other.disk = 250.0, 100.0
    assert sidebyside.row(r)[sidebyside.HEADER.index("disk bytes/doc, one segment")] == "250"
    assert (
        sidebyside.row(_result(shippers.LOGSPOUT, 0.05))[
            sidebyside.HEADER.index("disk bytes/doc, one segment")
        ]
        == "-"
    )
    assert "disk per doc **2.50**" in sidebyside.ratios([r, other])[0]


def test_the_nodes_thread_times_are_the_runs_alone_less_merges_throttled_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def stats(indexing: int, merges: int, throttled: int, refresh: int) -> dict[str, Any]:
        total = {
            "indexing": {"index_time_in_millis": indexing},
            "merges": {"total_time_in_millis": merges, "total_throttled_time_in_millis": throttled},
            "refresh": {"total_time_in_millis": refresh},
        }
        return {"_all": {"total": total}}

    answers = iter([stats(100, 0, 0, 20), stats(2100, 900, 400, 520)])
    asked: list[str] = []

    def es(method: str, path: str) -> dict[str, Any]:
        asked.append(path)
        return next(answers)

    monkeypatch.setattr(services, "es", es)
    ship = cast(shippers.Shipper, types.SimpleNamespace(index="logs-bench.sider1*"))
    before = services.thread_times("logs-bench.sider1*")
    r = _result(shippers.LOGPIPE, 0.05)
    r.threads = sidebyside.threads_since(ship, before)
    assert r.threads == {"indexing": 2.0, "merges": 0.5, "refreshes": 0.5}
    assert asked[0].startswith("/logs-bench.sider1*/_stats/indexing,merge,refresh?")
    row = sidebyside.row(r)
    assert row[sidebyside.HEADER.index("ES thread-µs/doc: indexing / merges / refreshes")] == (
        "2000.0 / 500.0 / 500.0"
    )
    other = _result(shippers.FLUENT_BIT, 0.05)
    other.threads = {"indexing": 1.0, "merges": 0.0, "refreshes": 0.2}
    assert "ES indexing thread time per doc **2.00**" in sidebyside.ratios([r, other])[0]


def test_live_ratios_leave_out_lines_per_second_which_the_containers_set() -> None:
    results = [_result(shippers.LOGPIPE, 0.04), _result(shippers.FLUENT_BIT, 0.05)]
    live = sidebyside.ratios(results, live=True)[0]
    assert "lines/s" not in live
    assert "ES CPU per doc **0.80**" in live
    assert "lines/s **1.00**" in sidebyside.ratios(results)[0]


@pytest.mark.parametrize("given", ["0", "-5", "soon", "nan"])
def test_a_live_rate_or_length_must_be_a_number_above_zero(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="above 0"):
        sidebyside._above_zero(given)
    assert sidebyside._above_zero("2500") == 2500.0


def _refused(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    main: Callable[[], None],
    *argv: str,
) -> str:
    """What a benchmark's command line `argv` is refused with (it exits 2)."""
    monkeypatch.setattr("sys.argv", ["bench", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_a_live_length_without_live_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    said = _refused(monkeypatch, capsys, sidebyside.main, "--seconds", "5")
    assert "give --live too" in said


def test_existing_indices_are_refused_for_a_live_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    said = _refused(monkeypatch, capsys, sidebyside.main, "--live", "1000", "--existing")
    assert "--existing is an option of a drain" in said


class _Window:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def stop(self) -> float:
        self.calls.append("cpu stopped")
        return 1.0


class _Peaks:
    def stop(self) -> dict[str, int]:
        return {"dockerd": 1, "elasticsearch": 2}


class _Run:
    name = "a peer"  # logpipe's runs also count gap documents
    index = "bench-x"


@pytest.mark.parametrize(
    ("refresh_first", "order"),
    [
        (True, ["refresh", "idle", "cpu stopped", "count"]),
        (False, ["idle", "cpu stopped", "refresh", "count"]),
    ],
)
def test_a_search_idle_index_is_refreshed_inside_the_cpu_window(
    monkeypatch: pytest.MonkeyPatch, refresh_first: bool, order: list[str]
) -> None:
    """What arrived since a search-idle index's last segment is written by the next
    search's refresh: with --existing that work is counted (refreshed before the wait for
    idle, which ends the window); an index refreshed every second leaves little to it."""
    calls: list[str] = []
    monkeypatch.setattr(services, "refresh", lambda index: calls.append("refresh"))

    def count(index: str) -> int:
        calls.append("count")
        return 7

    def wait_idle(*args: object) -> float:
        calls.append("idle")
        return 0.5

    monkeypatch.setattr(services, "count", count)
    monkeypatch.setattr(sidebyside, "wait_idle", wait_idle)
    out = sidebyside.Result(shippers.LOGPIPE, 1, 7, arrived=7, seconds=1.0, load=0.1)
    window = _Window(calls)
    done = sidebyside.settled(_Run(), out, window, 0.1, 0.0, _Peaks(), refresh_first)  # type: ignore[arg-type]
    assert calls == order
    assert done.docs == 7
    assert done.cpu["elasticsearch"] == 1.0


@pytest.mark.parametrize(
    ("copies", "idle"),
    [
        ([[{"search_idle": True}], [{"search_idle": True}]], True),
        ([[{"search_idle": True}], [{"search_idle": False}]], False),
        ([], False),
    ],
)
def test_an_index_is_search_idle_when_every_shard_is(
    monkeypatch: pytest.MonkeyPatch, copies: list[list[dict[str, bool]]], idle: bool
) -> None:
    shards = {str(i): c for i, c in enumerate(copies)}
    answer = {"indices": {"bench-x": {"shards": shards}}} if copies else {}
    monkeypatch.setattr(services, "es", lambda method, path: answer)
    assert services.search_idle("bench-x") is idle


def test_searches_count_the_index_while_the_run_lasts_and_not_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counted: list[str] = []

    def count(index: str) -> int:
        counted.append(index)
        return 0

    monkeypatch.setattr(services, "count", count)
    with sidebyside.Searches("bench-x", 0.01) as searches:
        deadline = time.monotonic() + 5
        while len(counted) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    after = len(counted)
    time.sleep(0.05)
    assert after >= 3
    assert len(counted) == after == searches.made
    assert set(counted) == {"bench-x"}
    with sidebyside.Searches(None, 0.01), sidebyside.Searches("bench-x", None):
        time.sleep(0.05)
    assert len(counted) == after  # no index (logspout) or no period: no searches


def test_the_code_measured_has_its_bytecode_written(tmp_path: Path) -> None:
    """As in the image (compileall): a start must not compile the modules again."""
    for package in ("collector", "shipper", "logpipe", "bench"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "mod.py").write_text("VALUE = 1\n")
    services._compiled(tmp_path)
    for package in ("collector", "shipper", "logpipe", "bench"):
        assert list((tmp_path / package / "__pycache__").glob("mod.*.pyc"))


def test_the_drain_order_sends_containers_a_group_at_a_time_each_from_its_start() -> None:
    """bench.doc_cost's drain-order: 6 containers' lines in time order (round robin),
    sent 4 containers at a time, 2 lines of each in turn."""
    docs = [Doc(f"{n}", "s", {"container": {"id": f"c{n % 6}"}, "n": n}) for n in range(24)]
    order = doc_cost.VARIANTS["drain-order"].order
    assert order is not None
    sent = doc_cost.drain_order(docs, at_once=4, chunk=2)
    assert sorted(d.id for d in sent) == sorted(d.id for d in docs)  # each once
    assert [d.body["n"] for d in sent[:8]] == [0, 6, 1, 7, 2, 8, 3, 9]
    assert [d.body["n"] for d in sent[16:20]] == [4, 10, 5, 11]  # the next group from its start
    # The variant's chunk (1,000 lines) holds each container's 4: one container after another.
    assert [d.body["n"] for d in order(docs)][:8] == [0, 6, 12, 18, 1, 7, 13, 19]


def test_the_machine_ticks_count_idle_iowait_and_steal_as_not_busy() -> None:
    line = "cpu  100 20 30 1000 50 5 5 40 7 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n"
    assert procstat.machine_ticks(line) == (160, 1250)
    assert procstat.machine_ticks("cpu  10 0 5 80\n") == (15, 95)  # older kernels: fewer


def _ticks(busy_per_window: list[int]) -> Callable[[], tuple[int, int]]:
    """A machine of os.cpu_count() cores, 100 ticks a core per window, this busy in each."""
    cores = os.cpu_count() or 1
    readings = [(0, 0)]
    for busy in busy_per_window:
        readings.append((readings[-1][0] + busy, readings[-1][1] + 100 * cores))
    it = iter(readings)
    return lambda: next(it)


def test_the_wait_for_a_quiet_machine_ends_at_the_first_quiet_window() -> None:
    slept: list[float] = []
    # 0.9, then 0.5 of a core busy, then 0.1: quiet after the third window
    waited = procstat.wait_quiet(0.25, 2.0, 60.0, _ticks([90, 50, 10, 90]), slept.append)
    assert waited == 6.0
    assert slept == [2.0, 2.0, 2.0]


def test_a_machine_that_stays_busy_is_waited_on_until_the_cap_and_said_so() -> None:
    slept: list[float] = []
    assert procstat.wait_quiet(0.25, 2.0, 6.0, _ticks([90, 90, 90, 90]), slept.append) is None
    assert slept == [2.0, 2.0, 2.0]


def test_the_quiet_note_names_the_drains_whose_machine_stayed_busy() -> None:
    quiet, loud = _result(shippers.LOGPIPE, 0.05), _result(shippers.FLUENT_BIT, 0.05)
    quiet.quiet, loud.quiet = 4.0, None
    note = sidebyside.quiet_note([quiet, loud])
    assert "waited 4-4 s" in note
    assert "not quiet within 60 s before: Fluent Bit round 1" in note
    assert "not quiet" not in sidebyside.quiet_note([quiet])
    assert "never quiet" in sidebyside.quiet_note([loud])


def test_the_stolen_share_is_steal_over_all_ticks_between_the_two_readings() -> None:
    before = "cpu  100 0 50 800 10 0 0 40\n"
    after = "cpu  300 0 100 1350 10 0 0 140\n"  # 900 ticks more, 100 of them stolen
    assert procstat.machine_steal(before) == (40, 1000)
    stolen = sidebyside.stolen_since(procstat.machine_steal(before), procstat.machine_steal(after))
    assert stolen == pytest.approx(100 / 900)
    r = _result(shippers.LOGPIPE, 0.05)
    assert sidebyside.row(r)[-1] == "-"  # not measured
    r.stolen = stolen
    assert sidebyside.row(r)[-1] == "11.1"
    assert sidebyside.HEADER[-1] == "CPU stolen, %"


def test_a_cold_node_gets_a_warm_up_round_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def es(method: str, path: str, timeout: float = 60) -> Any:
        asked.append(path)
        one = {"indices": {"indexing": {"index_total": 400_000}}}
        return {"nodes": {"a": one, "b": one}}

    monkeypatch.setattr(services, "es", es)
    assert services.node_indexed() == 800_000
    assert asked == ["/_nodes/_local/stats/indices/indexing?filter_path=nodes.*.indices"]
    assert sidebyside.warmup_rounds(argparse.Namespace(warmup=None)) == 1
    assert sidebyside.warmup_rounds(argparse.Namespace(warmup=0)) == 0
    assert sidebyside.warmup_rounds(argparse.Namespace(warmup=2)) == 2
    monkeypatch.setattr(services, "node_indexed", lambda: sidebyside.WARM_DOCS)
    assert sidebyside.warmup_rounds(argparse.Namespace(warmup=None)) == 0
    with pytest.raises(
        argparse.ArgumentTypeError, match="'-1' is not a whole number of at least 0"
    ):
        sidebyside._not_negative("-1")
    with pytest.raises(argparse.ArgumentTypeError, match="'0' is not a whole number of at least 1"):
        sidebyside._positive("0")
    assert sidebyside._not_negative("0") == 0


def test_the_drain_notes_say_why_warm_up_rounds_ran() -> None:
    def notes(warmup: int | None, warmed: int) -> list[str]:
        args = argparse.Namespace(
            warmup=warmup, warmed=warmed, containers=1, lines=1, repeat=1, existing=False
        )
        return [n for n in sidebyside._drain_notes(args, 100.0, ["logpipe"]) if "warm-up" in n]

    assert notes(None, 0) == []
    assert notes(0, 0) == []
    [cold] = notes(None, 1)
    assert "1 warm-up round(s)" in cold
    assert "fewer than 1,000,000 documents" in cold
    [asked] = notes(2, 2)
    assert "2 warm-up round(s)" in asked
    assert "(--warmup 2)" in asked


def test_the_drain_notes_say_how_many_streams_and_shards_the_node_held() -> None:
    """A logpipe round's collector lists every logpipe stream on the node at its start,
    and every shard on the node weighs on each document: the notes say how many of each
    there were."""
    args = argparse.Namespace(
        warmup=None,
        warmed=0,
        containers=1,
        lines=1,
        repeat=1,
        existing=False,
        streams=1619,
        shards=2277,
    )
    notes = sidebyside._drain_notes(args, 100.0, ["logpipe"])
    [streams] = [n for n in notes if "data streams" in n]
    assert streams.startswith("the node held 1,619 of logpipe's data streams")
    [shards] = [n for n in notes if "shards" in n and "data streams" not in n]
    assert shards.startswith("the node held 2,277 shards")


@pytest.mark.parametrize("given", ["1999", "0", "-5", "many", "3.5", ""])
def test_read_cost_refuses_fewer_documents_than_two_pages_or_no_number(given: str) -> None:
    """bench.read_cost's --docs is a whole number of at least two tail pages."""
    with pytest.raises(argparse.ArgumentTypeError, match="is not a whole number of at least 2,000"):
        at_least(read_cost.MIN_DOCS)(given)


def test_read_cost_takes_numbers_with_separators_and_rounds_from_one() -> None:
    """Thousands may be written with commas or underscores; one round is enough."""
    docs = at_least(read_cost.MIN_DOCS)
    assert docs("300,000") == docs("300_000") == docs("300000") == 300_000
    assert at_least(1)("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match="'0' is not a whole number of at least 1"):
        at_least(1)("0")


def test_read_cost_query_bodies_read_what_each_shape_says() -> None:
    """Discover and the rare word read the newest documents whole; the aggregation none."""
    discover = read_cost.discover_body()
    assert discover["sort"] == [{"@timestamp": {"order": "desc"}}]
    assert discover["size"] == 500
    assert "_source" not in discover
    rare = read_cost.rare_body("warn")
    assert rare["query"] == {"match": {"message": "warn"}}
    assert rare["size"] == 100
    assert rare["sort"] == discover["sort"]
    one = read_cost.discover_one_body("bench-r-3")
    assert one["query"] == {"bool": {"filter": [{"term": {"container.name": "bench-r-3"}}]}}
    assert (one["sort"], one["size"]) == (discover["sort"], 500)
    terms = read_cost.terms_body()
    assert terms["size"] == 0
    assert terms["aggs"]["names"]["terms"]["field"] == "container.name"


def test_read_cost_tail_pages_follow_the_read_apis_position() -> None:
    """The tail's first page has no position; the next ones read after the last key and
    leave out the ids read at it, sorted by the tail's key, a page at a time."""
    first = read_cost.tail_body(None)
    assert first["sort"] == [{"event.ingested": {"order": "asc"}}, {"@timestamp": {"order": "asc"}}]
    assert first["size"] == 1000
    assert first["query"]["bool"]["filter"] == []
    position = Position((1_700_000_000_000, 1_700_000_000_000_000_001), ("abc",))
    later = read_cost.tail_body(position)
    [after] = later["query"]["bool"]["filter"]
    assert after == cursor.after(position, cursor.TAIL_KEY, "asc")
    assert {"ids": {"values": ["abc"]}} in after["bool"]["should"][-1]["bool"]["must_not"]


def test_read_cost_picks_the_word_in_the_number_of_messages_nearest_the_wish() -> None:
    """Each message counts a word once; ties go to the word first in the alphabet."""
    messages = ["warn warn disk", "disk full", "disk full", "WARN cache", "a0f9 cache"]
    assert read_cost.rare_word(messages, 1) == ("a0f9", 1)
    assert read_cost.rare_word(messages, 2) == ("cache", 2)
    assert read_cost.rare_word(messages, 3) == ("disk", 3)
    with pytest.raises(ValueError, match="no message holds a word"):
        read_cost.rare_word(["ok", "1234"], 1)


def test_read_cost_template_is_the_collectors_for_the_runs_plain_indices() -> None:
    """The run's template: the collector's mappings and the codec asked, no data stream."""
    body = read_cost.template("r1", "default")
    assert body["index_patterns"] == ["bench-readr1-default-*"]
    assert body["template"]["settings"]["codec"] == "default"
    assert "data_stream" not in body
    assert body["template"]["mappings"] == templates.index_template()["template"]["mappings"]
    assert read_cost.template("r1", "best_compression")["template"]["settings"]["codec"] == (
        "best_compression"
    )


def _windows(*net: float, docs: int = 500) -> list[read_cost.Window]:
    return [read_cost.Window(n, n + 1, docs) for n in net]


def test_read_cost_rows_give_medians_ranges_per_document_and_the_codecs_ratio() -> None:
    """Per shape the median and range of each codec, µs per document returned (none for
    the aggregation), best_compression / LZ4 of the medians and of each round's pair."""
    results: read_cost.Results = {
        "discover": {"best_compression": _windows(50, 60, 40), "default": _windows(10, 12, 20)},
        "discover-one": {"best_compression": _windows(9, 9, 9), "default": _windows(3, 3, 3)},
        "rare": {"best_compression": _windows(4, 4, 4, docs=100), "default": _windows(2, 2, 2)},
        "terms": {
            "best_compression": _windows(3, 3, 3, docs=0),
            "default": _windows(3, 3, 3, docs=0),
        },
        "tail": {
            "best_compression": _windows(600, 600, 600, docs=60_000),
            "default": _windows(0, 0, 0),
        },
    }
    rows = {row[0]: row for row in read_cost.rows(results)}
    assert len(rows["discover"]) == len(read_cost.HEADER)
    assert rows["discover"][3:8] == [
        "**50.0** (40.0-60.0)",
        "**12.0** (10.0-20.0)",
        "100.0",
        "24.0",
        "**4.17** (2.00-5.00)",
    ]
    assert rows["discover-one"][7] == "**3.00** (3.00-3.00)"
    assert rows["rare"][5] == "40.0"
    assert rows["rare"][7] == "**2.00** (2.00-2.00)"
    assert rows["terms"][5:8] == ["-", "-", "**1.00** (1.00-1.00)"]
    assert rows["tail"][7] == "-"  # LZ4 measured nothing: no ratio, not a division by zero


def test_read_cost_counts_the_nodes_cpu_per_query_less_its_idle_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A window runs the read at least as often as asked and divides the node's CPU by
    the reads; documents per read are the average returned."""

    class Cpu:
        def __init__(self, pids: list[int]) -> None:
            pass

        def start(self) -> None:
            pass

        def stop(self) -> float:
            return 0.3

    monkeypatch.setattr(procstat, "CpuWindow", Cpu)
    returned = iter([500, 500, 499])
    got = read_cost.measure([1], 0.0, 3, lambda: next(returned), seconds=0)
    assert got.net_ms == pytest.approx(100.0)
    assert got.raw_ms == pytest.approx(100.0)
    assert got.docs == 499
    assert got.us_per_doc == pytest.approx(100_000 / 499)
    assert read_cost.Window(5.0, 5.0, 0).us_per_doc is None


@pytest.mark.parametrize(
    ("given", "option"),
    [("max-size=1m", ("max-size", "1m")), (" compress = true", ("compress", "true"))],
)
def test_a_log_option_is_one_that_rotates_logs_as_key_and_value(
    given: str, option: tuple[str, str]
) -> None:
    assert logdriver.option(given) == option


@pytest.mark.parametrize("given", ["max-size", "max-size=", "mode=non-blocking", "=1m"])
def test_a_log_option_without_a_value_or_that_rotates_nothing_is_refused(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="max-size, max-file, compress"):
        logdriver.option(given)


def _log_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    logdriver.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_dockerds_default_logs_are_left_to_dockerd_and_others_are_asked_for() -> None:
    assert logdriver.from_args(_log_args()).log_config() is None
    local = logdriver.from_args(_log_args("--log-driver", "local", "--log-opt", "max-file=20"))
    config = local.log_config()
    assert config is not None
    assert (config.type, config.config) == ("local", {"max-file": "20"})
    rotating = logdriver.from_args(_log_args("--log-opt", "max-size=1m"))
    assert not rotating.default
    assert rotating.log_config() is not None


def test_a_log_option_given_twice_is_refused() -> None:
    args = _log_args("--log-opt", "max-size=1m", "--log-opt", "max-size=2m")
    with pytest.raises(SystemExit, match="max-size given more than once"):
        logdriver.from_args(args)


def test_reading_through_dockerd_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit, match="needs root and unshare"):
        logdriver.from_args(_log_args("--through-dockerd"))


def test_the_shipper_runs_as_given_unless_it_must_read_through_dockerd(tmp_path: Path) -> None:
    env = {"LOGPIPE_TOKEN": "t"}
    assert logdriver.LogSetup().shipper(["python"], env, tmp_path, "/d") == (["python"], env)
    command, through = logdriver.LogSetup(through_dockerd=True).shipper(
        ["python", "-m", "shipper"], env, tmp_path, "/d"
    )
    assert through == {"LOGPIPE_TOKEN": "t", "LOGPIPE_FOLLOW_FILES": "false"}
    assert command[0] == "unshare"
    assert command[-5:] == [
        str(tmp_path / "no-log-files"),
        "/d/containers",
        "python",
        "-m",
        "shipper",
    ]


@pytest.mark.skipif(
    os.geteuid() != 0 or not __import__("shutil").which("unshare"), reason="needs root, unshare"
)
def test_through_dockerd_the_shipper_finds_dockerds_containers_folder_empty(
    tmp_path: Path,
) -> None:
    import subprocess

    logs = tmp_path / "root" / "containers"
    logs.mkdir(parents=True)
    (logs / "abc").write_text("a container's folder")
    command, _ = logdriver.LogSetup(through_dockerd=True).shipper(
        ["ls", "-A", str(logs)], {}, tmp_path, str(tmp_path / "root")
    )
    seen = subprocess.run(command, capture_output=True, text=True, check=True)
    assert seen.stdout == ""
    assert (logs / "abc").exists()  # hidden from that process only


def test_the_ledger_counts_the_lines_of_every_whole_chunk_name_written_down(
    tmp_path: Path,
) -> None:
    ledger = containers.Ledger(tmp_path / "w")
    ledger.sizes.update(r5=5, r20=20)
    (ledger.folder / "n0").write_text("r5\nr20\nr2")  # the last name is being written
    (ledger.folder / "n1").write_text("r5\n")
    assert ledger.lines() == 30
    with (ledger.folder / "n0").open("a") as f:
        f.write("0\nr5\n")
    assert ledger.lines() == 55
    (ledger.folder / "n2").write_text("r7\n")
    with pytest.raises(RuntimeError, match="never written: 'r7'"):
        ledger.lines()


def test_containers_with_a_ledger_write_down_each_chunk_they_print() -> None:
    assert "echo $s >> /w/n$N" in containers.loop(0.25, ledger=True)
    assert "/w/" not in containers.loop(0.25)


def test_a_fleet_counts_rotating_logs_by_its_ledger_and_default_ones_in_dockerds(
    tmp_path: Path,
) -> None:
    rotating = logdriver.LogSetup(options=(("max-size", "1m"),))
    fleet = containers.Fleet(cast(Any, None), "r", 2, tmp_path / "a", logs=rotating)
    name, _ = fleet.rate_set(1000)
    assert fleet.ledger is not None
    (fleet.ledger.folder / "n0").write_text(f"{name}\n{name}\n")
    assert fleet.printed() == 2 * fleet.ledger.sizes[name]
    assert containers.Fleet(cast(Any, None), "r", 2, tmp_path / "b").ledger is None


def test_rotating_logs_leave_fluent_bit_out_and_default_ones_run_every_shipper() -> None:
    assert sidebyside.runnable(logdriver.LogSetup()) == ["logpipe", "Fluent Bit", "logspout"]
    local = logdriver.LogSetup(driver="local")
    assert sidebyside.runnable(local) == ["logpipe", "logspout"]


def test_fluent_bit_named_with_rotating_logs_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--only", "fluent-bit", "--log-driver", "local"]
    said = _refused(monkeypatch, capsys, sidebyside.main, *argv)
    assert "Fluent Bit tails json-file logs" in said


def test_the_pipeline_refuses_a_log_option_it_cannot_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    said = _refused(monkeypatch, capsys, pipeline.main, "--log-opt", "max-size")
    assert "give KEY=VALUE" in said


def test_gap_documents_are_not_taken_for_duplicates() -> None:
    r = sidebyside.Result("logpipe", 1, 100, docs=103, gaps=2)
    assert sidebyside._docs(r) == "103 (2 gap documents) (1 duplicates)"
    assert sidebyside._docs(sidebyside.Result("logpipe", 1, 100, docs=100)) == "100"


def test_the_notes_say_how_the_logs_were_read_what_was_unpacked_and_the_gaps() -> None:
    assert sidebyside.log_notes(logdriver.LogSetup(), []) == []
    through = logdriver.LogSetup(through_dockerd=True)
    assert "through dockerd" in sidebyside.log_notes(through, [])[0]
    local = logdriver.LogSetup(driver="local", options=(("max-size", "1m"),))
    rounds = [
        sidebyside.Result("logpipe", 1, 10, unpacked=4, gaps=0),
        sidebyside.Result("logspout", 1, 10),
        sidebyside.Result("logpipe", 2, 10, unpacked=None, gaps=3),
    ]
    said = sidebyside.log_notes(local, rounds)
    assert "`--log-driver local --log-opt max-size=1m`" in said[0]
    assert "files where it could" in said[0]
    assert said[1].endswith(
        "unpacked (`logpipe_shipper_logfile_unpacked_total`) 4, ?; gap documents 0, 3"
    )
    steps = [pipeline.Step(1000, unpacked=2), pipeline.Step(5000, unpacked=0)]
    assert pipeline.log_notes(local, steps, 7)[1].endswith(
        "per step: 2, 0; gap documents in the run's stream at its end: 7"
    )


@pytest.mark.parametrize("argv", [["--lines", "0"], ["--rounds", "0"], ["--through-dockerd"]])
def test_a_restart_run_refuses_what_it_cannot_measure(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.restart import parse

    with pytest.raises(SystemExit) as stop:
        parse(argv)
    assert stop.value.code == 2
    assert ("--through-dockerd" if argv[0] == "--through-dockerd" else "above zero") in (
        capsys.readouterr().err
    )
