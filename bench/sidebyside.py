"""Side by side with Fluent Bit and logspout: the same finished containers drained from
the start by each shipper, one after the other, into the same Elasticsearch node.

N busybox containers (``--network none``) print ``--lines`` corpus lines each, then
``exec sleep`` so that every shipper can still attach. Once dockerd has all their lines,
each shipper in turn reads the containers' whole logs: logpipe (the real shipper and a
real collector, into a data stream of its own), Fluent Bit (tail of the json-file logs,
into an index of its own) and logspout (Docker Engine API, raw lines over TCP into a
sink here that counts them). Per run: lines/s from the shipper's start until every line
is in Elasticsearch (or counted by the sink), CPU-µs per line of every process involved,
Elasticsearch CPU-µs per document until it is idle again, and peak RSS. Peers are
prebuilt binaries from an optional peers directory or PATH (bench.peers); a missing
one's rows are skipped.

``--live RATE`` measures steady operation instead: each shipper in turn follows idle
containers of its own, which then print RATE lines/s together for ``--seconds``; every
process's CPU is counted from the first printed line until the last one arrived
(Elasticsearch's until it is idle again), the shippers' start left out.

--log-driver local and --log-opt (max-size, max-file, compress) make the containers' logs
rotate (bench.logdriver; Fluent Bit, which tails json-file logs, is then left out), and
--through-dockerd has logpipe's shipper read every line through dockerd.

``--kills N`` times nothing: each shipper that indexes into Elasticsearch drains the same
containers, killed with SIGKILL N times and restarted on its state, and its index is
compared line by line with what was printed (bench.kills). Usage:
    python -m bench.sidebyside [--containers 10] [--lines 36000] [--repeat 1]
                               [--peers-dir DIR] [--only NAMES] [--log-driver local]
                               [--log-opt K=V] [--through-dockerd] [--append]
    python -m bench.sidebyside --kills N [--containers 10] [--lines 36000] [--repeat 1]
                               [--only logpipe,fluent-bit] [--append]
    python -m bench.sidebyside --live 5000 [--seconds 60] [--search-every SECONDS]
                               [--containers 10] [--repeat 1] [--peers-dir DIR]
                               [--only NAMES] [--append]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import docker

from bench import at_least, containers, kills, logdriver, peers, procstat, report, services, summary
from bench.shippers import (
    ES_POLL,
    FLUENT_BIT,
    LOGPIPE,
    LOGSPOUT,
    NEEDS,
    RUNS,
    SINK_POLL,
    Context,
    Shipper,
)
from collector.retention.facts import ALL_STREAMS

IDLE_WINDOW = 2.0  # Elasticsearch is idle when it used little CPU over this many seconds
IDLE_FLOOR = 0.10  # cores: below this it counts as idle whatever it did before the run
IDLE_CAP = 60.0  # seconds after the last line when the wait for idle gives up
BASELINE = 3.0  # seconds of Elasticsearch's CPU measured before each run
ATTACH = 5.0  # live: seconds a shipper gets to start and attach before the printing
QUIET_CORES = 0.25  # before a drain: the machine is quiet at most this busy...
QUIET_WINDOW = 2.0  # ... over this many seconds
QUIET_CAP = 60.0  # seconds the wait for a quiet machine gives up after
# A node that has indexed fewer documents since it started is still compiling its
# indexing path: the first drain into it costs twice the CPU per document of the next.
WARM_DOCS = 1_000_000
OWN = ("shipper", "collector")  # a shipper's own processes (the peers have no collector)


@dataclass
class Result:
    """What one shipper's run measured."""

    shipper: str
    round: int
    total: int
    arrived: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # role -> CPU seconds
    rss: dict[str, float] = field(default_factory=dict)  # role -> peak MB
    idle_after: float | None = None  # seconds from the last line until ES was idle
    docs: int | None = None  # searchable in its index afterwards (None: no ES output)
    load: float = 0.0  # the 1-minute load average when the run started
    caught_up: float | None = None  # live: seconds from the printing's end to the last line
    quiet: float | None = None  # drain: seconds waited for a quiet machine (None: not quiet)
    stolen: float | None = None  # share of the machine's CPU time the hypervisor took
    # seconds the node's threads spent on its index by kind (services.thread_times)
    threads: dict[str, float] | None = None
    disk: float | None = None  # bytes on disk per document, one segment (disk_per_doc)
    unpacked: int | None = None  # compressed rotated files the shipper unpacked
    gaps: int = 0  # gap documents in its index (logpipe: lines it reported lost)

    def per_doc(self, kind: str) -> float | None:
        """µs per document the node's threads spent on `kind` for the run's index."""
        if self.threads is None or not self.docs:
            return None
        return self.threads[kind] / self.docs * 1e6

    def per_line(self, *roles: str) -> float:
        """CPU-µs per line arrived of the given roles together."""
        return sum(self.cpu.get(r, 0.0) for r in roles) / max(self.arrived, 1) * 1e6

    @property
    def rate(self) -> float:
        """Lines per second from start until the last line arrived."""
        return self.arrived / self.seconds if self.seconds else 0.0


