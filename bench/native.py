"""The collector's decode + encode in process, with the compiled hot path and without.

The same 5000-line corpus batch from 20 sources as bench.hotpath, decoded and encoded
for `_bulk` (`batch.decode` then `bulk.encode_all`) the native way and the Python way,
in alternation; prints CPU-µs per record (process time, best and median of the rounds)
and checks first that both ways give the same `_bulk` bytes. Usage:
    python -m bench.native [--rounds 7] [--batch-lines 5000] [--append]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time

from bench import corpus, documents, report, summary
from collector import batch, native
from collector.bulk import encode_all
from collector.enrich import Context

NOW = "2026-12-02T00:00:00.000Z"


def main() -> None:
    """Time both ways in alternation and print (or append) the table."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--batch-lines", type=int, default=5000)
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = p.parse_args()
    module = native.MODULE
    if module is None:
        raise SystemExit(f"{native.MODULE_NAME} is not installed (or {native.ENV}=0)")
    lines = corpus.lines(args.batch_lines)
    metas = documents.containers(20, "nat")
    body = next(documents.wire_batches(lines, metas, "bench-native", args.batch_lines, 1))
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    ctx = Context(dataset="bench.native")

    def run() -> tuple[bytes, int, int]:
        decoded = batch.decode(body, ctx, NOW)
        encoded, _ = encode_all(decoded.docs)
        made = sum(1 for doc in decoded.docs if doc.encoded is not None)
        return b"".join(b for _, b in encoded), len(decoded.docs), made

    times: dict[str, list[float]] = {"python": [], "native": []}
    outputs: dict[str, bytes] = {}
    made = 0
    for _ in range(args.rounds):
        for way, chosen in (("python", None), ("native", module)):
            native.MODULE = chosen
            began = time.process_time()
            out, count, made_now = run()
            times[way].append((time.process_time() - began) / count * 1e6)
            outputs[way] = out
            if chosen is not None:
                made = made_now
    native.MODULE = module
    if outputs["python"] != outputs["native"]:
        raise SystemExit("the two ways gave different _bulk bytes")
    rows = [[way, f"{min(us):.2f}", f"{statistics.median(us):.2f}"] for way, us in times.items()]
    ratio = min(times["python"]) / min(times["native"])
    report.publish(
        "Collector decode + encode in process, native and Python (CPU-µs per record)",
        ["path", "best", "median"],
        rows,
        [f"{args.batch_lines}-line corpus batch, 20 sources, {args.rounds} rounds in "
         f"alternation; {made} of {args.batch_lines} documents made natively; identical "
         f"_bulk bytes; best python/native {ratio:.1f}x (bench/native.py)"],
        args.append,
    )  # fmt: skip


if __name__ == "__main__":
    main()
