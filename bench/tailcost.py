"""What a GET /logs client costs the shipper: CPU per line with a client attached and without.

The whole pipeline of bench.pipeline (N busybox containers printing the corpus at a set
rate through dockerd, the real shipper and collector, into Elasticsearch), with the
shipper's /logs turned on. Each round measures the same rate once per variant, the
order reversed every other round so that a drifting machine favours none:
``none`` (no client), ``plain`` and ``ndjson`` (a client reading every line in that
format, in a thread of this process, whose own CPU is not counted), and ``stalled``
(a client that never reads: its queue fills and every later line is a missed one).
Per step: printed lines/s, shipper CPU-µs per line printed and cores per 10k lines/s,
what the client read and what it missed (the shipper's count), and whether the pipeline
kept up. Usage:
    python -m bench.tailcost [--containers 10] [--rate 5000] [--rounds 2]
                             [--variants none,plain,ndjson,stalled] [--append]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import sys
import threading
import uuid

from bench import containers, report, services, summary
from bench.pipeline import Bench, Step

VARIANTS = ("none", "plain", "ndjson", "stalled")
MISSED = re.compile(rb'^(?:logpipe: \d+ lines missed|\{"missed":\d+\})$')


class Reader:
    """One /logs client: reads (and counts) every line in a thread, or never reads."""

    def __init__(self, port: int, token: str, fmt: str, reads: bool) -> None:
        self.lines = 0
        sock = socket.socket()
        if not reads:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.conn.sock = sock
        query = f"/logs?format={fmt}"
        self.conn.request("GET", query, headers={"Authorization": f"Bearer {token}"})
        self.response = self.conn.getresponse()
        if self.response.status != 200:
            raise SystemExit(f"GET {query}: {self.response.status} {self.response.read()!r}")
        self.thread = threading.Thread(target=self._read, daemon=True) if reads else None
        if self.thread is not None:
            self.thread.start()

    def _read(self) -> None:
        try:
            while line := self.response.readline():
                if not MISSED.match(line.rstrip(b"\n")):
                    self.lines += 1
        except (OSError, ValueError, http.client.HTTPException):
            return  # closed by close()

    def close(self) -> None:
        """Disconnect (the reading thread ends)."""
        if self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)  # ends the thread's blocked read
        if self.thread is not None:
            self.thread.join(10)
        self.conn.close()


SECTION = "Shipper CPU per line with a GET /logs client"
MISSED_TOTAL = ("logpipe_shipper_tail_missed_total",)


def measure(bench: Bench, variant: str, rate: float, token: str) -> tuple[Step, Reader | None, int]:
    """One step at `rate` with the variant's client attached for all of it; the lines the
    shipper counted as missed by /logs clients meanwhile."""
    reader = None
    before = services.counter(bench.shipper_url, MISSED_TOTAL) or 0
    if variant != "none":
        port = int(bench.shipper_url.rsplit(":", 1)[1])
        fmt = "ndjson" if variant == "ndjson" else "plain"
        reader = Reader(port, token, fmt, reads=variant != "stalled")
    try:
        step = bench.step(rate)
    finally:
        if reader is not None:
            reader.close()
    missed = int((services.counter(bench.shipper_url, MISSED_TOTAL) or 0) - before)
    return step, reader, missed


def row(variant: str, n: int, step: Step, reader: Reader | None, missed: int) -> list[str]:
    """One table row."""
    lines = step.printed * step.seconds
    return [
        variant,
        str(n),
        report.fmt(step.printed),
        f"{step.cpu['shipper'] / lines * 1e6:.2f}",
        f"{step.per_10k('shipper'):.3f}",
        f"{step.per_10k('dockerd'):.3f}",
        f"{reader.lines:,}" if reader else "-",
        f"{missed:,}" if reader else "-",
        "yes" if step.sustained else "NO",
    ]


HEADER = [
    "client", "round", "printed lines/s", "shipper CPU-µs/line", "shipper cores/10k l/s",
    "dockerd cores/10k l/s", "client read (lines, whole step)", "client missed (shipper's count)",
    "sustained",
]  # fmt: skip


def main() -> None:
    """Run the rounds and print (and append) the table."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--containers", type=int, default=10)
    p.add_argument("--rate", type=float, default=5000, help="total lines/s printed")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--variants", default=",".join(VARIANTS), help="of " + ",".join(VARIANTS))
    p.add_argument("--step-seconds", type=float, default=20, help="measured part of a step")
    p.add_argument("--tick", type=float, default=containers.TICK, help="as bench.pipeline")
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = p.parse_args()
    variants = args.variants.split(",")
    if set(variants) - set(VARIANTS):
        raise SystemExit(f"--variants: each of {', '.join(VARIANTS)}")
    token = uuid.uuid4().hex
    args.peers, args.peers_dir, args.collector_env = False, None, []
    args.shipper_env = [f"TAIL_TOKEN={token}"]
    bench = Bench(args)
    rows: list[list[str]] = []
    measured = report.commit()
    try:
        bench.start()
        for n in range(1, args.rounds + 1):
            for variant in variants if n % 2 else variants[::-1]:
                step, reader, missed = measure(bench, variant, args.rate, token)
                rows.append(row(variant, n, step, reader, missed))
                print(report.table(HEADER, [rows[-1]]), file=sys.stderr)
    finally:
        bench.stop()
    report.publish(
        "Shipper CPU per line with a GET /logs client attached and without",
        HEADER,
        rows,
        [
            f"{args.containers} containers print the corpus at {report.fmt(args.rate)} lines/s"
            f" (every {args.tick:g} s); steps of 5 s warm-up + {args.step_seconds:.0f} s"
            " measured, the client attached for both; CPU from /proc of the shipper's pid",
            "CPU-µs/line = the shipper's CPU-seconds in the window / lines printed in it;"
            " the client's own reading runs in the benchmark's process and is not counted",
            "stalled = a client with a 4 KiB receive buffer that never reads: once the"
            " sockets' buffers are full its queue (LOGPIPE_TAIL_BUFFER_LINES, 5000) fills and"
            " every later line is missed (logpipe_shipper_tail_missed_total); it would be told"
            " so once it read",
        ],
        args.append,
        section=SECTION,
        measured=measured,
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
