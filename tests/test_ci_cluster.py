"""`.ci/cluster`'s checks of its pieces: what answers on a piece's port is that piece,
never another program there. Its functions are sourced and run against stand-ins, so
no cluster is started."""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / ".ci" / "cluster"


def cluster(run: Path, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Source .ci/cluster (its functions only) and run `script`, its state under `run`."""
    return subprocess.run(
        ["bash", "-c", f'source "{CLUSTER}"; {script}'],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(run), "LOGPIPE_CLUSTER_DIR": str(run), **env},
    )


@contextlib.contextmanager
def serve(answer: bytes) -> Iterator[int]:
    """A port where another program answers every GET with `answer`."""

    class Fixed(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Fixed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def answering_port() -> Iterator[int]:
    """A port where another program answers 200 to everything."""
    with serve(b'{"status": "ok"}') as port:
        yield port


@pytest.mark.parametrize(
    ("name", "state"),
    [("logpipe-dev", "down"), ("logpipe-cluster", "up")],
)
def test_only_a_node_of_this_cluster_counts_as_one_of_its_nodes(
    tmp_path: Path, name: str, state: str
) -> None:
    """A node of another cluster on es1's port (as .ci/services' node on 9200) leaves es1
    down, where start would have set it up as its own; a node of this cluster is up."""
    with serve(json.dumps({"cluster_name": name, "nodes": {}}).encode()) as port:
        done = cluster(
            tmp_path,
            "if es_node_up es1; then echo up; else echo down; fi",
            LOGPIPE_CLUSTER_ES_PORT=str(port),
        )
    assert done.stdout == f"{state}\n", done.stderr


def test_a_collector_that_exited_is_down_whatever_answers_on_its_port(
    tmp_path: Path, answering_port: int
) -> None:
    """collector1 without a running process is down, though its port answers /healthz."""
    (tmp_path / "collector1").mkdir()
    (tmp_path / "collector1" / "pid").write_text("999999999\n")
    done = cluster(
        tmp_path,
        "if collector_up collector1; then echo up; else echo down; fi",
        LOGPIPE_CLUSTER_COLLECTOR_PORT=str(answering_port),
    )
    assert done.stdout == "down\n", done.stderr


def test_stop_with_nothing_running_says_so_and_clears_stale_pid_files(tmp_path: Path) -> None:
    """Pid files of pieces that died are removed, so status shows no stale pid afterwards."""
    for piece in ("collector1", "shipper2", "docker1"):
        (tmp_path / piece).mkdir()
        (tmp_path / piece / "pid").write_text("999999999\n")
    done = cluster(tmp_path, "stop_all")
    assert done.returncode == 0, done.stderr
    assert f"nothing of the cluster in {tmp_path} was running" in done.stderr
    assert not list(tmp_path.glob("*/pid"))
