"""A container that runs again under the same id: no old line twice, no new line lost."""

from __future__ import annotations

import time
from typing import Any

import docker
import pytest

from tests.conftest import Pipeline, wait_until
from tests.integration.capture import captured, run, shipped_to_end, wait_exit, wait_lines

pytestmark = pytest.mark.integration

# Each run numbers itself through a file that survives stop/start in the container.
RUN_N = "n=$(cat /tmp/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/runs; "


def _lines(word: str, n: int, redirect: str = "") -> str:
    """Shell printing `run<n> <word> <i>` for i in 1..n."""
    return f'i=1; while [ $i -le {n} ]; do echo "run$n {word} $i"{redirect}; i=$((i+1)); done; '


def _stored(container: Any) -> list[tuple[str, str]]:
    """What dockerd stored for the container, as (stream, line)."""
    out = container.logs(stdout=True, stderr=False).decode().splitlines()
    err = container.logs(stdout=False, stderr=True).decode().splitlines()
    return sorted([("stdout", line) for line in out] + [("stderr", line) for line in err])


def _indexed(p: Pipeline, container: Any) -> list[tuple[str, str]]:
    return sorted((d["stream"], d["message"]) for d in captured(p, container.id).lines)


def test_restart_policy_runs_each_indexed_once(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A container restarted 3 times by its policy has each run's 200 lines indexed once."""
    script = RUN_N + _lines("out", 100) + _lines("err", 100, " >&2") + "exit 1"
    c = run(
        docker_client,
        pipeline,
        script,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
    )
    wait_until(lambda: _state(c)["Status"] == "exited" and _state(c)["Restarting"] is False, 60)
    wait_lines(pipeline, c.id, 800)
    shipped_to_end(pipeline, c)
    expected = sorted(
        (stream, f"run{r} {word} {i}")
        for r in range(1, 5)
        for stream, word in (("stdout", "out"), ("stderr", "err"))
        for i in range(1, 101)
    )
    assert _stored(c) == expected
    assert _indexed(pipeline, c) == expected


def test_stop_start_and_restart_while_printing(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """docker stop/start and docker restart mid-print: indexed lines equal what dockerd stored."""
    script = RUN_N + (
        'i=0; while true; do echo "run$n out $i"; echo "run$n err $i" >&2; '
        "i=$((i+1)); usleep 2000; done"
    )
    c = run(docker_client, pipeline, script)
    time.sleep(1.5)
    c.stop(timeout=0)
    c.start()
    time.sleep(1.5)
    c.restart(timeout=0)
    time.sleep(1.5)
    c.kill()
    assert wait_exit(c) != 0
    stored = _stored(c)
    assert {line.split()[0] for _, line in stored} == {"run1", "run2", "run3"}
    wait_lines(pipeline, c.id, len(stored))
    shipped_to_end(pipeline, c)
    assert _indexed(pipeline, c) == stored


def test_restarted_container_after_shipper_downtime(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A container run again while the shipper was down: only the new run's lines are added."""
    script = RUN_N + _lines("out", 300)
    c = run(docker_client, pipeline, script)
    assert wait_exit(c) == 0
    wait_lines(pipeline, c.id, 300)
    pipeline.shipper.stop()
    c.start()
    assert wait_exit(c) == 0
    pipeline.shipper.start()
    wait_lines(pipeline, c.id, 600)
    shipped_to_end(pipeline, c)
    assert _indexed(pipeline, c) == _stored(c)
    assert len(_stored(c)) == 600


def _state(container: Any) -> dict[str, Any]:
    container.reload()
    return dict(container.attrs["State"])
