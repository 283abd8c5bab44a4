"""Benchmark 3, the whole pipeline: N busybox containers print the corpus at a set rate
through the real Docker Engine, the real shipper and collector, into Elasticsearch.

For each rate step: lines/s printed (counted in dockerd's json-file logs) and indexed
(searchable), whether the backlog grew, CPU per 10k lines/s and RSS of the shipper,
dockerd and the collector (each from /proc of its own pid), and the latency from a
line's Docker timestamp to its first visibility in a search (p50/p95/p99 of marker
lines). ``max`` in --rates searches the highest sustained rate (at most 3 more steps).
With --peers, logspout (a prebuilt binary, see bench.peers) follows the same containers
into a TCP sink that counts lines in the same run, for CPU per line side by side.
--log-driver local and --log-opt (max-size, max-file, compress) make the containers' logs
rotate (bench.logdriver), --through-dockerd has the shipper read every line through
dockerd. Usage:
    python -m bench.pipeline [--containers 10] [--rates 1000,5000,max] [--peers]
                             [--peers-dir DIR] [--log-driver local] [--log-opt K=V]
                             [--through-dockerd] [--append]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker

from bench import containers, latency, logdriver, peers, procstat, report, services, summary

WARMUP = 5.0


@dataclass
class Step:
    """What one rate step measured."""

    planned: float
    printed: float = 0.0
    indexed: float = 0.0
    backlog_growth: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    faults: dict[str, float] = field(default_factory=dict)  # minor page faults per second
    rss: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    drained: bool = True
    peer_lines: int = 0
    unread: int = 0  # at the end of the window: printed, not read by the shipper yet
    in_pipeline: int = 0  # read by the shipper, not accepted by Elasticsearch yet
    unpacked: int = 0  # compressed rotated files the shipper unpacked in the window

    @property
    def sustained(self) -> bool:
        """Indexed kept up with printed, and the backlog did not grow by a second's worth."""
        return self.indexed >= 0.95 * self.printed and self.backlog_growth <= max(
            self.printed, 2000
        )

    def per_10k(self, name: str) -> float:
        """Cores of `name` per 10k lines/s printed."""
        return self.cpu[name] / self.seconds / (self.printed / 10_000)


