"""A closed backing index on the real node: a search's answer names it, a tail says so
first, `logpipe search` warns on stderr, and the lines of the open index still come.

The stream is the module's own (a dataset of its own), with three backing indices: the
oldest, holding two lines, closed; the next holding two more; the write index, made by
a second rollover, none. It is reopened at the end. A read of a time range starting
after the closed index's stream rolled over from it (plus the margin for lines stamped
ahead) is not told of it: such a range lies in the future here, by years, as a search
may ask."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from elasticsearch import Elasticsearch

from tests.conftest import wait_until
from tests.integration.readers import (
    READ,
    Collector,
    Source,
    ndjson,
    post,
    request,
    start_collector,
)
from tests.integration.sse import Tails
from tests.programs import ROOT, clean_env

# The read API searches every logpipe stream on the node: a stream another test creates
# meanwhile, its shard not yet started, fails part of the read (no_shard_available).
pytestmark = [pytest.mark.integration, pytest.mark.alone]


@dataclass(frozen=True)
class Closed:
    """The collector, the test's host and dataset, and the backing index closed."""

    collector: Collector
    host: str
    dataset: str
    index: str


def searchable(es: Elasticsearch, stream: str, n: int) -> None:
    """Wait until `stream` holds `n` searchable documents."""

    def count() -> bool:
        es.indices.refresh(index=stream)
        return int(es.count(index=stream)["count"]) >= n

    wait_until(count, 30)


@pytest.fixture(scope="module")
def closed(
    template: None, es: Elasticsearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Closed]:
    """Two lines in a backing index then closed, two in the write index after a rollover;
    no read made before the close (the collector would keep its list of closed indices)."""
    dataset = "closed" + uuid.uuid4().hex[:10]
    c = start_collector(tmp_path_factory.mktemp("closed"), routing__dataset=dataset)
    src = Source()
    t = time.time_ns() - 60 * 10**9
    try:
        assert post(c, src.batch(("old 1", t), ("old 2", t + 1))) == 200
        # Client 9.5 POSTs _resolve/index; Elasticsearch 9.2 accepts only GET there.
        resolved = es.perform_request("GET", f"/_resolve/index/logs-{dataset}.*")
        (stream,) = resolved.body["data_streams"]
        searchable(es, stream["name"], 2)
        es.indices.rollover(alias=stream["name"])
        assert post(c, src.batch(("new 1", t + 2), ("new 2", t + 3))) == 200
        searchable(es, stream["name"], 4)
        es.indices.rollover(alias=stream["name"])
        (older,) = stream["backing_indices"]
        es.indices.close(index=older)
        try:
            yield Closed(c, src.host, dataset, older)
        finally:
            es.indices.open(index=older, wait_for_active_shards="1")
    finally:
        c.process.stop()


def search(c: Collector, **params: str) -> tuple[dict[str, str], list[str]]:
    """The headers of a search's answer, and its messages."""
    url = f"{c.url}/v1/search?{urllib.parse.urlencode(params | {'order': 'asc'})}"
    status, headers, body = request(url, READ)
    assert status == 200, body
    return headers, [doc["message"] for doc in ndjson(body)]


def test_a_search_names_the_closed_index_and_the_open_ones_lines_come(closed: Closed) -> None:
    """The lines of the write index, and a header naming the closed one: alone when the
    search reads only the test's dataset, among any others' when it reads every stream."""
    headers, messages = search(closed.collector, host=closed.host, dataset=closed.dataset)
    assert messages == ["new 1", "new 2"]
    assert headers["Logpipe-Closed-Indices"] == f"1 {closed.index}"
    headers, messages = search(closed.collector, host=closed.host)
    assert messages == ["new 1", "new 2"]
    count, names = headers["Logpipe-Closed-Indices"].split(" ")
    assert closed.index in names.split(",") or int(count) > 10


def test_a_search_of_other_streams_does_not_name_it(closed: Closed) -> None:
    """A dataset filter that leaves the test's stream out: no header of its index."""
    headers, messages = search(closed.collector, host=closed.host, dataset=closed.dataset + "x")
    assert messages == []
    assert closed.index not in headers.get("Logpipe-Closed-Indices", "")


async def test_a_tail_says_so_once_before_its_lines(closed: Closed) -> None:
    """The tail's first event names the closed index; the open index's lines follow."""
    async with Tails() as tails:
        status, tail = await tails.open(
            closed.collector.url, host=closed.host, dataset=closed.dataset, lines="10"
        )
        assert status == 200
        lines = await tail.lines(2)
    assert [e.doc()["message"] for e in lines] == ["new 1", "new 2"]
    assert [orjson.loads(e.data) for e in tail.closed] == [{"closed": 1, "indices": [closed.index]}]


# A range years after the rollover, whatever the margin (a timestamp_max_skew of days).
LATER = {"since": "2100-01-01T00:00:00Z", "until": "2100-01-02T00:00:00Z"}
LATER_TAIL = {"since": LATER["since"]}


def test_a_search_of_a_range_after_the_rollover_does_not_name_it(closed: Closed) -> None:
    """The closed index received its last line when its stream rolled over: a search of a
    range that starts later than that (and the margin) cannot miss a line of it."""
    headers, messages = search(closed.collector, dataset=closed.dataset, **LATER)
    assert messages == []
    assert "Logpipe-Closed-Indices" not in headers
    assert "Logpipe-Closed-Indices-Unchecked" not in headers


async def test_a_tail_starting_after_the_rollover_is_not_told_of_it(closed: Closed) -> None:
    """A tail whose starting lines are from after the rollover on: no `closed` event
    before the new line it follows (one it would have had first)."""
    src = Source()
    async with Tails() as tails:
        status, tail = await tails.open(
            closed.collector.url, host=src.host, dataset=closed.dataset, lines="10", **LATER_TAIL
        )
        assert status == 200
        assert post(closed.collector, src.batch(("followed", time.time_ns()))) == 200
        lines = await tail.lines(1)
    assert [e.doc()["message"] for e in lines] == ["followed"]
    assert tail.closed == []


def logpipe_search(closed: Closed, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`logpipe search` of the test's host and dataset, with `args`."""
    env = clean_env(
        LOGPIPE_URL=closed.collector.url, LOGPIPE_READ_TOKEN=READ, XDG_CONFIG_HOME=str(tmp_path)
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "logpipe",
            "search",
            "--host",
            closed.host,
            "--dataset",
            closed.dataset,
            *args,
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_logpipe_search_since_after_the_rollover_does_not_warn(
    closed: Closed, tmp_path: Path
) -> None:
    """`logpipe search --since <after the rollover> --until ...`: no line, and no
    warning of the closed index: only the note that nothing matched."""
    proc = logpipe_search(closed, tmp_path, "--since", LATER["since"], "--until", LATER["until"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", "logpipe: no line matched\n")


def test_logpipe_search_warns_on_stderr_and_prints_the_lines(
    closed: Closed, tmp_path: Path
) -> None:
    """`logpipe search` (of the last 24 hours, which hold the closed index's lines): the
    lines on stdout as ever, the warning naming the index on stderr, exit status 0."""
    proc = logpipe_search(closed, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{closed.host}/api | new 1", f"{closed.host}/api | new 2"]
    assert proc.stderr == (
        "logpipe: warning: lines may be missing: Elasticsearch skips closed indices, and 1 "
        f"index of the streams read is closed: {closed.index}\n"
    )
