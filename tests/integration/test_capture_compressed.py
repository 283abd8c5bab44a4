"""Logs whose rotated files dockerd compresses (``compress=true``, the ``local`` driver's
default) are read from their files, the compressed ones unpacked, with exactly the lines
dockerd would have served: each once, in order, no gap."""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
from collections.abc import Callable

import docker
import pytest

from shipper.catchup import SUBSCRIBE_SLACK_NS
from shipper.demux import Frame
from shipper.logfiles import localfile
from shipper.logfiles.jsonfile import SLACK_NS
from tests.conftest import Pipeline, wait_until
from tests.integration.capture import (
    indexed_once,
    let_go,
    metric,
    numbered,
    run,
    settle,
    until_made,
    wait_exit,
    wait_lines,
)

pytestmark = pytest.mark.integration

COMPRESSED = {
    "Type": "json-file",
    "Config": {"max-size": "200k", "max-file": "5", "compress": "true"},
}
FOLLOWED = 'logpipe_shipper_file_follows_total{outcome="read to the end"}'
FROM_FILES = 'logpipe_shipper_backlog_file_reads_total{outcome="read to the end"}'
CAUGHT_UP = "logpipe_shipper_backlog_file_catch_ups_total"
# Past this, a first start's event subscription no longer replays a container's events:
# only the listing can find it.
BEYOND_REPLAY = SUBSCRIBE_SLACK_NS / 1e9 + 1


