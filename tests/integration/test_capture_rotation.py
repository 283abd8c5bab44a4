"""Log rotation: lines dockerd sends again are dropped, lost lines are reported as gaps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
import pytest

from tests.conftest import Pipeline
from tests.integration.capture import (
    Captured,
    captured,
    indexed_once,
    let_go,
    metric,
    numbered,
    run,
    shipped_to_end,
    until_made,
    wait_exit,
    wait_lines,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROTATE = {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}


def _numbers(got: Captured, stream: str) -> dict[int, str]:
    """Printed number -> @timestamp of each indexed line of a stream."""
    return {
        int(d["message"].split()[1]): d["@timestamp"] for d in got.lines if d["stream"] == stream
    }


def _holes(present: dict[int, str], last: int) -> list[tuple[int, int]]:
    """Runs of numbers in 1..last that were not indexed, as (first missing, last missing)."""
    holes, start = [], None
    for n in range(1, last + 1):
        if n not in present and start is None:
            start = n
        elif n in present and start is not None:
            holes.append((start, n - 1))
            start = None
    if start is not None:
        holes.append((start, last))
    return holes


def _covered(hole: tuple[int, int], present: dict[int, str], gaps: list[dict[str, Any]]) -> bool:
    """Some gap document spans from the line before the hole to the line after it."""
    before = present.get(hole[0] - 1)
    after = present.get(hole[1] + 1)
    for gap in gaps:
        span = gap["logpipe"]["gap"]
        if (before is None or span["from"] <= before) and (after is None or span["to"] >= after):
            return True
    return False


def _check_accounted(got: Captured, pairs: int) -> int:
    """No line twice; every missing line inside a reported gap. The number lost."""
    assert not got.duplicates(), got.duplicates()[:5]
    lost = 0
    for stream, word in (("stdout", "out"), ("stderr", "err")):
        present = _numbers(got, stream)
        assert all(d["message"].startswith(word) for d in got.lines if d["stream"] == stream)
        gaps = [g for g in got.gaps if g["stream"] == stream]
        for hole in _holes(present, pairs):
            assert _covered(hole, present, gaps), (stream, hole, len(gaps))
            lost += hole[1] - hole[0] + 1
    return lost


def test_fast_writer_with_rotation_no_repeats_and_no_silent_loss(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """1m x 2 files, ~120,000 lines as fast as busybox prints: exact or gaps say what is lost."""
    pairs = 60000
    c = run(docker_client, pipeline, numbered(pairs), log_config=ROTATE)
    assert wait_exit(c) == 0
    shipped_to_end(pipeline, c)
    got = captured(pipeline, c.id)
    lost = _check_accounted(got, pairs)
    print(
        f"indexed {len(got.lines)} of {2 * pairs}, lost {lost}, gaps {len(got.gaps)}, "
        f"duplicates dropped {metric(pipeline, 'logpipe_shipper_duplicates_dropped_total')}, "
        f"recovered {metric(pipeline, 'logpipe_shipper_lines_recovered_total')}, "
        f"audits {metric(pipeline, 'logpipe_shipper_rotation_audits_total')}"
    )
    if lost:
        assert metric(pipeline, "logpipe_shipper_gaps_total") >= 1
    assert len(got.lines) + lost == 2 * pairs


def test_rotation_while_the_shipper_is_down_is_a_gap(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """Lines rotated away while the shipper was stopped are reported as a gap on resume."""
    # The writer goes on only once the shipper is stopped (a sleep ran out first on a
    # busy machine, and the shipper that saw the rotation was not the one asked).
    script = numbered(100) + f"; {until_made()}; " + numbered(40000, start=101)
    c = run(docker_client, pipeline, script, log_config=ROTATE)
    wait_lines(pipeline, c.id, 200)
    pipeline.shipper.stop()
    let_go(c)
    assert wait_exit(c) == 0
    pipeline.shipper.start()
    shipped_to_end(pipeline, c)
    got = captured(pipeline, c.id)
    lost = _check_accounted(got, 40100)
    assert lost > 0, "the writer did not outrun the two 1 MB files: write more"
    assert got.gaps
    assert all(g["logpipe"]["gap"]["from"] <= g["logpipe"]["gap"]["to"] for g in got.gaps)
    assert metric(pipeline, "logpipe_shipper_gaps_total") >= 1


def test_compressed_rotation_kept_whole_loses_nothing(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """Files rotated and gzipped (compress=true), all of them kept, the log followed
    through dockerd (LOGPIPE_FOLLOW_FILES=false: as where the shipper cannot read
    dockerd's files; where it can, it follows them itself): a window the follow stream
    seemed to skip is read again from the files dockerd still has, never taken for
    lost. 60,000 entries of about 80 bytes fill 10 of its 12 files of 500 kB."""
    pipeline = pipeline_factory(shipper_follow_files="false").start()
    pairs = 30000
    config = {
        "Type": "json-file",
        "Config": {"max-size": "500k", "max-file": "12", "compress": "true"},
    }
    c = run(docker_client, pipeline, numbered(pairs), log_config=config)
    assert wait_exit(c) == 0
    indexed_once(pipeline, c, pairs)
    assert metric(pipeline, "logpipe_shipper_rotation_audits_total") >= 1
