"""When the disk buffer nears its bound, the busiest container's reading pauses, says so,
and resumes later from Docker's own log files: nothing is dropped."""

from __future__ import annotations

from collections.abc import Callable

import docker
import pytest

from tests.conftest import Pipeline, wait_until
from tests.integration.delivered import (
    assert_each_once,
    metric,
    numbered,
    run,
    wait_lines,
    wait_log,
)

pytestmark = pytest.mark.integration

BOUND = 64 * 1024  # the smallest allowed: a few thousand numbered lines fill it
BUSY = 20000
QUIET = 150


def test_the_busiest_container_pauses_first_and_every_line_still_arrives_once(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """Near the bound the busy container is paused (log, metric); after the outage all arrive."""
    p = pipeline_factory(buffer_max_bytes=str(BOUND), queue_lines="100")
    p.start()
    quiet = run(docker_client, p, numbered("quiet", QUIET, pause_us=50000), name=f"quiet-{p.run}")
    wait_lines(p, quiet.id, 3)
    p.collector.stop()
    busy = run(docker_client, p, numbered("busy", BUSY), name=f"busy-{p.run}")
    line = wait_log(p, "pausing the busiest container")
    assert line["container"] == f"busy-{p.run}"
    assert metric(p, "logpipe_shipper_containers_paused") >= 1
    assert metric(p, "logpipe_shipper_container_pauses_total") >= 1
    assert metric(p, "logpipe_shipper_buffer_bytes") <= BOUND
    busy.wait(timeout=120)
    assert metric(p, "logpipe_shipper_lines_read_total") < BUSY  # Docker holds the rest
    p.collector.start()
    wait_log(p, "disk buffer drained: reading resumes")
    assert_each_once(p, busy.id, "busy", BUSY)
    assert_each_once(p, quiet.id, "quiet", QUIET)
    wait_until(lambda: metric(p, "logpipe_shipper_containers_paused") == 0, 30)