def es_rate(seconds: float) -> float:
    """Cores Elasticsearch uses over the next `seconds` (what others make it do)."""
    window = procstat.CpuWindow(services.es_pids())
    window.start()
    time.sleep(seconds)
    return window.stop() / seconds


def measure(ship: Shipper, ctx: Context, round_: int, existing: bool = False) -> Result:
    """One shipper drains the containers; what it cost every process involved.

    `existing`: its index is made empty first and left until search-idle, so the drain is
    a catch-up into a stream nobody is searching (after a shipper's outage, say) rather
    than into one its first line creates (a first install); the refresh the next search
    would make is counted then.

    First the machine is let settle: what the containers printed is written out, and
    whatever ran before (the kernel's writeback, an earlier drain's merges) has ended, so
    the first shipper of a run is not charged for it."""
    quiet = procstat.wait_quiet(QUIET_CORES, QUIET_WINDOW, QUIET_CAP)
    out = Result(ship.name, round_, ctx.total, load=os.getloadavg()[0], quiet=quiet)
    threshold = max(IDLE_FLOOR, 1.5 * es_rate(BASELINE)) if ship.index else 0.0
    running = ship.prepare()
    made = ship.make_index() if existing else None
    if made is not None:
        services.wait_search_idle(made)
    shared = {"dockerd": services.dockerd_pids(), "elasticsearch": services.es_pids()}
    windows = {role: procstat.CpuWindow(pids) for role, pids in {**running, **shared}.items()}
    for w in windows.values():
        w.start()
    steal = procstat.machine_steal()
    threads = services.thread_times(ship.index) if ship.index else None
    began = time.monotonic()
    own = ship.launch()
    peaks = procstat.Peaks({**running, **own, **shared})
    try:
        out.arrived = wait_arrived(ship, ctx.total, own, began)
        out.seconds = time.monotonic() - began
        out.cpu = {role: sum(_cpu(p) for p in pids) for role, pids in own.items()}
        out.rss = {role: max(procstat.peak_rss_mb(p) for p in pids) for role, pids in own.items()}
        for role in [*running, "dockerd"]:
            out.cpu[role] = windows[role].stop()
        out.rss |= {role: procstat.peak_rss_mb(pids[0]) for role, pids in running.items()}
    finally:
        ship.stop()
    out.unpacked = ship.unpacked()
    out = settled(ship, out, windows["elasticsearch"], threshold, began, peaks, existing)
    out.stolen = stolen_since(steal)
    out.threads = threads_since(ship, threads)
    out.disk = services.disk_per_doc(ship.index) if ship.index else None
    if made is not None and out.docs is not None and services.count(made) != out.docs:
        raise RuntimeError(f"{ship.name}'s lines did not all go into {made}, the index made idle")
    return out


def threads_since(ship: Shipper, before: dict[str, float] | None) -> dict[str, float] | None:
    """What the node's threads spent on the shipper's index since `before`, by kind."""
    if before is None or not ship.index:
        return None
    after = services.thread_times(ship.index)
    return {kind: after[kind] - before.get(kind, 0.0) for kind in after}


def stolen_since(before: tuple[int, int], now: tuple[int, int] | None = None) -> float:
    """The share of the machine's CPU time since `before` that the hypervisor took."""
    after = now if now is not None else procstat.machine_steal()
    return (after[0] - before[0]) / max(after[1] - before[1], 1)


def settled(
    ship: Shipper,
    out: Result,
    es: procstat.CpuWindow,
    threshold: float,
    began: float,
    peaks: procstat.Peaks,
    refresh_first: bool = False,
) -> Result:
    """`out` completed once the shipper has stopped: Elasticsearch's CPU until it is idle
    again, the documents searchable, the peak RSS of dockerd and Elasticsearch.

    `refresh_first`: the index is refreshed before that wait, inside the window (a
    search-idle index holds what arrived since its last segment: the next search writes
    it, and that work belongs to the run)."""
    if ship.index:
        if refresh_first:
            services.refresh(ship.index)
        out.idle_after = wait_idle(ship.index, threshold, began + out.seconds)
        out.cpu["elasticsearch"] = es.stop()
        if not refresh_first:
            services.refresh(ship.index)
        out.docs = services.count(ship.index)
        if ship.name == LOGPIPE:
            out.gaps = services.gap_documents(ship.index)
    sampled = peaks.stop()
    out.rss["dockerd"], out.rss["elasticsearch"] = sampled["dockerd"], sampled["elasticsearch"]
    return out


class Searches:
    """A count of the shipper's index every `every` seconds while the run lasts, as a
    dashboard refreshing itself would make: the index is searched, so Elasticsearch keeps
    refreshing it every second instead of letting it go search-idle after 30 s."""

    def __init__(self, index: str | None, every: float | None) -> None:
        self.index, self.every = index, every
        self.made = self.failed = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Searches:
        if self.index and self.every:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()

    def _run(self) -> None:
        assert self.index is not None
        assert self.every is not None
        while not self.done.wait(self.every):
            try:
                services.count(self.index)
                self.made += 1
            except (OSError, ValueError) as exc:  # urllib's errors are OSErrors
                self.failed += 1
                print(f"a count of {self.index} failed: {exc}", file=sys.stderr)


