"""Latency from a line's Docker timestamp to its appearance in `logpipe tail`.

N busybox containers print the corpus at a set rate through the real Docker Engine,
shipper and collector into Elasticsearch; a `logpipe tail --json` of the run's host
(its own process, as a person runs it, against the collector's read API) prints every
line. A thread reads what it prints and keeps, per line, the time it was read minus the
document's `@timestamp` (Docker's own stamp of the line): what a person watching the
tail waits. Lines stamped in the first `--warmup` seconds are left out. Also: how many
of the indexed lines the tail printed, the lines it was told it missed, the lines it
printed twice, those it printed after a line that arrived later (`event.ingested`
lower than one printed before: sent late, out of arrival order, which the collector
counts too), and the tail's own CPU per line (`/proc/<pid>/stat`). Usage:
    python -m bench.tail_latency [--rate 1000] [--seconds 30] [--containers 10]
                                 [--tick 0.05] [--collector-env READ_TAIL_SETTLE=1] [--append]
"""

from __future__ import annotations

import argparse
import datetime
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import docker
import orjson

from bench import containers, latency, procstat, report, services, summary
from shipper.demux import parse_ts

LATE = "logpipe_collector_tail_lines_late_total"


class TailReader:
    """A running `logpipe tail --json` and, per line read, (Docker ts, read time) in ns."""

    def __init__(self, url: str, token: str, host: str, folder: Path) -> None:
        code = services.code_dir()
        env = services.clean_env() | {
            "LOGPIPE_URL": url,
            "LOGPIPE_READ_TOKEN": token,
            "PYTHONPATH": str(code),
            "XDG_CONFIG_HOME": str(folder),
        }
        self.err = folder / "tail.err"
        with self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logpipe", "tail", "--host", host, "-n", "0", "--json"],
                env=env,
                cwd=code,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.seen: list[tuple[int, int]] = []
        self.ids: set[str] = set()
        self.repeated = 0
        self.out_of_order = 0
        self._latest_arrival = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            read_at = time.time_ns()
            doc = orjson.loads(line)
            self.seen.append((parse_ts(doc["@timestamp"].encode()), read_at))
            if doc["_id"] in self.ids:
                self.repeated += 1
            self.ids.add(doc["_id"])
            arrival = arrival_ms(doc["event"]["ingested"])
            if arrival < self._latest_arrival:
                self.out_of_order += 1
            self._latest_arrival = max(arrival, self._latest_arrival)

    def missed(self) -> int:
        """The lines the tail was told it missed."""
        return sum(int(n) for n in re.findall(r"missed (\d+) lines", self.err.read_text()))

    def stop(self) -> None:
        """Ctrl-C, as a person stops it."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(20)
        self._thread.join(10)


def arrival_ms(ingested: str) -> int:
    """Epoch milliseconds of an `event.ingested` (RFC 3339)."""
    return int(datetime.datetime.fromisoformat(ingested).timestamp() * 1000 + 0.5)


def measure(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Run the pipeline with a tail attached; the table row and notes."""
    services.install_template()
    run = services.run_id()
    folder = services.WORK / f"tail-{run}"
    token, read_token, port = uuid.uuid4().hex, uuid.uuid4().hex, services.free_port()
    dataset, host = f"bench.tail{run}", f"bench-tail-{run}"
    settings = dict(kv.split("=", 1) for kv in args.collector_env)
    collector = services.start_collector(
        folder, port, token, dataset, read_tokens=read_token, settings=settings
    )
    fleet = containers.Fleet(docker.from_env(), run, args.containers, folder / "c", args.tick)
    children = [collector]
    try:
        fleet.start()
        children.append(start_shipper(run, host, port, token, folder))
        tail = TailReader(f"http://127.0.0.1:{port}", read_token, host, folder)
        time.sleep(5)  # shipper attached, tail following
        name, planned = fleet.rate_set(args.rate)
        cpu_before = procstat.usage(tail.proc.pid)[0]
        start = time.time_ns()
        fleet.control(name)
        time.sleep(args.seconds)
        fleet.control("idle")
        end = time.time_ns()
        indexed = wait_settled(f"logs-{dataset}*", tail)
        printed = fleet.printed()
        cpu = procstat.usage(tail.proc.pid)[0] - cpu_before
        late = services.counter(f"http://127.0.0.1:{port}", (LATE,)) or 0
        tail.stop()
    finally:
        fleet.remove()
        for child in reversed(children):
            child.stop()
        services.free_disk(f"logs-{dataset}*")
    waits = sorted(
        (seen - ts) / 1e9 for ts, seen in tail.seen if start + args.warmup * 1e9 <= ts < end
    )
    row = [
        " ".join(args.collector_env) or "defaults",
        report.fmt(planned),
        report.fmt(printed),
        report.fmt(len(tail.seen)),
        report.fmt(indexed),
        report.fmt(tail.missed()),
        report.fmt(tail.repeated),
        report.fmt(tail.out_of_order),
        report.fmt(late),
        *(f"{latency.percentile(waits, q):.2f}" for q in (0.5, 0.95, 0.99)),
        f"{waits[-1]:.2f}" if waits else "-",
        report.fmt(cpu * 1e6 / max(1, len(tail.seen)), 1),
    ]
    notes = [
        f"{args.containers} busybox containers printing {report.fmt(planned)} lines/s in "
        f"ticks of {args.tick} s for {args.seconds:.0f} s; latencies of the "
        f"{len(waits):,} lines stamped after the first {args.warmup:.0f} s.",
        "Latency: when the line was read from `logpipe tail --json`'s output minus its "
        "Docker timestamp; it includes the shipper's batching, the collector, "
        "Elasticsearch's refresh (1 s), the read API's poll and settle delay (the first "
        "column names settings other than the defaults).",
        "Twice: lines the tail printed twice. Out of order: lines printed after one that "
        "arrived at the collector later (a lower `event.ingested`); late: the lines the "
        "collector counted as searchable only after the settle delay "
        f"(`{LATE}`), sent after later ones.",
        "CPU: user + system of the `logpipe tail` process over the run, per line printed.",
    ]
    return row, notes


