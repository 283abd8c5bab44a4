"""Where Elasticsearch's CPU goes while a command runs: a Java Flight Recorder profile of
the node at ES_URL, its samples counted by what the node was doing (parsing documents,
analysing text, the `_id` lookup, the translog, flushes, merges, ...).

    python -m bench.es_profile [--label NAME] [--keep DIR] -- COMMAND [ARGS...]
    python -m bench.es_profile --read A.jfr [B.jfr ...]

The first form records while COMMAND runs (say `python -m bench.sidebyside --only
logpipe`) and prints the table; the second prints the tables of recordings kept before,
side by side, a column each. The node must run on this machine under a JDK with `jcmd`
and `jfr` beside its `java` (or name one with `--jdk`); the recording is started as the
node's own user (this process must be that user or root). JFR samples threads running
Java code every 10-20 ms: sample counts compare like CPU time, and two recordings of the
same number of documents compare per document. Each sample counts once, in the first
bucket of the table whose marker one of its frames holds (a date parsed while the `_id`
is looked up counts as the lookup). Everything else on the node in those minutes
(others' requests, the command's own searches) counts too, mostly under "other".
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import report, services, summary

# (bucket, markers): a sample goes to the first bucket one of whose markers is in one of
# its frames' `class.method` names.
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("_id lookup (a given id: is it indexed?)", ("resolveDocVersion", "VersionsAndSeqNoResolver")),
    ("version map (ids in memory until refresh)", ("LiveVersionMap",)),
    ("translog (each operation written and synced)", (".translog.",)),
    ("document parsing (JSON to fields, mappers)", ("DocumentParser.", "DocumentMapper.parse")),
    ("text analysis and its terms", ("invertTokenStream",)),
    ("keyword and other single terms", ("invertTerm",)),
    ("doc values", ("indexDocValue",)),
    ("points (dates, numbers, ips)", ("indexPoint", "PointValuesWriter")),
    ("stored fields (_source, _id)", ("StoredFieldsConsumer", "StoredFieldsWriter")),
    ("other per-field indexing", ("IndexingChain.process",)),
    ("flushing segments", ("DocumentsWriterPerThread.flush", "DocumentsWriter.doFlush")),
    ("refresh", ("ReferenceManager", "InternalEngine.refresh")),
    ("merges", ("SegmentMerger", "MergeScheduler", "IndexWriter.merge")),
    ("bulk request handling", ("BulkRequestParser", "Bulk", "bulk.")),
    ("HTTP and transport", ("netty", ".http.", ".transport.")),
]
OTHER = "other"
_FRAME = re.compile(r"^\s+([\w$.<>/]+)\(.*\)(?:\s+line:.*)?$")
_POOL = re.compile(r'sampledThread = "elasticsearch\[[^\]]*\]\[([^\]\[]+)\]')
_SAMPLE = "jdk.ExecutionSample"


@dataclass
class Profile:
    """One recording's samples, counted per bucket and per thread pool."""

    name: str
    buckets: Counter[str] = field(default_factory=Counter)
    pools: Counter[str] = field(default_factory=Counter)

    @property
    def samples(self) -> int:
        return sum(self.buckets.values())


def bucket(frames: list[str]) -> str:
    """The bucket of one sample, from its frames (leaf first)."""
    for name, markers in BUCKETS:
        if any(marker in frame for frame in frames for marker in markers):
            return name
    return OTHER


def pool(line: str) -> str | None:
    """The thread pool of a `sampledThread` line (`write`, `refresh`, a merge thread)."""
    if "Lucene Merge Thread" in line:
        return "merge"
    match = _POOL.search(line)
    return match.group(1) if match else None


def parse(text: str, name: str) -> Profile:
    """The samples of `jfr print --events jdk.ExecutionSample` output."""
    out = Profile(name)
    frames: list[str] | None = None
    thread = OTHER

    def close() -> None:
        if frames is not None:
            out.buckets[bucket(frames)] += 1
            out.pools[thread] += 1

    for line in text.splitlines():
        if line.startswith(_SAMPLE):
            close()
            frames, thread = [], OTHER
        elif frames is not None and "sampledThread" in line:
            thread = pool(line) or "other threads"
        elif frames is not None and (match := _FRAME.match(line)):
            frames.append(match.group(1))
    close()
    return out


@dataclass(frozen=True)
class Node:
    """The node's process: its pid, its user and the JDK tools beside its java."""

    pid: int
    uid: int
    gid: int
    jcmd: Path
    jfr: Path