def measure_live(
    ship: Shipper,
    ctx: Context,
    fleet: containers.Fleet,
    args: argparse.Namespace,
    round_: int,
) -> Result:
    """The shipper follows idle containers, which then print at `args.live` lines/s for
    `args.seconds` (its index counted every `args.search_every` seconds, if given): what
    every process spent from the first printed line until the last one arrived
    (Elasticsearch until idle again), the shipper's start left out."""
    out = Result(ship.name, round_, 0, load=os.getloadavg()[0])
    threshold = max(IDLE_FLOOR, 1.5 * es_rate(BASELINE)) if ship.index else 0.0
    running = ship.prepare()
    own = ship.launch()
    time.sleep(ATTACH)
    shared = {"dockerd": services.dockerd_pids(), "elasticsearch": services.es_pids()}
    pids = {**running, **own, **shared}
    windows = {role: procstat.CpuWindow(p) for role, p in pids.items()}
    peaks = procstat.Peaks(pids)
    chunks, _ = fleet.rate_set(args.live)
    for w in windows.values():
        w.start()
    steal = procstat.machine_steal()
    threads = services.thread_times(ship.index) if ship.index else None
    began = time.monotonic()
    try:
        with Searches(ship.index, args.search_every):
            fleet.control(chunks)
            time.sleep(args.seconds)
            fleet.control("idle")
            out.total = printed_in_the_end(fleet)
            printing_ended = time.monotonic()
            out.arrived = wait_arrived(ship, out.total, own, began)
            out.seconds = time.monotonic() - began
        out.caught_up = out.seconds - (printing_ended - began) if out.arrived >= out.total else None
        for role in [*running, *own, "dockerd"]:
            out.cpu[role] = windows[role].stop()
        out.rss = {role: max(procstat.peak_rss_mb(p) for p in pids[role]) for role in own}
        out.rss |= {role: procstat.peak_rss_mb(p[0]) for role, p in running.items()}
    finally:
        ship.stop()
    out.unpacked = ship.unpacked()
    out = settled(ship, out, windows["elasticsearch"], threshold, began, peaks)
    out.stolen = stolen_since(steal)
    out.threads = threads_since(ship, threads)
    out.disk = services.disk_per_doc(ship.index) if ship.index else None
    return out


def printed_in_the_end(fleet: containers.Fleet) -> int:
    """Lines the fleet printed, once the count stops growing (a tick may be under way)."""
    last = -1
    while (now := fleet.printed()) != last:
        last = now
        time.sleep(2 * fleet.tick)
    return last


def _cpu(pid: int) -> float:
    """CPU seconds of a process the run started, since its start."""
    try:
        return procstat.usage(pid)[0]
    except (OSError, ValueError):
        return 0.0


def wait_arrived(ship: Shipper, total: int, own: dict[str, list[int]], began: float) -> int:
    """Poll until every line arrived, a process of the shipper died, or time is up."""
    deadline = began + max(120.0, total / 500)
    arrived = 0
    while time.monotonic() < deadline:
        arrived = ship.arrived()
        if arrived >= total or not all(procstat.alive(p) for pids in own.values() for p in pids):
            break
        time.sleep(ship.poll)
    return arrived


def wait_idle(index: str, threshold: float, last_line: float) -> float | None:
    """Seconds from the last line until Elasticsearch is idle (None: not within the cap).

    Idle: over the last IDLE_WINDOW seconds it used at most `threshold` cores, and no
    merge runs in `index`.
    """
    pids = services.es_pids()
    samples: list[tuple[float, float]] = []
    while (now := time.monotonic()) < last_line + IDLE_CAP:
        samples.append((now, sum(_cpu(p) for p in pids)))
        old = [s for s in samples if s[0] <= now - IDLE_WINDOW]
        if old:
            t, used = old[-1]
            if (samples[-1][1] - used) / (now - t) <= threshold and services.merging(index) == 0:
                return now - last_line
        time.sleep(0.5)
    return None


def row(r: Result, live: bool = False) -> list[str]:
    """One table row (live: with how long the last lines took after the printing)."""
    es = r.docs is not None
    logpipe = r.shipper == LOGPIPE
    caught_up = f"{r.caught_up:.1f}" if r.caught_up is not None else "never"
    return [
        r.shipper,
        str(r.round),
        f"{r.load:.1f}",
        f"{r.arrived:,} of {r.total:,}" + ("" if r.arrived >= r.total else " (INCOMPLETE)"),
        f"{r.seconds:.1f}",
        report.fmt(r.rate),
        f"{r.per_line(*OWN):.1f}",
        f"{r.per_line('shipper'):.1f}",
        f"{r.per_line('collector'):.1f}" if logpipe else "-",
        f"{r.per_line('dockerd'):.1f}",
        f"{r.per_line('elasticsearch'):.1f}" if es else "- (no ES output)",
        _threads(r),
        f"{r.disk:.0f}" if r.disk is not None else "-",
        _idle(r) if es else "-",
        f"{r.per_line('shipper', 'collector', 'dockerd', 'elasticsearch'):.1f}",
        f"{r.rss['shipper']:.0f}" + (f" / {r.rss['collector']:.0f}" if logpipe else ""),
        f"{r.rss['dockerd']:.0f} / {r.rss['elasticsearch']:.0f}",
        _docs(r),
        f"{r.stolen * 100:.1f}" if r.stolen is not None else "-",
        *([caught_up] if live else []),
    ]


