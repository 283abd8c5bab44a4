"""`.ci/services`' Elasticsearch bookkeeping: the port it listens on follows
LOGPIPE_ES_PORT, and a node of its folder that runs on another port is named, never
joined by a second one. Its functions are sourced and run on stand-ins."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / ".ci" / "services"
VERSION = "9.2.0"


def services(folder: Path, script: str, port: int) -> subprocess.CompletedProcess[str]:
    """Source .ci/services (its functions only) and run `script` on the folder `folder`."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(folder),
        "LOGPIPE_SERVICES_DIR": str(folder),
        "LOGPIPE_ES_PORT": str(port),
        "LOGPIPE_ES_VERSION": VERSION,
    }
    return subprocess.run(
        ["bash", "-c", f'source "{SERVICES}"; {script}'],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unpacked(tmp_path: Path) -> Path:
    """A services folder whose node was unpacked for port 9200."""
    config = tmp_path / f"elasticsearch-{VERSION}" / "config"
    config.mkdir(parents=True)
    (config / "elasticsearch.yml").write_text("cluster.name: logpipe-dev\nhttp.port: 9200\n")
    (tmp_path / "es-data").mkdir()
    return tmp_path


@pytest.fixture
def node_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line reads like Elasticsearch's."""
    proc = subprocess.Popen(
        ["python3", "-c", "import time; time.sleep(60)", "org.elasticsearch.bootstrap"]
    )
    yield proc
    proc.kill()
    proc.wait()


def test_a_running_node_on_another_port_is_named_not_joined(
    unpacked: Path, node_process: subprocess.Popen[bytes]
) -> None:
    """With the folder's node up on 9200, a start for another port stops at once, saying
    where the node listens, instead of starting a second node on the same data."""
    (unpacked / "es-data" / "es.pid").write_text(f"{node_process.pid}\n")
    port = free_port()
    done = services(unpacked, "start_es; echo started", port)
    assert done.returncode == 1
    assert "started" not in done.stdout
    assert f"(pid {node_process.pid}) runs but does not answer on :{port}" in done.stderr
    assert "it listens on :9200. Set LOGPIPE_ES_PORT to that port" in done.stderr


def test_a_pid_file_of_another_program_is_no_running_node(unpacked: Path) -> None:
    """A pid file left behind, its pid now another program's, does not count as the node."""
    other = subprocess.Popen(["sleep", "60"])
    try:
        (unpacked / "es-data" / "es.pid").write_text(f"{other.pid}\n")
        done = services(unpacked, "es_running || echo none", free_port())
    finally:
        other.kill()
        other.wait()
    assert done.stdout == "none\n", done.stderr


def test_the_node_listens_on_the_port_asked_for_now(unpacked: Path) -> None:
    """A node unpacked for 9200 is started on LOGPIPE_ES_PORT as it is at this start."""
    port = free_port()
    done = services(unpacked, "es_port_config", port)
    assert done.returncode == 0, done.stderr
    config = (unpacked / f"elasticsearch-{VERSION}" / "config" / "elasticsearch.yml").read_text()
    assert config == f"cluster.name: logpipe-dev\nhttp.port: {port}\n"


def test_stop_returns_once_the_node_has_exited(unpacked: Path) -> None:
    """stop (and so reset, which wipes the data next) waits out a node's shutdown."""
    slow = (
        "import os, signal, sys, time\n"
        f"open('{unpacked}/es-data/es.pid', 'w').write(str(os.getpid()))\n"
        "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1), sys.exit(0)))\n"
        "time.sleep(60)\n"
    )
    # Started from a subshell that exits at once, so that the node's parent reaps it.
    script = (
        f'(python3 -c "{slow}" org.elasticsearch.bootstrap &); '
        f'until [ -s "{unpacked}/es-data/es.pid" ]; do sleep 0.1; done; sleep 0.3; '
        f'pid=$(cat "{unpacked}/es-data/es.pid"); stop_all; '
        'if kill -0 "$pid" 2>/dev/null; then echo running; else echo exited; fi'
    )
    done = services(unpacked, script, free_port())
    assert done.returncode == 0, done.stderr
    assert done.stdout == "exited\n"
    assert not (unpacked / "es-data" / "es.pid").exists()
