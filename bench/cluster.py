"""The fleet topology of `.ci/cluster` measured under steady load: what each piece
takes, and the latency from a line's Docker timestamp to searchable on the three-node
cluster (one replica).

Needs the topology running (`bash .ci/cluster start`; LOGPIPE_CLUSTER_DIR as for it).
Two containers per Docker host print ~90 lines/s each for `--steady` seconds through
the topology's own shippers, nginx and collectors; a thread polls the cluster for their
lines meanwhile (those containers stay on the topology's Docker hosts: `.ci/cluster
stop` removes them). Then `bench.drain`: one collector against three behind nginx.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

from elasticsearch import Elasticsearch

from bench import report, summary
from bench.containers import container_id
from bench.drain import around_shippers, publish_drains
from bench.latency import percentile
from bench.topology import DIR, PIECES, Meter, Usage, printers
from shipper.demux import parse_ts

STEADY = (
    "i=1; end=$(( $(date +%s) + {secs} )); while [ $(date +%s) -lt $end ]; do "
    'echo "steady $i"; usleep 11000; i=$((i+1)); done'
)


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


def steady(es: Elasticsearch, secs: int) -> tuple[Usage, list[float]]:
    """Each piece's usage over the steady load, and the latencies seen."""
    meter = Meter()
    run = uuid.uuid4().hex[:6]
    meter.start()
    made = printers(STEADY.format(secs=secs), run)
    probe = Visibility(es, [container_id(c) for c in made])
    for c in made:
        c.wait(timeout=secs + 60)
    time.sleep(5)
    usage = meter.stop()
    return usage, probe.stop()


def main() -> None:
    """Run the steady load and print (or append) the table."""
    p = argparse.ArgumentParser(description=summary(__doc__))
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


if __name__ == "__main__":
    main()
