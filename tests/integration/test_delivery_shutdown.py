"""SIGTERM: the shipper exits 0, saves its cursors and disk buffer, and loses nothing."""

from __future__ import annotations

import json
from collections.abc import Callable

import docker
import pytest

from tests.conftest import Pipeline
from tests.integration.delivered import (
    assert_each_once,
    numbered,
    run,
    shipper_logs,
    wait_lines,
    wait_spooled,
)

pytestmark = pytest.mark.integration

N = 3000


def _said(p: Pipeline, text: str) -> bool:
    return any(text in str(x.get("message")) for x in shipper_logs(p))


def test_sigterm_mid_stream_exits_0_with_cursors_saved_and_loses_nothing(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """Stopped while a container prints, the shipper flushes, saves cursors, and resumes exactly."""
    p = pipeline_factory().start()
    c = run(docker_client, p, numbered("line", N, pause_us=10000, every=10))
    wait_lines(p, c.id, 100)
    assert p.shipper.stop() == 0
    assert _said(p, "stopped: everything read was delivered")
    saved = json.loads((p.state_dir / "cursors.json").read_bytes())
    position = saved["containers"][c.id]["streams"]["stdout"]
    assert position[0] > 0
    assert position[1] >= 1
    assert not list((p.state_dir / "spool").glob("*.seg"))
    p.shipper.start()
    assert_each_once(p, c.id, "line", N)


def test_sigterm_during_an_outage_keeps_the_disk_buffer_for_the_next_start(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """With no collector to flush to, SIGTERM still exits 0; the buffer is sent after restart."""
    p = pipeline_factory().start()
    p.collector.stop()
    c = run(docker_client, p, numbered("line", 500), auto_remove=True)
    wait_spooled(p, 500)
    assert p.shipper.stop() == 0
    assert _said(p, "stopped before a collector took everything")
    assert list((p.state_dir / "spool").glob("*.seg"))
    p.collector.start()
    p.wait_ready()
    p.shipper.start()
    assert_each_once(p, c.id, "line", 500)
