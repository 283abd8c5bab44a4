"""CPU time and memory of processes, read from /proc (Linux only)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def usage(pid: int) -> tuple[float, int]:
    """User + system CPU seconds and minor page faults of the process so far (threads
    included). Minor faults count pages the kernel had to map in: memory given back
    and taken again shows here."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK, int(fields[7])


def _cpu_line(text: str | None) -> list[int]:
    """user, nice, system, idle, iowait, irq, softirq, steal: /proc/stat's `cpu` line in
    ticks (0 for the fields an older kernel leaves out; guest time is in user already)."""
    line = (text if text is not None else Path("/proc/stat").read_text()).splitlines()[0]
    return ([int(v) for v in line.split()[1:9]] + [0] * 8)[:8]


def _busy_total(ticks: list[int]) -> tuple[int, int]:
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal


def machine_ticks(text: str | None = None) -> tuple[int, int]:
    """Busy and total CPU ticks of the whole machine so far: busy is user, nice, system,
    irq and softirq time; total adds idle, iowait and steal."""
    return _busy_total(_cpu_line(text))


def machine_steal(text: str | None = None) -> tuple[int, int]:
    """Ticks the hypervisor gave other machines while this one wanted to run (steal), and
    all ticks, so far, from one reading of /proc/stat."""
    ticks = _cpu_line(text)
    return ticks[7], _busy_total(ticks)[1]


def wait_quiet(
    busy_cores: float = 0.25,
    window: float = 2.0,
    cap: float = 60.0,
    ticks: Callable[[], tuple[int, int]] = machine_ticks,
    sleep: Callable[[float], None] = time.sleep,
) -> float | None:
    """Write dirty pages out (`sync`), then wait until the whole machine used at most
    `busy_cores` over the last `window` seconds: what a run printed or left behind (the
    kernel writing its files, merges of an earlier run) is not charged to the next
    measurement. Returns the seconds waited after the sync, None when the machine did not
    get quiet within `cap`."""
    os.sync()
    cores = os.cpu_count() or 1
    waited = 0.0
    before = ticks()
    while waited < cap:
        sleep(window)
        waited += window
        after = ticks()
        total = after[1] - before[1]
        if total > 0 and (after[0] - before[0]) / total * cores <= busy_cores:
            return waited
        before = after
    return None


def _status_kb(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # the process has ended (dockerd restarted by someone else, say)
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def rss_mb(pid: int) -> float:
    """Resident memory now, in MiB."""
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory since the process started (VmHWM), in MiB."""
    return _status_kb(pid, "VmHWM") / 1024


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, exited but not yet reaped, does not)."""
    return Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0]
    except (OSError, IndexError):
        return "zombie"


def pids_named(name: str) -> list[int]:
    """Pids whose command name is exactly `name` (e.g. dockerd, containerd-shim-runc-v2)."""
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)
    return [int(p) for p in found.stdout.split()]


def pid_file(path: str, fallback: str) -> list[int]:
    """The pid in `path` (a daemon's pid file), else the oldest process named `fallback`.

    Others may run a private dockerd or Elasticsearch on this machine: a pid file or an
    API names the one under test, where a name would match theirs too.
    """
    try:
        return [int(Path(path).read_text().strip())]
    except (OSError, ValueError):
        found = subprocess.run(["pgrep", "-o", "-x", fallback], capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]


@dataclass
class CpuWindow:
    """CPU seconds and minor page faults of a set of processes between `start()` and
    `stop()`."""

    pids: list[int]
    _begin: dict[int, tuple[float, int]] = field(default_factory=dict)
    used: float = 0.0
    faults: int = 0

    def start(self) -> None:
        """Remember where each process's CPU time and fault count stand."""
        self._begin = {pid: _safe_usage(pid) for pid in self.pids}

    def stop(self) -> float:
        """CPU seconds used since `start()` (processes that ended count what they used)."""
        now = {pid: _safe_usage(pid) for pid in self._begin}
        self.used = sum(max(0.0, now[pid][0] - t) for pid, (t, _) in self._begin.items())
        self.faults = sum(max(0, now[pid][1] - f) for pid, (_, f) in self._begin.items())
        return self.used


def _safe_usage(pid: int) -> tuple[float, int]:
    try:
        return usage(pid)
    except (OSError, ValueError):
        return 0.0, 0


class Peaks:
    """Highest VmRSS seen per role, sampled every 0.25 s in a thread."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for role, pids in self.pids.items():
                now = sum(rss_mb(p) for p in pids)
                self.peak[role] = max(self.peak[role], now)
            self._stop.wait(0.25)

    def stop(self) -> dict[str, float]:
        """Stop sampling; the peaks."""
        self._stop.set()
        self._thread.join(5)
        return self.peak
