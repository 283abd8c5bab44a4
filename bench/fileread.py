"""Micro-benchmark of reading a container's log files, in process: CPU µs per line.

Corpus lines are written as dockerd's ``json-file`` and ``local`` drivers write them (one
JSON object a line; a length, a protobuf LogEntry, the length again), then read as the
backlog and the files' follow read them: in chunks of the backlog's size, each file
ended, then the log, by the Python readers (shipper/logfiles/jsonfile.py ``FileLines``,
localfile.py ``LocalLines``) and by the compiled ones (the extension's ``FileReader``
and ``LocalReader``, when installed). Timed: the reading into whole lines alone, then
the same with the lines numbered and queued as the backlog does, the queue drained as
the batcher would (bench/readpath.py's follower; the compiled reader's lines are
numbered compiled, the Python reader's in Python). CPU time (process time), best of
`--tries`. Not a test: it asserts nothing.
Usage:
    python -m bench.fileread [--lines 100000] [--tries 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

import orjson

from bench import at_least, corpus, readpath, summary
from collector.runtime import loop_factory, tune_gc, tune_malloc
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
    reader = make()
    got = 0
    started = time.process_time()
    for chunk in _chunks(data):
        got += len(reader.feed(chunk))
    got += len(reader.end_file())
    got += len(reader.finish())
    return time.process_time() - started, got


def _chunks(data: bytes) -> list[bytes]:
    return [data[at : at + CHUNK] for at in range(0, len(data), CHUNK)]


async def numbered_run(
    make: Callable[[], native.FileLinesReader], data: bytes, lines: int
) -> tuple[float, int]:
    """CPU seconds to read `data` as the backlog does: in CHUNK pieces into lines,
    numbered (compiled for the compiled reader's lines, in Python for the Python
    reader's) and queued, the queue drained as the batcher would; and the records."""
    follower, inbox = readpath.bench_follower()
    numbering = follower._numbering
    numbering.restart(check_start=True, audit=False)
    reader = make()
    started = time.process_time()
    drain = asyncio.create_task(readpath.drain_records(inbox, lines))
    for chunk in _chunks(data):
        await numbering.emit(reader.feed(chunk))
    await numbering.emit(reader.end_file())
    await numbering.emit(reader.finish())
    await drain
    return time.process_time() - started, follower.progress.stats.lines


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
    print(f"CPU µs per line, best of {args.tries}:")
    print("| driver | reader | file MB | read into lines | read, numbered, queued |")
    print("|---|---|---|---|---|")
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        for driver, path, make in sorted(readers, key=lambda r: r[0]):
            data = logs[driver]
            read = [one_run(make, data) for _ in range(args.tries)]
            queued = [runner.run(numbered_run(make, data, args.lines)) for _ in range(args.tries)]
            for _, got in read + queued:
                if got != args.lines:
                    raise SystemExit(f"{driver} {path}: {got} lines read, not {args.lines}")
            cells = [
                f"{min(cpu for cpu, _ in runs) / args.lines * 1e6:.2f}" for runs in (read, queued)
            ]
            print(f"| {driver} | {path} | {len(data) / 1e6:.1f} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
