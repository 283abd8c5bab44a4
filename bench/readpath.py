"""Micro-benchmark of the shipper's reading path, in process: CPU µs per line.

A follower is fed corpus lines as dockerd frames (no sockets, no dockerd) and a task
drains its queue as the batcher would; what is timed is demultiplexing, rejoining,
numbering, the hand-off to the queue and the queue itself. Reads of `--lines-per-read`
frames stand for a follower that keeps up (dockerd flushes every line: one a read) and
one that lags (many lines waiting in the socket). CPU time (process time), best of
`--tries`, on the event loop the shipper uses, by the reading path the shipper would
choose (the compiled one when installed; LOGPIPE_NATIVE=0 for Python). Not a test: it
asserts nothing.
Usage:
    python -m bench.readpath [--lines 20000] [--lines-per-read 1,8,64] [--tries 5]
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import time
from collections.abc import AsyncIterator

from bench import corpus, summary
from collector.runtime import loop_factory, tune_gc, tune_malloc
from shipper import native
from shipper.cursor import Position
from shipper.follow import Follower
from shipper.inbox import Inbox
from shipper.metrics import PerContainer
from shipper.record import Meta

_HEADER = struct.Struct(">BxxxL")


def frames(lines: list[str], start_ns: int) -> list[bytes]:
    """Each line as dockerd sends it with timestamps: header, RFC 3339 time, line."""
    out = []
    for i, line in enumerate(lines):
        ns = start_ns + i * 1000
        secs, frac = divmod(ns, 1_000_000_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"
        payload = f"{stamp} {line}\n".encode()
        out.append(_HEADER.pack(1 if i % 10 else 2, len(payload)) + payload)
    return out


class _Response:
    """What a follower reads: the frames in reads of `per_read` frames."""

    def __init__(self, reads: list[bytes]) -> None:
        self._reads = reads

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._reads:
            yield chunk


async def drain_records(inbox: Inbox, total: int) -> None:
    """Take `total` records from `inbox` as the batcher would, as they come."""
    got = 0
    while got < total:
        if inbox.empty():
            await asyncio.sleep(0)
            continue
        while not inbox.empty():  # as the batcher takes them (shipper/batch.py)
            got += len(inbox.take(5000, 1 << 22, 0)[0])


def bench_follower() -> tuple[Follower, Inbox]:
    """A follower of one container from its start (dockerd never asked), and its queue."""
    inbox = Inbox(20_000, PerContainer(False, 100))
    meta = Meta(id="c" * 64, name="bench", image="busybox")
    positions = {"stdout": Position(0, 0), "stderr": Position(0, 0)}
    made = Follower(None, meta, positions, inbox, 1 << 20)  # type: ignore[arg-type]
    made.learn(None, meta, skip=False)
    return made, inbox


async def one_run(frame_list: list[bytes], per_read: int) -> float:
    """CPU seconds to read every frame through a follower into a drained queue."""
    follower, inbox = bench_follower()
    reads = [b"".join(frame_list[i : i + per_read]) for i in range(0, len(frame_list), per_read)]
    started = time.process_time()
    drain = asyncio.create_task(drain_records(inbox, len(frame_list)))
    await follower.stream.consume(_Response(reads).chunks(), follow=True)
    await drain
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--lines-per-read", default="1,8,64")
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()
    tune_gc()
    tune_malloc()
    lines = corpus.lines(args.lines)
    frame_list = frames(lines, time.time_ns())
    sizes = [int(s) for s in args.lines_per_read.split(",")]
    factory = loop_factory("auto")
    with asyncio.Runner(loop_factory=factory) as runner:
        print(f"reading path: {native.describe()}")
        print(f"| lines per read | CPU µs per line (best of {args.tries}) |")
        print("|---|---|")
        for size in sizes:
            best = min(runner.run(one_run(frame_list, size)) for _ in range(args.tries))
            print(f"| {size} | {best / len(frame_list) * 1e6:.2f} |")


if __name__ == "__main__":
    main()