def _docs(r: Result) -> str:
    if r.docs is None:
        return "-"
    extra = r.docs - r.total - r.gaps
    return (
        report.fmt(r.docs)
        + (f" ({r.gaps:,} gap documents)" if r.gaps else "")
        + (f" ({extra:,} duplicates)" if extra > 0 else "")
    )


def _threads(r: Result) -> str:
    spent = [r.per_doc(kind) for kind in ("indexing", "merges", "refreshes")]
    return " / ".join(f"{v:.1f}" for v in spent if v is not None) or "-"


def _idle(r: Result) -> str:
    return f"{r.idle_after:.1f}" if r.idle_after is not None else f"not in {IDLE_CAP:.0f}"


HEADER = [
    "shipper", "round", "load avg at start", "lines arrived", "seconds", "lines/s",
    "own CPU-µs/line", "shipper CPU-µs/line", "collector CPU-µs/line", "dockerd CPU-µs/line",
    "ES CPU-µs/doc", "ES thread-µs/doc: indexing / merges / refreshes",
    "disk bytes/doc, one segment",
    "ES idle after last line, s", "all processes CPU-µs/line",
    "peak RSS MB shipper (/ collector)", "peak RSS MB dockerd / ES", "docs searchable after",
    "CPU stolen, %",
]  # fmt: skip
LIVE_HEADER = [*HEADER, "last line arrived, s after the printing ended"]


def median(
    results: list[Result], shipper: str, value: Callable[[Result], float | None]
) -> float | None:
    """The median of `value` over the complete runs of `shipper` that have it (None:
    none)."""
    got = (value(r) for r in results if r.shipper == shipper and r.arrived >= r.total)
    values = [v for v in got if v is not None]
    return statistics.median(values) if values else None


def ratios(results: list[Result], live: bool = False) -> list[str]:
    """logpipe against Fluent Bit and its shipper against logspout (medians of rounds);
    live, without lines/s (the containers set the pace)."""
    notes = []

    def ratio(a: str, b: str, value: Callable[[Result], float | None]) -> str:
        x, y = median(results, a, value), median(results, b, value)
        return f"**{x / y:.2f}**" if x is not None and y else "n/a"

    def es(r: Result) -> float:
        return r.per_line("elasticsearch")

    def own(r: Result) -> float:
        return r.per_line(*OWN)

    def own_dockerd(r: Result) -> float:
        return r.per_line(*OWN, "dockerd")

    if any(r.shipper == FLUENT_BIT for r in results):
        pace = "" if live else "lines/s " + ratio(LOGPIPE, FLUENT_BIT, lambda r: r.rate) + ", "
        notes.append(
            "logpipe / Fluent Bit: "
            + pace
            + "ES CPU per doc "
            + ratio(LOGPIPE, FLUENT_BIT, es)
            + ", ES indexing thread time per doc "
            + ratio(LOGPIPE, FLUENT_BIT, lambda r: r.per_doc("indexing"))
            + ", disk per doc "
            + ratio(LOGPIPE, FLUENT_BIT, lambda r: r.disk)
            + ", own CPU per line (shipper + collector / fluent-bit) "
            + ratio(LOGPIPE, FLUENT_BIT, own)
            + ", own + dockerd CPU per line "
            + ratio(LOGPIPE, FLUENT_BIT, own_dockerd)
        )
    if any(r.shipper == LOGSPOUT for r in results):
        notes.append(
            "logpipe shipper / logspout: CPU per line "
            + ratio(LOGPIPE, LOGSPOUT, lambda r: r.per_line("shipper"))
            + ", with dockerd's each "
            + ratio(LOGPIPE, LOGSPOUT, lambda r: r.per_line("shipper", "dockerd"))
            + ("" if live else ", lines/s " + ratio(LOGPIPE, LOGSPOUT, lambda r: r.rate))
        )
    return notes


