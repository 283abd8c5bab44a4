"""Two shippers of a run's own draining a backlog through the `.ci/cluster` topology:
to three collectors behind nginx, or straight to one; lines/s and each piece's CPU."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from elasticsearch import Elasticsearch

from bench import report
from bench.containers import container_id
from bench.topology import DIR, ROOT, Meter, Usage, pid_of, printers

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
        LOGPIPE_TOKEN=(DIR / "token").read_text().strip(),
        LOGPIPE_INCLUDE_LABELS=f"logpipe.bench={run}",
    )
    if url.startswith("https://"):  # an http:// collector with a CA file is refused
        env["LOGPIPE_CA_FILE"] = str(DIR / "tls" / "ca.crt")
    out = (logs / f"{run}-shipper{n}.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "shipper"], env=env, stdout=out, stderr=out)


def drain(es: Elasticsearch, url: str, lines: int, logs: Path) -> tuple[float, Usage, int]:
    """Lines/s of two shippers draining a backlog of still-running containers to `url`;
    each piece's usage meanwhile; the requests nginx logged."""
    run = uuid.uuid4().hex[:6]
    made = printers(BACKLOG.format(n=lines), run)
    for c in made:
        while c.logs(stdout=True, stderr=False, tail=1) != b"printed\n":
            time.sleep(0.5)
    ids = [container_id(c) for c in made]
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
            c.remove(force=True)
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
