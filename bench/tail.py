"""The read API's tails: latency to a reader, and what open tails cost ingest.

1. Latency: a load generator posts wire lines to a real collector at about
   `--rate` lines/s, each stamped with the time it was sent (standing for Docker's
   timestamp; the shipper's own batching is not in it). One reader follows them on
   `GET /v1/tail`; a line's latency is its arrival at the reader minus its timestamp.
2. Ingest with 0, 10, 50 tails: the generator posts as fast as the collector takes
   batches for `--seconds`, with that many tails open, each on a filter of its own (so
   each has its own poller: the worst case) that matches every line, and each reader
   reading everything. Lines/s indexed, and the ratio to no tails.
3. Polling alone (`--only polling` runs just this): CPU-seconds per second of the
   Elasticsearch node and of the collector with no ingest, with 0 tails and then with
   `--idle-tails` tails open on filters of their own that match no line: what the
   pollers' reads cost, whatever else the machine is doing (CPU time, not throughput).

Everything runs on this machine, in data streams of the run's own (freed afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from pathlib import Path

import aiohttp
import orjson

from bench import procstat, report, services
from bench.latency import percentile

BATCH = 100


def body(host: str, container: str, start: int, n: int) -> bytes:
    """A wire batch of `n` lines numbered from `start`, stamped now."""
    source = {
        "kind": "source", "src": 0, "host": host, "container_id": container,
        "container_name": "api-1", "image": "busybox:latest", "labels": {},
    }  # fmt: skip
    now = time.time_ns()
    lines = [orjson.dumps(source)]
    for i in range(n):
        log = {"kind": "log", "src": 0, "stream": "stdout", "ts": now + i, "seq": 0}
        lines.append(orjson.dumps(log | {"message": f"line {start + i} of the tail bench"}))
    return b"\n".join(lines) + b"\n"


class Run:
    """One collector with read tokens, and a host name of the run's own."""

    def __init__(self, folder: Path, run: str) -> None:
        self.port, self.run = services.free_port(), run
        self.host, self.container = f"tailbench-{run}", uuid.uuid4().hex * 2
        self.ingest, self.read = "i-" + run, "r-" + run
        self.collector = services.start_collector(
            folder, self.port, self.ingest, f"bench.tail{run}", read_tokens=self.read
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.sent = 0
        self.latency_sent = 0

    async def post(self, session: aiohttp.ClientSession, n: int) -> None:
        """POST `n` lines; they count once the collector answered 200."""
        headers = {"Authorization": f"Bearer {self.ingest}"}
        data = body(self.host, self.container, self.sent, n)
        async with session.post(f"{self.url}/v1/logs", data=data, headers=headers) as resp:
            if resp.status == 200:
                self.sent += n

    async def open_tail(self, session: aiohttp.ClientSession, name: str) -> aiohttp.ClientResponse:
        """A tail of this run's lines, on a filter of its own."""
        params = {"host": self.host, "name": name, "lines": "0"}
        headers = {"Authorization": f"Bearer {self.read}"}
        resp = await session.get(f"{self.url}/v1/tail", params=params, headers=headers)
        assert resp.status == 200, await resp.text()
        return resp


async def latency(run: Run, rate: int, seconds: float) -> list[float]:
    """Seconds from each line's timestamp to its arrival on one tail."""
    samples: list[float] = []
    async with aiohttp.ClientSession() as session:
        tail = await run.open_tail(session, "api-1")
        await tail.content.readline()  # the first keepalive: the poller is there

        async def read() -> None:
            async for raw in tail.content:
                if raw.startswith(b"data: {"):
                    ts = orjson.loads(raw[6:])["@timestamp"]
                    samples.append(time.time() - _epoch(ts))

        reader = asyncio.create_task(read())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.monotonic()
            await run.post(session, rate // 10)
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - began)))
        await asyncio.sleep(6)  # the last lines settle and arrive
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        tail.close()
    return sorted(samples)


