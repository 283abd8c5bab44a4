"""The collector through Elasticsearch outages, its own crash, and a node never set up.

Pausing or emptying a node is done on a private node (the `private_es` fixture), never
on the shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch, NotFoundError

from collector import sink as sink_module
from collector.enrich import Doc
from collector.sink import Sink
from collector.templates import INDEX_PATTERNS, TEMPLATE_NAME, index_template
from collector.wire import NDJSON, PATH_LOGS, SENT_AGAIN
from tests.conftest import (
    ES_URL,
    Pipeline,
    PrivateElasticsearch,
    Process,
    free_port,
    setup_template,
    wait_until,
)

pytestmark = pytest.mark.integration
FALLBACK = "logpipe-test-fallback"


def http(url: str, data: bytes | None = None, token: str = "") -> tuple[int, dict[str, Any], Any]:
    """GET (or POST `data`) and return status, JSON body and headers, errors included."""
    headers = {"Content-Type": NDJSON, "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


def collector_env(es_url: str, port: int, token: str, **settings: str) -> dict[str, str]:
    """Environment for a collector process on `port` writing to `es_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
    env |= {
        "LOGPIPE_ES_URL": es_url,
        "LOGPIPE_LISTEN": f"127.0.0.1:{port}",
        "LOGPIPE_TOKENS": token,
        "LOGPIPE_ROUTING__DATASET": "outage." + uuid.uuid4().hex[:8],
    }
    return env | {f"LOGPIPE_{k.upper()}": v for k, v in settings.items()}


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Callable[..., tuple[Process, str]]]:
    """Start collector processes (stopped after the test): (process, base URL)."""
    started: list[Process] = []

    def start(es_url: str, token: str, ready: bool = False, **settings: str) -> tuple[Process, str]:
        """`ready`: wait until /readyz says so (the node answers and the template was
        checked): until its first check of the template a collector answers a batch 503,
        which a sender retries and a test posting once would take for a failure."""
        port = free_port()
        env = collector_env(es_url, port, token, **settings)
        argv = [sys.executable, "-m", "collector", "serve"]
        proc = Process("collector", argv, env, tmp_path / f"collector{len(started)}.log")
        proc.start()
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url + "/healthz"), 30)
        if ready:
            wait_until(lambda: http(url + "/readyz")[0] == 200, 30)
        return proc, url

    yield start
    for proc in started:
        proc.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def setup_command(es_url: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run `logpipe-collector setup` against `es_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
    env["LOGPIPE_ES_URL"] = es_url
    env |= {f"LOGPIPE_{k.upper()}": v for k, v in settings.items()}
    argv = [sys.executable, "-m", "collector", "setup", "--wait", "30"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def ensure_template(node: PrivateElasticsearch) -> None:
    """Our template on the private node, as `setup` installs it."""
    node.client.indices.put_index_template(name=TEMPLATE_NAME, **setup_template(node.client))


def remove_template(node: PrivateElasticsearch) -> None:
    """Take our template off the private node, whatever data streams exist there.

    Elasticsearch refuses to delete a template that is the only one matching existing
    data streams; a low-priority fallback template matching them makes it deletable.
    """
    node.client.indices.put_index_template(
        name=FALLBACK, index_patterns=["logs-*-*"], priority=1, data_stream={}
    )
    with contextlib.suppress(NotFoundError):
        node.client.indices.delete_index_template(name=TEMPLATE_NAME)


def metric(url: str, name: str) -> float:
    """A value from the collector's /metrics (0 when the series does not exist yet)."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def test_serve_says_setup_is_missing_and_setup_is_idempotent(
    private_es: PrivateElasticsearch, collector: Callable[..., tuple[Process, str]]
) -> None:
    """Without the template: 503 + setup hint; setup installs it, idempotent and overridable."""
    remove_template(private_es)
    token = uuid.uuid4().hex
    proc, url = collector(private_es.url, token)
    batch = batch_body(1, "hello")
    status, answer, _ = http(url + "/readyz")
    assert (status, "run `logpipe-collector setup`" in answer["error"]) == (503, True)
    status, answer, headers = http(url + PATH_LOGS, batch, token)
    assert status == 503
    assert "index template 'logpipe' is missing: run `logpipe-collector setup`" in answer["error"]
    assert headers["Retry-After"] == "5"
    assert "run `logpipe-collector setup`" in proc.output()

    first = setup_command(private_es.url)
    assert first.returncode == 0, first.stderr
    installed = _template(private_es.client)
    second = setup_command(private_es.url)
    assert second.returncode == 0, second.stderr
    assert _template(private_es.client) == installed, "a second setup changes nothing"
    _check_template(installed, shards="1", refresh=None)  # Elasticsearch's own
    assert "refreshed as Elasticsearch's default" in first.stderr
    assert "with the best_compression codec" in first.stderr

    wait_until(lambda: http(url + "/readyz")[0] == 200, 30)
    status, answer, _ = http(url + PATH_LOGS, batch, token)
    assert (status, answer["indexed"] + answer["duplicates"]) == (200, 1)

    overridden = setup_command(
        private_es.url, index__shards="2", index__refresh_interval="5s", index__codec="default"
    )
    assert overridden.returncode == 0, overridden.stderr
    _check_template(_template(private_es.client), shards="2", refresh="5s", codec="default")
    assert "refreshed every 5s, searched or not" in overridden.stderr
    stream = "logs-setup.t" + uuid.uuid4().hex[:6] + ".keep_1d-default"
    private_es.client.index(
        index=stream, document={"@timestamp": 1, "message": "m"}, op_type="create"
    )
    [backing] = private_es.client.indices.get(index=stream).body.values()
    assert backing["settings"]["index"]["number_of_shards"] == "2"
    assert backing["settings"]["index"]["codec"] == "default"
    ensure_template(private_es)  # back to defaults for other tests


def test_two_setups_at_once_both_succeed_and_agree(es: Elasticsearch, template: None) -> None:
    """Two `setup` processes started together on the same node both succeed, and the
    template is the one either installs alone, three times over."""
    expected = setup_template(es)
    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda _: setup_command(ES_URL), range(2)))
        for run in runs:
            assert run.returncode == 0, run.stderr
            assert "Traceback" not in run.stderr
            assert "index template 'logpipe' installed" in run.stderr
        installed = _template(es)
        assert installed["version"] == expected["version"]
        assert installed["index_patterns"] == expected["index_patterns"]
        assert installed["template"]["mappings"] == expected["template"]["mappings"]


def test_setup_narrows_a_template_that_took_every_logs_stream(
    private_es: PrivateElasticsearch, collector: Callable[..., tuple[Process, str]]
) -> None:
    """An older setup's logs-*-* template: /readyz says to run setup, which narrows it in place."""
    es = private_es.client
    es.indices.put_index_template(
        name=TEMPLATE_NAME, **(index_template() | {"index_patterns": ["logs-*-*"]})
    )
    stream = "logs-upgrade.t" + uuid.uuid4().hex[:6] + ".keep_1d-default"
    es.index(index=stream, document={"@timestamp": 1, "message": "before"}, op_type="create")
    _, url = collector(private_es.url, uuid.uuid4().hex)
    status, answer, _ = http(url + "/readyz")
    assert status == 503
    assert "matches logs-*-*" in answer["error"]
    assert "run `logpipe-collector setup`" in answer["error"]

    done = setup_command(private_es.url)
    assert done.returncode == 0, done.stderr
    assert f"installed for {' '.join(INDEX_PATTERNS)}" in done.stderr
    assert _template(es)["index_patterns"] == INDEX_PATTERNS
    wait_until(lambda: http(url + "/readyz")[0] == 200, 30)
    # The stream made under the old template rolls over onto the new one and goes on.
    assert es.indices.rollover(alias=stream)["rolled_over"]
    es.index(
        index=stream, document={"@timestamp": 2, "message": "after"}, op_type="create", refresh=True
    )
    *_, write = es.indices.get(index=stream).body.values()
    assert write["mappings"]["properties"]["attributes"]["type"] == "flattened"
    assert es.count(index=stream)["count"] == 2


def batch_body(n: int, text: str, host: str = "outage-host") -> bytes:
    """A wire batch of one source and `n` log lines with fresh timestamps (new ids)."""
    source = {
        "kind": "source",
        "src": 0,
        "host": host,
        "container_id": "f" * 64,
        "container_name": "outage",
        "image": "busybox",
    }
    ts = time.time_ns()  # new ids for every batch
    lines = [json.dumps(source)] + [
        json.dumps(
            {"kind": "log", "src": 0, "stream": "stdout", "ts": ts + i, "message": f"{text} {i}"}
        )
        for i in range(n)
    ]
    return "\n".join(lines).encode()


def _template(es: Elasticsearch) -> dict[str, Any]:
    [entry] = es.indices.get_index_template(name=TEMPLATE_NAME)["index_templates"]
    return dict(entry["index_template"])


def _check_template(
    template: dict[str, Any], shards: str, refresh: str | None, codec: str = "best_compression"
) -> None:
    assert template["priority"] > 500
    assert template["index_patterns"] == INDEX_PATTERNS
    assert "data_stream" in template
    settings = template["template"]["settings"]["index"]
    assert (settings["number_of_shards"], settings.get("refresh_interval")) == (shards, refresh)
    assert settings["codec"] == codec
    props = template["template"]["mappings"]["properties"]
    assert props["@timestamp"]["type"] == "date_nanos"
    assert props["message"]["type"] == "text"
    assert props["attributes"]["type"] == "flattened"
    # Leaves under dotted names, no object mappers (documents come flat)
    assert props["container.name"] == {"type": "keyword", "ignore_above": 1024}
    assert props["log.level"]["type"] == "keyword"
    assert props["service.name"]["type"] == "keyword"
    assert template["template"]["mappings"]["subobjects"] in (False, "false")


def test_elasticsearch_paused_mid_load_loses_and_duplicates_nothing(
    private_es: PrivateElasticsearch,
    pipeline_factory: Callable[..., Pipeline],
    docker_client: docker.DockerClient,
) -> None:
    """SIGSTOP the node while lines flow, SIGCONT it: every line is indexed exactly once."""
    ensure_template(private_es)
    p = pipeline_factory(
        collector_es_url=private_es.url,
        collector_es_retry_seconds="3",
        collector_es_request_timeout="2",
    )
    p.es = private_es.client
    p.start()
    n = 3000
    script = (
        f'i=1; while [ $i -le {n} ]; do echo "line $i"; '
        "[ $((i % 100)) = 0 ] && sleep 0.1; i=$((i+1)); done"
    )
    docker_client.containers.run(
        "busybox:latest", ["sh", "-c", script], detach=True, network_mode="none", labels=p.labels
    )
    query = {"exists": {"field": "stream"}}
    p.wait_count(1, query)
    private_es.pause()
    try:
        url = f"http://127.0.0.1:{p.port}"
        # Hold the node still until the collector gave up on a batch at least once.
        wait_until(lambda: metric(url, 'logpipe_collector_requests_total{status="503"}') >= 1, 60)
    finally:
        private_es.resume()
    p.wait_count(n, query, timeout=120)
    docs = p.docs(query)
    counts = Counter(d["message"] for d in docs)
    assert set(counts) == {f"line {i}" for i in range(1, n + 1)}
    assert max(counts.values()) == 1, "a line was indexed twice"
    assert len(docs) == n
    assert metric(url, "logpipe_collector_records_retried_total") >= 1


def test_elasticsearch_stopped_is_answered_503_at_once_and_nothing_is_lost(
    private_es: PrivateElasticsearch,
    pipeline_factory: Callable[..., Pipeline],
    docker_client: docker.DockerClient,
) -> None:
    """Stop the only node while lines flow: batches and /readyz get 503 + Retry-After at once
    (not after es_retry_seconds), and once the node is back every line is indexed once."""
    ensure_template(private_es)
    # Ten minutes of retrying: an answer within the test client's 30 s comes from knowing
    # that no node answers, not from giving up.
    p = pipeline_factory(collector_es_url=private_es.url, collector_es_retry_seconds="600")
    p.es = private_es.client
    p.start()
    n = 2000
    script = (
        f'i=1; while [ $i -le {n} ]; do echo "stop line $i"; '
        "[ $((i % 50)) = 0 ] && sleep 0.1; i=$((i+1)); done"
    )
    docker_client.containers.run(
        "busybox:latest", ["sh", "-c", script], detach=True, network_mode="none", labels=p.labels
    )
    query = {"exists": {"field": "stream"}}
    url = f"http://127.0.0.1:{p.port}"
    p.wait_count(1, query)
    indexed_before_stop = p.count(query)
    private_es.stop()
    try:
        wait_until(lambda: metric(url, "logpipe_collector_elasticsearch_reachable") == 0, 120)
        status, answer, headers = http(url + PATH_LOGS, batch_body(3, "while down"), p.token)
        assert (status, headers["Retry-After"]) == (503, "5"), answer
        assert "Elasticsearch cannot be reached" in answer["error"]
        status, answer, headers = http(url + "/readyz")
        assert (status, headers["Retry-After"]) == (503, "5"), answer
    finally:
        private_es.start()
    wait_until(lambda: metric(url, "logpipe_collector_elasticsearch_reachable") == 1, 60)
    wait_until(lambda: http(url + "/readyz")[0] == 200, 60)
    p.wait_count(n, query, timeout=180)
    docs = p.docs(query)
    counts = Counter(d["message"] for d in docs)
    assert set(counts) == {f"stop line {i}" for i in range(1, n + 1)}
    assert max(counts.values()) == 1, "a line was indexed twice"
    assert len(docs) == n
    assert indexed_before_stop < n, "every line was in before the stop: the test proved nothing"


def test_a_bulk_to_a_hung_node_goes_to_the_next_node(
    es: Elasticsearch, template: None, collector: Callable[..., tuple[Process, str]]
) -> None:
    """With a node that hung listed first (the kernel takes its connections, nothing
    answers them: a paused process, a dead host), every batch is answered 200 within the
    test client's 30 s though a _bulk may wait 300 s: the collector gives up on the hung
    node once it answers no probe either, and the batch goes to the shared node."""
    token = uuid.uuid4().hex
    text = "hung " + uuid.uuid4().hex[:8]
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        hung_url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        proc, url = collector(
            f"{hung_url},{ES_URL}", token, es_request_timeout="300", es_retry_seconds="600"
        )
        wait_until(lambda: http(url + "/readyz")[0] == 200, 60)
        sent = 0
        for k in range(8):  # round robin: the hung node gets some, unless marked dead
            status, answer, _ = http(url + PATH_LOGS, batch_body(50, f"{text} {k}"), token)
            assert status == 200, answer
            assert answer["indexed"] + answer["duplicates"] == 50
            sent += 50
            if "answers neither a _bulk nor a probe" in proc.output():
                break
            time.sleep(1.5)  # past the dead node's first backoff (1 s)
    assert "answers neither a _bulk nor a probe" in proc.output(), proc.output()
    assert hung_url in proc.output()
    es.indices.refresh(index="logs-outage.*")
    query = {"match_phrase": {"message": text}}
    assert es.count(index="logs-outage.*", query=query)["count"] == sent


def test_memory_stays_flat_while_elasticsearch_is_paused(
    private_es: PrivateElasticsearch, collector: Callable[..., tuple[Process, str]]
) -> None:
    """With the node paused, a flood of batches is answered 503 + Retry-After, RSS stays flat."""
    ensure_template(private_es)
    token = uuid.uuid4().hex
    proc, url = collector(private_es.url, token, max_in_flight="2", es_retry_seconds="60")
    wait_until(lambda: http(url + "/readyz")[0] == 200, 30)
    assert proc.proc is not None
    pid = proc.proc.pid
    batches = [batch_body(2000, f"flood {k} " + "x" * 400) for k in range(4)]  # ~1 MB each
    private_es.pause()
    try:
        statuses, rss = asyncio.run(_flood(url, token, batches, pid, rounds=6))
    finally:
        private_es.resume()
    assert len(statuses) == 6 * 16
    assert set(statuses) == {503}
    grown = (max(rss) - rss[0]) / 1024
    assert grown < 40, f"RSS grew by {grown:.0f} MiB over the flood: {rss}"
    assert metric(url, "logpipe_collector_batches_in_flight") <= 2


async def _flood(
    url: str, token: str, batches: list[bytes], pid: int, rounds: int
) -> tuple[list[int], list[int]]:
    """Hold two batches in flight, then rounds of 16 more at once.

    Returns the statuses of the 16s and the collector's RSS (KiB) after each round.
    """
    headers = {"Authorization": f"Bearer {token}", "Content-Type": NDJSON}
    statuses: list[int] = []
    rss: list[int] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def post(data: bytes) -> int:
            async with session.post(url + PATH_LOGS, data=data, headers=headers) as resp:
                assert resp.headers.get("Retry-After"), resp.status
                return resp.status

        held = [asyncio.create_task(post(batches[i])) for i in range(2)]
        in_flight = "logpipe_collector_batches_in_flight"
        for _ in range(600):  # until the paused node holds both
            if metric(url, in_flight) >= 2:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the first two batches never got in flight")
        for _ in range(rounds):
            answers = [post(batches[i % len(batches)]) for i in range(16)]
            statuses += await asyncio.wait_for(asyncio.gather(*answers), 30)
            rss.append(_rss_kib(pid))
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
    return statuses, rss


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_collector_killed_mid_batch_loses_and_duplicates_nothing(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """kill -9 the collector while batches are in flight, restart it: each line exactly once."""
    p = pipeline_factory()
    p.start()
    n = 5000
    script = (
        f'i=1; while [ $i -le {n} ]; do echo "kill line $i"; '
        "[ $((i % 200)) = 0 ] && sleep 0.1; i=$((i+1)); done"
    )
    docker_client.containers.run(
        "busybox:latest", ["sh", "-c", script], detach=True, network_mode="none", labels=p.labels
    )
    query = {"exists": {"field": "stream"}}
    url = f"http://127.0.0.1:{p.port}"
    wait_until(lambda: metric(url, "logpipe_collector_batches_in_flight") >= 1, 60, 0.005)
    p.collector.kill()  # a batch is being read, parsed or indexed right now
    indexed_at_kill = p.count(query)
    p.collector.start()
    p.wait_ready()
    p.wait_count(n, query, timeout=120)
    docs = p.docs(query)
    counts = Counter(d["message"] for d in docs)
    assert set(counts) == {f"kill line {i}" for i in range(1, n + 1)}
    assert max(counts.values()) == 1, "a line was indexed twice"
    assert len(docs) == n
    assert indexed_at_kill < n, "the kill came after everything was indexed: test proved nothing"


def test_a_batch_sent_again_after_its_stream_rolled_over_is_not_indexed_twice(
    es: Elasticsearch, template: None, collector: Callable[..., tuple[Process, str]]
) -> None:
    """A batch indexed, then its stream rolled over, then the batch sent again (one of its
    streams was blocked and the collector answered 503; an answer lost): `create` finds an
    id in the write index only, so its lines were indexed a second time. The shipper says
    it is sent again, and the collector finds them in the older backing index."""
    token = uuid.uuid4().hex
    dataset = "again." + uuid.uuid4().hex[:8]
    _, url = collector(ES_URL, token, ready=True, routing__dataset=dataset)
    batch = batch_body(20, "again")

    def post(again: bool) -> dict[str, Any]:
        headers = {"Content-Type": NDJSON, "Authorization": f"Bearer {token}"}
        if again:
            headers[SENT_AGAIN] = "1"
        request = urllib.request.Request(url + PATH_LOGS, data=batch, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as resp:
            return dict(json.loads(resp.read()))

    assert post(again=False)["indexed"] == 20
    [backing] = es.indices.get(index=f"logs-{dataset}*").body.values()
    stream = backing["data_stream"]
    es.indices.rollover(alias=stream)
    # A batch comes again after LOGPIPE_ES_RETRY_SECONDS at least: its stream refreshed
    # meanwhile (every second), and a search sees its lines.
    es.indices.refresh(index=stream)
    looked_up = metric(url, "logpipe_collector_batches_looked_up_total")
    answer = post(again=True)
    assert (answer["indexed"], answer["duplicates"]) == (0, 20), answer
    assert metric(url, "logpipe_collector_batches_looked_up_total") == looked_up + 1
    es.indices.refresh(index=stream)
    assert es.count(index=stream)["count"] == 20
    # Without the shipper saying so, the write index alone is looked in: twice.
    assert post(again=False)["indexed"] == 20


# It needs the stream's new index unrefreshed for a moment: another test's search of
# logs-* refreshes it (side by side, "the lines were searchable: proves nothing").
@pytest.mark.alone
def test_a_batch_sent_again_right_after_a_rollover_is_found_unrefreshed(
    es: Elasticsearch, template: None, collector: Callable[..., tuple[Process, str]]
) -> None:
    """A batch indexed, its stream rolled over before a refresh made its lines searchable,
    and the batch sent again at once: a search of the stream did not see them, and
    `create` looked in the new write index only, so they were indexed twice. The backing
    indices but the write index are refreshed before the search. Here the lines' index
    never refreshes on its own (`refresh_interval: -1`), so they are unrefreshed for
    sure, and the stream rolls over twice: the lines are not in the index before the
    write index."""
    token = uuid.uuid4().hex
    dataset = "unrefreshed." + uuid.uuid4().hex[:8]
    _, url = collector(ES_URL, token, ready=True, routing__dataset=dataset)

    def post(batch: bytes, again: bool) -> dict[str, Any]:
        headers = {"Content-Type": NDJSON, "Authorization": f"Bearer {token}"}
        if again:
            headers[SENT_AGAIN] = "1"
        request = urllib.request.Request(url + PATH_LOGS, data=batch, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as resp:
            return dict(json.loads(resp.read()))

    assert post(batch_body(1, "made"), again=False)["indexed"] == 1  # the stream, made
    [(first, backing)] = es.indices.get(index=f"logs-{dataset}*").body.items()
    stream = backing["data_stream"]
    es.indices.put_settings(index=first, settings={"index": {"refresh_interval": "-1"}})
    batch = batch_body(20, "unrefreshed")
    assert post(batch, again=False)["indexed"] == 20
    es.indices.rollover(alias=stream)
    es.indices.rollover(alias=stream)
    found = es.search(index=stream, query={"match_phrase": {"message": "unrefreshed"}})
    assert found["hits"]["total"]["value"] == 0, "the lines were searchable: proves nothing"
    answer = post(batch, again=True)
    assert (answer["indexed"], answer["duplicates"]) == (0, 20), answer
    es.indices.refresh(index=stream)
    messages = Counter(
        hit["_source"]["message"] for hit in es.search(index=stream, size=100)["hits"]["hits"]
    )
    assert messages == Counter(["made 0"] + [f"unrefreshed {i}" for i in range(20)])


def test_the_ids_of_a_batch_sent_again_are_looked_up_in_all_its_streams_at_once(
    es: Elasticsearch, template: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of lines for several streams, each rolled over since some were indexed:
    one `_msearch` finds those in every stream. A stream whose search fails (here a
    search over the node's result window) is judged by `create` alone, and the other
    streams' ids are found all the same."""
    run = uuid.uuid4().hex[:8]
    first, second, failing = (f"logs-known.{n}{run}-default" for n in ("a", "b", "c"))

    def doc(stream: str, i: int) -> Doc:
        body = {"@timestamp": f"2024-05-01T00:00:{i % 60:02d}Z", "message": f"line {i}"}
        return Doc(f"{stream}-{i}", stream, body, f"line {i}")

    indexed = [doc(first, i) for i in range(3)] + [doc(second, i) for i in range(2)]
    indexed.append(doc(failing, 0))
    new = [doc(first, 3), doc(second, 2)]
    # More ids than a search may return at once: its search fails.
    monkeypatch.setattr(sink_module, "_KNOWN_PER_SEARCH", 20_000)
    crowd = [doc(failing, i) for i in range(1, 10_001)]

    async def look_up() -> set[str]:
        async with Sink(AsyncElasticsearch(ES_URL)) as sink:
            assert (await sink.write(indexed)).indexed == len(indexed)
            for stream in (first, second, failing):
                es.indices.rollover(alias=stream)
                es.indices.refresh(index=stream)
            return await sink.known([*indexed, *new, *crowd])

    found = asyncio.run(look_up())
    assert found == {d.id for d in indexed if d.stream != failing}
