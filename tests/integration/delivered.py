"""What the delivery tests share: containers printing numbered lines, reading back every
document a pipeline indexed, and the shipper's metrics and log."""

from __future__ import annotations

import functools
import json
import re
import time
import urllib.request
from collections import Counter
from typing import Any

import docker

from tests.conftest import Pipeline, wait_until
from tests.integration import capture


def run(client: docker.DockerClient, p: Pipeline, cmd: str, **kw: Any) -> Any:
    """Start a busybox container in the pipeline's scope, running `sh -c cmd`."""
    labels = {**p.labels, "logpipe.parser": "plain", **kw.pop("labels", {})}
    kw.setdefault("detach", True)
    return client.containers.run(
        "busybox:latest", ["sh", "-c", cmd], network_mode="none", labels=labels, **kw
    )


def numbered(prefix: str, n: int, pause_us: int = 0, every: int = 1) -> str:
    """A script printing `<prefix> i` for i in 1..n, pausing `pause_us` every `every` lines."""
    pause = f"[ $((i % {every})) -eq 0 ] && usleep {pause_us}; " if pause_us else ""
    return f'i=1; while [ $i -le {n} ]; do echo "{prefix} $i"; {pause}i=$((i+1)); done'


def messages(p: Pipeline, container_id: str) -> Counter[str]:
    """How often each message of the container's log lines was indexed (all pages)."""
    query = p.query(
        {
            "bool": {
                "filter": [{"term": {"container.id": container_id}}],
                "must_not": [{"term": {"event.kind": "event"}}],
            }
        }
    )
    # A point in time over this pipeline's data streams only, paged with search_after:
    # scrolls share the node's open-context limit with every other test run.
    index = f"logs-{p.dataset}*"
    p.es.indices.refresh(index=index)
    pit = p.es.open_point_in_time(index=index, keep_alive="1m")["id"]
    out: Counter[str] = Counter()
    after: list[Any] | None = None
    try:
        while True:
            resp = p.es.search(
                pit={"id": pit, "keep_alive": "1m"},
                query=query,
                size=5000,
                sort=[{"@timestamp": "asc"}],
                search_after=after,
                source_includes=["message"],
            )
            assert not resp["_shards"]["failed"], resp["_shards"]
            hits = resp["hits"]["hits"]
            if not hits:
                break
            out.update(hit["_source"]["message"] for hit in hits)
            after = hits[-1]["sort"]
    finally:
        p.es.close_point_in_time(id=pit)
    return out


# Capture's wait, given longer by default: delivery tests stop and restart whole services.
wait_lines = functools.partial(capture.wait_lines, timeout=120)


def assert_each_once(p: Pipeline, container_id: str, prefix: str, n: int) -> None:
    """Every `<prefix> i` line (1..n) was indexed exactly once, and nothing else."""
    wait_lines(p, container_id, n)
    counts = messages(p, container_id)
    expected = {f"{prefix} {i}" for i in range(1, n + 1)}
    missing = sorted(expected - set(counts), key=lambda m: int(m.split()[-1]))
    assert not missing, f"{len(missing)} lines lost, first {missing[:5]}"
    assert set(counts) == expected, f"unexpected lines {sorted(set(counts) - expected)[:5]}"
    twice = [m for m, c in counts.items() if c > 1]
    assert not twice, f"{len(twice)} lines indexed twice, first {twice[:5]}"


def metrics_text(p: Pipeline) -> str:
    """The shipper's /metrics page ('' when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{p.status_port}/metrics", timeout=5) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def metric(p: Pipeline, name: str, **labels: str) -> float:
    """One sample of the shipper's /metrics (0 when absent)."""
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    series = re.escape(f"{name}{{{selector}}}" if labels else name)
    match = re.search(rf"^{series} ([0-9.e+-]+)$", metrics_text(p), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def shipper_logs(p: Pipeline) -> list[dict[str, Any]]:
    """The shipper's JSON log lines so far."""
    out = []
    for line in p.shipper.output().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def wait_log(p: Pipeline, text: str, timeout: float = 60) -> dict[str, Any]:
    """Wait for a shipper log line whose message contains `text`; that line."""

    def found() -> dict[str, Any] | None:
        return next((x for x in shipper_logs(p) if text in str(x.get("message", ""))), None)

    return dict(wait_until(found, timeout, 0.3))


def wait_spooled(p: Pipeline, lines_read: float, timeout: float = 60) -> None:
    """Wait until the shipper read `lines_read` lines and holds nothing in memory."""
    wait_until(
        lambda: (
            metric(p, "logpipe_shipper_lines_read_total") >= lines_read
            and p.status()["queued_records"] == 0
        ),
        timeout,
    )
    time.sleep(1.0)  # the batch being gathered (max age 0.2 s here) reaches the disk


def wait_gone(client: docker.DockerClient, container_id: str, timeout: float = 60) -> None:
    """Wait until the container no longer exists (a --rm container after its exit)."""

    def gone() -> bool:
        try:
            client.containers.get(container_id)
        except docker.errors.NotFound:
            return True
        return False

    wait_until(gone, timeout)
