"""kill -9 of the shipper at random moments loses no line and duplicates none."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import docker
import pytest

from tests.conftest import Pipeline
from tests.integration.capture import (
    captured,
    expected_numbered,
    numbered,
    run,
    settle,
    wait_exit,
    wait_lines,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAIRS = 15000  # per container: 30,000 lines, both streams, for about 15 s
CONTAINERS = 2
KILLS = 10


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """10 kill -9 while two containers print ~2,500 lines/s each: the indexed set is exact."""
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    script = numbered(PAIRS, batch=25, pause_us=20000)
    containers = [run(docker_client, pipeline, script) for _ in range(CONTAINERS)]
    kills_while_printing = 0
    for _ in range(KILLS):
        time.sleep(rnd.uniform(0.3, 1.2))
        pipeline.shipper.kill()
        kills_while_printing += all(_running(c) for c in containers)
        state = json.loads((pipeline.state_dir / "cursors.json").read_bytes())
        assert set(state["containers"]) >= {c.id for c in containers}, "cursor file incomplete"
        pipeline.shipper.start()
    assert kills_while_printing == KILLS, "the containers finished too early: print more"
    for c in containers:
        assert wait_exit(c) == 0
    for c in containers:
        wait_lines(pipeline, c.id, 2 * PAIRS, timeout=180)
        settle(pipeline, c.id)
        got = captured(pipeline, c.id)
        assert set(got.pairs()) == expected_numbered(PAIRS), f"seed {seed}"
        assert not got.duplicates(), f"seed {seed}"
        assert len(got.lines) == 2 * PAIRS, f"seed {seed}"
        assert not got.gaps, f"seed {seed}"
        stamps = sorted(d["@timestamp"] for d in got.lines)
        print(f"{c.id[:12]}: {len(got.lines)} lines from {stamps[0]} to {stamps[-1]}")


def _running(container: Any) -> bool:
    container.reload()
    return bool(container.status == "running")
