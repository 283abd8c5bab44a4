"""`.ci/up`'s bookkeeping of the collector and shipper it starts: which process it
signals, when it says a piece is up, when `stop` returns. Its functions are sourced and
run on stand-ins, so no service is needed."""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UP = ROOT / ".ci" / "up"
# A stand-in whose command line reads like the piece's (`... -m shipper`) and that takes
# a second to exit on SIGTERM, as a shipper flushing its batches does.
SLOW_SHIPPER = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1), sys.exit(0)))\n"
    "time.sleep(60)\n"
)


def up(run: Path, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Source .ci/up (its functions only) and run `script` with its run folder at `run`."""
    return subprocess.run(
        ["bash", "-c", f'source "{UP}"; {script}'],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LOGPIPE_DEMO_RUN_DIR": str(run), **env},
    )


@pytest.fixture
def answering_port() -> Iterator[int]:
    """A port where another program answers every GET with 200."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_stop_never_signals_a_process_that_is_not_the_piece(tmp_path: Path) -> None:
    """A pid file naming another program (its pid reused) leaves that program running."""
    other = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "shipper.pid").write_text(f"{other.pid}\n")
        done = up(tmp_path, "stop")
        assert done.returncode == 0, done.stderr
        assert "were not running" in done.stdout
        assert other.poll() is None
        assert not (tmp_path / "shipper.pid").exists()
    finally:
        other.kill()
        other.wait()


def test_stop_returns_once_the_piece_has_exited(tmp_path: Path) -> None:
    """`stop` waits out a shipper's flush, so its port and state directory are free after."""
    shipper = subprocess.Popen(["python3", "-c", SLOW_SHIPPER, "-m", "shipper"])
    try:
        time.sleep(0.5)  # its SIGTERM handler is in place
        (tmp_path / "shipper.pid").write_text(f"{shipper.pid}\n")
        done = up(tmp_path, "stop")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("stopped: shipper")
        assert shipper.poll() == 0
    finally:
        shipper.kill()
        shipper.wait()


def test_a_piece_that_exits_at_start_fails_with_its_log(
    tmp_path: Path, answering_port: int
) -> None:
    """A collector that exits is reported, even when another program answers on its port."""
    exits = "print('LOGPIPE_LISTEN: cannot listen: address already in use'); raise SystemExit(2)"
    done = up(
        tmp_path,
        f'start_bg collector python3 -c "{exits}" -m collector serve; sleep 1; '
        f"wait_ready collector http://127.0.0.1:{answering_port}/readyz; echo ready",
    )
    assert done.returncode == 1
    assert "ready" not in done.stdout
    assert "collector exited at start" in done.stderr
    assert "address already in use" in done.stderr


def test_a_taken_port_is_refused_naming_the_setting(tmp_path: Path, answering_port: int) -> None:
    """A port another program holds stops the start, naming the variable that moves it."""
    done = up(tmp_path, f"need_port {answering_port} LOGPIPE_DEMO_COLLECTOR_PORT; echo free")
    assert done.returncode == 1
    assert f"port {answering_port} is taken" in done.stderr
    assert "LOGPIPE_DEMO_COLLECTOR_PORT=<port>" in done.stderr


def test_a_free_port_is_accepted(tmp_path: Path) -> None:
    """A port nobody listens on passes the check."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = up(tmp_path, f"need_port {port} LOGPIPE_DEMO_COLLECTOR_PORT; echo free")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "free\n"


def test_a_piece_just_started_is_waited_for(tmp_path: Path, answering_port: int) -> None:
    """A piece checked the instant it was started (not yet exec'ed) is waited for, not failed."""
    # Half a second passes before its command line reads `-m collector serve`.
    late = "sleep 0.5; exec python3 -c 'import time; time.sleep(3)' -m collector \"$0\""
    done = up(
        tmp_path,
        f'start_bg collector bash -c "{late}" serve; '
        f"wait_ready collector http://127.0.0.1:{answering_port}/readyz; echo ready",
    )
    with contextlib.suppress(ProcessLookupError):
        os.kill(int((tmp_path / "collector.pid").read_text()), signal.SIGKILL)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ready\n"


def test_pieces_run_from_the_run_folder_with_this_checkouts_code(tmp_path: Path) -> None:
    """A piece starts in the run folder, so compose's .env in the checkout does not
    configure it (its LOGPIPE_TOKEN would be sent instead of .ci/up's), and imports the
    checkout's collector whatever logpipe is installed."""
    probe = "import os, collector; print(os.getcwd()); print(collector.__file__)"
    done = up(
        tmp_path,
        f'start_bg collector python3 -c "{probe}" -m collector serve; '
        'wait "$(cat "$RUN/collector.pid")"; cat "$RUN/collector.log"',
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(tmp_path), str(ROOT / "collector" / "__init__.py")]
