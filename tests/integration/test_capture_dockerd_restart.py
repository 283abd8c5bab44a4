"""dockerd restarts (graceful and kill -9): the shipper reconnects and resumes exactly.

These tests run a SECOND dockerd of their own (own socket, data root, exec root and
pidfile, live-restore so that containers outlive it); the shared one is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Pipeline, wait_until
from tests.integration.capture import (
    captured,
    expected_numbered,
    metric,
    numbered,
    settle,
    wait_lines,
)
from tests.integration.delivered import shipper_logs

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Daemon:
    """A dockerd of the test's own, restartable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "d.sock"
        self.host = f"unix://{self.sock}"
        self.pidfile = root / "d.pid"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until it answers."""
        self.pidfile.unlink(missing_ok=True)  # left behind by a kill -9
        with (self.root / "dockerd.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    "dockerd",
                    f"--host={self.host}",
                    f"--data-root={self.root / 'data'}",
                    f"--exec-root={self.root / 'x'}",
                    f"--pidfile={self.pidfile}",
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--live-restore",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._up, 60, 0.3)

    def _up(self) -> bool:
        return self.sock.exists() and self.cli("version").returncode == 0

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this daemon (the SDK leaks sockets when it dies)."""
        return subprocess.run(
            ["docker", "-H", self.host, *args], capture_output=True, text=True, check=False
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal it and wait for it to exit; a kill -9 takes its containerd down too."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(60)
        if sig == signal.SIGKILL:
            # As a crash of the whole service: the containerd dockerd started would
            # otherwise keep its socket and the next dockerd could not start its own.
            pidfile = self.root / "x" / "containerd" / "containerd.pid"
            with contextlib.suppress(OSError, ValueError):
                pid = int(pidfile.read_text().strip())
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: _dead(pid), 10, 0.1)
            # A zombie still passes dockerd's "is it running" check: drop its pid file.
            pidfile.unlink(missing_ok=True)

    def run(self, p: Pipeline, cmd: str) -> str:
        """Start a busybox container in the pipeline's scope; its id."""
        labels = [f"--label={k}={v}" for k, v in {**p.labels, "logpipe.parser": "plain"}.items()]
        out = self.cli("run", "-d", "--network=none", *labels, "busybox", "sh", "-c", cmd)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()


def _dead(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


@pytest.fixture(scope="module")
def second_dockerd() -> Iterator[Daemon]:
    """A second dockerd with busybox:latest loaded; removed with all it ran afterwards."""
    root = Path(tempfile.mkdtemp(prefix="lpd-", dir="/tmp"))  # short: socket paths are bounded
    daemon = Daemon(root)
    try:
        daemon.start()
        image = subprocess.run(
            ["docker", "save", "busybox:latest"], check=True, capture_output=True
        )
        subprocess.run(["docker", "-H", daemon.host, "load"], input=image.stdout, check=True)
        yield daemon
    finally:
        with contextlib.suppress(Exception):
            if daemon.proc is None or daemon.proc.poll() is not None:
                daemon.start()
        for cid in daemon.cli("ps", "-aq").stdout.split():
            daemon.cli("rm", "-f", cid)
        daemon.stop()
        subprocess.run(["umount", "-l", str(root / "data")], check=False, capture_output=True)
        if not os.environ.get("LOGPIPE_TEST_KEEP_LOGS"):
            shutil.rmtree(root, ignore_errors=True)


def _stored(daemon: Daemon, cid: str) -> tuple[list[tuple[str, str]], int | None]:
    """The (stream, line) entries in dockerd's own json-file log, and where a line torn
    by a killed dockerd is (the entry after it is still recovered from the file)."""
    path = daemon.root / "data" / "containers" / cid / f"{cid}-json.log"
    entries: list[tuple[str, str]] = []
    torn_at = None
    for raw in path.read_bytes().splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            torn_at = len(entries) if torn_at is None else torn_at
            start = raw.rfind(b'{"log":')
            if start <= 0:
                continue
            entry = json.loads(raw[start:])
        entries.append((entry["stream"], entry["log"].rstrip("\n")))
    return entries, torn_at


def _pipeline(factory: Callable[..., Pipeline], daemon: Daemon) -> Pipeline:
    return factory(shipper_docker_host=daemon.host).start()


PAIRS = 8000  # per container, ~1,000 pairs/s: about 8 s of printing
# What the shipper logs when it loses dockerd (shipper/source.py), and when it is back.
LOST = ("dockerd unavailable", "dockerd closed the event stream; reconnecting")
BACK = "dockerd answers again"


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "kill-9"])
def test_dockerd_restart_loses_and_duplicates_nothing(
    second_dockerd: Daemon, pipeline_factory: Callable[..., Pipeline], how: signal.Signals
) -> None:
    """dockerd restarted twice while containers print: every line once, reconnects counted."""
    p = _pipeline(pipeline_factory, second_dockerd)
    ids = [second_dockerd.run(p, numbered(PAIRS, batch=20, pause_us=20000)) for _ in range(2)]
    for _ in range(2):
        time.sleep(2)
        second_dockerd.stop(how)
        time.sleep(1)
        second_dockerd.start()
    for cid in ids:
        assert second_dockerd.cli("wait", cid).stdout.strip() == "0"
    for cid in ids:
        stored, torn_at = _stored(second_dockerd, cid)
        wait_lines(p, cid, len(stored) if torn_at is None else torn_at, timeout=120)
        settle(p, cid, quiet=3)
        got = captured(p, cid)
        assert not got.duplicates()
        assert not got.gaps
        indexed = got.pairs()
        assert set(indexed) <= expected_numbered(PAIRS)
        if torn_at is None:
            assert sorted(indexed.elements()) == sorted(stored)
        else:
            # dockerd cannot read its own file past a line it tore when killed.
            assert set(stored[:torn_at]) <= set(indexed)
        print(f"{cid[:12]}: printed {2 * PAIRS}, dockerd kept {len(stored)}, torn at {torn_at}")
    assert metric(p, "logpipe_shipper_docker_reconnects_total") >= 2
    wait_until(lambda: p.status()["docker_connected"], 30)
    # Each loss was logged; so is each return (a log that ends on the loss reads as an
    # outage): one after the losses of each restart (a reconnect may fail several times),
    # never before one, and the log ends on one. dockerd was away a second or more each
    # time (the test's sleep): a return said at the loss would count less.
    said = [x for x in shipper_logs(p) if x.get("message") in (*LOST, BACK)]
    back = [x for x in said if x["message"] == BACK]
    assert len(back) >= 2
    turns = "".join("B" if x["message"] == BACK else "L" for x in said)
    assert re.fullmatch("(L+B)+", turns), turns
    assert all(x["lost_seconds"] >= 1 for x in back)
