"""Discovery: nothing missed while listing, silence is not death, and what happened while
the shipper was down is read or reported."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from tests.conftest import Pipeline, wait_until
from tests.integration.capture import (
    captured,
    let_go,
    metric,
    run,
    saved_cursor,
    settle_all,
    until_made,
    wait_exit,
    wait_lines,
)

pytestmark = pytest.mark.integration

BURST = 30


def test_containers_started_while_the_shipper_lists_are_not_missed(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """Containers started before, during and after the shipper's start all have their lines."""
    p = pipeline_factory()
    p.collector.start()
    p.wait_ready()
    started: list[str] = []

    def burst() -> None:
        def one(i: int) -> str:
            time.sleep(i * 0.05)
            return str(run(docker_client, p, f"echo start {i}; sleep 3; echo end {i}").id)

        with ThreadPoolExecutor(4) as pool:
            started.extend(pool.map(one, range(BURST)))

    thread = threading.Thread(target=burst)
    thread.start()
    time.sleep(1.0)
    p.shipper.start()
    thread.join()
    for cid in started:
        wait_lines(p, cid, 2, timeout=60)
        messages = sorted(d["message"].split()[0] for d in captured(p, cid).lines)
        assert messages == ["end", "start"], cid


def test_a_silent_stream_is_not_taken_for_a_dead_container(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A container silent for 8 s stays followed, and its next line arrives."""
    c = run(docker_client, pipeline, "echo before; sleep 8; echo after; exec sleep 600")
    wait_lines(pipeline, c.id, 1)
    time.sleep(3)
    state = {x["id"]: x["state"] for x in pipeline.status()["containers"]}[c.id]
    assert state == "following"
    wait_lines(pipeline, c.id, 2, timeout=30)
    assert sorted(d["message"] for d in captured(pipeline, c.id).lines) == ["after", "before"]
    assert metric(pipeline, "logpipe_shipper_docker_reconnects_total") == 0


def test_container_that_ran_while_the_shipper_was_down_is_read(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A container that started and exited while the shipper was stopped has its lines."""
    time.sleep(1.5)  # the shipper notes it is alive once a second
    pipeline.shipper.stop()
    c = run(docker_client, pipeline, "echo while-down; echo also-down >&2")
    assert wait_exit(c) == 0
    pipeline.shipper.start()
    wait_lines(pipeline, c.id, 2)
    got = sorted((d["stream"], d["message"]) for d in captured(pipeline, c.id).lines)
    assert got == [("stderr", "also-down"), ("stdout", "while-down")]


def test_container_removed_while_the_shipper_was_down_is_a_gap(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A followed container removed while the shipper was down is reported, not forgotten."""
    # It prints its second line only once the shipper is down: with a `sleep 4` it had
    # exited, and been read to its end, before the kill on a loaded machine (its cursor
    # said so, rightly, and no gap was owed).
    c = run(docker_client, pipeline, f"echo seen; {until_made()}; echo unseen")
    wait_lines(pipeline, c.id, 1)
    # The line's position, in the cursor file saved every second.
    wait_until(lambda: "stdout" in (saved_cursor(pipeline, c.id) or {}).get("streams", {}), 30)
    pipeline.shipper.kill()
    let_go(c)
    assert wait_exit(c) == 0
    c.remove()
    pipeline.shipper.start()
    # One gap per stream (they may come in two batches), reported once: the listing and
    # the replayed start event both find the container gone.
    wait_until(lambda: len(captured(pipeline, c.id).gaps) >= 2, 30)
    settle_all(pipeline)
    gaps = captured(pipeline, c.id).gaps
    assert sorted(g["stream"] for g in gaps) == ["stderr", "stdout"]
    assert all("container was removed" in g["event"]["reason"] for g in gaps)
    # From the last line read, for stderr too, which had none.
    seen = max(d["@timestamp"] for d in captured(pipeline, c.id).lines)
    assert all(g["logpipe"]["gap"]["from"] >= seen for g in gaps)


def test_rm_container_that_came_and_went_while_down_is_a_gap(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A `--rm` container that lived only while the shipper was down is reported as a gap,
    once per stream."""
    time.sleep(1.5)
    pipeline.shipper.stop()
    c = run(docker_client, pipeline, "echo gone", auto_remove=True)
    wait_until(lambda: not docker_client.containers.list(all=True, filters={"id": c.id}), 30)
    pipeline.shipper.start()
    # One gap per stream, reported once: its replayed start's follower finds it gone,
    # and the listing, which finds its cursor, leaves it to that follower.
    wait_until(lambda: len(captured(pipeline, c.id).gaps) >= 2, 30)
    settle_all(pipeline)
    gaps = captured(pipeline, c.id).gaps
    assert sorted(g["stream"] for g in gaps) == ["stderr", "stdout"]
    assert all("removed before its logs could be read" in g["event"]["reason"] for g in gaps)
    # Events travel apart from the gap (another batch, at most a batch age later).
    actions = wait_until(
        lambda: (
            (got := {e["event"]["action"] for e in captured(pipeline, c.id).events})
            >= {"start", "die", "destroy"}
            and got
        ),
        3,
    )
    assert {"start", "die", "destroy"} <= actions