def test_a_running_log_rotated_into_compressed_files_is_followed_from_them_once(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """8,000 lines over about 4 s, rotated three times at 200 kB, each rotated file
    compressed by dockerd while the shipper follows the log from its files: every line
    indexed once, no gap, and the follow read the log to its end itself."""
    pairs = 4000
    c = run(
        docker_client, pipeline, numbered(pairs, batch=100, pause_us=100_000), log_config=COMPRESSED
    )
    assert wait_exit(c) == 0
    c.reload()
    folder = os.path.dirname(c.attrs["LogPath"])
    packed = [n for n in os.listdir(folder) if n.endswith(".gz")]
    assert len(packed) >= 2, "the log did not rotate into compressed files: write more"
    wait_lines(pipeline, c.id, 2 * pairs)
    indexed_once(pipeline, c, pairs)
    assert metric(pipeline, FOLLOWED) >= 1  # not served by dockerd


def test_an_exited_local_log_is_read_from_its_compressed_files_once(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """A `local` log rotated at 64 kB into compressed files (the driver's default), of a
    container that exited before the shipper started: read from its files, every line
    once, no gap, without asking dockerd for it."""
    p = pipeline_factory()
    p.collector.start()
    p.wait_ready()
    pairs = 3000
    config = {"Type": "local", "Config": {"max-size": "64k"}}
    c = run(docker_client, p, numbered(pairs), log_config=config)
    assert wait_exit(c) == 0
    root = docker_client.info()["DockerRootDir"]
    path = localfile.local_log_path(root, c.id)
    wait_until(lambda: os.path.exists(f"{path}.2.gz"), 10)
    time.sleep(BEYOND_REPLAY)
    p.shipper.start()
    p.wait_shipper()
    wait_lines(p, c.id, 2 * pairs)
    indexed_once(p, c, pairs)
    assert metric(p, FROM_FILES) == 1


@pytest.mark.parametrize("follow_files", [True, False])
def test_a_running_local_logs_backlog_is_read_from_its_files_once(
    pipeline_factory: Callable[..., Pipeline],
    docker_client: docker.DockerClient,
    follow_files: bool,
) -> None:
    """A running container's `local` log, already rotated into compressed files when the
    shipper starts: its backlog is read from the files, and what follows too, to the
    log's end; with LOGPIPE_FOLLOW_FILES=false, the backlog is caught up from the files
    and dockerd gives the log's end and what follows. Every line once, no gap."""
    p = pipeline_factory(shipper_follow_files=str(follow_files).lower())
    p.collector.start()
    p.wait_ready()
    config = {"Type": "local", "Config": {"max-size": "64k"}}
    script = numbered(3000) + "; sleep 8; " + numbered(500, start=3001)
    c = run(docker_client, p, script, log_config=config)
    root = docker_client.info()["DockerRootDir"]
    path = localfile.local_log_path(root, c.id)
    wait_until(lambda: os.path.exists(f"{path}.2.gz"), 10)
    time.sleep(BEYOND_REPLAY)
    c.reload()
    assert c.status == "running"
    p.shipper.start()
    p.wait_shipper()
    assert wait_exit(c) == 0
    wait_lines(p, c.id, 2 * 3500)
    indexed_once(p, c, 3500)
    assert metric(p, FOLLOWED) == (1 if follow_files else 0)
    assert metric(p, CAUGHT_UP) == (0 if follow_files else 1)


def test_a_running_local_log_is_followed_from_its_files_across_rotations_once(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A `local` log (rotated at 64 kB into compressed files, 5 kept: the driver's
    defaults otherwise) printed at a few thousand lines/s while the shipper follows it
    from its files: at least four rotations, the oldest files removed before the end,
    so only a live follow has every line; each indexed once, no gap, and the follow,
    not dockerd, read the log to its end."""
    pairs = 6000
    config = {"Type": "local", "Config": {"max-size": "64k"}}
    c = run(docker_client, pipeline, numbered(pairs, batch=100, pause_us=50_000), log_config=config)
    assert wait_exit(c) == 0
    root = docker_client.info()["DockerRootDir"]
    path = localfile.local_log_path(root, c.id)
    assert os.path.exists(f"{path}.4.gz"), "the log did not rotate four times: write more"
    wait_lines(pipeline, c.id, 2 * pairs)
    indexed_once(pipeline, c, pairs)
    assert metric(pipeline, FOLLOWED) >= 1  # not served by dockerd


def test_a_local_log_followed_from_its_files_across_a_shipper_kill_once(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """kill -9 of the shipper while it follows a running `local` log from its files,
    rotations (compressed) while it is down: the restarted shipper goes on from its
    positions, from the files; every line once, no gap."""
    pairs = 8000
    config = {"Type": "local", "Config": {"max-size": "64k"}}
    c = run(docker_client, pipeline, numbered(pairs, batch=50, pause_us=40_000), log_config=config)
    wait_lines(pipeline, c.id, 200)
    pipeline.shipper.kill()
    time.sleep(1.5)
    c.reload()
    assert c.status == "running", "the container finished while the shipper was down: print more"
    pipeline.shipper.start()
    assert wait_exit(c) == 0
    wait_lines(pipeline, c.id, 2 * pairs)
    indexed_once(pipeline, c, pairs)
    assert metric(pipeline, FOLLOWED) >= 1  # the restarted shipper followed the files


UNPACKED = "logpipe_shipper_logfile_unpacked_total"
END = "/tmp/end"  # made once the test has looked at the rotated files: the last lines come


def _entries(path: str) -> list[Frame]:
    """The entries of a `local` log file, a compressed one unpacked."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return localfile.decode(data).frames


def test_a_restarts_backlog_unpacks_only_the_compressed_files_it_needs(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """A `local` log (64 kB files, four compressed kept) read up to line 2,700; the
    shipper stops, the container writes 1,500 more pairs (rotated into compressed files)
    and the shipper starts again. Its backlog read unpacks only the compressed files
    that may hold a line from its saved position on: those written seconds before it
    are not (their gzip header says when they end). Every line once, no gap."""
    p = pipeline_factory()
    p.collector.start()
    p.wait_ready()
    config = {"Type": "local", "Config": {"max-size": "64k"}}
    script = (
        numbered(2500)
        + "; sleep 3; "
        + numbered(100, start=2501)
        + "; sleep 3; "
        + numbered(100, start=2601)
        + f"; touch /paused; {until_made()}; "
        + numbered(1500, start=2701)
        + "; touch /written; sleep 600"
    )
    c = run(docker_client, p, script, log_config=config)
    wait_until(lambda: c.exec_run(["test", "-f", "/paused"]).exit_code == 0, 30)
    time.sleep(BEYOND_REPLAY)  # found by the shipper's listing, its backlog read from files
    p.shipper.start()
    p.wait_shipper()
    wait_lines(p, c.id, 2 * 2700)
    settle(p, c.id)
    assert p.shipper.stop() == 0
    saved = json.loads((p.state_dir / "cursors.json").read_bytes())["containers"][c.id]
    since = min(ts for ts, _ in saved["streams"].values())
    let_go(c)
    wait_until(lambda: c.exec_run(["test", "-f", "/written"]).exit_code == 0, 30)
    root = docker_client.info()["DockerRootDir"]
    path = localfile.local_log_path(root, c.id)
    packed = [f"{path}.{k}.gz" for k in range(1, 6) if os.path.exists(f"{path}.{k}.gz")]
    # The files holding an entry the read from `since` needs, by their content.
    needed = [n for n in packed if any(e.ts >= since - SLACK_NS for e in _entries(n))]
    assert len(packed) - len(needed) >= 1, "no compressed file ends before the position"
    assert needed, "the position is not in a compressed file: write more after it"
    p.shipper.start()
    p.wait_shipper()
    wait_lines(p, c.id, 2 * 4200)
    c.kill()  # it prints nothing more: exited, the shipper can say it shipped the log's end
    wait_exit(c)
    indexed_once(p, c, 4200)
    assert metric(p, UNPACKED) == len(needed)  # read from the files, those only


# The shipper as a deployment without dockerd's containers folder runs it (no mount, or a
# user that cannot read it): every log comes through dockerd.
WITHOUT_FILES = (
    "import runpy, shipper.source\n"
    "from shipper.logfiles.watch import LogFiles\n"
    "async def _unseen(docker): return LogFiles('')\n"
    "shipper.source.find_log_files = _unseen\n"
    "runpy.run_module('shipper', run_name='__main__')\n"
)
REREADS = "logpipe_shipper_resume_rereads_total"


def test_a_resume_through_dockerd_past_compressed_rotations_loses_nothing(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """A shipper that cannot read dockerd's files reads a `local` log (64 kB files,
    compressed) up to line 2,000, past its first rotations, and stops; the container
    writes 4,000 more pairs, rotated into compressed files, and the shipper starts
    again. dockerd, asked from the saved positions, meets a compressed file that ends
    before them and skips every newer one; the span is read again from the log's start
    and every line is indexed once, with its own time, and no gap document. (The first
    2,000 are written before the shipper's first start, which reads them from the log's
    start: a follow stream that a rotation made skip the last lines of a burst learns
    of it only from the next line, which this container prints only later.)"""
    p = pipeline_factory()
    p.shipper.args = [sys.executable, "-c", WITHOUT_FILES]
    p.collector.start()
    p.wait_ready()
    config = {"Type": "local", "Config": {"max-size": "64k", "max-file": "30"}}
    script = (
        f"{numbered(2000)}; touch /paused; {until_made()}; "
        f"{numbered(4000, start=2001)}; touch /written; {until_made(END)}; "
        f"{numbered(200, start=6001)}"
    )
    c = run(docker_client, p, script, log_config=config)
    wait_until(lambda: c.exec_run(["test", "-f", "/paused"]).exit_code == 0, 30)
    p.shipper.start()
    p.wait_shipper()
    wait_lines(p, c.id, 2 * 2000)
    settle(p, c.id, quiet=1)
    assert p.shipper.stop() == 0
    saved = json.loads((p.state_dir / "cursors.json").read_bytes())["containers"][c.id]
    since = min(ts for ts, _ in saved["streams"].values())
    let_go(c)
    wait_until(lambda: c.exec_run(["test", "-f", "/written"]).exit_code == 0, 30)
    path = localfile.local_log_path(docker_client.info()["DockerRootDir"], c.id)
    packed = [f"{path}.{k}.gz" for k in range(1, 30) if os.path.exists(f"{path}.{k}.gz")]
    assert not os.path.exists(f"{path}.29.gz"), "the oldest files may be gone: write less"
    ends = [max(e.ts for e in _entries(name)) for name in packed]
    # What makes dockerd skip them: one ends before `since`, a newer one after it.
    assert min(ends) < since, "no compressed file ends before the position: write more first"
    assert max(ends) > since, "no compressed file after the position: write more after it"
    p.shipper.start()
    p.wait_shipper()
    let_go(c, END)
    assert wait_exit(c) == 0
    wait_lines(p, c.id, 2 * 6200)
    got = indexed_once(p, c, 6200)
    for stream in ("stdout", "stderr"):
        # Each line carries its own entry's time: in the order printed, never earlier.
        lines = sorted(
            (int(d["message"].split()[1]), d["@timestamp"])
            for d in got.lines
            if d["stream"] == stream
        )
        assert [stamp for _, stamp in lines] == sorted(stamp for _, stamp in lines)
    assert metric(p, REREADS) >= 1  # the span came from the read from the log's start
    assert metric(p, FOLLOWED) == 0  # through dockerd, never from the files
