"""Benchmark 1, the Elasticsearch ceiling R: raw `_bulk` of the documents logpipe makes.

The documents are the collector's own (wire batches from ``shipper.batch.encode``,
parsed and enriched by ``collector.batch.decode``), pre-serialized; only the action
line changes between passes so every document is new. Several connections post
5-15 MB requests into a data stream of this run's own on the same node. Usage:
    python -m bench.ceiling [--seconds 30] [--connections 4] [--request-mb 10] [--append]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import urllib.request
from dataclasses import dataclass

import aiohttp
import orjson

from bench import corpus, documents, procstat, report, services, summary
from collector.shape import flat


@dataclass
class Items:
    """The pre-serialized parts of each document: action prefix and source line."""

    prefixes: list[bytes]
    sources: list[bytes]

    def body(self, start: int, count: int) -> bytes:
        """One bulk body of `count` items from position `start` (ids unique per pass)."""
        n = len(self.sources)
        parts = []
        for g in range(start, start + count):
            i = g % n
            parts.append(self.prefixes[i] + b"-%d" % (g // n) + b'"}}\n' + self.sources[i])
        return b"".join(parts)


def build_items(run: str, base_docs: int) -> Items:
    """The exact documents logpipe produces from the corpus, split for re-numbering."""
    lines = corpus.lines(base_docs)
    metas = documents.containers(20, run)
    prefixes, sources = [], []
    batches = documents.wire_batches(lines, metas, f"bench-{run}", 5000, -(-base_docs // 5000))
    for body in batches:
        for doc in documents.documents(body, f"bench.ceil{run}"):
            action = orjson.dumps({"create": {"_index": doc.stream, "_id": doc.id}})
            prefixes.append(action[: -len(b'"}}')])
            sources.append(orjson.dumps(flat(doc.body)) + b"\n")
    return Items(prefixes, sources)


@dataclass
class Tally:
    """What the bulk requests achieved."""

    requests: int = 0
    accepted: int = 0
    failed: int = 0
    statuses: str = ""


def warm_up(items: Items) -> None:
    """One small request first, so creating the data stream is not part of the timing."""
    body = items.body(len(items.sources) * 10_000, 2000)
    url = services.ES_URL + "/_bulk?filter_path=errors"
    req = urllib.request.Request(url, body, {"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        resp.read()


async def post_all(items: Items, per_request: int, connections: int, seconds: float) -> Tally:
    """Post bulk bodies over `connections` connections for `seconds`."""
    tally = Tally()
    next_start = 0
    deadline = time.monotonic() + seconds
    url = services.ES_URL + "/_bulk?filter_path=errors,items.*.error.type"
    headers = {"Content-Type": "application/x-ndjson"}
    failures: dict[str, int] = {}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_start
        while time.monotonic() < deadline:
            start, next_start = next_start, next_start + per_request
            body = items.body(start, per_request)
            async with session.post(url, data=body, headers=headers) as resp:
                answer = orjson.loads(await resp.read())
            tally.requests += 1
            if resp.status != 200:
                tally.failed += per_request
                failures[f"http {resp.status}"] = failures.get(f"http {resp.status}", 0) + 1
                continue
            errors = answer.get("items", []) if answer.get("errors") else []
            for item in errors:
                kind = next(iter(item.values()))["error"]["type"]
                failures[kind] = failures.get(kind, 0) + 1
            tally.failed += len(errors)
            tally.accepted += per_request - len(errors)

    timeout = aiohttp.ClientTimeout(total=300)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    tally.statuses = ", ".join(f"{k}: {v}" for k, v in sorted(failures.items())) or "none"
    return tally


def main() -> None:
    """Measure R and append the table to docs/BENCHMARKS.md."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--seconds", type=float, default=30, help="how long to post (default 30)")
    p.add_argument("--connections", type=int, default=4, help="concurrent bulk requests")
    p.add_argument("--request-mb", type=float, default=10, help="bulk request size (MB)")
    p.add_argument("--base-docs", type=int, default=20000, help="distinct documents built")
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = p.parse_args()
    run = services.run_id()
    services.install_template()
    items = build_items(run, args.base_docs)
    sizes = [len(a) + len(s) + 8 for a, s in zip(items.prefixes, items.sources, strict=True)]
    mean = sum(sizes) / len(sizes)
    per_request = int(args.request_mb * 1_000_000 / mean)
    warm_up(items)
    java = procstat.CpuWindow(services.es_pids())
    me = procstat.CpuWindow([os.getpid()])
    java.start()
    me.start()
    began = time.monotonic()
    tally = asyncio.run(post_all(items, per_request, args.connections, args.seconds))
    elapsed = time.monotonic() - began
    java.stop()
    me.stop()
    pattern = f"logs-bench.ceil{run}*"
    services.refresh(pattern)
    searchable = services.count(pattern)
    services.free_disk(pattern)
    rate = tally.accepted / elapsed
    report.publish(
        "1. Elasticsearch ceiling R (raw _bulk of logpipe's documents)",
        [
            "docs/s (R)",
            "docs",
            "seconds",
            "requests",
            "docs/request",
            "MB/request",
            "connections",
            "ES CPU-s/100k docs",
            "ES cores busy",
            "client CPU-s/100k",
            "failed items",
        ],
        [
            [
                report.fmt(rate),
                report.fmt(tally.accepted),
                f"{elapsed:.1f}",
                str(tally.requests),
                str(per_request),
                f"{per_request * mean / 1e6:.1f}",
                str(args.connections),
                f"{java.used / tally.accepted * 1e5:.1f}",
                f"{java.used / elapsed:.2f}",
                f"{me.used / tally.accepted * 1e5:.2f}",
                f"{tally.failed} ({tally.statuses})",
            ]
        ],
        [
            f"mean bulk item {mean:.0f} bytes (action + source); {searchable:,} documents "
            "searchable after the run (docs + 2,000 warm-up)",
            "ES CPU = the java process; the client's CPU is shown to prove it is not the limit",
        ],
        args.append,
    )


if __name__ == "__main__":
    main()
