"""Containers that exited (and were not removed) before the shipper could read them:
their log is still in Docker, so it is shipped, exactly once, and not read again at the
next start."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import docker
import pytest

from shipper.catchup import SUBSCRIBE_SLACK_NS
from shipper.source import STOPPED_READS
from tests.conftest import Pipeline, wait_until
from tests.integration.capture import (
    captured,
    indexed_once,
    let_go,
    metric,
    numbered,
    run,
    saved_cursor,
    shipped_to_end,
    until_made,
    wait_exit,
    wait_lines,
)

pytestmark = pytest.mark.integration

PAIRS = 500

# Prints `first` on its first run and `again` on each later one (its file system stays).
TWO_RUNS = "if [ -f /ran ]; then echo again; else echo first; touch /ran; fi"

# Past this, a first start's event subscription no longer replays a container's events:
# only the listing can find it.
BEYOND_REPLAY = SUBSCRIBE_SLACK_NS / 1e9 + 1


def _exact(p: Pipeline, container: Any, pairs: int) -> None:
    """Every numbered line of the exited container indexed once, no gap."""
    wait_lines(p, container.id, 2 * pairs)
    indexed_once(p, container, pairs)


FROM_FILES = 'logpipe_shipper_backlog_file_reads_total{outcome="read to the end"}'


def _restart_reads_nothing(p: Pipeline, cid: str) -> None:
    """A restart reads not one line of the finished container, and its cursor stays."""
    assert p.shipper.stop() == 0
    p.shipper.start()
    p.wait_shipper()
    time.sleep(2)  # the listing is done once connected; give a follower time to read
    assert metric(p, "logpipe_shipper_lines_read") == 0
    entry = saved_cursor(p, cid)
    assert entry is not None
    assert entry.get("done") is True


@pytest.mark.parametrize("stop", ["sigterm", "kill"])
def test_container_that_exited_while_the_shipper_was_stopped_is_read_to_its_end(
    pipeline: Pipeline, docker_client: docker.DockerClient, stop: str
) -> None:
    """Seen running, then it printed the rest and exited while the shipper was down: the
    rest arrives once the shipper is back, and a later restart does not read it again."""
    # The second half waits for the shipper's stop (a sleep ran out first on a busy
    # machine, and the running shipper read it).
    script = f"{numbered(PAIRS)}; {until_made()}; {numbered(PAIRS, start=PAIRS + 1)}"
    c = run(docker_client, pipeline, script)
    wait_lines(pipeline, c.id, 2 * PAIRS)
    time.sleep(1.5)  # the cursor file is saved once a second
    if stop == "kill":
        pipeline.shipper.kill()
    else:
        assert pipeline.shipper.stop() == 0
    assert saved_cursor(pipeline, c.id) is not None
    let_go(c)
    assert wait_exit(c) == 0
    pipeline.shipper.start()
    _exact(pipeline, c, 2 * PAIRS)
    wait_until(lambda: (saved_cursor(pipeline, c.id) or {}).get("done"), 10)
    _restart_reads_nothing(pipeline, c.id)


def test_container_that_exited_before_the_first_start_is_read_by_default(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """A shipper started for the first time (start_at=beginning) ships the whole log of a
    container that had already exited, once; removing the container forgets its cursor."""
    p = pipeline_factory()
    p.collector.start()
    p.wait_ready()
    c = run(docker_client, p, numbered(PAIRS))
    assert wait_exit(c) == 0
    time.sleep(BEYOND_REPLAY)
    p.shipper.start()
    p.wait_shipper()
    _exact(p, c, PAIRS)
    wait_until(lambda: (saved_cursor(p, c.id) or {}).get("done"), 10)
    _restart_reads_nothing(p, c.id)
    c.remove()
    wait_until(lambda: saved_cursor(p, c.id) is None, 10)
    assert not captured(p, c.id).gaps


def test_start_at_end_ships_only_what_an_exited_container_prints_later(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """With start_at=end, a container that exited before the first start keeps its old
    lines to itself; started again, only what it prints from then on is shipped."""
    p = pipeline_factory(start_at="end")
    p.collector.start()
    p.wait_ready()
    c = run(docker_client, p, TWO_RUNS)
    assert wait_exit(c) == 0
    time.sleep(BEYOND_REPLAY)
    p.shipper.start()
    p.wait_shipper()
    c.start()
    assert wait_exit(c) == 0
    wait_lines(p, c.id, 1)
    shipped_to_end(p, c)
    assert [d["message"] for d in captured(p, c.id).lines] == ["again"]


def test_many_containers_exited_before_the_first_start_are_each_read_once(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """More exited containers than are read at once (STOPPED_READS): every one's log is
    shipped exactly once, and each is left with a finished cursor."""
    p = pipeline_factory()
    p.collector.start()
    p.wait_ready()
    pairs = 200
    containers = [run(docker_client, p, numbered(pairs)) for _ in range(2 * STOPPED_READS + 4)]
    for c in containers:
        assert wait_exit(c) == 0
    time.sleep(BEYOND_REPLAY)
    p.shipper.start()
    p.wait_shipper()
    # Read within seconds of each other: each is still on /status (a minute past its end).
    for c in containers:
        indexed_once(p, c, pairs)
    for c in containers:
        wait_until(lambda c=c: (saved_cursor(p, c.id) or {}).get("done"), 10)  # type: ignore[misc]  # a lambda with a default: mypy cannot infer it
    # the shipper sees dockerd's log files here: each log was read from them, not dockerd
    assert metric(p, FROM_FILES) == len(containers)


@pytest.mark.parametrize("compress", [False, True])
def test_exited_container_with_rotated_files_is_read_once(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient, compress: bool
) -> None:
    """An exited container whose log rotated into three files: read from them in
    order, every line once, dockerd's rotated files compressed (compress=true, then
    unpacked by the shipper) or not. A restart then reads nothing of it."""
    p = pipeline_factory()
    p.collector.start()
    p.wait_ready()
    options = {"max-size": "64k", "max-file": "5", "compress": str(compress).lower()}
    pairs = 1000  # 2,000 entries of about 80 bytes: three files, none rotated away
    c = run(docker_client, p, numbered(pairs), log_config={"Type": "json-file", "Config": options})
    assert wait_exit(c) == 0
    c.reload()
    log_path = c.attrs["LogPath"]
    rotated = f"{log_path}.1.gz" if compress else f"{log_path}.2"
    wait_until(lambda: os.path.exists(rotated), 10)
    time.sleep(BEYOND_REPLAY)
    p.shipper.start()
    p.wait_shipper()
    _exact(p, c, pairs)
    wait_until(lambda: (saved_cursor(p, c.id) or {}).get("done"), 10)
    assert metric(p, FROM_FILES) == 1
    _restart_reads_nothing(p, c.id)