class Bench:
    """The services, the shipper, the containers and the probe of one run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run = services.run_id()
        self.host = f"bench-{self.run}"
        self.index = f"logs-bench.pipe{self.run}*"
        self.folder = services.WORK / f"pipeline-{self.run}"
        self.client = docker.from_env()
        self.logs: logdriver.LogSetup = args.logs
        self.fleet = containers.Fleet(
            self.client, self.run, args.containers, self.folder / "c", args.tick, self.logs
        )
        self.gaps = 0  # gap documents in the run's stream at its end
        self.probe = latency.Probe(self.index, self.host)
        self.children: list[services.Child] = []
        self.peer: peers.Logspout | None = None
        self.logspout: Path | None = None
        if args.peers:
            self.logspout = peers.find(args.peers_dir).binaries[peers.LOGSPOUT]
            if self.logspout is None:
                raise SystemExit(
                    "--peers needs logspout: give a directory holding it (or bin/logspout) "
                    "with --peers-dir or LOGPIPE_BENCH_PEERS, or put it on PATH"
                )
        self.shipper_wrap: list[str] = []  # a profiler's command line, if any

    def start(self) -> None:
        """Collector, shipper, containers (idle), probe; and peers if asked."""
        services.install_template()
        token = uuid.uuid4().hex
        port, status = services.free_port(), services.free_port()
        self.collector_url = f"http://127.0.0.1:{port}"
        self.collector = services.start_collector(self.folder, port, token, f"bench.pipe{self.run}")
        env = {
            **services.clean_env(),
            "LOGPIPE_COLLECTOR_URL": f"http://127.0.0.1:{port}",
            "LOGPIPE_TOKEN": token,
            "LOGPIPE_STATE_DIR": str(self.folder / "state"),
            "LOGPIPE_HOST_NAME": self.host,
            "LOGPIPE_HTTP_LISTEN": f"127.0.0.1:{status}",
            "LOGPIPE_INCLUDE_LABELS": f"logpipe.bench={self.run}",
            **{f"LOGPIPE_{k.upper()}": v for k, v in _settings(self.args.shipper_env).items()},
        }
        self.shipper_url = f"http://127.0.0.1:{status}"
        command, env = self.logs.shipper(
            [*self.shipper_wrap, *services.entry("shipper", uvloop=False)],
            env,
            self.folder,
            str(self.client.info()["DockerRootDir"]),
        )
        self.shipper = services.Child("shipper", command, env, self.folder)
        self.children = [self.collector, self.shipper]
        services.wait_http(f"http://127.0.0.1:{status}/healthz")
        self.fleet.start()
        self.dockerd = services.dockerd_pids()
        self.shims = services.containerd_pids()
        if self.logspout is not None:
            # Only what comes after it attached: the containers are idle until the first step.
            glob = f"bench-{self.run}-*"
            self.peer = peers.Logspout(self.logspout, glob, self.folder / "logspout", backlog=False)
        self.probe.start()

    def stop(self) -> None:
        """Everything this run started, by its own handles (the processes even when
        dockerd does not answer)."""
        try:
            self.probe.stop()
            self.gaps = services.gap_documents(self.index)
            if self.peer is not None:
                self.peer.stop()
            self.fleet.remove()
        finally:
            for child in reversed(self.children):
                child.stop()
        services.free_disk(self.index)

    def indexed(self) -> int:
        """Documents Elasticsearch has accepted, by the collector's own counters.

        Counting searchable documents instead would quantize by the 1 s refresh.
        """
        return _counter(
            self.collector_url,
            (
                "logpipe_collector_records_indexed_total",
                "logpipe_collector_records_duplicate_total",
            ),
        )

    def read(self) -> int:
        """Lines the shipper has read from dockerd, by its own counter."""
        return _counter(self.shipper_url, ("logpipe_shipper_lines_read_total",))

    def unpacked(self) -> int:
        """Compressed rotated files the shipper has unpacked, by its own counter."""
        return _counter(self.shipper_url, (logdriver.UNPACKED,))

    def step(self, rate: float) -> Step:
        """Print at `rate` for warm-up + window; measure the window; then drain."""
        name, planned = self.fleet.rate_set(rate)
        out = Step(planned)
        self.fleet.control(name)
        time.sleep(WARMUP)
        windows = self._cpu_windows()
        p0, i0, u0 = self.fleet.printed(), self.indexed(), self.unpacked()
        peer0 = self.peer.lines() if self.peer else 0
        t0, began = time.time_ns(), time.monotonic()
        for w in windows.values():
            w.start()
        time.sleep(self.args.step_seconds)
        for w in windows.values():
            w.stop()
        p1, r1, i1 = self.fleet.printed(), self.read(), self.indexed()
        out.unread, out.in_pipeline = p1 - r1, r1 - i1
        out.unpacked = self.unpacked() - u0
        out.peer_lines = (self.peer.lines() if self.peer else 0) - peer0
        t1, out.seconds = time.time_ns(), time.monotonic() - began
        self.fleet.control("idle")
        out.printed, out.indexed = (p1 - p0) / out.seconds, (i1 - i0) / out.seconds
        out.backlog_growth = (p1 - i1) - (p0 - i0)
        out.cpu = {k: w.used for k, w in windows.items()}
        out.faults = {k: w.faults / out.seconds for k, w in windows.items()}
        out.rss = self._rss()
        out.drained = self._drain()
        time.sleep(latency.POLL * 2)
        out.latencies = self.probe.latencies(t0, t1)
        return out

    def _cpu_windows(self) -> dict[str, procstat.CpuWindow]:
        # Looked up per step: a restarted dockerd has a new pid.
        self.dockerd = services.dockerd_pids()
        windows = {
            "shipper": procstat.CpuWindow([self.shipper.pid]),
            "dockerd": procstat.CpuWindow(self.dockerd),
            "containerd+shims": procstat.CpuWindow(self.shims),
            "collector": procstat.CpuWindow([self.collector.pid]),
            "elasticsearch": procstat.CpuWindow(services.es_pids()),
        }
        if self.peer is not None:
            windows["logspout"] = procstat.CpuWindow(self.peer.pids())
        return windows

    def _rss(self) -> dict[str, float]:
        rss = {
            "shipper": procstat.rss_mb(self.shipper.pid),
            "shipper peak": procstat.peak_rss_mb(self.shipper.pid),
            "dockerd": sum(procstat.rss_mb(p) for p in self.dockerd),
            "collector": procstat.rss_mb(self.collector.pid),
            "collector peak": procstat.peak_rss_mb(self.collector.pid),
        }
        if self.peer is not None:
            rss["logspout"] = sum(procstat.rss_mb(p) for p in self.peer.pids())
        return rss

    def _drain(self, seconds: float = 45) -> bool:
        """Wait until everything printed is searchable."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.indexed() >= self.fleet.printed():
                return True
            time.sleep(0.5)
        return False


