"""The fleet topology of `.ci/cluster` measured under steady load: what each piece
takes, and the latency from a line's Docker timestamp to searchable on the three-node
cluster (one replica).

Needs the topology running (`bash .ci/cluster start`; LOGPIPE_CLUSTER_DIR as for it).
Two containers per Docker host print ~90 lines/s each for `--steady` seconds through
the topology's own shippers, nginx and collectors; a thread polls the cluster for their
lines meanwhile. The containers stay on the topology's Docker hosts (`.ci/cluster stop`
removes them).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
from elasticsearch import Elasticsearch

from bench import procstat, report
from bench.latency import percentile
from shipper.demux import parse_ts

ROOT = Path(__file__).parents[1]
DIR = Path(os.environ.get("LOGPIPE_CLUSTER_DIR", "/var/lib/logpipe-cluster"))
PIECES = ["es1", "es2", "es3", "docker1", "docker2", "collector1", "collector2", "collector3"]
PIECES += ["nginx", "shipper1", "shipper2"]
STEADY = (
    "i=1; end=$(( $(date +%s) + {secs} )); while [ $(date +%s) -lt $end ]; do "
    'echo "steady $i"; usleep 11000; i=$((i+1)); done'
)


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


class Visibility:
    """Polls the cluster for the steady lines; first sighting minus Docker's timestamp."""

    def __init__(self, es: Elasticsearch, ids: list[str]) -> None:
        self.es, self.ids = es, ids
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            since = (time.time_ns() - 20_000_000_000) // 1_000_000
            filters: list[dict[str, object]] = [
                {"terms": {"container.id": self.ids}},
                {"range": {"@timestamp": {"gte": since}}},
            ]
            query = {"bool": {"filter": filters}}
            try:
                hits = self.es.search(
                    index="logs-*", query=query, size=10000, source_includes=["@timestamp"]
                )["hits"]["hits"]
            except Exception:  # a poll that failed is a poll that saw nothing
                continue
            now = time.time_ns()
            for hit in hits:
                if hit["_id"] not in self.seen:
                    ts = parse_ts(hit["_source"]["@timestamp"].encode())
                    self.seen[hit["_id"]] = (now - ts) / 1e9

    def stop(self) -> list[float]:
        """Stop polling; the latencies seen, sorted."""
        self._stop.set()
        self._thread.join(10)
        return sorted(self.seen.values())


def printers(cmd: str, run: str, per_host: int = 2) -> list[object]:
    """`per_host` busybox containers on each Docker host running `sh -c cmd`."""
    made = []
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


def steady(es: Elasticsearch, secs: int) -> tuple[Usage, list[float]]:
    """Each piece's usage over the steady load, and the latencies seen."""
    meter = Meter()
    run = uuid.uuid4().hex[:6]
    meter.start()
    made = printers(STEADY.format(secs=secs), run)
    probe = Visibility(es, [c.id for c in made])  # type: ignore[attr-defined]
    for c in made:
        c.wait(timeout=secs + 60)  # type: ignore[attr-defined]
    time.sleep(5)
    usage = meter.stop()
    return usage, probe.stop()


BACKLOG = (
    'i=1; while [ $i -le {n} ]; do echo "backlog line $i of a longer run"; i=$((i+1)); done; '
    "echo printed; sleep 900"
)


def lines_indexed(es: Elasticsearch, ids: list[str]) -> int:
    """Log lines of these containers searchable now (not the shipper's events)."""
    es.indices.refresh(index="logs-*")
    query = {
        "bool": {
            "filter": [{"terms": {"container.id": ids}}],
            "must_not": [{"term": {"event.kind": "event"}}],
        }
    }
    return int(es.count(index="logs-*", query=query)["count"])


