"""Benchmark 4b: rsyslog with omelasticsearch next to logpipe's collector, same run.

rsyslog (Debian's ``rsyslog`` + ``rsyslog-elasticsearch``, installed by
``bench/setup.sh``) takes the corpus over TCP (imptcp, RFC 3164 lines) and indexes it
with omelasticsearch in bulk mode (op_type create, 10 MB requests, 2 workers, batches
of 5000) into a data stream of its own; it does not parse the lines. Then, unless
--no-collector, logpipe's collector gets the same corpus from the load generator
(bench.collector_load). Both rows land in one table: docs/s and CPU per 100k docs.
Usage:
    python -m bench.rsyslog [--seconds 20] [--append]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

from bench import collector_load, corpus, procstat, report, services, summary

CONF = """\
global(workDirectory="{work}")
module(load="imptcp")
module(load="omelasticsearch")
input(type="imptcp" port="{port}" address="127.0.0.1")
template(name="doc" type="list") {{
  constant(value="{{\\"@timestamp\\":\\"")
  property(name="timegenerated" dateFormat="rfc3339")
  constant(value="\\",\\"message\\":\\"")
  property(name="msg" position.from="2" format="json")
  constant(value="\\",\\"host\\":{{\\"name\\":\\"")
  property(name="hostname" format="json")
  constant(value="\\"}},\\"service\\":{{\\"name\\":\\"")
  property(name="programname" format="json")
  constant(value="\\"}},\\"event\\":{{\\"dataset\\":\\"rsyslog\\"}}}}")
}}
template(name="docid" type="string" string="%uuid%")
action(type="omelasticsearch" server="127.0.0.1" serverport="{es_port}"
       searchIndex="{stream}" template="doc" esVersion.major="8"
       bulkmode="on" maxbytes="10m" writeoperation="create" bulkid="docid" dynbulkid="on"
       queue.type="linkedList" queue.size="200000" queue.dequeueBatchSize="5000"
       queue.workerThreads="2")
"""


def syslog_lines() -> bytes:
    """The corpus as RFC 3164 lines, as a container's syslog driver would send them."""
    lines = corpus.lines(20000)
    return "".join(
        f"<14>Nov 27 21:00:00 benchhost app{i % 7}: {line}\n" for i, line in enumerate(lines)
    ).encode()


class Rsyslog:
    """rsyslogd in the foreground with a config of this run; stopped by its pid."""

    def __init__(self, run: str) -> None:
        if shutil.which("rsyslogd") is None:
            raise SystemExit("rsyslogd is missing: run `bash bench/setup.sh` first")
        self.folder = services.WORK / f"rsyslog-{run}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = services.free_port()
        # Named like logpipe's streams, so logpipe's template makes it a data stream with
        # the same mappings as the collector's documents get.
        self.stream = f"logs-bench.rsys{run}.keep_14d-default"
        es_port = services.ES_URL.rsplit(":", 1)[1].rstrip("/")
        conf = CONF.format(work=self.folder, port=self.port, es_port=es_port, stream=self.stream)
        (self.folder / "rsyslog.conf").write_text(conf)
        with (self.folder / "rsyslogd.log").open("ab") as out:
            self.proc = subprocess.Popen(
                ["rsyslogd", "-n", "-f", str(self.folder / "rsyslog.conf"),
                 "-i", str(self.folder / "rsyslogd.pid")],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"rsyslogd did not listen; see {self.folder / 'rsyslogd.log'}")

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