def _counter(base: str, names: tuple[str, ...]) -> int:
    """The sum of Prometheus counters `names` served at `base`/metrics (0 if none is)."""
    return int(services.counter(base, names) or 0)


def _settings(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE settings from the command line (LOGPIPE_ is added)."""
    return dict(pair.split("=", 1) for pair in pairs)


def next_rate(steps: list[Step], tried: int, top: float) -> float | None:
    """The next rate of the `max` search: up by 1.5x while sustained, then bisect."""
    good = [s.printed for s in steps if s.sustained]
    bad = [s.planned for s in steps if not s.sustained]
    if tried >= 3:
        return None
    if not bad:
        return min(top, max(s.planned for s in steps) * 1.5)
    low, high = (max(good) if good else 0.0), min(bad)
    return (low + high) / 2 if high - low > 0.15 * high else None


def row(n: int, s: Step) -> list[str]:
    """One table row."""
    lat = s.latencies
    return [
        str(n),
        report.fmt(s.planned),
        report.fmt(s.printed),
        report.fmt(s.indexed),
        f"{s.backlog_growth:+,}",
        f"{s.unread:,} / {s.in_pipeline:,}",
        "yes" if s.sustained else "NO",
        f"{s.per_10k('shipper'):.3f}",
        f"{s.per_10k('dockerd'):.3f}",
        f"{s.per_10k('containerd+shims'):.3f}",
        f"{s.per_10k('collector'):.3f}",
        f"{s.per_10k('elasticsearch'):.3f}",
        f"{s.rss['shipper']:.0f} / {s.rss['shipper peak']:.0f}",
        f"{s.rss['dockerd']:.0f}",
        f"{s.rss['collector']:.0f} / {s.rss['collector peak']:.0f}",
        f"{s.faults['shipper']:,.0f} / {s.faults['collector']:,.0f}",
        " / ".join(f"{latency.percentile(lat, q):.2f}" for q in (0.5, 0.95, 0.99)),
        str(len(lat)),
    ]


HEADER = [
    "containers", "planned lines/s", "printed lines/s", "indexed lines/s", "backlog growth",
    "backlog at end: unread / read, not indexed",
    "sustained", "shipper cores/10k l/s", "dockerd cores/10k", "containerd+shims cores/10k",
    "collector cores/10k", "ES cores/10k", "shipper RSS MB (now/peak)", "dockerd RSS MB",
    "collector RSS MB (now/peak)", "page faults/s shipper / collector",
    "latency p50/p95/p99 s", "latency samples",
]  # fmt: skip


def log_notes(logs: logdriver.LogSetup, steps: list[Step], gaps: int) -> list[str]:
    """How the containers logged and the shipper read, what it unpacked, the gaps it
    reported (nothing for dockerd's default logs read the default way)."""
    if logs.default and not logs.through_dockerd:
        return []
    notes = [logs.describe()]
    if not logs.default:
        notes.append(
            "printed = the lines of the chunks each container wrote down in a ledger of its "
            "own after printing them (rotation removes the oldest log files, so dockerd's "
            "files cannot be counted); compressed rotated files the shipper unpacked "
            f"(`{logdriver.UNPACKED}`) per step: "
            + ", ".join(str(s.unpacked) for s in steps)
            + f"; gap documents in the run's stream at its end: {gaps:,}"
        )
    return notes


def peer_rows(n: int, steps: list[Step]) -> list[list[str]]:
    """Shipper and logspout CPU per line, same containers, same steps."""
    rows = []
    for s in steps:
        lines = s.printed * s.seconds
        rows.append(
            [
                str(n),
                report.fmt(s.printed),
                f"{s.cpu['shipper'] / lines * 1e6:.1f}",
                f"{s.cpu['logspout'] / s.peer_lines * 1e6:.1f}" if s.peer_lines else "n/a",
                report.fmt(s.peer_lines / s.seconds),
                f"{s.rss['logspout']:.0f}",
            ]
        )
    return rows


def main() -> None:
    """Run the steps and append the table."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--containers", type=int, default=10)
    p.add_argument("--rates", default="1000,5000,max", help="total lines/s; 'max' searches")
    p.add_argument("--step-seconds", type=float, default=20, help="measured part of a step")
    p.add_argument("--top", type=float, default=40000, help="highest rate the search tries")
    p.add_argument(
        "--tick",
        type=float,
        default=containers.TICK,
        help="seconds between two prints of a container (each prints rate x tick / N lines"
        " at once): 0.25 prints in bursts, 0.01 trickles",
    )
    p.add_argument("--read-ceiling", action="store_true", help="also measure dockerd's ceiling")
    p.add_argument("--peers", action="store_true", help="logspout in the same run")
    p.add_argument(
        "--peers-dir",
        help="optional directory of prebuilt peer binaries (logspout or bin/logspout); "
        "default $LOGPIPE_BENCH_PEERS; then PATH",
    )
    p.add_argument(
        "--shipper-env",
        action="append",
        default=[],
        help="KEY=VALUE setting, e.g. EVENT_LOOP=asyncio",
    )
    p.add_argument("--collector-env", action="append", default=[], help="KEY=VALUE setting")
    logdriver.add_arguments(p)
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = p.parse_args()
    args.logs = logdriver.from_args(args)
    bench = Bench(args)
    steps: list[Step] = []
    ceiling = math.nan
    try:
        if args.read_ceiling:
            ceiling = containers.read_ceiling(
                bench.client, bench.run, min(10, args.containers), 50_000, bench.folder / "read"
            )
        bench.start()
        plan = args.rates.split(",")
        for rate in [float(r) for r in plan if r != "max"]:
            steps.append(bench.step(rate))
            print(report.table(HEADER, [row(args.containers, steps[-1])]), file=sys.stderr)
        tried = 0
        while "max" in plan and (rate_ := next_rate(steps, tried, args.top)) is not None:
            tried += 1
            steps.append(bench.step(rate_))
            print(report.table(HEADER, [row(args.containers, steps[-1])]), file=sys.stderr)
    finally:
        bench.stop()
    publish(args, bench, steps, ceiling)


def publish(args: argparse.Namespace, bench: Bench, steps: list[Step], ceiling: float) -> None:
    """The table (and the peers' table) with notes."""
    best = max((s.printed for s in steps if s.sustained), default=0.0)
    notes = [
        f"max sustained (measured steps): {report.fmt(best)} lines/s with "
        f"{args.containers} containers; steps of {WARMUP:.0f} s warm-up + "
        f"{args.step_seconds:.0f} s measured; each container prints every {args.tick:g} s",
        "cores/10k l/s = CPU-seconds in the window / window seconds / (printed lines/s / 10k)",
        "page faults/s = minor page faults in the window per second (`/proc/<pid>/stat`):"
        " pages the kernel had to map in, e.g. heap given back after a batch and taken again",
        "settings: shipper "
        + (", ".join(args.shipper_env) or "defaults")
        + "; collector "
        + (", ".join(args.collector_env) or "defaults"),
        "indexed = documents Elasticsearch accepted (collector's counters); sustained = "
        "indexed >= 0.95 x printed and the backlog (printed - indexed) grew by less than "
        "one second of printing (or 2,000 lines); latency = first seen by a search "
        "polled every 0.25 s (refresh_interval 1s, shipper batch age 0.5 s)",
    ]
    if not math.isnan(ceiling):
        notes.append(
            f"dockerd read ceiling: {report.fmt(ceiling)} lines/s (`docker logs -t` of "
            f"{min(10, args.containers)} finished containers x 50,000 lines, in parallel)"
        )
    if any(not s.drained for s in steps):
        notes.append("some steps did not drain within 45 s (see 'sustained')")
    notes += log_notes(bench.logs, steps, bench.gaps)
    report.publish(
        "3. Whole pipeline (containers -> dockerd -> shipper -> collector -> Elasticsearch)",
        HEADER,
        [row(args.containers, s) for s in steps],
        notes,
        args.append,
    )
    if args.peers:
        report.publish(
            "4a. Peers: shipper vs logspout (same containers, same run)",
            ["containers", "printed lines/s", "shipper CPU-µs/line", "logspout CPU-µs/line",
             "logspout lines/s to sink", "logspout RSS MB"],
            peer_rows(args.containers, steps),
            [f"logspout {bench.logspout}: raw lines (`{{{{.Data}}}}`) over TCP into a sink "
             "that counts them; it attaches when the containers start, before they print",
             "dockerd serves both followers in this run: its CPU above counts both"],
            args.append,
        )  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