def bench_shipper(n: int, url: str, run: str, logs: Path) -> subprocess.Popen[bytes]:
    """A shipper of its own for Docker host n, following only this run's containers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        DOCKER_HOST=f"unix://{DIR}/docker{n}/docker.sock",
        LOGPIPE_HOST_NAME=f"logpipe-host-{n}",
        LOGPIPE_STATE_DIR=str(logs / f"{run}-state{n}"),
        LOGPIPE_HTTP_LISTEN=f"127.0.0.1:{8630 + n}",
        LOGPIPE_COLLECTOR_URL=url,
        LOGPIPE_CA_FILE=str(DIR / "tls" / "ca.crt"),
        LOGPIPE_TOKEN=(DIR / "token").read_text().strip(),
        LOGPIPE_INCLUDE_LABELS=f"logpipe.bench={run}",
    )
    out = (logs / f"{run}-shipper{n}.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "shipper"], env=env, stdout=out, stderr=out)


def drain(es: Elasticsearch, url: str, lines: int, logs: Path) -> tuple[float, Usage, int]:
    """Lines/s of two shippers draining a backlog of still-running containers to `url`;
    each piece's usage meanwhile; the requests nginx logged."""
    run = uuid.uuid4().hex[:6]
    made = printers(BACKLOG.format(n=lines), run)
    for c in made:
        while c.logs(stdout=True, stderr=False, tail=1) != b"printed\n":  # type: ignore[attr-defined]
            time.sleep(0.5)
    ids = [c.id for c in made]  # type: ignore[attr-defined]
    total = len(made) * (lines + 1)
    access = DIR / "nginx" / "logs" / "access.log"
    before = len(access.read_bytes().splitlines())
    began = time.monotonic()
    procs = [bench_shipper(n, url, run, logs) for n in (1, 2)]
    meter = Meter({f"bench shipper {n}": [p.pid] for n, p in enumerate(procs, 1)})
    meter.start()
    try:
        while (done := lines_indexed(es, ids)) < total and time.monotonic() < began + 300:
            time.sleep(0.25)
        took = time.monotonic() - began
        usage = meter.stop()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        for c in made:
            c.remove(force=True)  # type: ignore[attr-defined]
    if done < total:
        raise SystemExit(f"only {done} of {total} lines indexed in {took:.0f}s: see {logs}")
    return done / took, usage, len(access.read_bytes().splitlines()) - before


def around_shippers(es: Elasticsearch, lines: int) -> tuple[tuple[float, Usage, int], ...]:
    """Both drains, the topology's own shippers stopped meanwhile (they would follow the
    same containers) and started again afterwards."""
    logs = Path(f"/tmp/logpipe-bench-cluster-{os.getpid()}")
    logs.mkdir(parents=True)
    for n in (1, 2):
        pid = pid_of(f"shipper{n}")
        os.kill(pid, signal.SIGTERM)
        while Path(f"/proc/{pid}").exists():
            time.sleep(0.2)
    try:
        via_nginx = drain(es, "https://127.0.0.1:8643", lines, logs)
        direct = drain(es, "http://127.0.0.1:8610", lines, logs)
    finally:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
        env["LOGPIPE_CLUSTER_DIR"] = str(DIR)
        script = [str(ROOT / ".ci" / "cluster"), "start", "shipper1", "shipper2"]
        subprocess.run(["bash", *script], env=env, check=True)
    return via_nginx, direct


