"""Profile the collector or the shipper under load with py-spy, and print the hot spots.

The process under test runs under ``py-spy record`` (attaching to a running pid is
refused on this machine, launching under py-spy works) while the same load as the
benchmarks drives it: the load generator for the collector, busybox containers at a
fixed rate for the shipper. The raw collapsed stacks are kept; the summary lists the
functions with the most samples on top of the stack (self) and anywhere in it (total).
Usage:
    python -m bench.profile collector [--seconds 20] [--batch-lines 5000]
    python -m bench.profile shipper [--containers 10] [--rate 3000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path

from bench import collector_load, containers, pipeline, services, summary

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def py_spy(out: Path) -> list[str]:
    """The py-spy command line that samples a child at 200 Hz into collapsed stacks."""
    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is missing: run `bash bench/setup.sh` first")
    return ["py-spy", "record", "--rate", "200", "--format", "raw", "--output", str(out), "--"]


def summarize(raw: Path, top: int) -> str:
    """Self and total sample shares per function, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        names = [_short(frame) for frame in stack.split(";")]
        own[names[-1]] += n
        for name in set(names):
            total[name] += n
    lines = [f"{samples} samples", "", "| self % | function |", "|---|---|"]
    lines += [f"| {n / samples * 100:.1f} | `{name}` |" for name, n in own.most_common(top)]
    lines += ["", "| total % | function |", "|---|---|"]
    lines += [f"| {n / samples * 100:.1f} | `{name}` |" for name, n in total.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "python3.11/", "/src-"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['name']} ({path.split('/', 1)[-1] if '/src-' in frame else path})"


def profile_collector(args: argparse.Namespace, out: Path) -> None:
    """The collector under the load generator."""
    run = services.run_id()
    token = uuid.uuid4().hex
    port = services.free_port()
    folder = services.WORK / f"profile-{run}"
    services.install_template()
    collector = services.start_collector(folder, port, token, f"bench.prof{run}", wrap=py_spy(out))
    try:
        collector_load.warm_up(port, token, run)
        load = collector_load.options(run, seconds=args.seconds, batch_lines=args.batch_lines)
        w = collector_load.load(collector, port, token, load)
        print(f"collector took {w.indexed / w.elapsed:,.0f} docs/s under py-spy", file=sys.stderr)
    finally:
        collector.proc.send_signal(signal.SIGINT)
        collector.proc.wait(60)
        services.free_disk(f"logs-bench.prof{run}*")


def profile_shipper(args: argparse.Namespace, out: Path) -> None:
    """The shipper following busybox containers at a fixed rate."""
    opts = argparse.Namespace(
        containers=args.containers,
        step_seconds=args.seconds,
        peers=False,
        read_ceiling=False,
        shipper_env=[],
        collector_env=[],
        uvloop=False,
        tick=args.tick,
    )
    bench = pipeline.Bench(opts)
    bench.shipper_wrap = py_spy(out)
    try:
        bench.start()
        step = bench.step(args.rate)
        print(f"printed {step.printed:,.0f} lines/s, indexed {step.indexed:,.0f}", file=sys.stderr)
    finally:
        bench.shipper.proc.send_signal(signal.SIGINT)
        bench.shipper.proc.wait(60)
        bench.stop()


def main() -> None:
    """Profile one process and print (and keep) its hot spots."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("process", choices=["collector", "shipper"])
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--containers", type=int, default=10)
    p.add_argument("--rate", type=float, default=3000, help="shipper: total lines/s")
    p.add_argument(
        "--tick",
        type=float,
        default=containers.TICK,
        help="shipper: seconds between two prints of a container (0.01 trickles)",
    )
    p.add_argument("--batch-lines", type=int, default=5000, help="collector: lines per wire batch")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args()
    out = services.WORK / f"profile-{args.process}-{services.run_id()}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.process == "collector":
        profile_collector(args, out)
    else:
        profile_shipper(args, out)
    print(f"raw stacks: {out}")
    print(summarize(out, args.top))


if __name__ == "__main__":
    main()