def main() -> None:
    """Make the containers, run every shipper found in alternating rounds, publish."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--containers", type=_positive, default=10)
    p.add_argument("--lines", type=_positive, default=36000, help="lines each container prints")
    p.add_argument(
        "--repeat", type=_positive, default=1, help="rounds; each starts with the next shipper"
    )
    p.add_argument(
        "--peers-dir",
        help="optional directory of prebuilt peer binaries (fluent-bit, logspout, or bin/ "
        "with them); default $LOGPIPE_BENCH_PEERS; then PATH",
    )
    p.add_argument(
        "--only",
        type=_names,
        help="comma-separated shippers to run: logpipe, fluent-bit, logspout (default: every "
        "one found)",
    )
    p.add_argument(
        "--live",
        type=_above_zero,
        metavar="LINES_PER_S",
        help="instead of draining finished logs, each shipper follows idle containers that "
        "then print this many lines/s together for --seconds (what a cluster costs in steady "
        "operation); --lines is not used",
    )
    p.add_argument(
        "--seconds",
        type=_above_zero,
        help="with --live: how long the containers print (default 60)",
    )
    p.add_argument(
        "--search-every",
        type=_above_zero,
        metavar="SECONDS",
        help="with --live: count each shipper's index this often while it runs, as a "
        "dashboard that refreshes itself does (a searched index is refreshed every second; "
        "one nobody searches goes search-idle after 30 s)",
    )
    p.add_argument(
        "--existing",
        action="store_true",
        help="drain into indices that exist and have gone search-idle (a catch-up into a "
        "stream nobody is searching, as after a shipper's outage: no refresh every second; "
        "the refresh the next search makes is counted); default: into indices the first "
        "line creates, refreshed every second for their first 30 s (a first install)",
    )
    p.add_argument(
        "--collector",
        action="append",
        type=_setting,
        default=[],
        metavar="NAME=VALUE",
        help="a setting of logpipe's collector for every round (the YAML key: "
        "document_labels=, indexed_attributes=user_id,trace_id); repeat for several",
    )
    p.add_argument(
        "--warmup",
        type=_not_negative,
        metavar="ROUNDS",
        help="drains run first and not counted (each shipper once a round); default: one "
        f"when the node has indexed fewer than {WARM_DOCS:,} documents since it started (its "
        "compiler has not yet made the indexing path fast, and the first shipper would pay "
        "for it), none otherwise",
    )
    p.add_argument(
        "--kills",
        type=_not_negative,
        default=0,
        metavar="N",
        help="instead of timing the drains, kill each shipper that indexes into "
        "Elasticsearch (logpipe's shipper, Fluent Bit) with SIGKILL N times during its "
        "drain, restart it at once on its own state, and count what its index holds, "
        "line by line: missing and duplicated lines; logspout (no Elasticsearch output) is "
        "left out. Default 0: no kills, the timed drain",
    )
    logdriver.add_arguments(p)
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = p.parse_args()
    args.logs = logdriver.from_args(args)
    if args.kills and (refused := kills.refused(args)):
        p.error(refused)
    if not args.logs.default and args.only and FLUENT_BIT in args.only:
        p.error("Fluent Bit tails json-file logs that never rotate: leave out --log-driver "
                "and --log-opt, or fluent-bit from --only")  # fmt: skip
    if args.warmup and args.live is not None:
        p.error("--warmup is an option of a drain; a --live run follows idle containers")
    if args.existing and args.live is not None:
        p.error("--existing is an option of a drain; a --live run follows idle containers")
    if args.live is None and (args.seconds is not None or args.search_every is not None):
        p.error("--seconds and --search-every are options of a --live run; give --live too")
    args.seconds = args.seconds or 60.0
    found = peers.find(args.peers_dir)
    print("peers:\n" + found.describe(), file=sys.stderr)
    wanted = args.only or runnable(args.logs, args.kills)
    missing = [s for s in wanted if s in NEEDS and not found.binaries[NEEDS[s]]]
    if args.only and missing:
        p.error(f"--only names {', '.join(missing)}, which was not found (see --peers-dir)")
    shippers = [s for s in wanted if s not in missing]
    # Every collector start runs a retention pass over logpipe's streams on the node, in
    # logpipe's window: how many there were says what it cost.
    args.streams = len(services.data_streams(ALL_STREAMS))
    args.shards = services.es("GET", "/_cluster/health")["active_shards"]
    args.root_dir = str(docker.from_env().info()["DockerRootDir"])
    results, killed, mean_bytes = run_rounds(args, found, shippers)
    if args.kills:
        kills.publish(args, found.binaries, killed, mean_bytes)
    else:
        publish(args, found, results, mean_bytes, shippers)


def runnable(logs: logdriver.LogSetup, killed: int = 0) -> list[str]:
    """The shippers that can read these logs: not Fluent Bit, which tails json-file logs
    that never rotate, when they are another driver's or rotate; with kills, only those
    that index into Elasticsearch (not logspout)."""
    return [
        name
        for name in RUNS
        if (logs.default or name != FLUENT_BIT) and not (killed and name == LOGSPOUT)
    ]


_positive, _not_negative = at_least(1), at_least(0)


def _above_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value


# The collector settings the benchmark sets itself (services.start_collector).
_OWN_SETTINGS = frozenset({"es_url", "listen", "tokens", "routing"})


def _setting(text: str) -> tuple[str, str]:
    """A collector setting `name=value` by its YAML key, checked against the collector's
    settings (the value is the collector's to check when it starts)."""
    from collector.config import CollectorConfig

    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or name not in CollectorConfig.model_fields:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give NAME=VALUE, NAME a key of the collector's config "
            "(document_labels, indexed_attributes, bulk_concurrency, ...)"
        )
    if name in _OWN_SETTINGS:
        raise argparse.ArgumentTypeError(f"{name}: the benchmark sets it itself")
    return name, value


