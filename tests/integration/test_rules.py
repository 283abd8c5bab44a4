"""Parsing rules on the real node: typed fields sum in Elasticsearch, failures tagged,
drops counted, bad rule files refused, edits applied while running.

A real shipper and collector (started with a rules file, after `setup` with that file),
busybox containers printing access-log lines, and the real Elasticsearch.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from elasticsearch import Elasticsearch

from tests.conftest import ES_URL, Pipeline, wait_until
from tests.programs import clean_env, one_line_error

# `setup` with the rules' fields rewrites the shared node's logpipe template, which every
# other test's new streams take their mappings from, and another test's template could
# replace it before these streams are made.
pytestmark = [pytest.mark.integration, pytest.mark.alone]

# The access-log rule of docs/rules.md, which the shipped dashboard panel sums.
RULES = """\
rules:
  - name: healthz
    match: {image: "busybox*"}
    regex: '"GET /healthz '
    drop: true
  - name: web_access
    match: {image: "busybox*"}
    dissect: '%{client} %{} %{user} [%{time}] "%{request}" %{status} %{bytes} %{request_time}'
    fields:
      client: ip
      status: long
      bytes: long
      request_time: double
    timestamp: {field: time, format: "%d/%b/%Y:%H:%M:%S %z"}
"""
# Log lines only, not the containers' lifecycle events.
LINES = {"exists": {"field": "logpipe.parser"}}
TIMES = [0.25, 0.5, 1.25, 2.0]


def _line(time: float | str, path: str = "/cart", status: str = "200") -> str:
    # The line's own time is now: within the allowed skew of Docker's.
    now = "$(date -u +%d/%b/%Y:%H:%M:%S) +0000"
    return f'10.1.2.3 - ann [{now}] "GET {path} HTTP/1.1" {status} 512 {time}'


def _collector(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", "--config", str(config), *args],
        env=clean_env(LOGPIPE_ES_URL=ES_URL),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def ruled(pipeline_factory: Callable[..., Pipeline], tmp_path: Path) -> tuple[Pipeline, Path]:
    """A pipeline whose collector runs with RULES, after `setup` installed their mapping."""
    config = tmp_path / "collector.yaml"
    config.write_text(RULES)
    setup = _collector(tmp_path, config, "setup", "--wait", "60")
    assert setup.returncode == 0, setup.stderr
    return pipeline_factory(collector_config=str(config)).start(), config


def _run(client: docker.DockerClient, p: Pipeline, lines: list[str], **labels: str) -> None:
    script = "; ".join(f'echo "{line.replace(chr(34), chr(92) + chr(34))}"' for line in lines)
    client.containers.run(
        "busybox:latest",
        ["sh", "-c", script],
        detach=True,
        network_mode="none",
        labels={**p.labels, **labels},
    )


def _metric(p: Pipeline, name: str, port: int | None = None) -> float:
    url = f"http://127.0.0.1:{port or p.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_typed_field_sums_and_averages_as_a_number(
    ruled: tuple[Pipeline, Path], docker_client: docker.DockerClient, es: Elasticsearch
) -> None:
    """A Lens-style sum and average over fields.request_time give the numbers printed."""
    p, _ = ruled
    _run(docker_client, p, [_line(t) for t in TIMES])
    p.wait_count(len(TIMES), {"exists": {"field": "fields.request_time"}})
    es.indices.refresh(index="logs-*")
    aggs = {
        "total": {"sum": {"field": "fields.request_time"}},
        "mean": {"avg": {"field": "fields.request_time"}},
        "by_status": {"terms": {"field": "fields.status"}},
    }
    resp = es.search(index="logs-*", query=p.query(), size=0, aggs=aggs)
    assert resp["aggregations"]["total"]["value"] == pytest.approx(sum(TIMES))
    assert resp["aggregations"]["mean"]["value"] == pytest.approx(sum(TIMES) / len(TIMES))
    assert resp["aggregations"]["by_status"]["buckets"][0] == {"key": 200, "doc_count": 4}
    stream = p.docs()[0]["data_stream"]
    name = f"logs-{stream['dataset']}-{stream['namespace']}"
    mapping = es.indices.get_mapping(index=name).body
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["fields.request_time"]["type"] == "double"
    assert props["fields.client"]["type"] == "ip"


def test_type_failure_is_tagged_and_kept_and_drops_are_counted(
    ruled: tuple[Pipeline, Path], docker_client: docker.DockerClient
) -> None:
    """A bad value stays as text and tags its document; health checks are dropped, counted."""
    p, _ = ruled
    lines = [_line("0.5"), _line("slow", status="2OO"), _line("0.1", path="/healthz")] * 2
    _run(docker_client, p, lines)
    p.wait_count(4, LINES)
    wait_until(lambda: _metric(p, 'logpipe_collector_rule_dropped_total{rule="healthz"}') == 2)
    docs = p.docs(LINES)
    assert len(docs) == 4
    failed = [d for d in docs if "rule_failure" in d.get("tags", [])]
    assert len(failed) == 2
    assert failed[0]["attributes"]["request_time"] == "slow"
    assert failed[0]["attributes"]["status"] == "2OO"
    assert any("is not a long" in reason for reason in failed[0]["logpipe"]["rule_failure"])
    assert failed[0]["fields"]["bytes"] == 512
    assert _metric(p, 'logpipe_collector_rule_failures_total{rule="web_access"}') == 2
    # The shipper had every batch accepted: no failure, no gap, nothing left to resend.
    shipper = p.status_port
    assert _metric(p, "logpipe_shipper_batches_acked_total", shipper) >= 1
    assert _metric(p, "logpipe_shipper_batches_failed_total", shipper) == 0
    assert _metric(p, "logpipe_shipper_gaps_total", shipper) == 0


def test_an_edit_of_the_rules_file_applies_while_running(
    ruled: tuple[Pipeline, Path], docker_client: docker.DockerClient
) -> None:
    """Adding a rule to the file: lines printed after the edit are parsed by it. A setting
    a reload does not apply, changed in the same edit, is named in a warning."""
    p, config = ruled
    config.write_text(
        "indexed_attributes: [user_id]\n"
        + RULES
        + "  - name: kv\n    regex: 'took=(?P<took_ms>\\d+)'\n    fields: {took_ms: long}\n"
    )
    wait_until(lambda: "parsing rules reloaded" in p.collector.output(), 30)
    wait_until(lambda: "a reload does not apply: indexed_attributes;" in p.collector.output(), 30)
    # `setup` did not map the new field yet: the collector says so, and what to run.
    wait_until(lambda: "fields.took_ms (long)" in p.collector.output(), 30)
    assert "run `logpipe-collector setup`" in p.collector.output()
    _run(docker_client, p, ["job done took=42"])
    p.wait_count(1, LINES)
    assert p.docs(LINES)[0]["fields"] == {"took_ms": 42}


@pytest.mark.parametrize("command", [["serve"], ["setup", "--wait", "1"], ["rules", "test"]])
def test_two_types_for_one_field_stop_every_command_naming_both_rules(
    tmp_path: Path, command: list[str]
) -> None:
    """A field declared long by one rule and double by another is refused at load."""
    config = tmp_path / "collector.yaml"
    config.write_text(
        RULES + "  - name: timing\n    regex: '(?P<bytes>[0-9.]+)'\n    fields: {bytes: double}\n"
    )
    proc = _collector(tmp_path, config, *command)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "field 'bytes' is long in rule 'web_access' and double in rule 'timing'" in line
