"""Logs whose rotated files dockerd compresses (``compress=true``) are read from their
files, the compressed ones unpacked, with exactly the lines dockerd would have served:
each once, in order, no gap."""

from __future__ import annotations

import os

import docker
import pytest

from tests.conftest import Pipeline
from tests.integration.capture import (
    captured,
    expected_numbered,
    metric,
    numbered,
    run,
    settle,
    wait_exit,
    wait_lines,
)

pytestmark = pytest.mark.integration

COMPRESSED = {
    "Type": "json-file",
    "Config": {"max-size": "200k", "max-file": "5", "compress": "true"},
}
FOLLOWED = 'logpipe_shipper_file_follows_total{outcome="read to the end"}'


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
    settle(pipeline, c.id)
    got = captured(pipeline, c.id)
    assert set(got.pairs()) == expected_numbered(pairs)
    assert not got.duplicates()
    assert len(got.lines) == 2 * pairs
    assert not got.gaps
    assert metric(pipeline, FOLLOWED) >= 1  # not served by dockerd
