"""Filters, opt-outs, metadata, rename, lifecycle events and /status on real containers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import docker
import pytest

from tests.conftest import Pipeline, wait_until
from tests.integration.capture import (
    captured,
    let_go,
    run,
    shipped_to_end,
    until_made,
    wait_exit,
    wait_lines,
)

pytestmark = pytest.mark.integration


def test_filters_opt_outs_and_self_are_not_followed(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """Excluded names and labels, logpipe.enable=false, LOGSPOUT=ignore and self: no line."""
    p = pipeline_factory(shipper_exclude_names="skip-*", shipper_exclude_labels="team=ignored")
    me = run(docker_client, p, "echo from-self; exec sleep 600")
    assert p.shipper.env is not None
    p.shipper.env["LOGPIPE_SELF_CONTAINER_ID"] = me.id
    p.start()
    script = "echo hello; exec sleep 600"
    skipped = [
        run(docker_client, p, script, name=f"skip-{p.run}"),
        run(docker_client, p, script, labels={"logpipe.enable": "false"}),
        run(docker_client, p, script, labels={"team": "ignored"}),
        run(docker_client, p, script, environment={"LOGSPOUT": "ignore"}),
    ]
    kept = run(docker_client, p, script, name=f"keep-{p.run}")
    wait_lines(p, kept.id, 1)
    time.sleep(2)
    for c in [me, *skipped]:
        assert p.count({"term": {"container.id": c.id}}) == 0, c.name
    followed = {c["id"] for c in p.status()["containers"]}
    assert kept.id in followed
    assert not followed & {c.id for c in [me, *skipped]}


def test_metadata_and_a_rename_apply_to_later_lines(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """Every line carries container and compose metadata; after a rename, the new name."""
    labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "cart"}
    old, new = f"before-{pipeline.run}", f"after-{pipeline.run}"
    c = run(
        docker_client,
        pipeline,
        f"echo one; {until_made()}; echo two; exec sleep 600",
        name=old,
        labels=labels,
    )
    wait_lines(pipeline, c.id, 1)
    c.rename(new)
    wait_until(
        lambda: any(e["event"]["action"] == "rename" for e in captured(pipeline, c.id).events)
    )
    let_go(c)
    wait_lines(pipeline, c.id, 2)
    docs = {d["message"]: d for d in captured(pipeline, c.id).lines}
    assert docs["one"]["container"]["name"] == old
    assert docs["two"]["container"]["name"] == new
    for doc in docs.values():
        assert doc["container"]["image"]["name"] == "busybox:latest"
        assert doc["container"]["labels"]["com.docker.compose.project"] == "shop"
    rename = next(e for e in captured(pipeline, c.id).events if e["event"]["action"] == "rename")
    assert rename["container"]["name"] == new
    assert old in rename["event"]["reason"]


def _actions(p: Pipeline, c: Any) -> list[str]:
    return sorted(e["event"]["action"] for e in captured(p, c.id).events)


def test_lifecycle_events_are_documents_next_to_the_lines(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """start, restart, health status, oom and die (with its exit code) are indexed."""
    c = run(
        docker_client,
        pipeline,
        "echo up; exec sleep 600",
        healthcheck={"test": ["CMD", "true"], "interval": 500_000_000, "start_period": 0},
    )
    wait_until(lambda: "health_status" in _actions(pipeline, c), 30)
    c.restart(timeout=0)
    wait_until(lambda: "restart" in _actions(pipeline, c), 30)
    hog = run(
        docker_client,
        pipeline,
        "echo eating; x=$(head -c 60000000 /dev/zero | tr '\\0' a); echo never",
        mem_limit="8m",
        memswap_limit="8m",
    )
    assert wait_exit(hog) == 137
    wait_until(lambda: {"oom", "die"} <= set(_actions(pipeline, hog)), 30)
    die = next(e for e in captured(pipeline, hog.id).events if e["event"]["action"] == "die")
    assert die["process"]["exit_code"] == 137
    assert [d["message"] for d in captured(pipeline, hog.id).lines] == ["eating"]
    health = [e for e in captured(pipeline, c.id).events if e["event"]["action"] == "health_status"]
    assert any(e["event"]["reason"] == "healthy" for e in health)
    assert {"start", "die", "restart"} <= set(_actions(pipeline, c))


def test_status_shows_waiting_for_collector_then_following(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """While the collector is down a container with unsent lines is 'waiting for collector'."""
    c = run(docker_client, pipeline, "echo first; while true; do echo tick; sleep 0.5; done")
    wait_lines(pipeline, c.id, 1)
    pipeline.collector.stop()

    def state() -> dict[str, Any]:
        return next(x for x in pipeline.status()["containers"] if x["id"] == c.id)

    waiting = wait_until(lambda: (s := state())["state"] == "waiting for collector" and s, 30)
    assert pipeline.status()["collector_error"]
    pipeline.collector.start()
    pipeline.wait_ready()
    following = wait_until(lambda: (s := state())["state"] == "following" and s, 60)
    assert following["lines"] > waiting["lines"] >= 1
    assert following["bytes"] >= following["lines"]
    assert set(following["cursor"]) == {"stdout"}
    assert following["lag_seconds"] is not None
    assert following["lag_seconds"] >= 0
    c.kill()
    wait_exit(c)
    gone = shipped_to_end(pipeline, c)
    assert gone["lines"] == len(captured(pipeline, c.id).lines)  # what it counted, no other
