"""Shared fixtures: the real Elasticsearch and Docker Engine, and a real pipeline.

Integration tests talk to the services started by `.ci/services` (dockerd on the default
socket, Elasticsearch on LOGPIPE_TEST_ES_URL, default http://127.0.0.1:9200). When a
service is down, the tests that need it fail with a message saying how to start it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest
from elasticsearch import ApiError, Elasticsearch
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from collector.shape import nested
from collector.templates import TEMPLATE_NAME, index_template, probe_template

# No property test has a time limit: Hypothesis's default deadline (200 ms an example) and
# its health check of slow data generation are timed assertions, and the machines that run
# the tests are shared and slow down without notice.
hypothesis_settings.register_profile(
    "logpipe", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("logpipe")

ES_URL = os.environ.get("LOGPIPE_TEST_ES_URL", "http://127.0.0.1:9200")
START_HINT = "start the services with `bash .ci/services start`"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print why each rerun test failed the first time: CI reruns a failed test once, and
    a test that passed on its rerun must still say what went wrong."""
    reruns = terminalreporter.stats.get("rerun", [])
    if reruns:
        terminalreporter.section("first failures of rerun tests")
    for report in reruns:
        terminalreporter.write_line(f"{report.nodeid}:")
        terminalreporter.write_line(report.longreprtext)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def extra(record: logging.LogRecord, name: str) -> Any:
    """The field `name` that the log call gave `record` (its `extra=`): set on the record
    at run time, so no attribute its type knows."""
    return record.__dict__[name]