def _names(text: str) -> list[str]:
    """Shipper names as RUNS spells them, from any case and with '-' for a space."""
    known = {name.lower().replace(" ", "-"): name for name in RUNS}
    given = [n.strip().lower().replace(" ", "-") for n in text.split(",") if n.strip()]
    if not given or any(n not in known for n in given):
        raise argparse.ArgumentTypeError(f"{text!r}: each name must be one of {', '.join(known)}")
    return list(dict.fromkeys(known[n] for n in given))


def run_rounds(
    args: argparse.Namespace, found: peers.Found, shippers: list[str]
) -> tuple[list[Result], list[kills.KillResult], float]:
    """The containers once; then each round runs every shipper, starting one later
    (with --kills, drains with kills, bench.kills, and no timed results)."""
    run = services.run_id()
    folder = services.WORK / f"sidebyside-{run}"
    client = docker.from_env()
    services.install_template()
    results: list[Result] = []
    made: list[Shipper] = []
    try:
        if args.live:
            mean_bytes = live_rounds(args, found, shippers, client, run, results, made)
            return results, [], mean_bytes
        made_containers, mean_bytes = containers.finished(
            client, run, args.containers, args.lines, folder / "c", args.logs
        )
        ctx = Context(
            run, folder, made_containers, args.containers * args.lines, found.binaries,
            dict(args.collector), args.logs, args.root_dir, args.kills,
        )  # fmt: skip
        if args.kills:
            return results, kills.rounds(ctx, shippers, args.repeat, made), mean_bytes
        args.warmed = warmup_rounds(args)
        for k in range(args.warmed):
            for name in shippers:
                made.append(RUNS[name](ctx, f"{run}w{k}"))
                warm = measure(made[-1], ctx, k + 1, args.existing)
                print("warm-up, not counted:", file=sys.stderr)
                print(report.table(HEADER, [row(warm)]), file=sys.stderr)
        for k in range(args.repeat):
            for name in shippers[k % len(shippers) :] + shippers[: k % len(shippers)]:
                made.append(RUNS[name](ctx, f"{run}r{k}"))
                results.append(measure(made[-1], ctx, k + 1, args.existing))
                print(report.table(HEADER, [row(results[-1])]), file=sys.stderr)
    finally:
        for ship in made:
            ship.stop()
        containers.remove_run(client, run)
        for ship in made:
            ship.cleanup()
        for chunk in (folder / "c").glob("p*"):
            chunk.unlink()
    return results, [], mean_bytes


def warmup_rounds(args: argparse.Namespace) -> int:
    """How many uncounted rounds come first: --warmup, or one for a node that is still cold.

    On a freshly started node the first drain cost it twice the CPU per document of the
    same shipper's next one (76.6 against 38.0 µs; BENCHMARKS' history, 2026-12-05): its
    JIT compiler was still at work, and that fell on whichever shipper came first."""
    if args.warmup is not None:
        return int(args.warmup)
    return 1 if services.node_indexed() < WARM_DOCS else 0


def live_rounds(
    args: argparse.Namespace,
    found: peers.Found,
    shippers: list[str],
    client: docker.DockerClient,
    run: str,
    results: list[Result],
    made: list[Shipper],
) -> float:
    """Each shipper in turn follows a fleet of its own (so it sees no other's lines);
    the mean bytes of the fleet's lines."""
    mean_bytes = 0.0
    for k in range(args.repeat):
        for name in shippers[k % len(shippers) :] + shippers[: k % len(shippers)]:
            turn = f"{run}r{k}{len(made)}"
            fleet = containers.Fleet(
                client, turn, args.containers, services.WORK / f"live-{turn}", logs=args.logs
            )
            mean_bytes = sum(len(t) for t in fleet.lines) / len(fleet.lines)
            try:
                fleet.start()
                ctx = Context(
                    turn, fleet.folder, fleet.containers, 0, found.binaries,
                    dict(args.collector), args.logs, args.root_dir,
                )  # fmt: skip
                made.append(RUNS[name](ctx, turn))
                results.append(measure_live(made[-1], ctx, fleet, args, k + 1))
            finally:
                fleet.remove()
                shutil.rmtree(fleet.folder, ignore_errors=True)
            print(report.table(LIVE_HEADER, [row(results[-1], True)]), file=sys.stderr)
    return mean_bytes


