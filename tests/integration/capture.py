"""What the capture tests share: containers that print known lines, and reading back
everything a pipeline indexed for a container (all of it, not the first page)."""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
from elasticsearch import NotFoundError

from collector.shape import nested
from shipper.demux import parse_ts
from tests.conftest import Pipeline, every_shard, wait_until


def run(client: docker.DockerClient, p: Pipeline, cmd: str, **kw: Any) -> Any:
    """Start a busybox container in the pipeline's scope, running `sh -c cmd`."""
    labels = {**p.labels, "logpipe.parser": "plain", **kw.pop("labels", {})}
    kw.setdefault("detach", True)
    return client.containers.run(
        "busybox:latest", ["sh", "-c", cmd], network_mode="none", labels=labels, **kw
    )


def numbered(n: int, batch: int = 0, pause_us: int = 0, start: int = 1) -> str:
    """A script printing `out i` on stdout and `err i` on stderr for i in start..start+n-1,
    pausing `pause_us` after every `batch` pairs (a rate of a few thousand lines/s)."""
    last = start + n - 1
    if not batch:
        return (
            f'i={start}; while [ $i -le {last} ]; do echo "out $i"; echo "err $i" >&2; '
            "i=$((i+1)); done"
        )
    return (
        f"i={start}; while [ $i -le {last} ]; do j=0; "
        f'while [ $j -lt {batch} ] && [ $i -le {last} ]; do echo "out $i"; echo "err $i" >&2; '
        f"i=$((i+1)); j=$((j+1)); done; usleep {pause_us}; done"
    )


GO = "/tmp/go"  # what a waiting container waits for, unless told another path


def until_made(path: str = GO) -> str:
    """A script step that waits until `path` exists in the container (the test makes it,
    with let_go, when the container may go on)."""
    return f"while [ ! -e {path} ]; do usleep 20000; done"


def let_go(container: Any, path: str = GO) -> None:
    """Make `path` in the running container: its until_made(path) step ends."""
    assert container.exec_run(["touch", path]).exit_code == 0


def expected_numbered(n: int, start: int = 1) -> set[tuple[str, str]]:
    """The (stream, message) pairs `numbered(n)` prints."""
    out = {("stdout", f"out {i}") for i in range(start, start + n)}
    return out | {("stderr", f"err {i}") for i in range(start, start + n)}


def scan(p: Pipeline, query: dict[str, Any], fields: list[str]) -> list[dict[str, Any]]:
    """Every document of the pipeline matching `query` (scrolling past 10,000).

    Only the pipeline's own data streams are searched: a scroll holds a context per
    shard, and the shared node has hundreds of test indices (a limit of 500 contexts).
    """
    index = f"logs-{p.dataset}*"
    p.es.indices.refresh(index=index)
    # Side by side with other tests, a shard of a stream just made may not have started.
    resp = every_shard(
        lambda: p.es.search(
            index=index, query=p.query(query), size=5000, scroll="1m", source_includes=fields
        )
    )
    out: list[dict[str, Any]] = []
    scroll_id = resp.get("_scroll_id")
    try:
        while True:
            assert not resp["_shards"].get("failed"), resp["_shards"]
            if not resp["hits"]["hits"]:
                return out
            out += [nested(hit["_source"]) | {"_id": hit["_id"]} for hit in resp["hits"]["hits"]]
            resp = p.es.scroll(scroll_id=scroll_id, scroll="1m")
            scroll_id = resp.get("_scroll_id")
    finally:
        if scroll_id:
            with contextlib.suppress(NotFoundError):  # already freed with its last page
                p.es.clear_scroll(scroll_id=scroll_id)


@dataclass
class Captured:
    """A container's documents, split into log lines, gaps and lifecycle events."""

    lines: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    events: list[dict[str, Any]]

    def pairs(self) -> Counter[tuple[str, str]]:
        """How often each (stream, message) was indexed."""
        return Counter((d["stream"], d["message"]) for d in self.lines)

    def duplicates(self) -> list[tuple[str, str]]:
        """(stream, message) pairs indexed more than once."""
        return [k for k, v in self.pairs().items() if v > 1]


FIELDS = ["@timestamp", "message", "stream", "event", "logpipe", "tags", "container", "process"]


