"""kill -9 of the shipper in a catch-up drain: after the restart only the batches the
killed run may have sent are marked as sent again (and looked up by the collector)."""

from __future__ import annotations

import json
from collections.abc import Callable

import docker
import pytest

from shipper.spool import SUFFIX
from shipper.tried import NAME
from tests.conftest import Pipeline, wait_until
from tests.integration.capture import collector_metric
from tests.integration.delivered import (
    assert_each_once,
    metric,
    numbered,
    run,
    wait_lines,
    wait_spooled,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LINES = 12000
BATCH = 20  # lines a batch: 600 segments in the disk buffer
ACKED_AT_KILL = 40
LOOKED_UP = "logpipe_collector_batches_looked_up_total"


def test_a_kill_in_a_drain_marks_only_the_batches_that_may_have_been_sent(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """A backlog of 600 batches, the shipper killed after a collector took about 40 of
    them: at the restart the batches never tried go unmarked, so the collector looks up
    the ids of no more batches than the "tried up to" mark covers; every line once."""
    p = pipeline_factory(batch_max_lines=str(BATCH)).start()
    p.collector.stop()
    c = run(docker_client, p, numbered("drain", LINES))
    assert c.wait(timeout=120)["StatusCode"] == 0
    wait_spooled(p, LINES)
    p.collector.start()
    p.wait_ready()
    wait_until(lambda: metric(p, "logpipe_shipper_batches_acked_total") >= ACKED_AT_KILL, 60, 0.02)
    p.shipper.kill()
    looked_up_before = collector_metric(p, LOOKED_UP)
    spool = p.state_dir / "spool"
    left = sorted(int(path.name.removesuffix(SUFFIX)) for path in spool.glob("*" + SUFFIX))
    record = spool / NAME
    # Without a record every batch left counts as tried (as the shipper takes it).
    mark = json.loads(record.read_bytes())["tried_up_to"] if record.exists() else max(left)
    covered = sum(1 for number in left if number <= mark)
    p.shipper.start()
    wait_lines(p, c.id, LINES)
    assert_each_once(p, c.id, "drain", LINES)
    looked_up = collector_metric(p, LOOKED_UP) - looked_up_before
    print(
        f"{len(left)} batches left at the kill, {covered} at or below the mark {mark}; "
        f"{looked_up:.0f} looked up after the restart"
    )
    assert len(left) >= 500, "the drain went too far before the kill: print more lines"
    assert looked_up <= covered
    # Those never tried (all but the ones in flight, those acknowledged and not yet
    # deleted, and at most AHEAD past the last tried) are not looked up.
    assert looked_up <= len(left) - 400