def node(jdk: str | None) -> Node:
    """The node at ES_URL, on this machine; a clear error when it cannot be recorded."""
    try:
        [pid] = services.es_pids()
    except ValueError:
        sys.exit(f"es_profile: no single Elasticsearch node answers at {services.ES_URL}")
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        sys.exit(f"es_profile: the node at {services.ES_URL} (pid {pid}) is not on this machine")
    home = Path(jdk) if jdk else Path(os.readlink(proc / "exe")).parents[1]
    tools = [home / "bin" / "jcmd", home / "bin" / "jfr"]
    missing = [str(t) for t in tools if not os.access(t, os.X_OK)]
    if missing:
        sys.exit(f"es_profile: {', '.join(missing)} missing: name a full JDK with --jdk DIR")
    st = proc.stat()
    if os.geteuid() not in (0, st.st_uid):
        sys.exit(f"es_profile: run as root or as the node's user (uid {st.st_uid})")
    return Node(pid, st.st_uid, st.st_gid, tools[0], tools[1])


def jcmd(n: Node, *args: str) -> None:
    """One diagnostic command to the node, as its own user (the attach API wants that)."""
    done = subprocess.run(
        [str(n.jcmd), str(n.pid), *args], user=n.uid, group=n.gid, capture_output=True, text=True
    )
    if done.returncode != 0 or "Could not" in done.stdout:
        sys.exit(f"es_profile: jcmd {' '.join(args)}: {(done.stdout + done.stderr).strip()}")


def record(n: Node, command: list[str], folder: Path, label: str) -> tuple[Path, int]:
    """Record while `command` runs; the recording and the command's exit status."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(folder, n.uid, n.gid)
    path = folder / f"{label}.jfr"
    name = f"logpipe-bench-{services.run_id()}"
    jcmd(n, "JFR.start", f"name={name}", "settings=profile", f"filename={path}")
    try:
        status = subprocess.run(command).returncode
    finally:
        jcmd(n, "JFR.stop", f"name={name}")
    return path, status


def read(jfr: Path, path: Path, name: str) -> Profile:
    """The samples of one recording."""
    done = subprocess.run(
        [str(jfr), "print", "--events", _SAMPLE, "--stack-depth", "400", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"es_profile: jfr print {path}: {done.stderr.strip()}")
    return parse(done.stdout, name)


def tables(profiles: list[Profile]) -> str:
    """Buckets, then thread pools: samples and share of each recording's samples."""
    header = ["what the node did", *(p.name for p in profiles)]
    names = [name for name, _ in BUCKETS] + [OTHER]
    rows = [[name, *(_cell(p.buckets[name], p.samples) for p in profiles)] for name in names]
    rows.append(["**all samples**", *(f"**{p.samples:,}**" for p in profiles)])
    pools = sorted(
        {k for p in profiles for k in p.pools}, key=lambda k: -sum(p.pools[k] for p in profiles)
    )
    by_pool = [
        [f"thread pool `{k}`", *(_cell(p.pools[k], p.samples) for p in profiles)] for k in pools
    ]
    return report.table(header, rows) + "\n\n" + report.table(["thread", *header[1:]], by_pool)


def _cell(count: int, total: int) -> str:
    return f"{count:,} ({100 * count / total:.1f}%)" if total else "0"


def main() -> None:
    p = argparse.ArgumentParser(
        description=summary(__doc__),
        usage="%(prog)s [--label NAME] [--keep DIR] [--jdk DIR] -- COMMAND ... | --read A.jfr ...",
    )
    p.add_argument("--label", default="recorded", help="the column's name (and the file's)")
    p.add_argument("--keep", help="folder to keep the recording in (default: a temporary one)")
    p.add_argument("--jdk", help="a JDK with jcmd and jfr, when the node's own lacks them")
    p.add_argument("--read", nargs="+", metavar="JFR", help="print recordings kept before")
    p.add_argument("command", nargs="*", help="what to run while recording (after --)")
    args = p.parse_args()
    if bool(args.read) == bool(args.command):
        p.error("give either a command to record (after --) or --read with recordings")
    n = node(args.jdk)
    if args.read:
        missing = [f for f in args.read if not Path(f).is_file()]
        if missing:
            p.error(f"no such recording: {', '.join(missing)}")
        print(tables([read(n.jfr, Path(f), Path(f).stem) for f in args.read]))
        return
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="es-profile-"))
    path, status = record(n, args.command, folder, args.label)
    print(tables([read(n.jfr, path, args.label)]))
    print(f"\nrecording: {path}" + ("" if args.keep else " (temporary)"), file=sys.stderr)
    if status != 0:
        sys.exit(f"es_profile: the command exited with status {status}")


if __name__ == "__main__":
    main()
