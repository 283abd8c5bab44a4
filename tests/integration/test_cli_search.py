"""`logpipe search` run as a user runs it, against a real collector process and node:
the right lines in the right order, paging, JSON, and each failure's exit status."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.integration.readers import INGEST, READ, Collector, Source, collectors, indexed, post
from tests.programs import ROOT, clean_env, one_line_error

# The read API searches every logpipe stream on the node: a stream another test creates
# meanwhile, its shard not yet started, fails part of the read (no_shard_available).
pytestmark = [pytest.mark.integration, pytest.mark.alone]
__all__ = ["collectors"]  # the fixture


def logpipe(
    *args: str, url: str, token: str = READ, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run `python -m logpipe` against `url` with `token`, output piped."""
    env = clean_env(LOGPIPE_URL=url, LOGPIPE_READ_TOKEN=token, XDG_CONFIG_HOME=str(cwd))
    return subprocess.run(
        [sys.executable, "-m", "logpipe", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def loaded(collectors: Callable[..., Collector], es: Elasticsearch) -> tuple[Collector, str]:
    """A collector and a host of its own with six lines of two services indexed."""
    c = collectors()
    api = Source(service="api", name="api-1")
    web = Source(host=api.host, service="web", name="web-1", container_id="b" * 64)
    t = time.time_ns() - 60 * 10**9
    assert post(c, api.batch(("INFO started", t), ("ERROR db down\n  at db.connect", t + 1))) == 200
    assert post(c, api.batch(("WARN slow request", t + 2), stream="stderr")) == 200
    assert post(c, web.batch(("GET /health 200", t + 3), ("FATAL out of memory", t + 4))) == 200
    assert post(c, web.batch(("GET / 200", t + 5))) == 200
    indexed(es, api.host, 6)
    return c, api.host


def test_search_prints_the_lines_that_match_newest_last(loaded: tuple[Collector, str]) -> None:
    """The lines of the host print as `host/service | message`, aligned, in time order,
    a two-line message with its prefix on each line; filters narrow them."""
    c, host = loaded
    proc = logpipe("search", "--host", host, url=c.url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{host}/api | INFO started",
        f"{host}/api | ERROR db down",
        f"{host}/api |   at db.connect",
        f"{host}/api | WARN slow request",
        f"{host}/web | GET /health 200",
        f"{host}/web | FATAL out of memory",
        f"{host}/web | GET / 200",
    ]
    proc = logpipe("search", "--host", host, "--level", "error", "--service", "a*", url=c.url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{host}/api | ERROR db down",
        f"{host}/api |   at db.connect",
    ]
    proc = logpipe("search", "GET", "--host", host, "--stream", "stdout", "-t", url=c.url)
    stamps = [line.split(" | ")[1].split(" ")[0] for line in proc.stdout.splitlines()]
    assert [line.rsplit(" ", 2)[-2:] for line in proc.stdout.splitlines()] == [
        ["/health", "200"],
        ["/", "200"],
    ]
    assert all(s.endswith("Z") and s[:4].isdigit() for s in stamps)


def test_search_pages_by_cursor_up_to_the_limit(loaded: tuple[Collector, str]) -> None:
    """With pages of 2 lines, --limit 5 prints 5 lines: the oldest with --asc, the
    newest without."""
    c, host = loaded
    oldest = logpipe(
        "search", "--host", host, "--asc", "--limit", "5", "--page-size", "2", url=c.url
    )
    assert [line.split(" | ")[1] for line in oldest.stdout.splitlines()] == [
        "INFO started",
        "ERROR db down",
        "  at db.connect",
        "WARN slow request",
        "GET /health 200",
        "FATAL out of memory",
    ]
    newest = logpipe("search", "--host", host, "--limit", "2", "--page-size", "1", url=c.url)
    assert [line.split(" | ")[1] for line in newest.stdout.splitlines()] == [
        "FATAL out of memory",
        "GET / 200",
    ]


def test_search_json_prints_the_documents_for_jq(loaded: tuple[Collector, str]) -> None:
    """--json prints one document a line, with its fields, _id and _index."""
    c, host = loaded
    proc = logpipe("search", "--host", host, "--json", "--service", "web", url=c.url)
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["message"] for d in docs] == ["GET /health 200", "FATAL out of memory", "GET / 200"]
    assert {d["container"]["name"] for d in docs} == {"web-1"}
    assert all(d["_id"] and d["_index"].startswith(".ds-logs-") for d in docs)


def test_no_match_is_status_1(loaded: tuple[Collector, str]) -> None:
    """A search that matches nothing prints nothing and ends with 1."""
    c, host = loaded
    proc = logpipe("search", "nosuchword", "--host", host, url=c.url)
    assert (proc.returncode, proc.stdout) == (1, "")


def test_wrong_tokens_are_status_3_with_the_reason(collectors: Callable[..., Collector]) -> None:
    """An unknown token is 401, an ingest token 403 (search and tail): status 3, one line
    saying so."""
    c = collectors()
    proc = logpipe("search", url=c.url, token="not-a-token")
    assert proc.returncode == 3
    assert "did not accept the read token from LOGPIPE_READ_TOKEN (401)" in one_line_error(proc)
    for command in ("search", "tail"):
        proc = logpipe(command, url=c.url, token=INGEST)
        assert proc.returncode == 3
        assert "from LOGPIPE_READ_TOKEN may not read (403): this is an ingest token" in (
            one_line_error(proc)
        )


def test_a_bad_filter_is_status_5_naming_it(collectors: Callable[..., Collector]) -> None:
    """A glob the collector refuses ends with 5 and its message naming the parameter."""
    c = collectors()
    proc = logpipe("search", "--host", "web 1", url=c.url)
    assert proc.returncode == 5
    assert one_line_error(proc).startswith("logpipe: the collector refused the query: host: ")


def test_a_collector_without_read_tokens_is_status_6(
    collectors: Callable[..., Collector],
) -> None:
    """With the read API off, the collector's advice is passed on, status 6."""
    c = collectors(read_tokens="")
    proc = logpipe("search", url=c.url)
    assert proc.returncode == 6
    assert "answered 404 (not found): the read API is off" in one_line_error(proc)
    assert "LOGPIPE_READ_TOKENS" in one_line_error(proc)
    assert "check the URL" not in one_line_error(proc)


def test_a_wrong_path_in_the_url_is_status_6_saying_to_check_it(
    collectors: Callable[..., Collector],
) -> None:
    """A collector with its read API on, asked under a path it does not serve: a 404 that
    is no "read API off", and the message says to check the URL."""
    c = collectors()
    for command in ("search", "tail"):
        proc = logpipe(command, url=f"{c.url}/logs")
        assert proc.returncode == 6
        assert one_line_error(proc) == (
            f"logpipe: {c.url}/logs (LOGPIPE_URL) answered 404 (not found): no such endpoint: GET "
            f"/logs/v1/{command} (ingest is POST /v1/logs): check the URL (and its path, if any)"
        )


def test_a_stopped_collector_is_status_4(collectors: Callable[..., Collector]) -> None:
    """Once the collector is stopped, search and tail end with 4 and say they cannot
    reach it."""
    c = collectors()
    c.process.stop()
    for command in ("search", "tail"):
        proc = logpipe(command, url=c.url)
        assert proc.returncode == 4
        assert one_line_error(proc).startswith(f"logpipe: cannot reach the collector at {c.url}")


def test_events_adds_the_containers_lifecycle(
    collectors: Callable[..., Collector], es: Elasticsearch
) -> None:
    """--events shows a container's lifecycle events among its lines; without it, only lines."""
    c = collectors()
    src = Source()
    t = time.time_ns() - 10 * 10**9
    died = json.dumps({"kind": "event", "src": 0, "ts": t + 2, "action": "die", "exit_code": 1})
    body = src.batch(("booting", t + 1)) + died.encode() + b"\n"
    assert post(c, body) == 200
    indexed(es, src.host, 2)
    with_events = logpipe("search", "--host", src.host, "--events", url=c.url)
    assert with_events.stdout.splitlines() == [
        f"{src.host}/api | booting",
        f"{src.host}/api | container api-1 die (exit code 1)",
    ]
    lines_only = logpipe("search", "--host", src.host, url=c.url)
    assert lines_only.stdout.splitlines() == [f"{src.host}/api | booting"]
