"""The running `.ci/cluster` topology as the benchmarks see it: its pieces' pids, their
CPU and memory over a window, and containers started on its Docker hosts."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.models.containers import Container

from bench import procstat

ROOT = Path(__file__).parents[1]
DIR = Path(os.environ.get("LOGPIPE_CLUSTER_DIR", "/var/lib/logpipe-cluster"))
PIECES = ["es1", "es2", "es3", "docker1", "docker2", "collector1", "collector2", "collector3"]
PIECES += ["nginx", "shipper1", "shipper2"]


def pid_of(piece: str) -> int:
    """The pid the topology recorded for a piece."""
    path = DIR / piece / ("nginx.pid" if piece == "nginx" else "pid")
    return int(path.read_text().strip())


def tree(pid: int) -> list[int]:
    """The pid and its children (nginx's workers, dockerd's containerd)."""
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid, *(int(k) for k in kids.split())]


@dataclass
class Usage:
    """CPU share (of one core) and RSS of each piece over a window."""

    cpu: dict[str, float]
    rss: dict[str, float]
    cpu_seconds: dict[str, float]


class Meter:
    """CPU seconds of every piece between start and stop, and their RSS at the stop."""

    def __init__(self, extra: dict[str, list[int]] | None = None) -> None:
        self.pids = {p: tree(pid_of(p)) for p in PIECES} | (extra or {})
        self.windows = {p: procstat.CpuWindow(pids) for p, pids in self.pids.items()}

    def start(self) -> None:
        """Begin the window."""
        self.began = time.monotonic()
        for window in self.windows.values():
            window.start()

    def stop(self) -> Usage:
        """End the window: CPU % of one core and RSS MiB per piece."""
        secs = time.monotonic() - self.began
        used = {p: w.stop() for p, w in self.windows.items()}
        cpu = {p: 100 * u / secs for p, u in used.items()}
        rss = {p: sum(procstat.rss_mb(pid) for pid in pids) for p, pids in self.pids.items()}
        return Usage(cpu, rss, used)


def printers(cmd: str, run: str, per_host: int = 2) -> list[Container]:
    """`per_host` busybox containers on each Docker host running `sh -c cmd`."""
    made: list[Container] = []
    for host in (1, 2):
        client = docker.DockerClient(base_url=f"unix://{DIR}/docker{host}/docker.sock")
        for k in range(per_host):
            made.append(
                client.containers.run(
                    "busybox:latest",
                    ["sh", "-c", cmd],
                    name=f"bench-{run}-{host}-{k}",
                    network_mode="none",
                    labels={"logpipe.parser": "plain", "logpipe.bench": run},
                    detach=True,
                )
            )
    return made
