"""`.ci/image`'s wheelhouse server: on the same port at every build (the port is part of a
build argument, so a new one rebuilds the dependency layer), unless that port is taken.
Its functions are sourced; no image is built."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / ".ci" / "image"


def image(script: str, cache: Path) -> subprocess.CompletedProcess[str]:
    """Source .ci/image (its functions only) and run `script` with its cache at `cache`."""
    return subprocess.run(
        ["bash", "-c", f'source "{IMAGE}"; {script}'],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cache), "LOGPIPE_CI_CACHE": str(cache)},
    )


def test_a_port_left_in_time_wait_is_free_and_a_listened_one_is_not(tmp_path: Path) -> None:
    """The port of the last build's server, closed with connections in TIME_WAIT, is used
    again; a port where a server listens is not."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server's side closes first: TIME_WAIT on its port
        client.close()
        listening = image(f"port_free {port} && echo free || echo taken", tmp_path)
    assert listening.stdout == "taken\n", listening.stderr
    closed = image(f"port_free {port} && echo free || echo taken", tmp_path)
    assert closed.stdout == "free\n", closed.stderr


def test_the_wheelhouse_is_served_on_the_fixed_port_and_stopped_after(tmp_path: Path) -> None:
    """serve_wheelhouse uses LOGPIPE_CI_WHEELHOUSE_PORT; stop_wheelhouse stops that server."""
    (tmp_path / "wheels").mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = image(
        f"WHEELHOUSE_PORT={port}; serve_wheelhouse; echo $WHEELS_PORT; stop_wheelhouse; "
        'wait "$WHEELS_PID" 2>/dev/null || true; port_free $WHEELS_PORT && echo stopped',
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{port}\nstopped\n"


def test_old_builds_are_pruned_by_the_label_both_stages_carry(tmp_path: Path) -> None:
    """The prune after a build removes only images of both of the Dockerfile's stages (by
    the label each carries), only untagged ones, and none younger than an hour."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = dockerfile.split("\nFROM ")[1:]
    assert len(stages) == 2
    for stage in stages:
        assert "dev.logpipe.image=" in stage
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text('#!/bin/sh\necho "$@" >"$HOME/docker-args"\n')
    (bin_dir / "docker").chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", f'source "{IMAGE}"; prune_old_builds'],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    args = (tmp_path / "docker-args").read_text().split()
    assert args == [
        "image",
        "prune",
        "--force",
        "--filter",
        "label=dev.logpipe.image",
        "--filter",
        "until=1h",
    ]
