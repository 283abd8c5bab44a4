"""TTY containers (`-t`): lines split on CRLF, no timestamps injected, stream stdout."""

from __future__ import annotations

import time

import docker
import pytest

from tests.conftest import Pipeline
from tests.integration.capture import captured, run, shipped_to_end, wait_exit, wait_lines

pytestmark = pytest.mark.integration


def test_tty_lines_are_whole_and_clean(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A TTY's 100,000-byte line is one document without the timestamps dockerd injects."""
    script = (
        "echo short; head -c 100000 /dev/zero | tr '\\0' a; echo; echo to-stderr >&2; "
        "head -c 16384 /dev/zero | tr '\\0' c; echo; printf 'last without newline'"
    )
    c = run(docker_client, pipeline, script, tty=True)
    assert wait_exit(c) == 0
    wait_lines(pipeline, c.id, 5)
    shipped_to_end(pipeline, c)
    docs = captured(pipeline, c.id).lines
    assert {d["stream"] for d in docs} == {"stdout"}
    messages = sorted(d["message"] for d in docs)
    expected = ["short", "a" * 100000, "to-stderr", "c" * 16384, "last without newline"]
    assert messages == sorted(expected), [len(m) for m in messages]
    assert not any("\r" in m or "\n" in m for m in messages)


def test_tty_line_without_newline_is_not_glued_to_the_next_run(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """Two runs of a TTY container read in one request: the cut line stays its own line."""
    time.sleep(1.5)  # the shipper notes that it is alive
    pipeline.shipper.kill()
    c = run(docker_client, pipeline, "echo run; printf 'partial'", tty=True)
    assert wait_exit(c) == 0
    c.start()
    assert wait_exit(c) == 0
    pipeline.shipper.start()
    wait_lines(pipeline, c.id, 4)
    shipped_to_end(pipeline, c)
    messages = sorted(d["message"] for d in captured(pipeline, c.id).lines)
    assert messages == ["partial", "partial", "run", "run"]