def _epoch(ts: str) -> float:
    whole, _, fraction = ts.rstrip("Z").partition(".")
    return (
        time.mktime(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        - time.timezone
        + float("0." + (fraction or "0"))
    )


async def throughput(
    run: Run, tails: int, seconds: float, every_line: bool = True, senders: int = 4
) -> tuple[float, float]:
    """Lines/s the collector took with `tails` tails open and read (on filters matching
    every line, or none), and lines/s each tail's reader received (mean)."""
    received = [0] * tails
    names = [f"api-1,other{i}" if every_line else f"other{i}" for i in range(tails)]
    async with aiohttp.ClientSession() as session:
        opened = [await run.open_tail(session, name) for name in names]
        readers = [asyncio.create_task(_drain(r, received, i)) for i, r in enumerate(opened)]
        before, began = run.sent, time.monotonic()
        deadline = began + seconds

        async def send() -> None:
            while time.monotonic() < deadline:
                await run.post(session, 10 * BATCH)

        await asyncio.gather(*(send() for _ in range(senders)))
        elapsed = time.monotonic() - began
        rate = (run.sent - before) / elapsed
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for resp in opened:
            resp.close()
    return rate, sum(received) / max(1, tails) / elapsed


async def polling(run: Run, tails: int, seconds: float) -> tuple[float, float]:
    """CPU-seconds per second of Elasticsearch and of the collector while `tails` tails
    are open on filters matching no line, and nothing is sent."""
    async with aiohttp.ClientSession() as session:
        opened = [await run.open_tail(session, f"idle{i}") for i in range(tails)]
        await asyncio.sleep(2)  # every poller has started
        es = procstat.CpuWindow(services.es_pids())
        collector = procstat.CpuWindow([run.collector.pid])
        es.start()
        collector.start()
        await asyncio.sleep(seconds)
        used = es.stop() / seconds, collector.stop() / seconds
        for resp in opened:
            resp.close()
    return used


def polling_rows(run: Run, tails: int, seconds: float) -> list[list[str]]:
    """The table rows of the polling measure: 0 tails, then `tails`."""
    (es0, col0), (es_n, col_n) = (asyncio.run(polling(run, n, seconds)) for n in (0, tails))
    return [
        ["polling, 0 tails open, no ingest", f"{seconds:.0f} s",
         f"Elasticsearch {es0 * 1000:.0f} CPU-ms/s, collector {col0 * 1000:.0f} CPU-ms/s"],
        [f"polling, {tails} tails open matching no line, no ingest", f"{seconds:.0f} s",
         f"Elasticsearch {es_n * 1000:.0f} CPU-ms/s, collector {col_n * 1000:.0f} CPU-ms/s; "
         f"per tail {(es_n - es0) / tails * 1000:.1f} and {(col_n - col0) / tails * 1000:.1f}"],
    ]  # fmt: skip


async def _drain(resp: aiohttp.ClientResponse, received: list[int], i: int) -> None:
    while chunk := await resp.content.read(1 << 16):
        received[i] += chunk.count(b"event: line")


def measure_all(run: Run, rate: int, seconds: float) -> list[list[str]]:
    """The rows of the latency and ingest measures."""
    lat = asyncio.run(latency(run, rate, seconds))
    run.latency_sent = run.sent
    rates = {n: asyncio.run(throughput(run, n, seconds)) for n in (0, 10, 50)}
    quiet = asyncio.run(throughput(run, 50, seconds, every_line=False))[0]
    return [
        ["latency to one tail", f"{run.latency_sent:,} lines sent at ~{rate}/s, "
         f"{len(lat):,} received",
         f"p50 {percentile(lat, 0.5):.2f} s, p99 {percentile(lat, 0.99):.2f} s, "
         f"max {lat[-1] if lat else float('nan'):.2f} s"],
        *[[f"ingest, {n} tails open", f"{report.fmt(r)} lines/s indexed",
           f"{r / rates[0][0]:.2f}x of no tails; each tail received {report.fmt(t)} lines/s"]
          for n, (r, t) in rates.items()],
        ["ingest, 50 tails open matching no line", f"{report.fmt(quiet)} lines/s indexed",
         f"{quiet / rates[0][0]:.2f}x of no tails: the cost of polling alone"],
    ]  # fmt: skip


def main() -> None:
    """Run both measures and print (or append) the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.tail", description=__doc__)
    parser.add_argument("--rate", type=int, default=1000, help="lines/s for the latency run")
    parser.add_argument("--seconds", type=float, default=20, help="length of each run")
    parser.add_argument("--idle-tails", type=int, default=50, help="tails of the polling measure")
    parser.add_argument("--only", choices=("all", "polling"), default="all")
    parser.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = parser.parse_args()
    services.install_template()
    measured = report.commit()
    run_id = services.run_id()
    run = Run(services.WORK / f"tail-{run_id}", run_id)
    rows: list[list[str]] = []
    try:
        if args.only == "all":
            rows += measure_all(run, args.rate, args.seconds)
        rows += polling_rows(run, args.idle_tails, args.seconds)
    finally:
        run.collector.stop()
        services.free_disk(f"logs-bench.tail{run_id}*")
    report.publish(
        "Tails: latency and cost to ingest",
        ["measure", "load", "result"],
        rows,
        [
            "One collector (the commit above), the node of LOGPIPE_BENCH_ES_URL, the "
            "collector's default tail settings at that commit, refresh 1 s.",
            "Latency: from the line's timestamp (when the generator sent it) to its "
            "arrival at the reader; the settle delay is most of it, by design.",
            "Ingest: 4 senders of 1,000-line batches; each tail on a filter of its own "
            "matching every line (one poller each), its reader reading everything. The "
            "senders and the readers share one process (and the 2 CPUs with the collector "
            "and Elasticsearch): part of the cost of 50 tails is that process's reading. "
            "A tail behind the ingest rate lags (its poller reads at most 20,000 lines a "
            "poll), it does not slow ingest by waiting.",
            "Polling: CPU time of the Elasticsearch node's process and of the collector's, "
            "per second of wall time, with nothing sent; per tail: the difference to no "
            "tails, divided by the tails.",
        ],
        args.append,
        section="Read API: tails",
        measured=measured,
    )


if __name__ == "__main__":
    main()
