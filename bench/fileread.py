"""Micro-benchmark of reading a container's log files, in process: CPU µs per line.

Corpus lines are written as dockerd's ``json-file`` and ``local`` drivers write them (one
JSON object a line; a length, a protobuf LogEntry, the length again), then read as the
backlog and the files' follow read them: in chunks of the backlog's size, each file
ended, then the log, by the Python readers (shipper/logfiles/jsonfile.py ``FileLines``,
localfile.py ``LocalLines``) and by the compiled ones (the extension's ``FileReader``
and ``LocalReader``, when installed). What is timed is the reading into whole lines,
not their numbering (the compiled reader's lines go to the compiled numbering, the
Python reader's to Python's). CPU time (process time), best of `--tries`. Not a test:
it asserts nothing.
Usage:
    python -m bench.fileread [--lines 100000] [--tries 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson

from bench import at_least, corpus, summary
from collector.runtime import tune_gc, tune_malloc
from shipper import native
from shipper.follow.backlog import CHUNK
from shipper.logfiles import jsonfile, localfile

MAX_LINE = 1 << 20
START_NS = 1_796_000_000_000_000_000  # 2026-11-29


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def local_log(lines: list[str]) -> bytes:
    """The lines as the ``local`` driver writes them: source, time_nano and line (its
    newline left out), each message between two copies of its length."""
    out = bytearray()
    for i, line in enumerate(lines):
        source = b"stdout" if i % 10 else b"stderr"
        text = line.encode()
        msg = (
            b"\x0a" + _varint(len(source)) + source
            + b"\x10" + _varint(START_NS + i * 1000)
            + b"\x1a" + _varint(len(text)) + text
        )  # fmt: skip
        size = len(msg).to_bytes(4, "big")
        out += size + msg + size
    return bytes(out)


def json_log(lines: list[str]) -> bytes:
    """The lines as the ``json-file`` driver writes them."""
    out = bytearray()
    for i, line in enumerate(lines):
        secs, frac = divmod(START_NS + i * 1000, 1_000_000_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"
        entry = {"log": line + "\n", "stream": "stdout" if i % 10 else "stderr", "time": stamp}
        out += orjson.dumps(entry) + b"\n"
    return bytes(out)


def one_run(make: Callable[[], native.FileLinesReader], data: bytes) -> tuple[float, int]:
    """CPU seconds to read `data` in CHUNK pieces into lines, and how many lines."""
    chunks = [data[at : at + CHUNK] for at in range(0, len(data), CHUNK)]
    reader = make()
    got = 0
    started = time.process_time()
    for chunk in chunks:
        got += len(reader.feed(chunk))
    got += len(reader.end_file())
    got += len(reader.finish())
    return time.process_time() - started, got


def main() -> None:
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--lines", type=at_least(1), default=100_000)
    parser.add_argument("--tries", type=at_least(1), default=5)
    args = parser.parse_args()
    tune_gc()
    tune_malloc()
    lines = corpus.lines(args.lines)
    logs = {"json-file": json_log(lines), "local": local_log(lines)}
    readers: list[tuple[str, str, Callable[[], native.FileLinesReader]]] = [
        ("json-file", "Python", lambda: jsonfile.FileLines(MAX_LINE, tty=False)),
        ("local", "Python", lambda: localfile.LocalLines(MAX_LINE, tty=False)),
    ]
    if native.MODULE is not None:
        readers += [
            ("json-file", "compiled", lambda: native.file_reader(MAX_LINE, tty=False)),
            ("local", "compiled", lambda: native.local_reader(MAX_LINE, tty=False)),
        ]
    print(f"compiled reading path: {native.describe()}; {args.lines} corpus lines")
    print(f"| driver | reader | file MB | CPU µs per line (best of {args.tries}) |")
    print("|---|---|---|---|")
    for driver, path, make in sorted(readers, key=lambda r: r[0]):
        runs = [one_run(make, logs[driver]) for _ in range(args.tries)]
        if any(got != args.lines for _, got in runs):
            raise SystemExit(f"{driver} {path}: {runs[0][1]} lines read, not {args.lines}")
        best = min(cpu for cpu, _ in runs)
        size = len(logs[driver]) / 1e6
        print(f"| {driver} | {path} | {size:.1f} | {best / args.lines * 1e6:.2f} |")


if __name__ == "__main__":
    main()