def start_shipper(run: str, host: str, port: int, token: str, folder: Path) -> services.Child:
    """The real shipper for the run's containers."""
    env = services.clean_env() | {
        "LOGPIPE_COLLECTOR_URL": f"http://127.0.0.1:{port}",
        "LOGPIPE_TOKEN": token,
        "LOGPIPE_STATE_DIR": str(folder / "state"),
        "LOGPIPE_HOST_NAME": host,
        "LOGPIPE_HTTP_LISTEN": f"127.0.0.1:{services.free_port()}",
        "LOGPIPE_INCLUDE_LABELS": f"logpipe.bench={run}",
    }
    return services.Child("shipper", services.entry("shipper", False), env, folder)


def wait_settled(index: str, tail: TailReader, seconds: float = 60) -> int:
    """Wait until the tail has printed (or missed) every indexed line; the indexed count."""
    deadline = time.monotonic() + seconds
    indexed = services.indexed(index)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = services.indexed(index)
        if now == indexed and len(tail.seen) + tail.missed() >= now:
            return now
        indexed = now
    return indexed


def main() -> None:
    """Measure, print, optionally append to docs/BENCHMARKS.md."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--rate", type=float, default=1000, help="total lines/s")
    p.add_argument("--seconds", type=float, default=30, help="how long the containers print")
    p.add_argument("--warmup", type=float, default=5, help="seconds of lines left out")
    p.add_argument("--containers", type=int, default=10)
    p.add_argument("--tick", type=float, default=0.05, help="seconds between a container's prints")
    p.add_argument("--collector-env", action="append", default=[], help="KEY=VALUE setting")
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = p.parse_args()
    measured = report.commit()
    row, notes = measure(args)
    header = [
        "collector",
        "lines/s planned",
        "printed by containers",
        "printed by tail",
        "indexed",
        "missed",
        "twice",
        "out of order",
        "late",
        "p50 s",
        "p95 s",
        "p99 s",
        "max s",
        "tail CPU-µs/line",
    ]
    report.publish(
        "Latency from Docker's timestamp to `logpipe tail`",
        header,
        [row],
        notes,
        args.append,
        section="Live tail latency",
        measured=measured,
    )


if __name__ == "__main__":
    main()