def main() -> None:
    """Run the steady load and print (or append) the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steady", type=int, default=60, help="seconds of steady load")
    p.add_argument("--lines", type=int, default=20000, help="backlog lines per container")
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = p.parse_args()
    measured = report.commit()
    es = Elasticsearch(
        ["http://127.0.0.1:9610", "http://127.0.0.1:9611", "http://127.0.0.1:9612"],
        request_timeout=30,
    )
    usage, latencies = steady(es, args.steady)
    batches = len((DIR / "nginx" / "logs" / "access.log").read_bytes().splitlines())
    publish(args, measured, usage, latencies, batches)
    via_nginx, direct = around_shippers(es, args.lines)
    publish_drains(args, measured, via_nginx, direct)


def publish(
    args: argparse.Namespace, measured: str, usage: Usage, latencies: list[float], batches: int
) -> None:
    """The table and its notes."""
    rows = [
        [
            p,
            report.fmt(usage.rss[p]),
            report.fmt(usage.cpu[p], 1),
            report.fmt(usage.cpu_seconds[p], 1),
        ]
        for p in PIECES
    ]
    busiest = sorted(PIECES, key=lambda p: -usage.cpu[p])[:3]
    notes = [
        f"4 containers (2 per Docker host) printing ~90 lines/s each for {args.steady}s through "
        "2 shippers, nginx (TLS) and 3 collectors into 3 nodes (1 replica); CPU % of one core "
        "over the window (a process and its children: nginx's workers, dockerd's containerd)",
        f"latency Docker timestamp -> first seen in a search (polled every 0.25 s, "
        f"refresh_interval 1s): p50 {percentile(latencies, 0.5):.2f}s, "
        f"p99 {percentile(latencies, 0.99):.2f}s over {len(latencies)} lines",
        f"nginx CPU per batch: {1000 * usage.cpu_seconds['nginx'] / max(1, batches):.2f} ms "
        f"(CPU-s of the window over all {batches} requests its access log holds, an upper bound)",
        f"busiest: {', '.join(busiest)}"
        + (
            ": Elasticsearch takes the CPU first; the primaries' node and the node holding "
            "the replica each index every line"
            if busiest[0].startswith("es")
            else ""
        ),
        "two cores shared by all 11 processes and by other work on this machine (see the load "
        "average): the latency includes waiting for a core",
    ]
    header = ["piece", "RSS MiB", "CPU % of a core", "CPU-s"]
    report.publish(
        "Fleet topology (.ci/cluster): each piece under steady load, latency",
        header,
        rows,
        notes,
        args.append,
        section="Fleet topology",
        measured=measured,
    )


def publish_drains(
    args: argparse.Namespace,
    measured: str,
    via_nginx: tuple[float, Usage, int],
    direct: tuple[float, Usage, int],
) -> None:
    """One collector against three behind nginx."""
    rows = []
    for name, (rate, usage, batches) in (
        ("2 shippers -> nginx (TLS) -> 3 collectors", via_nginx),
        ("2 shippers -> 1 collector (plain HTTP)", direct),
    ):
        collectors = sum(usage.cpu[f"collector{n}"] for n in (1, 2, 3))
        shippers = sum(usage.cpu[f"bench shipper {n}"] for n in (1, 2))
        es_cpu = sum(usage.cpu[f"es{n}"] for n in (1, 2, 3))
        busiest = max(usage.cpu, key=lambda p: usage.cpu[p])
        rows.append(
            [
                name,
                report.fmt(rate),
                report.fmt(es_cpu),
                report.fmt(collectors),
                report.fmt(shippers),
                report.fmt(usage.cpu["nginx"], 1),
                report.fmt(1000 * usage.cpu_seconds["nginx"] / batches, 2) if batches else "-",
                f"{busiest} ({usage.cpu[busiest]:.0f} %)",
            ]
        )
    header = ["path", "lines/s", "ES CPU %", "collectors CPU %", "shippers CPU %"]
    header += ["nginx CPU %", "nginx CPU-ms per batch", "busiest process"]
    notes = [
        f"each: 4 containers (2 per Docker host) printed {args.lines:,} lines and stay up; two "
        "shippers of the run's own then drain them from the start into the same cluster (1 "
        "replica); lines/s from the shippers' start until every line is searchable; CPU % "
        "of one core over that time",
        f"ratio 3 collectors behind nginx / 1 collector: {via_nginx[0] / direct[0]:.2f}",
        "two cores for everything: Elasticsearch's three nodes, both Docker hosts, the "
        "shippers, the collectors and nginx (and other work on this machine) share them, "
        "so adding collectors adds no CPU here; the busiest process is where more cores "
        "would go first on real hardware",
    ]
    report.publish(
        "Fleet topology (.ci/cluster): 1 collector vs 3 behind nginx",
        header,
        rows,
        notes,
        args.append,
        section="Fleet topology",
        measured=measured,
    )


if __name__ == "__main__":
    main()
