"""bench.sidebyside --kills N: the same finished containers drained by each shipper that
indexes into Elasticsearch (logpipe, Fluent Bit), each killed with SIGKILL N times during
its drain and restarted at once on its own state; then what arrived, counted exactly.

A kill comes when Elasticsearch's indexing stats of the shipper's index (primaries'
``index_total``, what the harness can see without a refresh) pass k/(N+1) of the lines,
k = 1..N. The restart is the same command on the same state: logpipe's shipper on its
``LOGPIPE_STATE_DIR`` (its collector keeps running, as on a host where only the shipper
dies), Fluent Bit on the ``DB`` position file its config names. The drain has ended once
every kill was made and the index took nothing for ``QUIET`` seconds.

Each line is told apart by its container, its stream and its Docker timestamp in
nanoseconds (``Key``): the expected keys are read from the containers' json-file logs,
each document's from its index (logpipe: ``container.id``, ``stream``, ``@timestamp``;
Fluent Bit: the container id in its tag, which ``Include_Tag_Key`` adds in this mode
alone, ``stream`` and the ``time`` it keeps). Every document is read (a point in time,
paged), none estimated.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docker.models.containers import Container

from bench import peers, procstat, report, services
from bench.containers import container_id
from bench.shippers import FLUENT_BIT, LOGPIPE, LOGSPOUT, RUNS, Context, Shipper

# Seconds the index must take nothing before the drain counts as ended: longer than a
# restart (logpipe's shipper: its imports and a resume, 1-2 s) and than Fluent Bit's
# first two retries of a flush that failed (its scheduler waits 5-10 s, then up to 20 s).
QUIET = 30.0
PAGE = 10_000  # documents per page read back

Key = tuple[str, str, int]  # container id, stream, Docker timestamp in ns
# The document fields each shipper's key comes from (what is read back).
FIELDS = {
    LOGPIPE: ["@timestamp", "container.id", "stream", "event.kind", "event.action"],
    FLUENT_BIT: ["time", "stream", "tag"],
}
TAG_KEY = "tag"  # the field Fluent Bit's Include_Tag_Key writes the tag into
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


def schedule(total: int, kills: int) -> list[int]:
    """The indexed counts at which the kills come: k/(kills+1) of `total`, k = 1..kills."""
    return [total * k // (kills + 1) for k in range(1, kills + 1)]


def stamp_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 UTC time (`Z`), with up to nine
    fractional digits (dockerd's json-file drops trailing zeros; logpipe writes nine)."""
    if not text.endswith("Z") or len(text) < 20 or text[10] != "T":
        raise ValueError(f"{text!r} is not an RFC 3339 UTC time")
    whole, _, fraction = text[:-1].partition(".")
    if len(fraction) > 9 or not (fraction.isdigit() or fraction == ""):
        raise ValueError(f"{text!r}: more than nine fractional digits or not digits")
    seconds = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


@dataclass(frozen=True)
class Tally:
    """What one index holds against the lines the containers printed."""

    expected: int  # lines printed
    documents: int  # documents read back (gap documents left out)
    distinct: int  # distinct lines among them
    missing: int  # lines printed and in no document
    duplicated: int  # lines in more documents than they were printed
    extra: int  # documents beyond one per line printed
    unexpected: int  # documents whose key no printed line has (none unless keys are wrong)
    shared: int  # printed lines whose key another printed line has too


def tally(expected: Iterable[Key], found: Iterable[Key]) -> Tally:
    """Missing and duplicated lines: `expected` and `found` compared key by key, each as
    many times as it occurs (lines sharing a key count as that many lines)."""
    want, got = Counter(expected), Counter(found)
    return Tally(
        expected=sum(want.values()),
        documents=sum(got.values()),
        distinct=sum(1 for k in got if k in want),
        missing=sum(max(n - got[k], 0) for k, n in want.items()),
        duplicated=sum(1 for k, n in got.items() if k in want and n > want[k]),
        extra=sum(max(n - want[k], 0) for k, n in got.items() if k in want),
        unexpected=sum(n for k, n in got.items() if k not in want),
        shared=sum(n for n in want.values() if n > 1),
    )


def printed(made: list[Container]) -> Iterator[Key]:
    """The key of every line in the containers' json-file logs."""
    for c in made:
        with Path(str(c.attrs["LogPath"])).open("rb") as log:
            for line in log:
                entry = json.loads(line)
                yield container_id(c), entry["stream"], stamp_ns(entry["time"])


def _field(source: dict[str, Any], dotted: str) -> Any:
    """A field of a document's source, whether written with dotted keys or nested."""
    if dotted in source:
        return source[dotted]
    value: Any = source
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def key_of(shipper: str, source: dict[str, Any]) -> Key | str:
    """The line a document holds, or, for a document of logpipe's that holds none (a
    Docker lifecycle event, a gap: `event.kind` is `event`), its `event.action`."""
    if shipper == LOGPIPE:
        if _field(source, "event.kind") == "event":
            return str(_field(source, "event.action"))
        if "stream" not in source:
            raise ValueError(f"neither a line nor an event: {source!r}")
        return _field(source, "container.id"), source["stream"], stamp_ns(source["@timestamp"])
    found = _CONTAINER_ID.search(str(source.get(TAG_KEY, "")))
    if found is None:
        raise ValueError(f"no container id in the tag of {source!r}")
    return found.group(), source["stream"], stamp_ns(source["time"])


