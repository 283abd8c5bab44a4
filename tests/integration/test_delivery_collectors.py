"""Batches are spread over several collectors, and losing one mid-stream loses nothing."""

from __future__ import annotations

import re
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from tests.conftest import Pipeline, Process, free_port, wait_until
from tests.integration.delivered import assert_each_once, metric, numbered, run, wait_lines

pytestmark = pytest.mark.integration

N = 6000


def _accepted(port: int) -> float:
    """Batches a collector answered 200 to, from its /metrics (0 when it is down)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    match = re.search(r'^logpipe_collector_requests_total\{status="200"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_a_collector_killed_mid_stream_loses_and_repeats_nothing(
    pipeline_factory: Callable[..., Pipeline],
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """Both collectors take batches; after one is killed -9 the other takes the rest, once."""
    p = pipeline_factory()
    second, port2 = _two_collectors(p, tmp_path)
    url2 = f"http://127.0.0.1:{port2}"
    try:
        c = run(docker_client, p, numbered("line", N, pause_us=10000, every=10))
        wait_until(lambda: _accepted(p.port) > 0 and _accepted(port2) > 0, 60)
        wait_lines(p, c.id, 200)
        second.kill()
        assert_each_once(p, c.id, "line", N)
        assert metric(p, "logpipe_shipper_collector_up", collector=url2) == 0
    finally:
        second.kill()


def test_a_collector_that_hangs_has_its_batches_taken_back(
    pipeline_factory: Callable[..., Pipeline],
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """A collector paused (SIGSTOP: a hung process) while both take batches: the batch it
    holds is given up once it answers /healthz no more either, and the other collector
    takes it and the rest, each line once, though the shipper would wait an hour for an
    answer (LOGPIPE_REQUEST_TIMEOUT)."""
    p = pipeline_factory(shipper_request_timeout="3600")
    second, port2 = _two_collectors(p, tmp_path)
    url2 = f"http://127.0.0.1:{port2}"
    try:
        n = 3000
        c = run(docker_client, p, numbered("hang", n, pause_us=10000, every=10))
        wait_until(lambda: _accepted(p.port) > 0 and _accepted(port2) > 0, 60)
        second.signal(signal.SIGSTOP)
        try:
            wait_until(lambda: metric(p, "logpipe_shipper_batches_failed_total", reason="hung"), 60)
            assert_each_once(p, c.id, "hang", n)
        finally:
            second.signal(signal.SIGCONT)
        assert "hung" in p.shipper.output()
        assert url2 in p.shipper.output()
    finally:
        second.kill()


def _two_collectors(p: Pipeline, tmp_path: Path) -> tuple[Process, int]:
    """Start `p`'s collector and a second one like it, then its shipper listing both:
    the second's process and port (killed by the test)."""
    port2 = free_port()
    second = Process(
        "collector2",
        p.collector.args,
        {**p.collector.env, "LOGPIPE_LISTEN": f"127.0.0.1:{port2}"},
        tmp_path / "collector2.log",
    )
    p.shipper.env["LOGPIPE_COLLECTOR_URL"] = f"http://127.0.0.1:{p.port},http://127.0.0.1:{port2}"
    p.collector.start()
    second.start()
    try:
        p.wait_ready()
        wait_until(lambda: _ready(port2), 30)
        p.shipper.start()
        p.wait_shipper()
    except BaseException:
        second.kill()
        raise
    return second, port2


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
            return True
    except OSError:
        return False