def send(port: int, payload: bytes, seconds: float, connections: int) -> int:
    """Send the payload over and over for `seconds`; lines sent."""
    per = payload.count(b"\n")
    sent = [0] * connections
    deadline = time.monotonic() + seconds

    def one(k: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            while time.monotonic() < deadline:
                conn.sendall(payload)
                sent[k] += per

    threads = [threading.Thread(target=one, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(sent)


def wait_count(index: str, expected: int, seconds: float) -> tuple[int, float]:
    """Poll until `expected` documents are searchable (or time is up); count and when."""
    deadline = time.monotonic() + seconds
    last = -1
    while time.monotonic() < deadline:
        services.refresh(index)
        last = services.count(index)
        if last >= expected:
            break
        time.sleep(0.5)
    return last, time.monotonic()


def measure_rsyslog(seconds: float) -> list[str]:
    """One table row: rsyslog's docs/s, CPU and RSS."""
    run = services.run_id()
    rs = Rsyslog(run)
    try:
        payload = syslog_lines()
        warm = b"".join(payload.splitlines(keepends=True)[:500])
        send(rs.port, warm, 0.001, 1)
        wait_count(rs.stream, 500, 60)
        cpu = procstat.CpuWindow([rs.proc.pid])
        es = procstat.CpuWindow(services.es_pids())
        cpu.start()
        es.start()
        began = time.monotonic()
        sent = send(rs.port, payload, seconds, 2)
        indexed, done = wait_count(rs.stream, sent + 500, 120)
        cpu.stop()
        es.stop()
        indexed -= 500
        elapsed = done - began
        peak = procstat.peak_rss_mb(rs.proc.pid)
    finally:
        rs.stop()
        services.free_disk(f"logs-bench.rsys{run}*")
    return [
        "rsyslog 8.2302 omelasticsearch (no parsing)",
        report.fmt(indexed / elapsed),
        f"{cpu.used / indexed * 1e5:.2f}",
        f"{cpu.used / indexed * 1e6:.0f}",
        f"{cpu.used / elapsed:.2f}",
        f"{peak:.0f}",
        f"{es.used / indexed * 1e5:.1f}",
        report.fmt(indexed),
        f"{elapsed:.1f}",
    ]


def measure_collector(seconds: float) -> list[str]:
    """The same row for logpipe's collector (load generator, bench.collector_load)."""
    run = services.run_id()
    args = collector_load.options(run, seconds=seconds)
    token = uuid.uuid4().hex
    port = services.free_port()
    folder = services.WORK / f"collector-{run}"
    collector = services.start_collector(folder, port, token, f"bench.coll{run}")
    try:
        collector_load.warm_up(port, token, run)
        w = collector_load.load(collector, port, token, args)
    finally:
        collector.stop()
        services.free_disk(f"logs-bench.coll{run}*")
    return [
        "logpipe collector (parse + enrich)",
        report.fmt(w.indexed / w.elapsed),
        f"{w.collector_cpu / w.indexed * 1e5:.2f}",
        f"{w.collector_cpu / w.indexed * 1e6:.0f}",
        f"{w.collector_cpu / w.elapsed:.2f}",
        f"{w.peak_rss_mb:.0f}",
        f"{w.es_cpu / w.indexed * 1e5:.1f}",
        report.fmt(w.indexed),
        f"{w.elapsed:.1f}",
    ]


def main() -> None:
    """Both rows, one table."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--seconds", type=float, default=20, help="how long each one is fed")
    p.add_argument("--no-collector", action="store_true", help="rsyslog only")
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = p.parse_args()
    services.install_template()
    rows = [measure_rsyslog(args.seconds)]
    if not args.no_collector:
        rows.append(measure_collector(args.seconds))
    report.publish(
        "4b. Collector peers: rsyslog omelasticsearch vs logpipe collector (same run)",
        ["ingester", "docs/s", "CPU-s/100k docs", "CPU-µs/doc", "cores busy", "peak RSS MB",
         "ES CPU-s/100k", "docs", "seconds"],
        rows,
        ["rsyslog: imptcp input, RFC 3164 lines, omelasticsearch bulkmode, create, 10 MB, "
         "2 workers, batches of 5000; its documents are smaller (raw message, 5 fields) and "
         "unparsed, so Elasticsearch does less per document",
         "rsyslog's time runs from the first line sent to the last document searchable; "
         "the collector's from the first batch posted to the last answer; CPU of each "
         "from /proc of its own pid"],
        args.append,
    )  # fmt: skip


if __name__ == "__main__":
    main()
