"""A window of a rotating log that waits to be read again. The shipper stopped meanwhile:
the next start reads the window and the lines after it from Docker again, and each line
is indexed once, also when the data stream rolled over in between. A ``--rm`` container
removed meanwhile: the window is read from the log file the shipper holds, and nothing
is reported lost where nothing was."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import docker
import pytest
from elasticsearch import Elasticsearch

from shipper.logfiles.audit import TEST_DELAY_ENV
from tests.conftest import Pipeline, wait_until
from tests.integration import capture

pytestmark = [pytest.mark.integration]

# Pairs before the pause (more than the 2,048 entries the audit measures the writer's
# rate over: a rate is known, and the pause is a step it reads again) and after it.
FIRST, THEN = 1100, 3000
ROTATE = {"Type": "json-file", "Config": {"max-size": "200k", "max-file": "12"}}
LOOKED_UP = "logpipe_collector_batches_looked_up_total"


def test_lines_read_again_after_a_held_window_are_indexed_once_across_a_rollover(
    pipeline_factory: Callable[..., Pipeline],
    docker_client: docker.DockerClient,
    es: Elasticsearch,
) -> None:
    """A log rotating every 200 kB, followed through dockerd. Its writer pauses for 3 s
    (a step the rotation audit must read again), the shipper frozen (SIGSTOP) meanwhile,
    then fills 2 files faster than it is read: thawed, the follow stream may skip a
    rotated file. Each audit is held longer than the test lasts (LOGPIPE_TEST_AUDIT_DELAY:
    a real one takes milliseconds, too short to stop the shipper in). What the follow
    stream gave is indexed; the stream rolls over; the shipper is stopped (SIGTERM) and
    started without the delay. From the held position it reads the lines it sent before
    (marked as sent again: the collector looks them up in the older backing index) and
    any it skipped: every line indexed once."""
    p = pipeline_factory(shipper_follow_files="false", shipper_test_audit_delay="600").start()
    script = capture.numbered(FIRST) + "; sleep 3; " + capture.numbered(THEN, start=FIRST + 1)
    c = capture.run(docker_client, p, script, log_config=ROTATE)
    capture.wait_lines(p, c.id, 2 * FIRST, timeout=30)
    p.shipper.signal(signal.SIGSTOP)
    try:
        assert capture.wait_exit(c) == 0
    finally:
        p.shipper.signal(signal.SIGCONT)
    indexed = capture.settle(p, c.id, quiet=2, timeout=60) - 2  # less the start and die events
    assert capture.metric(p, "logpipe_shipper_rotation_audits_total") >= 1  # begun, held
    assert capture.metric(p, "logpipe_shipper_lines_recovered_total") == 0  # so nothing read again
    # How many the follow stream skipped depends on dockerd and the machine's load (none,
    # at times): the pause is the window held either way.
    print(f"the follow stream skipped {2 * (FIRST + THEN) - indexed} lines")
    # Client 9.5 POSTs _resolve/index; Elasticsearch 9.2 accepts only GET there.
    streams = es.perform_request("GET", f"/_resolve/index/logs-{p.dataset}.*").body["data_streams"]
    assert streams
    for stream in streams:
        assert es.indices.rollover(alias=stream["name"])["rolled_over"]
    looked_up = capture.collector_metric(p, LOOKED_UP)
    assert p.shipper.stop() == 0  # SIGTERM: the audit is cancelled, the cursors saved
    del p.shipper.env[TEST_DELAY_ENV]
    p.shipper.start()
    p.wait_shipper()
    capture.indexed_once(p, c, FIRST + THEN)
    marked = capture.collector_metric(p, LOOKED_UP) - looked_up
    print(f"batches sent marked after the restart, looked up: {marked:.0f}")
    assert marked > 0


def _gone(client: docker.DockerClient, cid: str) -> bool:
    try:
        client.containers.get(cid)
    except docker.errors.NotFound:
        return True
    return False


def _followed_to_its_end(p: Pipeline, cid: str) -> None:
    """Wait until the removed container's follower ended (its last audits are done before)
    and a collector acknowledged every batch."""

    def ended() -> bool:
        status = p.status()
        entry = next((c for c in status["containers"] if c["id"] == cid), None)
        pending = status["queued_records"] or status["batches_unacknowledged"]
        return (entry is None or entry["state"] == "gone") and not pending

    wait_until(ended, 60, 0.5)


LOCAL_1M: dict[str, Any] = {"Type": "local", "Config": {"max-size": "1m"}}
JSON_1M: dict[str, Any] = {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "3"}}


@pytest.mark.parametrize("log_config", [JSON_1M, LOCAL_1M], ids=["json-file", "local"])
def test_a_window_of_a_removed_rm_container_is_read_from_its_held_log_file(
    pipeline_factory: Callable[..., Pipeline],
    docker_client: docker.DockerClient,
    log_config: dict[str, Any],
) -> None:
    """A ``--rm`` container's writer pauses for 2 s (a step the rotation audit reads
    again), prints as much again and exits; dockerd removes it while the audit waits
    (LOGPIPE_TEST_AUDIT_DELAY, 8 s), so dockerd answers the audit that the container is gone.
    The audit read nothing then and reported each window as lost: a gap document per
    stream for a log whose every line was indexed (under load, 14 for one container). It
    reads the windows from the log file the shipper holds for the container's tail: every
    line indexed once, no gap."""
    p = pipeline_factory(shipper_follow_files="false", shipper_test_audit_delay="8").start()
    audits = capture.metric(p, "logpipe_shipper_rotation_audits_total")
    script = capture.numbered(FIRST) + "; sleep 2; " + capture.numbered(FIRST, start=FIRST + 1)
    c = capture.run(docker_client, p, script, log_config=log_config, auto_remove=True)
    wait_until(lambda: _gone(docker_client, c.id), 60, 0.2)
    _followed_to_its_end(p, c.id)
    got = capture.captured(p, c.id)
    assert capture.metric(p, "logpipe_shipper_rotation_audits_total") > audits
    assert not got.gaps, [g["logpipe"]["gap"] for g in got.gaps]
    assert not got.duplicates(), got.duplicates()[:5]
    assert set(got.pairs()) == capture.expected_numbered(2 * FIRST)
