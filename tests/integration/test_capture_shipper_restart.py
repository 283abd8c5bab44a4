"""kill -9 of the shipper at random moments loses no line and duplicates none."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

import docker
import pytest

from tests.conftest import Pipeline
from tests.integration.capture import (
    captured,
    expected_numbered,
    numbered,
    run,
    shipped_to_end,
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
        shipped_to_end(pipeline, c)
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


NODE_ERRORS = 300  # a multi-line Node error and three plain lines each, for about 10 s
# Printed in three writes, 5 ms apart, so that the shipper often holds lines back under
# an error's first line (waiting for a frame) when it is killed.
NODE_WRITES = [
    "Error: request %s failed\\n  host: db\\nretrying disabled\\n",
    "    at Socket.<anonymous> (/app/db.js:12:9)\\n    at Socket.emit (node:events:519:28)\\n"
    "Error: x %s\\nstill waiting %s\\n",
    "INFO done %s\\n",
]


def test_kill_9_while_node_errors_are_held_loses_splits_and_duplicates_nothing(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """kill -9 while lines under Node errors wait for a frame: each error (its message
    over several lines) is one document, each plain line one, once."""
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    writes = "; usleep 5000; ".join(
        f"printf '{w}' {' '.join(['$i'] * w.count('%s'))} >&2" for w in NODE_WRITES
    )
    script = f"i=1; while [ $i -le {NODE_ERRORS} ]; do {writes}; i=$((i+1)); usleep 15000; done"
    labels = {"logpipe.multiline": "node", "logpipe.multiline.timeout": "60s"}
    c = run(docker_client, pipeline, script, labels=labels)
    for _ in range(4):
        time.sleep(rnd.uniform(0.5, 1.5))
        pipeline.shipper.kill()
        assert _running(c), "the container finished too early: print more"
        pipeline.shipper.start()
    assert wait_exit(c) == 0
    wait_lines(pipeline, c.id, 4 * NODE_ERRORS, timeout=180)
    shipped_to_end(pipeline, c)
    got = captured(pipeline, c.id)
    expected = Counter[tuple[str, str]]()
    for i in range(1, NODE_ERRORS + 1):
        text = "".join(NODE_WRITES).replace("\\n", "\n").replace("%s", str(i))
        lines = text.rstrip("\n").split("\n")
        for message in ["\n".join(lines[:5]), *lines[5:]]:
            expected["stderr", message] += 1
    assert got.pairs() == expected, f"seed {seed}"
    assert not got.gaps, f"seed {seed}"
