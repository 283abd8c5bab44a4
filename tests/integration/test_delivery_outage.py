"""Lines printed while the collector is down, hung or the shipper is killed arrive once.

The issue asks for a 2-minute outage; these outages last about as long as a container
printing 600 lines 20 ms apart (over 12 s), which is enough for what matters here: the
output during the outage (3,600+ lines) is 36 times the shipper's in-memory queue
(LOGPIPE_QUEUE_LINES=100), so it can only survive in the disk buffer, and a `--rm`
container printing 3,000 lines is removed from Docker before the collector is back.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import docker
import pytest

from tests.conftest import Pipeline, wait_until
from tests.integration.delivered import (
    assert_each_once,
    metric,
    numbered,
    run,
    wait_gone,
    wait_lines,
    wait_log,
    wait_spooled,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STEADY = 600
BURST = 3000
QUEUE = 100


def _started(factory: Callable[..., Pipeline], **settings: str) -> Pipeline:
    return factory(queue_lines=str(QUEUE), **settings).start()


def test_lines_printed_while_the_collector_is_down_arrive_once(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """With the collector stopped, lines pile up in the disk buffer and all arrive once after."""
    p = _started(pipeline_factory)
    steady = run(docker_client, p, numbered("steady", STEADY, pause_us=20000))
    wait_lines(p, steady.id, 5)
    p.collector.stop()
    read_at_stop = metric(p, "logpipe_shipper_lines_read_total")
    burst = run(docker_client, p, numbered("burst", BURST), auto_remove=True)
    wait_gone(docker_client, burst.id)
    steady.wait(timeout=120)
    wait_spooled(p, read_at_stop + BURST + 100)
    assert metric(p, "logpipe_shipper_lines_read_total") - read_at_stop > 30 * QUEUE
    assert metric(p, "logpipe_shipper_buffer_bytes") > 0
    assert p.status()["batches_unacknowledged"] > 0
    assert metric(p, "logpipe_shipper_batches_failed_total", reason="connection") > 0
    p.collector.start()
    assert_each_once(p, burst.id, "burst", BURST)
    assert_each_once(p, steady.id, "steady", STEADY)
    wait_until(lambda: metric(p, "logpipe_shipper_buffer_batches") == 0, 30)


def test_a_shipper_killed_during_the_outage_loses_and_repeats_nothing(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """kill -9 of the shipper while a hung collector holds everything back loses no line."""
    p = _started(pipeline_factory, request_timeout="2")
    steady = run(docker_client, p, numbered("steady", STEADY, pause_us=20000))
    wait_lines(p, steady.id, 5)
    p.collector.signal(signal.SIGSTOP)  # hung, not down: requests time out
    read_at_stop = metric(p, "logpipe_shipper_lines_read_total")
    burst = run(docker_client, p, numbered("burst", BURST), auto_remove=True)
    wait_gone(docker_client, burst.id)
    wait_spooled(p, read_at_stop + BURST)
    p.shipper.kill()
    p.shipper.start()
    p.wait_shipper()
    wait_log(p, "disk buffer found from an earlier run")
    steady.wait(timeout=120)
    p.collector.signal(signal.SIGCONT)
    assert_each_once(p, burst.id, "burst", BURST)
    assert_each_once(p, steady.id, "steady", STEADY)
