"""Benchmark 2, the collector alone: wire batches from a load generator into a real
`logpipe-collector serve` indexing into the same node, next to R measured in the same run.

Reports docs/s, the collector's CPU-seconds per 100k records (/proc/<pid>/stat utime +
stime over the timed window), its peak RSS (VmHWM), the ratio to R and the _bulk requests
it sent per second. `--batch-lines 25 --rate 150 --connections 64` stands for many shippers
sending small batches. Usage:
    python -m bench.collector_load [--seconds 30] [--connections 4] [--batch-lines 5000]
        [--rate 0] [--ceiling-seconds 20] [--repeat 1] [--uvloop] [--collector-env K=V]
        [--append]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass

import orjson

from bench import ceiling, corpus, doc_cost, documents, procstat, report, services, summary
from collector.wire import NDJSON


@dataclass
class Window:
    """One timed load on the collector."""

    received: int
    indexed: int
    elapsed: float
    collector_cpu: float
    es_cpu: float
    loadgen_cpu: float
    peak_rss_mb: float
    statuses: dict[str, int]
    bulk_requests: float


def bulk_requests(port: int) -> float:
    """The _bulk requests the collector has sent so far (its /metrics)."""
    name = "logpipe_collector_bulk_seconds_count"
    sent = services.counter(f"http://127.0.0.1:{port}", (name,))
    if sent is None:
        raise SystemExit(f"the collector's /metrics has no {name}")
    return sent


def measure_r(seconds: float, connections: int) -> float:
    """R in this run: raw _bulk of the same documents (see bench.ceiling)."""
    run = services.run_id()
    items = ceiling.build_items(run, 20000)
    ceiling.warm_up(items)
    began = time.monotonic()
    per_request = 10_000_000 // (sum(len(s) + 100 for s in items.sources) // len(items.sources))
    tally = asyncio.run(ceiling.post_all(items, per_request, connections, seconds))
    rate = tally.accepted / (time.monotonic() - began)
    services.free_disk(f"logs-bench.ceil{run}*")
    return rate


def warm_up(port: int, token: str, run: str) -> None:
    """One small batch first, so creating the data stream is not part of the timing."""
    lines = corpus.lines(500, seed=99)
    metas = documents.containers(2, run + "w")
    body = next(documents.wire_batches(lines, metas, f"bench-{run}", 500, 1))
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/logs",
        documents.gzipped(body),
        {"Content-Type": NDJSON, "Content-Encoding": "gzip", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        resp.read()


def batches_for(args: argparse.Namespace) -> int:
    """Enough distinct batches that the load never runs out (50k lines/s at most)."""
    return max(120, -(-int(args.seconds * 50_000) // int(args.batch_lines)))


def load(collector: services.Child, port: int, token: str, args: argparse.Namespace) -> Window:
    """Run the load generator against the collector and measure the timed window."""
    gen = subprocess.Popen(
        [*services.python("bench.loadgen"), "--url", f"http://127.0.0.1:{port}",
         "--token", token, "--seconds", str(args.seconds),
         "--connections", str(args.connections), "--batch-lines", str(args.batch_lines),
         "--batches", str(batches_for(args)), "--rate", str(args.rate),
         "--host", f"bench-{args.run}", "--run", args.run,
         *(["--sent-again"] if args.sent_again else [])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=services.code_dir(), env={**os.environ, "PYTHONPATH": str(services.code_dir())},
    )  # fmt: skip
    assert gen.stdin is not None
    assert gen.stdout is not None
    print("loadgen:", gen.stdout.readline().strip(), file=sys.stderr)
    watched = {
        "collector": procstat.CpuWindow([collector.pid]),
        "es": procstat.CpuWindow(services.es_pids()),
        "loadgen": procstat.CpuWindow([gen.pid]),
    }
    requests_before = bulk_requests(port)
    for window in watched.values():
        window.start()
    gen.stdin.write("go\n")
    gen.stdin.flush()
    result = orjson.loads(gen.stdout.readline())
    for role, window in watched.items():
        if role != "es" or not args.settle:
            window.stop()
    requests = bulk_requests(port) - requests_before
    if args.settle:  # the work the node left for later: the next search's refresh, merges
        stream = f"logs-bench.coll{args.run}*"
        services.refresh(stream)
        doc_cost.wait_idle(services.es_pids(), stream)
        watched["es"].stop()
    gen.wait(30)
    return Window(
        received=result["received"],
        indexed=result["indexed"],
        elapsed=result["elapsed"],
        collector_cpu=watched["collector"].used,
        es_cpu=watched["es"].used,
        loadgen_cpu=watched["loadgen"].used,
        peak_rss_mb=procstat.peak_rss_mb(collector.pid),
        statuses=result["statuses"],
        bulk_requests=requests,
    )


def row(w: Window, r: float) -> list[str]:
    """One table row: a timed load next to the R measured just before it."""
    rate = w.indexed / w.elapsed
    us = w.collector_cpu / w.indexed * 1e6
    return [report.fmt(rate), report.fmt(r), f"{rate / r:.2f}" if r else "n/a",
            f"{w.collector_cpu / w.indexed * 1e5:.2f}", f"{us:.0f}", report.fmt(1e6 / us),
            f"{w.collector_cpu / w.elapsed:.2f}", f"{w.peak_rss_mb:.0f}",
            f"{w.es_cpu / w.indexed * 1e5:.1f}", f"{w.loadgen_cpu / w.indexed * 1e5:.2f}",
            report.fmt(w.indexed), f"{w.elapsed:.1f}", f"{w.bulk_requests / w.elapsed:.0f}",
            ", ".join(f"{k}: {v}" for k, v in sorted(w.statuses.items()))]  # fmt: skip


def parser() -> argparse.ArgumentParser:
    """The command line of this benchmark; other benchmarks take its defaults from it."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--seconds", type=float, default=30, help="timed load (default 30)")
    p.add_argument("--connections", type=int, default=4, help="load generator connections")
    p.add_argument("--batch-lines", type=int, default=5000, help="lines per wire batch")
    p.add_argument("--rate", type=float, default=0,
                   help="batches/s, as many shippers send them (0: each connection sends "
                        "the next batch when the last is answered)")  # fmt: skip
    p.add_argument("--ceiling-seconds", type=float, default=20, help="0: skip measuring R")
    p.add_argument("--repeat", type=int, default=1, help="R + collector pairs, alternated")
    p.add_argument("--uvloop", action="store_true", help="run the collector on uvloop")
    p.add_argument("--collector-env", action="append", default=[], help="KEY=VALUE setting")
    p.add_argument("--settle", action="store_true",
                   help="count Elasticsearch's CPU past the load too: a refresh of the "
                        "stream (what the next search does) and its merges until none has "
                        "run for 2 s; without, only the load's own seconds")  # fmt: skip
    p.add_argument(
        "--sent-again",
        action="store_true",
        help="every batch marked sent again (X-Logpipe-Sent-Again), as after an outage",
    )
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    return p


