"""Per-container hints from logpipe.* labels, on real containers, checked in the documents."""

from __future__ import annotations

import datetime
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import Pipeline, wait_until
from tests.integration.delivered import run, shipper_logs

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parent.parent / "corpus"


def _corpus(prefix: str) -> list[str]:
    entries = [json.loads(x) for x in (CORPUS / "multiline.jsonl").read_text().splitlines()]
    return str(next(e for e in entries if e.startswith(prefix))).split("\n")


def _print(lines: list[str], then: str = "") -> str:
    """A script printing `lines` on stdout, then running `then`."""
    return (
        "printf '%s\\n' " + " ".join(shlex.quote(x) for x in lines) + (f"; {then}" if then else "")
    )


@pytest.fixture
def p(pipeline_factory: Callable[..., Pipeline]) -> Pipeline:
    """A started pipeline."""
    return pipeline_factory().start()


def _lines(p: Pipeline, container_id: str, n: int) -> list[dict[str, Any]]:
    """Wait for `n` log documents of the container; them, oldest first."""
    query = {
        "bool": {
            "filter": [{"term": {"container.id": container_id}}],
            "must_not": [{"term": {"event.kind": "event"}}],
        }
    }
    wait_until(lambda: p.count(query) >= n, 60)
    docs = p.docs(query)
    assert len(docs) == n, [d["message"] for d in docs]
    return docs


def test_java_python_go_and_node_stack_traces_become_one_document_each(
    p: Pipeline, docker_client: docker.DockerClient
) -> None:
    """logpipe.multiline=java|python|go|nodejs: a trace (Node: an uncaught exception's
    report, blank lines inside) is one error (Go: fatal) document, apart."""
    traces = {
        "python": (
            _corpus('Traceback (most recent call last):\n  File "/app/worker/fetch'),
            "error",
        ),
        "java": (_corpus("java.lang.IllegalState"), "error"),
        "go": (_corpus("panic: close of closed channel"), "fatal"),
        "nodejs": (_corpus("node:internal/fs/utils:347"), "error"),
    }
    containers = {
        lang: run(
            docker_client,
            p,
            # The container's exit sends the last event, so no timeout may split a trace on
            # a loaded machine; it exits once its lines have surely been read.
            _print(["INFO starting worker", *trace, "INFO next"], then="sleep 3"),
            labels={"logpipe.multiline": lang, "logpipe.multiline.timeout": "60s"},
        )
        for lang, (trace, _) in traces.items()
    }
    for lang, c in containers.items():
        trace, level = traces[lang]
        before, joined, after = _lines(p, c.id, 3)
        assert before["message"] == "INFO starting worker"
        assert joined["message"] == "\n".join(trace)
        assert joined["log"]["level"] == level
        assert joined["logpipe"]["lines"] == len(trace)
        assert "multiline" in joined["tags"]
        assert after["message"] == "INFO next"
        assert [before["log"]["level"], after["log"]["level"]] == ["info", "info"]
        assert before["@timestamp"] <= joined["@timestamp"] <= after["@timestamp"]


def test_node_errors_with_messages_of_several_lines_are_one_document_each(
    p: Pipeline, docker_client: docker.DockerClient
) -> None:
    """logpipe.multiline=node: errors whose messages run on over unindented lines (as
    Node v20 printed them) are one document each; `Error: x` printed as a plain line and
    the lines under it, which no frame follows, stay one document per line."""
    errors = [
        _corpus("Error: connect failed\n  host: db"),  # console.error(err)
        _corpus("Oops [Error]: bad"),  # an Error subclass
        _corpus("node:internal/process/promises:389"),  # a rejected promise, uncaught
    ]
    plain = ["Error: x", "retrying in 5s", "still waiting"]
    lines = ["INFO starting", *errors[0], *errors[1], *plain, "INFO next", *errors[2]]
    c = run(
        docker_client,
        p,
        _print(lines, then="sleep 3"),
        labels={"logpipe.multiline": "nodejs", "logpipe.multiline.timeout": "60s"},
    )
    docs = _lines(p, c.id, 8)
    expected = ["INFO starting", *("\n".join(e) for e in errors[:2]), *plain, "INFO next"]
    assert [d["message"] for d in docs] == [*expected, "\n".join(errors[2])]
    sizes = [len(e) for e in errors]
    assert [d["logpipe"].get("lines", 1) for d in docs] == [1, *sizes[:2], 1, 1, 1, 1, sizes[2]]
    assert [d["log"]["level"] for d in docs if d["logpipe"].get("lines", 1) > 1] == ["error"] * 3


