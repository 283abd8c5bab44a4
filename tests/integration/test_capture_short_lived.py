"""Short-lived `--rm` containers have every line indexed, several starting at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import pytest

from tests.conftest import Pipeline, wait_until
from tests.integration.capture import captured, metric, run, settle_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUNS = 20
AT_ONCE = 4
LINES = 1000


def _burst(client: docker.DockerClient, p: Pipeline) -> list[str]:
    """Start AT_ONCE `--rm` containers together; each prints LINES lines and exits."""

    def one(_: int) -> Any:
        return run(client, p, f"seq 1 {LINES}", auto_remove=True).id

    with ThreadPoolExecutor(AT_ONCE) as pool:
        return list(pool.map(one, range(AT_ONCE)))


def test_short_lived_rm_containers_lose_nothing(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """20 runs of 4 `--rm` containers at once, each printing 1,000 lines: all indexed."""
    ids = [cid for _ in range(RUNS) for cid in _burst(docker_client, pipeline)]
    wait_until(lambda: pipeline.count() >= len(ids) * LINES, 120, 1.0)
    settle_all(pipeline)
    runs_ok = 0
    problems = []
    for run_no in range(RUNS):
        ok = True
        for cid in ids[run_no * AT_ONCE : (run_no + 1) * AT_ONCE]:
            got = captured(pipeline, cid)
            numbers = sorted(int(d["message"]) for d in got.lines)
            if numbers != list(range(1, LINES + 1)) or got.gaps:
                ok = False
                problems.append((run_no, cid[:12], len(numbers), len(got.gaps)))
        runs_ok += ok
    rescues = metric(pipeline, "logpipe_shipper_logfile_rescues_total")
    print(f"{runs_ok}/{RUNS} runs complete; {rescues:.0f} tails read from the log file")
    assert runs_ok == RUNS, problems