def publish(
    args: argparse.Namespace,
    found: peers.Found,
    results: list[Result],
    mean_bytes: float,
    shippers: list[str],
) -> None:
    """The table, the ratios and how it was measured."""
    missing = [n for n, b in found.binaries.items() if b is None]
    live = args.live is not None
    notes = [
        *ratios(results, live),
        *(_live_notes if live else _drain_notes)(args, mean_bytes, shippers),
        *([] if live else [quiet_note(results)]),
    ]
    tick = os.sysconf("SC_CLK_TCK")
    lines = min((r.total for r in results if r.total), default=args.containers * args.lines)
    notes += [
        f"idle = over the last {IDLE_WINDOW:.0f} s Elasticsearch used at most max({IDLE_FLOOR} "
        f"core, 1.5 x its rate in the {BASELINE:.0f} s before the run) and no merge runs in "
        f"the run's index (at most {IDLE_CAP:.0f} s); other people's requests to the node "
        "count too",
        "own = shipper + collector for logpipe, the one process for the peers; all "
        "processes = own + dockerd + Elasticsearch; /proc counts in ticks of "
        f"{1000 / tick:.0f} ms, {1e6 / tick / max(lines, 1):.2f} µs per line here",
        "peak RSS: VmHWM of the processes the run started (and the collector); dockerd and "
        "Elasticsearch: highest VmRSS sampled every 0.25 s during the run",
        "ES thread-µs/doc = the time the node's own index stats count for the run's index "
        "alone (indexing, merges less their throttled waits, refreshes), per document: wall "
        "time of its threads, so a thread waiting inside indexing counts, and requests to "
        "other indices do not",
        "disk bytes/doc = the run's index's primaries on disk per document after the run, "
        "flushed and force-merged to one segment (what it holds once Elasticsearch's own "
        "merges have run; the merge comes after every window, so no CPU figure counts it): "
        "the live segments' size from the index's docs stats (its store stats are cached "
        "for 10 s)",
        "CPU stolen = the share of the machine's CPU time, from the shipper's start until "
        "Elasticsearch was idle, that the hypervisor gave to other machines while this one "
        "had work (/proc/stat's steal)",
        "peers: "
        + "; ".join(
            # Where it was found, not the path: the table says nothing about this machine.
            f"{n} from {found.origin[n].split(' /')[0]}" if b else f"{n} missing, rows skipped"
            for n, b in found.binaries.items()
        ),
    ]
    notes += log_notes(args.logs, results)
    if args.collector:
        chosen = ", ".join(f"`{name}={value}`" for name, value in args.collector)
        notes.append(f"logpipe's collector ran with {chosen} (beyond the defaults)")
    if missing:
        print(f"skipped (not found): {', '.join(missing)}", file=sys.stderr)
    if live:
        searched = f", searched every {args.search_every:g} s" if args.search_every else ""
        title = (
            f"Live side by side with Fluent Bit and logspout ({args.live:,.0f} lines/s"
            f"{searched}, each shipper in turn)"
        )
    else:
        title = (
            "Side by side with Fluent Bit and logspout (same containers, same node, one after "
            "the other)"
        )
    report.publish(
        title,
        LIVE_HEADER if live else HEADER,
        [row(r, live) for r in results],
        notes,
        args.append,
        section="Side by side with Fluent Bit and logspout",
    )


def log_notes(logs: logdriver.LogSetup, results: list[Result]) -> list[str]:
    """How the containers logged and logpipe's shipper read, and per logpipe round the
    files it unpacked and the gaps it reported (nothing for the default logs read the
    default way)."""
    if logs.default and not logs.through_dockerd:
        return []
    rounds = [r for r in results if r.shipper == LOGPIPE]
    notes = [logs.describe()]
    if not logs.default:
        notes.append(
            "Fluent Bit left out (it tails json-file logs that never rotate); logpipe per "
            f"round: compressed rotated files its shipper unpacked (`{logdriver.UNPACKED}`) "
            + ", ".join("?" if r.unpacked is None else str(r.unpacked) for r in rounds)
            + "; gap documents "
            + ", ".join(f"{r.gaps:,}" for r in rounds)
        )
    return notes


def quiet_note(results: list[Result]) -> str:
    """How long each drain waited for a quiet machine, and which did not get one."""
    waited = [r.quiet for r in results if r.quiet is not None]
    loud = [f"{r.shipper} round {r.round}" for r in results if r.quiet is None]
    spent = f"{min(waited):.0f}-{max(waited):.0f} s" if waited else "never quiet"
    return (
        "before each drain the machine settled: dirty pages written out (sync), then a wait "
        f"until all its processes together used at most {QUIET_CORES} core over "
        f"{QUIET_WINDOW:.0f} s (waited "
        f"{spent}"
        + (f"; not quiet within {QUIET_CAP:.0f} s before: {', '.join(loud)}" if loud else "")
        + "), so the first shipper of a run is not charged for the containers' writing"
    )