def captured(p: Pipeline, container_id: str) -> Captured:
    """Everything indexed for one container."""
    docs = scan(p, {"term": {"container.id": container_id}}, FIELDS)
    lines, gaps, events = [], [], []
    for d in docs:
        action = d.get("event", {}).get("action")
        if action == "gap":
            gaps.append(d)
        elif d.get("event", {}).get("kind") == "event":
            events.append(d)
        else:
            lines.append(d)
    return Captured(lines, gaps, events)


def line_count(p: Pipeline, container_id: str) -> int:
    """How many log lines (not events or gaps) are indexed for a container."""
    return p.count(
        {
            "bool": {
                "filter": [{"term": {"container.id": container_id}}],
                "must_not": [{"term": {"event.kind": "event"}}],
            }
        }
    )


def wait_lines(p: Pipeline, container_id: str, n: int, timeout: float = 90) -> int:
    """Wait until at least `n` log lines of the container are indexed."""
    return int(wait_until(lambda: (c := line_count(p, container_id)) >= n and c, timeout, 0.5))


def settle(p: Pipeline, container_id: str, quiet: float = 3.0, timeout: float = 120) -> int:
    """Wait until the container's document count stops changing for `quiet` seconds."""
    return _settled(lambda: p.count({"term": {"container.id": container_id}}), quiet, timeout)


def indexed_once(p: Pipeline, container: Any, pairs: int) -> Captured:
    """Once the shipper shipped the exited container's log to its end (shipped_to_end):
    each line of `numbered` (`pairs` pairs) indexed exactly once, no other line, no gap.
    What was indexed."""
    shipped_to_end(p, container)
    got = captured(p, container.id)
    assert not got.gaps, [g["logpipe"]["gap"] for g in got.gaps][:3]
    assert not got.duplicates(), got.duplicates()[:5]
    assert set(got.pairs()) == expected_numbered(pairs)
    assert len(got.lines) == 2 * pairs
    return got


def last_stamps(container: Any) -> dict[str, int]:
    """Each stream's last timestamp (ns) in Docker's log of the container; a stream that
    wrote nothing is left out."""
    out = {}
    for stream in ("stdout", "stderr"):
        last = container.logs(
            stdout=stream == "stdout", stderr=stream == "stderr", timestamps=True, tail=1
        )
        if last:
            out[stream] = parse_ts(last.split(b" ", 1)[0])
    return out


def saved_cursor(p: Pipeline, cid: str) -> dict[str, Any] | None:
    """The container's entry in the shipper's cursor file (None: it has none, or there is
    no file yet)."""
    path = p.state_dir / "cursors.json"
    if not path.exists():
        return None
    entry = json.loads(path.read_bytes())["containers"].get(cid)
    return dict(entry) if entry is not None else None


def shipped_to_end(p: Pipeline, container: Any, timeout: float = 120) -> dict[str, Any]:
    """Wait until the shipper has read the stopped container's log to its last line of
    each stream (its follower ended, its cursor there) and a collector acknowledged every
    batch: what it indexes of the container then is searchable, gap documents included.
    A document count that stopped moving says neither: a restarted shipper may not have
    begun yet, or a batch be in a collector's hands for seconds on a busy node.
    The container's entry in the shipper's /status."""
    last = last_stamps(container)

    def reached() -> dict[str, Any] | None:
        status = p.status()
        entry = next((c for c in status["containers"] if c["id"] == container.id), None)
        if entry is None or entry["state"] != "gone":
            return None
        cursor = entry["cursor"]
        if any(s not in cursor or cursor[s]["ts"] < ts for s, ts in last.items()):
            return None
        pending = status["queued_records"] or status["batches_unacknowledged"]
        return None if pending else entry

    p.wait_shipper()
    return dict(wait_until(reached, timeout, 0.5))


def settle_all(p: Pipeline, quiet: float = 3.0, timeout: float = 120) -> int:
    """Wait until the pipeline's document count stops changing for `quiet` seconds."""
    return _settled(p.count, quiet, timeout)


def _settled(count: Callable[[], int], quiet: float, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
        time.sleep(0.5)
    return last


def metric(p: Pipeline, name: str) -> float:
    """The value of one unlabelled metric on the shipper's /metrics (0 when absent)."""
    url = f"http://127.0.0.1:{p.status_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def collector_metric(p: Pipeline, name: str) -> float:
    """A value from the collector's /metrics (0 when the series does not exist yet)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{p.port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def wait_exit(container: Any, timeout: float = 120) -> int:
    """Wait for a container to exit; its exit code."""
    return int(container.wait(timeout=timeout)["StatusCode"])