def options(run: str, **given: object) -> argparse.Namespace:
    """The options of a load run with this benchmark's defaults, but for those `given`."""
    args = parser().parse_args([])
    unknown = set(given) - set(vars(args))
    if unknown:
        raise TypeError(f"not options of bench.collector_load: {sorted(unknown)}")
    vars(args).update(given, run=run)
    return args


def main() -> None:
    """Alternate R and the collector under load (--repeat times) and append the table."""
    args = parser().parse_args()
    args.run = services.run_id()
    services.install_template()
    token = uuid.uuid4().hex
    port = services.free_port()
    extra = dict(kv.split("=", 1) for kv in args.collector_env)
    folder = services.WORK / f"collector-{args.run}"
    collector = services.start_collector(
        folder, port, token, f"bench.coll{args.run}", uvloop=args.uvloop, settings=extra
    )
    rows = []
    try:
        warm_up(port, token, args.run)
        for _ in range(args.repeat):
            r = measure_r(args.ceiling_seconds, 4) if args.ceiling_seconds else 0.0
            rows.append(row(load(collector, port, token, args), r))
    finally:
        collector.stop()
        services.free_disk(f"logs-bench.coll{args.run}*")
    report.publish(
        "2. Collector alone (load generator -> logpipe-collector serve -> Elasticsearch)",
        ["docs/s", "R docs/s", "ratio to R", "collector CPU-s/100k", "CPU-µs/record",
         "records/core-s", "collector cores busy", "peak RSS MB", "ES CPU-s/100k",
         "loadgen CPU-s/100k", "docs", "seconds", "_bulk requests/s", "answers"],
        rows,
        [f"{args.connections} connections, {args.batch_lines} lines per gzip batch"
         + (f", {args.rate:g} batches/s (paced, as many shippers send them)" if args.rate else "")
         + f"; each row's R measured {args.ceiling_seconds:.0f} s just before its load "
         "(0 = skipped)",
         "collector settings: " + (", ".join(args.collector_env) or "defaults")
         + ("; every batch marked sent again (its ids looked up first)" if args.sent_again else "")
         + (", event loop: uvloop" if args.uvloop else ", event loop: asyncio"),
         "a record = one log line = one document (indexed); per-batch source lines "
         "are not counted; peak RSS is the collector's since it started",
         "ES CPU: " + ("from the load's start until a refresh of the run's stream (what "
                       "the next search does) and no merge on it for 2 s"
                       if args.settle else "the load's own seconds")
         + "; the template as the measured commit's `setup` installs it"],
        args.append,
    )  # fmt: skip


if __name__ == "__main__":
    main()