def _drain_notes(args: argparse.Namespace, mean_bytes: float, shippers: list[str]) -> list[str]:
    warmed = getattr(args, "warmed", 0)
    return [
        *(
            [
                f"before the rounds, {warmed} warm-up round(s) of every shipper, not counted ("
                + (
                    f"--warmup {warmed}"
                    if args.warmup is not None
                    else f"the node had indexed fewer than {WARM_DOCS:,} documents since it "
                    "started: its compiler was still at work"
                )
                + ")"
            ]
            if warmed
            else []
        ),
        f"{args.containers} containers x {args.lines:,} corpus lines (mean {mean_bytes:.0f} "
        "bytes), all printed into "
        + (
            "dockerd's json-file logs"
            if getattr(args, "logs", logdriver.DEFAULT).default
            else "their logs (each container then wrote down that its printing ended)"
        )
        + " before any shipper starts; the "
        "containers then sleep, so each shipper reads the same finished logs from their "
        f"start; {_order(args, shippers)}",
        "seconds = from just before the shipper's process starts (logpipe's collector is "
        "already up) until Elasticsearch's indexing stats of its index (primaries' "
        f"index_total, no refresh forced) reach every line (polled every {ES_POLL} s), or "
        f"the sink counted every line (logspout; every {SINK_POLL} s)",
        "CPU = utime + stime from /proc: the shipper's own process from its start (for "
        "logpipe's shipper, Python's imports too, which weigh on small runs), the collector "
        "and dockerd from the start, until the last line; Elasticsearch from the start until "
        "idle again (merges included)",
        "Fluent Bit reads the json-file logs itself (no dockerd work for it) and indexes the "
        "raw line (log, stream, time; dynamic mapping); logpipe reads the backlog from the "
        "json-file logs too where it can see them (since `390bd5d`; before, through dockerd), "
        "then the log's end through dockerd (from the files too since `dbcb4b4`), and indexes "
        "a parsed ECS document; logspout "
        "reads through dockerd and ships raw lines to a counting TCP sink (it has no "
        "Elasticsearch output)",
        _indices(args),
        *_streams(args),
    ]


def _streams(args: argparse.Namespace) -> list[str]:
    streams = getattr(args, "streams", None)
    if streams is None:
        return []
    return [
        f"the node held {args.shards:,} shards (every index's, anyone's) when the run "
        "began: with thousands, Elasticsearch spends more on every document for every "
        "shipper (every so many bytes of documents indexed it looks at each shard's "
        "indexing buffer, and each new field rewrites a larger cluster state); "
        "`.ci/services reset` empties the node",
        f"the node held {streams:,} of logpipe's data streams when the run began: each "
        "logpipe round starts a collector, whose first retention pass lists them all (and "
        "until `6a62f1c` asked Elasticsearch to roll each one over); the round's window "
        "opens once its `logpipe_retention_runs_total` says that pass ended (in runs "
        "before that metric, the pass ran inside the window)",
    ]


def _indices(args: argparse.Namespace) -> str:
    if args.existing:
        return (
            "--existing: each index (logpipe's data stream, Fluent Bit's index) was made "
            "empty before its shipper started and left until Elasticsearch found it "
            "search-idle (nobody searched it for 30 s), as a stream is when a shipper catches "
            "up after an outage: no refresh every second during the drain; Elasticsearch's "
            "CPU includes a refresh of the index once every line arrived (what the next "
            "search makes), then its merges"
        )
    return (
        "each index is made by its shipper's first line, so Elasticsearch refreshes it "
        "every second through the drain (an index is search-active for its first 30 s), "
        "as after a first install"
    )


def _live_notes(args: argparse.Namespace, mean_bytes: float, shippers: list[str]) -> list[str]:
    return [
        f"live: for each shipper, {args.containers} busybox containers of its own start idle; "
        f"the shipper starts and gets {ATTACH:.0f} s to attach; then the containers print "
        f"corpus lines (mean {mean_bytes:.0f} bytes) at {args.live:,.0f} lines/s together for "
        f"{args.seconds:.0f} s, a chunk every {containers.TICK} s; {_order(args, shippers)}; "
        + (
            f"each shipper's index counted every {args.search_every:g} s meanwhile (searched: "
            "Elasticsearch refreshes it every second)"
            if args.search_every
            else "nobody searches the indices (Elasticsearch stops refreshing an index 30 s "
            "after its last search, or its creation)"
        ),
        "seconds = from the first printed line until Elasticsearch's indexing stats of the "
        "shipper's index (primaries' index_total, no refresh forced) reach every printed "
        f"line (polled every {ES_POLL} s), or the sink counted every line (logspout; every "
        f"{SINK_POLL} s): lines/s is the containers' pace",
        "CPU = utime + stime from /proc of every process from the first printed line (the "
        "shippers' start left out) until the last line arrived; Elasticsearch until idle "
        "again (merges included)",
        "dockerd writes every container's json-file log whoever reads it (Fluent Bit's "
        "dockerd column is that alone: it tails the files itself) and serves each follower "
        "through the Docker Engine API (logspout's column: writing and serving); logpipe "
        "follows the json-file logs too where it can see them (since `dbcb4b4`; before, "
        "through dockerd, whose column then held the serving too); Fluent Bit indexes the "
        "raw line (log, stream, time; dynamic mapping), logpipe a parsed ECS document; "
        "logspout ships raw lines to a counting TCP sink (it has no Elasticsearch output)",
    ]


def _order(args: argparse.Namespace, shippers: list[str]) -> str:
    return (
        f"{args.repeat} round(s), order {' -> '.join(shippers)}, each round starting with the "
        "next one"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
