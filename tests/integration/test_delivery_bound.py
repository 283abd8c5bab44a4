"""When the disk buffer nears its bound, the busiest container's reading pauses, says so,
and resumes later from Docker's own log files: nothing is dropped."""

from __future__ import annotations

import base64
import gzip
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import orjson
import pytest

from shipper.catchup import DOCKERD_EVENTS_KEPT
from shipper.lifecycle import HELD_FILE
from shipper.spool import _split as split_segment
from tests.conftest import Pipeline, wait_until
from tests.integration.capture import captured, saved_cursor
from tests.integration.delivered import (
    assert_each_once,
    messages,
    metric,
    numbered,
    run,
    wait_lines,
    wait_log,
)

pytestmark = pytest.mark.integration

BOUND = 64 * 1024  # the smallest allowed: a few thousand numbered lines fill it
BUSY = 20000
QUIET = 150
EXECS = DOCKERD_EVENTS_KEPT // 3 + 10  # dockerd's whole ring of events, and some
# One line of random base64 (under Docker's 16 KiB a log entry): gzip leaves about 10 KB,
# more than the tenth of BOUND a pause at 90% may leave free.
WIDE = base64.b64encode(os.urandom(10_000)).decode()


def test_the_busiest_container_pauses_first_and_every_line_still_arrives_once(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """Near the bound the busy container is paused (log, metric); after the outage all arrive."""
    p = pipeline_factory(buffer_max_bytes=str(BOUND), queue_lines="100")
    p.start()
    quiet = run(docker_client, p, numbered("quiet", QUIET, pause_us=50000), name=f"quiet-{p.run}")
    wait_lines(p, quiet.id, 3)
    p.collector.stop()
    busy = run(docker_client, p, numbered("busy", BUSY), name=f"busy-{p.run}")
    line = wait_log(p, "pausing the busiest container")
    assert line["container"] == f"busy-{p.run}"
    assert metric(p, "logpipe_shipper_containers_paused") >= 1
    assert metric(p, "logpipe_shipper_container_pauses_total") >= 1
    assert metric(p, "logpipe_shipper_buffer_bytes") <= BOUND
    busy.wait(timeout=120)
    assert metric(p, "logpipe_shipper_lines_read_total") < BUSY  # Docker holds the rest
    p.collector.start()
    wait_log(p, "disk buffer drained: reading resumes")
    assert_each_once(p, busy.id, "busy", BUSY)
    assert_each_once(p, quiet.id, "quiet", QUIET)
    wait_until(lambda: metric(p, "logpipe_shipper_containers_paused") == 0, 30)


def test_a_stop_while_the_buffer_is_full_keeps_the_lines_of_a_finished_container(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """A container that printed and exited while the disk buffer was full had its lines
    only in the queue. A stop then saved its cursor as read to its end, and the next start
    skipped it: every line of it was lost, with no gap and a log saying they would be read
    again. It is done only once the lines before its end are on disk. Its start and die
    events were in memory only too: the stop writes them to the state dir, and the next
    start queues them, whatever dockerd's replay of its events still has."""
    # Room in the queue for every line busy prints and the short container's: what busy
    # read before its pause (a read is up to 256 KiB of its file, thousands of lines) can
    # pass the default bound, and the short container's lines then wait outside the
    # queue for room that never comes while the collector is down.
    p = pipeline_factory(
        buffer_max_bytes=str(BOUND), shutdown_timeout="1", queue_lines=str(2 * BUSY)
    )
    p.start()
    p.collector.stop()
    # It stays up after its lines: its follower is then the one left once the others end.
    busy = run(docker_client, p, numbered("busy", BUSY) + "; sleep 600", name=f"busy-{p.run}")
    wait_log(p, "pausing the busiest container")
    # Paused at 90% of the bound, busy may have left the last batch room (on a loaded
    # host it prints slower than batches are written, and none was waiting): a line that
    # gzip cannot shrink below a tenth of the bound fills it, if it is not full yet. From
    # then on nothing read reaches the disk buffer.
    wide = run(docker_client, p, f"echo {WIDE}", name=f"wide-{p.run}")
    wait_log(p, "disk buffer full")
    short = run(docker_client, p, numbered("short", QUIET), name=f"short-{p.run}")
    short.wait(timeout=60)

    def read_whole() -> bool:
        entry = next((c for c in p.status()["containers"] if c["id"] == short.id), None)
        return entry is not None and entry["lines"] == QUIET

    wait_until(read_whole, 60)
    # Its follower ends once the log is read to its end (busy's is left: busy runs).
    wait_until(lambda: p.status()["followed"] == 1, 60)
    time.sleep(3)  # and its die event, on a connection of its own, reaches the shipper
    assert spooled(p, busy.id)  # the disk buffer holds busy's batches ...
    assert not spooled(p, short.id)  # ... and nothing of short's: in memory only
    assert p.shipper.stop() == 0
    # The stop saved its cursor not done. The next start reads it again whatever its
    # cursor says (it exited after the shipper's last sign of life, which is never past
    # an event held in memory: catchup.CATCH_UP_NS), so only the cursor file shows a
    # wrong "done".
    saved = saved_cursor(p, short.id)
    assert saved is not None
    assert not saved.get("done")
    # Its start and die events waited in memory too: the stop wrote them to the state dir.
    held = orjson.loads((p.state_dir / HELD_FILE).read_bytes())
    assert {e["action"] for e in held if e["id"] == short.id} == {"die", "start"}
    # A busy host (health checks, docker exec) makes more events meanwhile than dockerd
    # keeps: its replay at the next start no longer has them.
    roll_dockerd_events(docker_client, p)
    p.collector.start()
    p.wait_ready()
    p.shipper.start()
    p.wait_shipper()
    assert_each_once(p, short.id, "short", QUIET)
    assert_each_once(p, busy.id, "busy", BUSY)
    wait_lines(p, wide.id, 1)
    assert messages(p, wide.id) == Counter({WIDE: 1})
    wait_log(p, "dockerd no longer had every container event")
    # They come from the state dir, once each.
    wait_until(lambda: len(captured(p, short.id).events) >= 2, 30)
    got = sorted(e["event"]["action"] for e in captured(p, short.id).events)
    assert got == ["die", "start"]
    assert not (p.state_dir / HELD_FILE).exists()


def roll_dockerd_events(client: docker.DockerClient, p: Pipeline) -> None:
    """Make more events than dockerd keeps (each exec makes three: create, start, die)."""
    sleeper = run(client, p, "sleep 600", name=f"sleeper-{p.run}")
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: sleeper.exec_run("true").exit_code, range(EXECS)))
    assert codes == [0] * EXECS
    sleeper.remove(force=True)


def spooled(p: Pipeline, container_id: str) -> list[Path]:
    """The disk buffer's segments holding anything of the container (its source line
    comes with each of its lines and events in a batch)."""
    found = []
    for path in sorted((p.state_dir / "spool").glob("*.seg")):
        segment = split_segment(path.read_bytes())
        assert segment is not None, f"{path} is not a segment"
        if container_id.encode() in gzip.decompress(segment[1]):
            found.append(path)
    return found