def wait_until(check: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s (last value: {last!r})")


@pytest.fixture(scope="session")
def es() -> Iterator[Elasticsearch]:
    """A client of the real Elasticsearch node."""
    client = Elasticsearch(ES_URL, request_timeout=60)
    try:
        client.cluster.health(wait_for_status="yellow", timeout="10s")
    except Exception as exc:
        pytest.fail(f"Elasticsearch at {ES_URL} is not reachable ({exc}): {START_HINT}")
    yield client
    client.close()


# The test node lacks the built-in `logs` template (priority 100, `logs-*-*`) of the default
# distribution; this stand-in gives data streams that are not logpipe's a template, as a
# real cluster does, so Elasticsearch lets our template match only our own streams.
BUILTIN_LOGS_STANDIN = "logpipe-test-builtin-logs"


def node_has_constant_keyword(es: Elasticsearch) -> bool:
    """Whether the node accepts a template using constant_keyword (`setup`'s probe)."""
    try:
        es.indices.simulate_template(**probe_template())
    except ApiError:
        return False
    return True


def setup_template(es: Elasticsearch) -> dict[str, Any]:
    """The template body `logpipe-collector setup` installs on this node."""
    return index_template(constant_keyword=node_has_constant_keyword(es))


# A line whose JSON holds this key with text is a document the node refuses, in the
# streams of a dataset given to `refusing_template`: it maps the key's field as a long.
REFUSED_KEY = "logger"
REFUSED_FIELD = "log.logger"


def refusing_template(es: Elasticsearch, dataset: str) -> None:
    """An operator's index template over the streams of `dataset`, above logpipe's: the
    same but for REFUSED_FIELD, mapped as a long. Elasticsearch refuses a document whose
    line named its logger (logpipe's own template takes every document it makes).
    Installed before the streams' first document; left in place, its pattern is the
    test's own."""
    body = copy.deepcopy(setup_template(es))
    body["template"]["mappings"]["properties"][REFUSED_FIELD] = {"type": "long"}
    body |= {"index_patterns": [f"logs-{dataset}*"], "priority": 1000}
    es.indices.put_index_template(name=f"logpipe-test-refusing-{dataset}", **body)


@pytest.fixture(scope="session")
def template(es: Elasticsearch) -> None:
    """Our index template installed, as `logpipe-collector setup` does."""
    es.indices.put_index_template(
        name=BUILTIN_LOGS_STANDIN, index_patterns=["logs-*-*"], priority=100, data_stream={}
    )
    es.indices.put_index_template(name=TEMPLATE_NAME, **setup_template(es))


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of the real Docker Engine (busybox:latest available)."""
    try:
        client = docker.from_env()
        client.ping()
        client.images.get("busybox:latest")
    except Exception as exc:
        pytest.fail(f"Docker Engine with busybox:latest is not available ({exc}): {START_HINT}")
    yield client
    client.close()


class Process:
    """A logpipe process started for a test, with its output kept in a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.args, self.env, self.log = name, args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (again)."""
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def signal(self, sig: int) -> None:
        """Send a signal."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9 and reap."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; return the exit code."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Pipeline:
    """A real collector and a real shipper for one test, scoped by a unique run id.

    The shipper follows only containers labelled ``logpipe.test=<run>``, uses a host
    name of its own, and the documents land in data streams of a dataset of their own,
    so tests can run beside each other on the same Docker Engine and node.
    """

    def __init__(self, es: Elasticsearch, tmp: Path, **settings: str) -> None:
        self.es = es
        self.run = "t" + uuid.uuid4().hex[:10]
        self.dataset = f"it.{self.run}"
        self.host = f"host-{self.run}"
        self.token = uuid.uuid4().hex
        self.port = free_port()
        self.status_port = free_port()
        self.state_dir = tmp / "state"
        base = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
        collector_env = {
            **base,
            "LOGPIPE_ES_URL": ES_URL,
            "LOGPIPE_LISTEN": f"127.0.0.1:{self.port}",
            "LOGPIPE_TOKENS": self.token,
            "LOGPIPE_ROUTING__DATASET": self.dataset,
        }
        shipper_env = {
            **base,
            "LOGPIPE_COLLECTOR_URL": f"http://127.0.0.1:{self.port}",
            "LOGPIPE_TOKEN": self.token,
            "LOGPIPE_STATE_DIR": str(self.state_dir),
            "LOGPIPE_HOST_NAME": self.host,
            "LOGPIPE_HTTP_LISTEN": f"127.0.0.1:{self.status_port}",
            "LOGPIPE_INCLUDE_LABELS": f"logpipe.test={self.run}",
            "LOGPIPE_BATCH_MAX_AGE": "0.2",
        }
        for key, value in settings.items():
            target = collector_env if key.startswith("collector_") else shipper_env
            name = key.removeprefix("collector_").removeprefix("shipper_").upper()
            target[f"LOGPIPE_{name}"] = value
        py = sys.executable
        self.collector = Process(
            "collector", [py, "-m", "collector", "serve"], collector_env, tmp / "collector.log"
        )
        self.shipper = Process("shipper", [py, "-m", "shipper"], shipper_env, tmp / "shipper.log")

    @property
    def labels(self) -> dict[str, str]:
        """Labels that put a container in this pipeline's scope."""
        return {"logpipe.test": self.run}

    def start(self) -> Pipeline:
        """Start the collector, then the shipper, each waited for until it works."""
        self.collector.start()
        self.wait_ready()
        self.shipper.start()
        self.wait_shipper()
        return self

    def wait_ready(self) -> None:
        """Wait until the collector is ready."""
        wait_until(lambda: _get_json(f"http://127.0.0.1:{self.port}/readyz") is not None, 30)

    def wait_shipper(self) -> None:
        """Wait until the shipper is connected to dockerd (and listening for events)."""

        def connected() -> bool:
            body = _get_json(f"http://127.0.0.1:{self.status_port}/healthz")
            return bool(body and body.get("docker_connected"))

        wait_until(connected, 30)

    def status(self) -> dict[str, Any]:
        """The shipper's /status."""
        body = _get_json(f"http://127.0.0.1:{self.status_port}/status")
        assert body is not None, "shipper /status did not answer"
        return body

    def query(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """A query for this pipeline's documents (its host name), plus `extra` filters."""
        filters: list[dict[str, Any]] = [{"term": {"host.name": self.host}}]
        if extra:
            filters.append(extra)
        return {"bool": {"filter": filters}}

    def docs(self, extra: dict[str, Any] | None = None, size: int = 10000) -> list[dict[str, Any]]:
        """This pipeline's documents, oldest first."""
        self.es.indices.refresh(index="logs-*")
        resp = every_shard(
            lambda: self.es.search(
                index="logs-*",
                query=self.query(extra),
                size=size,
                sort=[{"@timestamp": "asc"}],
            )
        )
        return [nested(hit["_source"]) | {"_id": hit["_id"]} for hit in resp["hits"]["hits"]]

    def count(self, extra: dict[str, Any] | None = None) -> int:
        """How many documents this pipeline indexed (matching `extra`)."""
        self.es.indices.refresh(index="logs-*")
        return int(
            every_shard(lambda: self.es.count(index="logs-*", query=self.query(extra)))["count"]
        )

    def wait_count(self, n: int, extra: dict[str, Any] | None = None, timeout: float = 60) -> int:
        """Wait until at least `n` documents match, then give the count."""
        return int(wait_until(lambda: (c := self.count(extra)) >= n and c, timeout, 0.5))


def every_shard(read: Callable[[], Any], timeout: float = 60) -> Any:
    """The answer of `read` (a search or count over logs-*) once every shard gave its part.

    Tests run side by side: a stream another test has just made may have a shard not
    yet started, whose part of the read fails (the whole of it, 503, when no shard
    answered). Such a read is made again; an answer missing a part is never taken.
    """

    def whole() -> Any:
        try:
            answer = read()
        except ApiError as exc:
            if exc.meta.status != 503:
                raise
            return None
        return answer if answer["_shards"]["failed"] == 0 else None

    return wait_until(whole, timeout, 0.5)


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return dict(json.loads(resp.read()))
    except (OSError, ValueError):
        return None


@pytest.fixture
def pipeline_factory(
    es: Elasticsearch, template: None, docker_client: docker.DockerClient, tmp_path: Path
) -> Iterator[Callable[..., Pipeline]]:
    """Make pipelines (collector + shipper) that are stopped after the test."""
    made: list[Pipeline] = []

    def make(**settings: str) -> Pipeline:
        p = Pipeline(es, tmp_path / f"p{len(made)}", **settings)
        (tmp_path / f"p{len(made)}").mkdir()
        made.append(p)
        return p

    yield make
    for p in made:
        p.shipper.stop()
        p.collector.stop()
        left = docker_client.containers.list(all=True, filters={"label": f"logpipe.test={p.run}"})
        # A hundred or more of them in some tests: removed a few at a time.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(_remove, left))
        if os.environ.get("LOGPIPE_TEST_KEEP_LOGS"):
            continue
        shutil.rmtree(p.state_dir, ignore_errors=True)


def _remove(container: Any) -> None:
    with contextlib.suppress(docker.errors.NotFound):  # an --rm one may be gone meanwhile
        container.remove(force=True)


@pytest.fixture
def pipeline(pipeline_factory: Callable[..., Pipeline]) -> Pipeline:
    """A started pipeline with default settings."""
    return pipeline_factory().start()


# --- A private Elasticsearch node, for tests that pause, stop or empty one ------------

PRIVATE_ES_VERSION = os.environ.get("LOGPIPE_ES_VERSION", "9.2.0")
PRIVATE_ES_USER = "logpipe-es"


class PrivateElasticsearch:
    """A single node of our own (512m heap, own port and data dir); the shared one stays up."""

    def __init__(
        self, url: str, pid: int, client: Elasticsearch, argv: list[str], root: Path
    ) -> None:
        self.url, self.pid, self.client = url, pid, client
        self.argv, self.root = argv, root

    def pause(self) -> None:
        """SIGSTOP the node: connections are accepted by the kernel, nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the node."""
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the node (SIGTERM) and wait until it is gone: nothing listens on its port."""
        os.kill(self.pid, signal.SIGTERM)
        wait_until(lambda: not Path(f"/proc/{self.pid}").exists(), 120)

    def start(self) -> None:
        """Start the stopped node again, same ports and data, and wait until it is yellow."""
        subprocess.run(self.argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = int((self.root / "es.pid").read_text())
        wait_until(lambda: _get_json(f"{self.url}/_cluster/health?wait_for_status=yellow"), 180, 1)


def _private_es_java() -> str:
    for pattern in ("temurin-2[1-9]*", "temurin-[3-9]*", "java-2[1-9]-*"):
        for home in sorted(Path("/usr/lib/jvm").glob(pattern)):
            if (home / "bin" / "java").exists():
                return str(home)
    pytest.fail("no Java 21+ under /usr/lib/jvm for the private Elasticsearch: run .ci/install")


def _start_private_es(root: Path) -> tuple[str, int, list[str]]:
    """Unpack the distribution under `root` and start it in the background: (url, pid, the
    command that started it)."""
    zip_path = (
        Path.home() / ".m2/repository/org/elasticsearch/distribution/integ-test-zip"
        f"/elasticsearch/{PRIVATE_ES_VERSION}/elasticsearch-{PRIVATE_ES_VERSION}.zip"
    )
    if not zip_path.exists():
        pytest.fail(f"missing {zip_path}: run .ci/install")
    subprocess.run(["unzip", "-q", str(zip_path), "-d", str(root)], check=True)
    home, port = root / f"elasticsearch-{PRIVATE_ES_VERSION}", free_port()
    settings = {
        "cluster.name": f"logpipe-private-{port}",
        "node.name": "private",
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": port,
        "transport.port": free_port(),
        "xpack.security.enabled": "false",
        "path.data": root / "data",
        "path.logs": root / "logs",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
    }
    flags = " ".join(f"-E {k}={v}" for k, v in settings.items())
    command = (
        f"cd {home} && ES_JAVA_HOME={_private_es_java()} ES_JAVA_OPTS='-Xms512m -Xmx512m' "
        f"bin/elasticsearch -d -p {root / 'es.pid'} {flags}"
    )
    if os.geteuid() == 0:  # Elasticsearch refuses to run as root
        subprocess.run(["chown", "-R", PRIVATE_ES_USER, str(root)], check=True)
        argv = ["su", "-s", "/bin/bash", PRIVATE_ES_USER, "-c", command]
    else:
        argv = ["bash", "-c", command]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return f"http://127.0.0.1:{port}", int((root / "es.pid").read_text()), argv


@pytest.fixture(scope="session")
def private_es() -> Iterator[PrivateElasticsearch]:
    """A private Elasticsearch node for the session, without our template until `setup`."""
    root = Path(tempfile.mkdtemp(prefix="logpipe-private-es-"))
    root.chmod(0o755)  # the unprivileged user must reach it
    url, pid, argv = _start_private_es(root)
    client = Elasticsearch(url, request_timeout=60)
    try:
        wait_until(lambda: _get_json(f"{url}/_cluster/health?wait_for_status=yellow"), 180, 1)
        node = PrivateElasticsearch(url, pid, client, argv, root)
        yield node
    finally:
        client.close()
        pid = int((root / "es.pid").read_text()) if (root / "es.pid").exists() else pid
        for sig in (signal.SIGCONT, signal.SIGTERM):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(pytest.fail.Exception):
            wait_until(lambda: not Path(f"/proc/{pid}").exists(), 60)
        shutil.rmtree(root, ignore_errors=True)