def test_node_errors_of_any_name_and_pm2_s_reports_are_one_document_each(
    p: Pipeline, docker_client: docker.DockerClient
) -> None:
    """logpipe.multiline=node: an error named `Timeout` with a message of two lines (as
    Node v20 printed it), pm2's report of a rejected promise (as pm2 7 printed it in
    cluster mode), a `Timeout` under NestJS's ERROR line, and the plain lines between
    them are one document each, the errors at level error."""
    named = _corpus("Timeout: took too long")
    pm2 = _corpus("You have triggered an unhandledRejection")
    nest = _corpus("[Nest] 1  - 12/05/2026, 5:55:47 PM   ERROR [ExceptionsHandler] took")
    plain = ["Status: degraded", "retrying in 5s"]
    lines = ["INFO starting", *named, *plain, *pm2, *nest, "INFO next"]
    c = run(
        docker_client,
        p,
        _print(lines, then="sleep 3"),
        labels={"logpipe.multiline": "node", "logpipe.multiline.timeout": "60s"},
    )
    docs = _lines(p, c.id, 7)
    joined = ["\n".join(named), "\n".join(pm2), "\n".join(nest)]
    assert [d["message"] for d in docs] == [
        "INFO starting",
        joined[0],
        *plain,
        *joined[1:],
        "INFO next",
    ]
    sizes = [1, len(named), 1, 1, len(pm2), len(nest), 1]
    assert [d["logpipe"].get("lines", 1) for d in docs] == sizes
    assert [d["log"]["level"] for d in docs if d["logpipe"].get("lines", 1) > 1] == ["error"] * 3


def test_a_custom_rule_joins_as_filebeat_does_and_flushes_on_timeout(
    p: Pipeline, docker_client: docker.DockerClient
) -> None:
    """pattern/negate/match/timeout labels: a held event is sent while the container still runs."""
    after = run(
        docker_client,
        p,
        _print(["[1] begin", "  detail", "plain too", "[2] next"], then="sleep 120"),
        labels={
            "logpipe.multiline.pattern": "^\\[",
            "logpipe.multiline.negate": "true",
            "logpipe.multiline.match": "after",
            "logpipe.multiline.timeout": "1s",
        },
    )
    before = run(
        docker_client,
        p,
        _print(["one \\", "two \\", "three", "four"]),
        labels={"logpipe.multiline.pattern": "\\\\$", "logpipe.multiline.match": "before"},
    )
    docs = _lines(p, after.id, 2)
    assert [d["message"] for d in docs] == ["[1] begin\n  detail\nplain too", "[2] next"]
    after.reload()
    assert after.status == "running"  # "[2] next" went out on its timeout, not at exit
    docs = _lines(p, before.id, 2)
    assert [d["message"] for d in docs] == ["one \\\ntwo \\\nthree", "four"]


def _ns(timestamp: str) -> int:
    whole, _, frac = timestamp.rstrip("Z").partition(".")
    base = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    return int(base.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0")[:9])


def test_exclude_and_include_lines_filter_and_the_cursor_still_passes_excluded_lines(
    p: Pipeline, docker_client: docker.DockerClient
) -> None:
    """Only wanted lines are indexed; the saved cursor is past the trailing excluded lines."""
    lines = ["DEBUG a", "INFO b", "WARN c", "DEBUG d", "ERROR e"]
    excluding = run(
        docker_client,
        p,
        _print(lines, then="sleep 1; " + _print(["DEBUG tail 1", "DEBUG tail 2"])),
        labels={"logpipe.exclude_lines": "^DEBUG"},
    )
    including = run(
        docker_client, p, _print(lines), labels={"logpipe.include_lines": "^(WARN|ERROR)"}
    )
    kept = _lines(p, excluding.id, 3)
    assert [d["message"] for d in kept] == ["INFO b", "WARN c", "ERROR e"]
    assert [d["message"] for d in _lines(p, including.id, 2)] == ["WARN c", "ERROR e"]
    excluding.wait(timeout=60)
    wait_until(lambda: p.status()["queued_records"] == 0, 30)
    assert p.shipper.stop() == 0
    saved = json.loads((p.state_dir / "cursors.json").read_bytes())
    cursor_ts = saved["containers"][excluding.id]["streams"]["stdout"][0]
    assert cursor_ts > _ns(kept[-1]["@timestamp"]) + 500_000_000  # past "sleep 1; DEBUG tail"


def test_parser_dataset_and_namespace_labels_and_invalid_ones(
    p: Pipeline, docker_client: docker.DockerClient
) -> None:
    """parser/dataset/namespace labels shape documents; invalid hint labels are only reported."""
    dataset, namespace = f"hint.{p.run}", f"ns{p.run}"
    good = run(
        docker_client,
        p,
        _print(['{"level":"warn","msg":"hello json","user":"ann"}']),
        labels={
            "logpipe.parser": "json",
            "logpipe.dataset": dataset,
            "logpipe.namespace": namespace,
        },
    )
    bad = run(
        docker_client,
        p,
        _print(["plain line", "  indented"]),
        labels={"logpipe.namespace": "Bad-Name", "logpipe.multiline": "cobol"},
        name=f"bad-{p.run}",
    )
    [doc] = _lines(p, good.id, 1)
    assert doc["message"] == "hello json"
    assert doc["logpipe"]["parser"] == "json"
    assert doc["log"]["level"] == "warn"
    assert doc["event"]["dataset"] == dataset
    assert doc["data_stream"]["dataset"].startswith(dataset)  # + a retention suffix
    assert doc["data_stream"]["namespace"] == namespace
    docs = _lines(p, bad.id, 2)
    assert [d["message"] for d in docs] == ["plain line", "  indented"]
    assert docs[0]["data_stream"]["namespace"] == "default"
    warnings = [
        x["reason"]
        for x in shipper_logs(p)
        if x.get("message") == "invalid hint label ignored" and x.get("container") == f"bad-{p.run}"
    ]
    assert any("logpipe.namespace" in w for w in warnings)
    assert any("logpipe.multiline" in w for w in warnings)
