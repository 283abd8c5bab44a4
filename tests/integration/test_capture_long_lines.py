"""Long lines reach Elasticsearch as one document each, byte-exact, whatever dockerd cut."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import Pipeline
from tests.integration.capture import captured, run, shipped_to_end, wait_exit, wait_lines

pytestmark = pytest.mark.integration

SIZES = {16384: "a", 16385: "b", 40000: "c", 100000: "d", 1_000_000: "e"}
STDERR_LINES = 3000
SPLIT = 100000  # this line is written in two halves, stderr lines and a pause between
MIDDLE_LINES = 100


def _long_line(size: int, char: str) -> str:
    if size != SPLIT:
        return f"head -c {size} /dev/zero | tr '\\0' {char}; echo"
    # dockerd stores the first half's 16 KiB pieces before the stderr lines that follow,
    # however the background chatter below was scheduled: the pause before them gives
    # its stdout copier time to take the first half, even on a busy machine.
    half = size // 2
    middle = f'j=0; while [ $j -lt {MIDDLE_LINES} ]; do echo "m $j" >&2; j=$((j+1)); done'
    return (
        f"head -c {half} /dev/zero | tr '\\0' {char}; usleep 300000; {middle}; usleep 300000; "
        f"head -c {size - half} /dev/zero | tr '\\0' {char}; echo"
    )


def _long_lines_script() -> str:
    """Long stdout lines of each size while stderr prints short numbered lines."""
    longs = "; ".join(_long_line(size, char) for size, char in SIZES.items())
    chatter = f'i=0; while [ $i -lt {STDERR_LINES} ]; do echo "e $i" >&2; i=$((i+1)); done'
    return f"({chatter}) & {longs}; echo done; wait"


def test_long_lines_are_one_document_each_byte_exact(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """Lines of 16,384 to 1,000,000 bytes, with stderr lines interleaved, arrive whole."""
    c = run(docker_client, pipeline, _long_lines_script())
    assert wait_exit(c) == 0
    assert _stderr_between_pieces(c) > 0, "stderr did not interleave: the case is not tested"
    wait_lines(pipeline, c.id, len(SIZES) + 1 + STDERR_LINES + MIDDLE_LINES)
    shipped_to_end(pipeline, c)
    got = captured(pipeline, c.id)
    stdout = [d["message"] for d in got.lines if d["stream"] == "stdout"]
    expected = [char * size for size, char in SIZES.items()] + ["done"]
    assert sorted(stdout) == sorted(expected), [len(m) for m in stdout]
    stderr = sorted(d["message"] for d in got.lines if d["stream"] == "stderr")
    chatter = [f"e {i}" for i in range(STDERR_LINES)] + [f"m {j}" for j in range(MIDDLE_LINES)]
    assert stderr == sorted(chatter)
    assert not got.duplicates()
    assert not any("truncated" in d.get("tags", []) for d in got.lines)
    assert not got.gaps


def _stderr_between_pieces(container: Any) -> int:
    """How many stderr entries dockerd stored between two pieces of a stdout line."""
    container.reload()
    inside, between = False, 0
    for raw in Path(container.attrs["LogPath"]).read_bytes().splitlines():
        entry = json.loads(raw)
        if entry["stream"] == "stdout":
            inside = not entry["log"].endswith("\n")
        elif inside:
            between += 1
    return between


UTF8_SCRIPT = "head -c 16383 /dev/zero | tr '\\0' b; printf '\\303\\251end\\n'; echo after"


def test_utf8_cut_by_dockerd_is_byte_exact_with_local_driver(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A 16 KiB cut inside 'é' comes back as the exact line under the local driver."""
    c = run(docker_client, pipeline, UTF8_SCRIPT, log_config={"Type": "local", "Config": {}})
    assert wait_exit(c) == 0
    wait_lines(pipeline, c.id, 2)
    shipped_to_end(pipeline, c)
    messages = sorted(d["message"] for d in captured(pipeline, c.id).lines)
    assert messages == sorted(["after", "b" * 16383 + "éend"])


def test_utf8_cut_by_dockerd_is_one_document_with_json_file(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """Under json-file the cut character is two U+FFFD in Docker's own file: one document."""
    c = run(docker_client, pipeline, UTF8_SCRIPT)
    assert wait_exit(c) == 0
    wait_lines(pipeline, c.id, 2)
    shipped_to_end(pipeline, c)
    messages = sorted(d["message"] for d in captured(pipeline, c.id).lines)
    stored = c.logs(stdout=True, stderr=False).decode("utf-8").splitlines()[0]
    assert stored == "b" * 16383 + "\ufffd\ufffdend"
    assert messages == sorted(["after", stored])


def test_line_over_the_maximum_is_cut_and_marked_truncated(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """A line longer than max_line_bytes is cut there and tagged truncated, never dropped."""
    p = pipeline_factory(shipper_max_line_bytes="50000")
    p.start()
    c = run(
        docker_client,
        p,
        "head -c 200000 /dev/zero | tr '\\0' x; echo; head -c 2000000 /dev/zero | tr '\\0' y; "
        "echo; echo next",
    )
    assert wait_exit(c) == 0
    wait_lines(p, c.id, 3)
    shipped_to_end(p, c)
    docs = {d["message"][:1]: d for d in captured(p, c.id).lines}
    assert sorted(docs) == ["n", "x", "y"]
    for char in "xy":
        assert docs[char]["message"] == char * 50000
        assert "truncated" in docs[char]["tags"]
    assert docs["n"]["message"] == "next"
    assert "truncated" not in docs["n"].get("tags", [])


def test_default_maximum_is_one_mebibyte(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """With default settings a 1,500,000-byte line is cut at 1 MiB and marked truncated."""
    c = run(docker_client, pipeline, "head -c 1500000 /dev/zero | tr '\\0' z; echo")
    assert wait_exit(c) == 0
    wait_lines(pipeline, c.id, 1)
    (doc,) = captured(pipeline, c.id).lines
    assert doc["message"] == "z" * 1024 * 1024
    assert "truncated" in doc["tags"]


def test_last_line_without_newline_arrives(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """A last line printed without a newline before exit is indexed, on both streams."""
    c = run(docker_client, pipeline, "echo first; printf 'no newline out'; printf 'no nl err' >&2")
    assert wait_exit(c) == 0
    wait_lines(pipeline, c.id, 3)
    shipped_to_end(pipeline, c)
    got = sorted((d["stream"], d["message"]) for d in captured(pipeline, c.id).lines)
    assert got == [("stderr", "no nl err"), ("stdout", "first"), ("stdout", "no newline out")]
