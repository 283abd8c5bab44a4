"""Micro-benchmark of collector.parse: microseconds per line for each corpus kind.

Not a test: it asserts nothing and times one run on this machine, in CPU time
(process time), so that other load on a shared machine distorts it less. Usage:
    python -m bench.parse_bench [--seconds 0.3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench import summary
from collector.parse import parse

CORPUS = Path(__file__).parents[1] / "tests" / "corpus"


def records(path: Path) -> list[str]:
    """The records of one corpus file (JSON strings in .jsonl files)."""
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    return [json.loads(line) for line in lines] if path.suffix == ".jsonl" else lines


def per_line_us(lines: list[str], seconds: float) -> float:
    """Best-of-5 mean CPU time of parse() per line, in microseconds."""
    rounds = 1
    while True:  # grow the round count until one batch takes a measurable time
        start = time.process_time()
        for _ in range(rounds):
            for line in lines:
                parse(line)
        elapsed = time.process_time() - start
        if elapsed >= seconds / 5:
            break
        rounds *= 2
    best = elapsed
    for _ in range(4):
        start = time.process_time()
        for _ in range(rounds):
            for line in lines:
                parse(line)
        best = min(best, time.process_time() - start)
    return best / (rounds * len(lines)) * 1e6


def main() -> None:
    """Print one row per corpus file and a row for all lines together."""
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--seconds", type=float, default=0.3, help="time budget per kind")
    args = parser.parse_args()
    everything: list[str] = []
    print(f"{'kind':<22} {'lines':>5} {'us/line':>8}")
    for path in sorted(CORPUS.glob("*.log")) + sorted(CORPUS.glob("*.jsonl")):
        lines = records(path)
        everything += lines
        print(f"{path.stem:<22} {len(lines):>5} {per_line_us(lines, args.seconds):>8.2f}")
    print(f"{'(all)':<22} {len(everything):>5} {per_line_us(everything, args.seconds):>8.2f}")


if __name__ == "__main__":
    main()