def sources(index: str, fields: list[str]) -> Iterator[dict[str, Any]]:
    """The `fields` of every document in `index`, paged through a point in time (scrolls
    share the node's open-context limit with everyone else's)."""
    services.refresh(index)
    pit = services.es("POST", f"/{index}/_pit?keep_alive=2m")["id"]
    after: list[Any] | None = None
    try:
        while True:
            body: dict[str, Any] = {
                "pit": {"id": pit, "keep_alive": "2m"},
                "size": PAGE,
                "sort": [{"_shard_doc": "asc"}],
                "_source": fields,
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            page = services.es("POST", "/_search", body, timeout=300)
            if page["_shards"]["failed"]:
                raise RuntimeError(f"reading {index} back failed: {page['_shards']}")
            hits = page["hits"]["hits"]
            if not hits:
                return
            yield from (hit["_source"] for hit in hits)
            after = hits[-1]["sort"]
    finally:
        services.es("DELETE", "/_pit", {"id": pit})


@dataclass
class KillResult:
    """One shipper's drain with kills."""

    shipper: str
    round: int
    kills: int
    killed_at: list[int] = field(default_factory=list)  # indexed count at each kill
    seconds: float = 0.0  # from its start until the last document was indexed
    ended: str = ""  # why the drain was taken as ended
    # logpipe's documents that hold no line, by event.action (a gap: lines it reported
    # lost; a Docker lifecycle event)
    events: Counter[str] = field(default_factory=Counter)
    sent_again: int | None = None  # batches sent again and looked up (None: not said)
    counted: Tally | None = None


def drain(ship: Shipper, total: int, kills: int, round_: int) -> KillResult:
    """The shipper drains the containers, killed (SIGKILL) when its index passes each
    count of `schedule` and restarted at once on its state, until the index took nothing
    for QUIET seconds (or a process died that was not killed, or the time limit passed).
    An index that stops growing short of a kill's count ends the drain too: the kills
    not made are said."""
    out = KillResult(ship.name, round_, kills)
    plan = schedule(total, kills)
    ship.prepare()
    began = time.monotonic()
    own = ship.launch()
    limit = began + max(600.0, total / 200)
    last, changed = 0, began
    try:
        while (now := time.monotonic()) < limit:
            arrived = ship.arrived()
            if arrived != last:
                last, changed = arrived, now
            if len(out.killed_at) < len(plan) and arrived >= plan[len(out.killed_at)]:
                ship.kill()
                out.killed_at.append(arrived)
                print(f"{ship.name}: killed at {arrived:,} indexed; restarted", file=sys.stderr)
                own = ship.launch()
            elif now - changed >= QUIET:
                left = len(plan) - len(out.killed_at)
                out.ended = f"nothing indexed for {QUIET:.0f} s" + (
                    f" ({left} kill(s) not made)" if left else ""
                )
                break
            elif not all(procstat.alive(p) for pids in own.values() for p in pids):
                out.ended = "a process died that was not killed"
                break
            time.sleep(ship.poll)
        else:
            out.ended = f"time limit ({limit - began:.0f} s)"
        out.seconds = changed - began
    finally:
        ship.stop()
    out.sent_again = ship.sent_again()
    return out


def count(ship: Shipper, out: KillResult, made: list[Container]) -> KillResult:
    """`out` with the shipper's index compared line by line with what was printed."""
    assert ship.index is not None  # only shippers with an Elasticsearch output drain here
    found: list[Key] = []
    for source in sources(ship.index, FIELDS[ship.name]):
        try:
            key = key_of(ship.name, source)
        except ValueError as exc:  # printed, and counted apart: the count goes on
            print(f"{ship.name}: a document not read as a line: {exc}", file=sys.stderr)
            key = "unreadable"
        if isinstance(key, str):
            out.events[key] += 1
        else:
            found.append(key)
    out.counted = tally(printed(made), found)
    if out.events:
        show_events(ship.index)
    return out


def show_events(index: str, most: int = 20) -> None:
    """Print the whole of the first `most` event and gap documents of `index` (what
    happened to the containers, or what the shipper reported lost, during the drain)."""
    query = {"exists": {"field": "event.kind"}}
    found = services.es("POST", f"/{index}/_search", {"size": most, "query": query})
    for hit in found["hits"]["hits"]:
        print(f"event document: {json.dumps(hit['_source'])}", file=sys.stderr)


def row(r: KillResult) -> list[str]:
    """One table row."""
    t = r.counted
    assert t is not None
    return [
        r.shipper,
        str(r.round),
        str(r.kills),
        " / ".join(f"{n:,}" for n in r.killed_at) or "-",
        f"{t.expected:,}",
        f"{t.documents:,}"
        + "".join(f" (+{n:,} {action} documents)" for action, n in sorted(r.events.items())),
        f"{t.distinct:,}",
        f"{t.missing:,}",
        f"{t.duplicated:,} ({t.extra:,} extra copies)",
        f"{t.unexpected:,}",
        "-" if r.sent_again is None else f"{r.sent_again:,}",
        f"{r.seconds:.1f}",
        r.ended,
    ]


HEADER = [
    "shipper", "round", "kills", "killed at (indexed)", "lines expected", "documents",
    "distinct lines", "missing", "duplicated (extra copies)", "documents of no printed line",
    "batches sent again, looked up", "seconds", "drain ended",
]  # fmt: skip


def notes(containers: int, lines: int, kills: int, results: list[KillResult]) -> list[str]:
    """How the drains with kills were made and counted."""
    shared = max((r.counted.shared for r in results if r.counted), default=0)
    return [
        f"{containers} containers x {lines:,} corpus lines, all in dockerd's json-file logs "
        "before any shipper starts; each shipper drains them from their start and is killed "
        f"with SIGKILL {kills} time(s), when Elasticsearch's indexing stats of its index "
        f"(primaries' index_total) pass k/{kills + 1} of the lines (k = 1..{kills}), and "
        "restarted at once on its own state: logpipe's shipper on the same "
        "LOGPIPE_STATE_DIR (its collector keeps running), Fluent Bit on the same `DB` "
        "position file, with its default memory buffering; logspout is left out (no "
        "Elasticsearch output)",
        f"the drain ended once the index took nothing for {QUIET:.0f} s (longer than a "
        "restart, 1-2 s, and than Fluent Bit's first two retries of a failed flush, 5-10 s "
        "then up to 20 s), after the last kill or short of one (the kills not made are "
        "then said); seconds = from the first start until the last document was indexed",
        "counted exactly: every document read back (a point in time, paged) and each line "
        "told apart by its container, stream and Docker timestamp in nanoseconds, against "
        "the same keys of every line in the containers' json-file logs (logpipe: "
        "container.id, stream, @timestamp; Fluent Bit: the container id in its tag, added "
        "by `Include_Tag_Key` in this mode alone, stream and the `time` it keeps); "
        + (
            "no two printed lines shared a key, so each key is one line"
            if not shared
            else f"{shared:,} printed lines shared their key with another: those are counted "
            "as many times as they were printed"
        )
        + "; logpipe's documents that hold no line (`event.kind` `event`: a gap, lines it "
        "reported lost, or a Docker lifecycle event of a container) are shown apart by their "
        "`event.action`",
        "times with kills are not comparable with a drain without them, nor with each other "
        "across shippers: no ratio is given",
        "batches sent again, looked up = logpipe's collector's "
        "`logpipe_collector_batches_looked_up_total`: batches its shipper sent marked as sent "
        "again (left in its disk buffer by the run that was killed, or a try that failed), "
        "whose ids the collector searched in the stream first (Fluent Bit does not say)",
    ]


def rounds(ctx: Context, shippers: list[str], repeat: int, made: list[Shipper]) -> list[KillResult]:
    """Each round drains the finished containers with every shipper in turn (one later
    each round), each killed `ctx.kills` times; every run started goes into `made`."""
    results: list[KillResult] = []
    for k in range(repeat):
        for name in shippers[k % len(shippers) :] + shippers[: k % len(shippers)]:
            made.append(RUNS[name](ctx, f"{ctx.run}k{k}"))
            out = drain(made[-1], ctx.total, ctx.kills, k + 1)
            results.append(count(made[-1], out, ctx.containers))
            print(report.table(HEADER, [row(results[-1])]), file=sys.stderr)
    return results


def refused(args: Any) -> str | None:
    """Why a command line with --kills cannot run (None: it can)."""
    if args.live is not None:
        return "--kills is an option of a drain; a --live run follows idle containers"
    if args.warmup is not None or args.existing:
        return "--warmup and --existing are options of the timed drain; --kills times nothing"
    if not args.logs.default:
        return (
            "--kills reads the lines printed from dockerd's json-file logs, which must not "
            "rotate: leave out --log-driver and --log-opt"
        )
    if args.only and LOGSPOUT in args.only:
        return (
            "--kills counts what an Elasticsearch index holds; logspout has none: leave it "
            "out of --only"
        )
    return None


def publish(
    args: Any, binaries: dict[str, Path | None], results: list[KillResult], mean_bytes: float
) -> None:
    """The table and how it was made; with --append, into BENCHMARKS' side by side section."""
    missing = [n for n, b in binaries.items() if b is None and n != peers.LOGSPOUT]
    report.publish(
        f"Drains with each shipper killed (SIGKILL) {args.kills} time(s) and restarted on "
        "its state: what arrived, what was lost, what came twice",
        HEADER,
        [row(r) for r in results],
        [
            *notes(args.containers, args.lines, args.kills, results),
            f"corpus lines of mean {mean_bytes:.0f} bytes; {args.repeat} round(s), each "
            "starting with the next shipper"
            + (f"; not found, rows skipped: {', '.join(missing)}" if missing else ""),
        ],
        args.append,
        section="Side by side with Fluent Bit and logspout",
    )
