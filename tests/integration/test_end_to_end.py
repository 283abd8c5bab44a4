"""Container logs reach Elasticsearch through the real shipper, collector and node."""

from __future__ import annotations

from collections import Counter
from typing import Any

import docker
import pytest

from tests.conftest import Pipeline, wait_until

pytestmark = pytest.mark.integration

N = 200
PRINT_BOTH = f'i=1; while [ $i -le {N} ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done'


def _run(client: docker.DockerClient, p: Pipeline, cmd: str, **kw: Any) -> Any:
    labels = {**p.labels, **kw.pop("labels", {})}
    return client.containers.run(
        "busybox:latest", ["sh", "-c", cmd], detach=True, network_mode="none", labels=labels, **kw
    )


def _log_docs(p: Pipeline, container_id: str) -> list[dict[str, Any]]:
    docs = p.docs({"term": {"container.id": container_id}})
    return [d for d in docs if "stream" in d and d.get("event", {}).get("kind") != "event"]


def test_every_line_arrives_once_with_its_fields(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """Each stdout and stderr line is indexed exactly once, with ECS container fields."""
    labels = {"com.docker.compose.service": "web", "com.example.team": "core"}
    c = _run(docker_client, pipeline, PRINT_BOTH, name=f"e2e-{pipeline.run}", labels=labels)
    pipeline.wait_count(2 * N, {"exists": {"field": "stream"}})
    docs = _log_docs(pipeline, c.id)
    counts = Counter((d["stream"], d["message"]) for d in docs)
    expected = {("stdout", f"out {i}") for i in range(1, N + 1)}
    expected |= {("stderr", f"err {i}") for i in range(1, N + 1)}
    assert set(counts) == expected
    assert max(counts.values()) == 1, "a line was indexed twice"
    doc = docs[0]
    assert doc["container"]["id"] == c.id
    assert doc["container"]["name"] == f"e2e-{pipeline.run}"
    assert doc["container"]["image"]["name"] == "busybox:latest"
    assert doc["container"]["labels"]["com.docker.compose.service"] == "web"
    assert doc["container"]["labels"]["com.example.team"] == "core"
    assert doc["service"]["name"] == "web"
    assert doc["host"]["name"] == pipeline.host
    assert doc["data_stream"] == {
        "type": "logs",
        "dataset": doc["data_stream"]["dataset"],
        "namespace": "default",
    }
    assert doc["data_stream"]["dataset"].startswith(pipeline.dataset)
    assert doc["event"]["dataset"] == pipeline.dataset


def test_timestamp_order_is_print_order_per_stream(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """Sorted by @timestamp, each stream's lines come in the order they were printed."""
    c = _run(docker_client, pipeline, PRINT_BOTH)
    pipeline.wait_count(2 * N, {"exists": {"field": "stream"}})
    docs = _log_docs(pipeline, c.id)
    for stream, prefix in (("stdout", "out"), ("stderr", "err")):
        numbers = [int(d["message"].split()[1]) for d in docs if d["stream"] == stream]
        assert numbers == list(range(1, N + 1)), f"{stream} out of order"
        stamps = [d["@timestamp"] for d in docs if d["stream"] == stream]
        assert stamps == sorted(stamps)
        assert all(d["message"].startswith(prefix) for d in docs if d["stream"] == stream)


def test_container_started_later_is_picked_up(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A container started after the shipper is running has its lines indexed."""
    first = _run(docker_client, pipeline, "echo first; sleep 30")
    pipeline.wait_count(1, {"term": {"container.id": first.id}})
    later = _run(docker_client, pipeline, "echo later one; echo later two >&2")
    wait_until(lambda: len(_log_docs(pipeline, later.id)) == 2, 30)
    messages = sorted(d["message"] for d in _log_docs(pipeline, later.id))
    assert messages == ["later one", "later two"]


def test_lifecycle_events_are_indexed(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A container's start and die (with its exit code) are documents next to its lines."""
    c = _run(docker_client, pipeline, "echo bye; exit 3")
    query = {"term": {"container.id": c.id}}
    wait_until(
        lambda: any(d.get("event", {}).get("action") == "die" for d in pipeline.docs(query)),
        30,
    )
    events = {
        d["event"]["action"]: d for d in pipeline.docs(query) if d["event"].get("kind") == "event"
    }
    assert "start" in events
    assert events["die"]["process"]["exit_code"] == 3
