"""Load generator: posts wire batches to a collector, as shippers do (its own process).

It builds every batch before it starts (``shipper.batch.encode`` of corpus lines,
gzip level 1, each line with a timestamp of its own so every document is new), prints
``READY``, waits for a line on stdin, posts over several connections for a bounded
time and prints one JSON line with what the collector answered. Usage (by a benchmark):
    python -m bench.loadgen --url http://127.0.0.1:PORT --token T --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiohttp
import orjson

from bench import corpus, documents, summary
from collector.wire import SENT_AGAIN


def build(args: argparse.Namespace) -> list[bytes]:
    """Every gzip body this run may send."""
    lines = corpus.lines(20000)
    metas = documents.containers(args.containers, args.run)
    bodies = documents.wire_batches(lines, metas, args.host, args.batch_lines, args.batches)
    return [documents.gzipped(body) for body in bodies]


async def post(args: argparse.Namespace, bodies: list[bytes]) -> dict[str, object]:
    """Send bodies over `connections` connections until time or bodies run out."""
    headers = {
        "Content-Type": "application/x-ndjson",
        "Content-Encoding": "gzip",
        "Authorization": f"Bearer {args.token}",
    }
    if args.sent_again:  # as a shipper marks a batch it sends again after a failed try
        headers[SENT_AGAIN] = "1"
    url = args.url + "/v1/logs"
    queue = list(reversed(bodies))
    statuses: dict[str, int] = {}
    received = indexed = 0
    began = time.monotonic()
    deadline = began + args.seconds

    async def send(session: aiohttp.ClientSession, body: bytes) -> None:
        nonlocal received, indexed
        while True:  # a 503 means "busy, retry": the same batch again, as a shipper does,
            # once the Retry-After the collector asked for has passed
            async with session.post(url, data=body, headers=headers) as resp:
                answer = await resp.read()
            statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
            if resp.status != 503:
                break
            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
        if resp.status == 200:
            result = orjson.loads(answer)
            received += result["received"]
            indexed += result["indexed"]

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue and time.monotonic() < deadline:
            await send(session, queue.pop())

    async def paced(session: aiohttp.ClientSession) -> None:
        """A batch every 1/rate s, as many shippers would send them; `connections` at once."""
        slots = asyncio.Semaphore(args.connections)
        sent = 0

        async def one(body: bytes) -> None:
            async with slots:
                await send(session, body)

        tasks = []
        while queue and time.monotonic() < deadline:
            tasks.append(asyncio.create_task(one(queue.pop())))
            sent += 1
            await asyncio.sleep(max(0.0, began + sent / args.rate - time.monotonic()))
        await asyncio.gather(*tasks)

    timeout = aiohttp.ClientTimeout(total=300)
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        if args.rate:
            await paced(session)
        else:
            await asyncio.gather(*(worker(session) for _ in range(args.connections)))
    elapsed = time.monotonic() - began
    return {
        "received": received,
        "indexed": indexed,
        "elapsed": elapsed,
        "statuses": statuses,
        "ran_out": not queue,
    }


def main() -> None:
    """Build, say READY, wait for the go, post, print the result as JSON."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--batch-lines", type=int, default=5000)
    p.add_argument("--batches", type=int, default=120, help="batches built (upper bound)")
    p.add_argument("--containers", type=int, default=20, help="sources per batch")
    p.add_argument("--rate", type=float, default=0, help="batches/s (0: as fast as answered)")
    p.add_argument("--host", default="bench-host")
    p.add_argument("--run", default="run")
    p.add_argument("--sent-again", action="store_true", help="mark every batch as sent again")
    args = p.parse_args()
    bodies = build(args)
    raw = sum(len(b) for b in bodies)
    print(f"READY {len(bodies)} batches, {raw / 1e6:.1f} MB gzip", flush=True)
    sys.stdin.readline()
    print(orjson.dumps(asyncio.run(post(args, bodies))).decode(), flush=True)


if __name__ == "__main__":
    main()
