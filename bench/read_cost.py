"""What reading logpipe's documents costs Elasticsearch, per index codec: CPU per query.

N documents made by the collector's own parse + enrich from the corpus are loaded into
one fresh index per codec (`best_compression`, zstd, as `setup` sets it; `default`,
LZ4), made from this checkout's template (`collector.templates.index_template`) under a
pattern of the run's own, then read in five shapes: Kibana Discover's first page (the
newest 500, whole, of the index force-merged to one segment; then the same filtered to
one container, whose lines lie apart from each other in the index), a search that finds few
(a `match` on `message` for a rare word, newest 100), an aggregation that reads no
stored document (terms on `container.name`, size 0: it should cost the same with both
codecs, a check that the harness sees the reading of `_source` and nothing else), and
the tail's shape (every document of an index refreshed every 1,000 documents and never
merged, read in pages of 1,000 by the read API's tail query). The node's process CPU
over each batch of queries, less its idle rate (others share the node), per query and
per document returned; rounds alternate the codecs; median and range of the rounds,
and the ratio best_compression / LZ4 per shape.

    python -m bench.read_cost [--docs 300000] [--rounds 5] [--append]

The indices are plain indices (`bench-read<run>-<codec>-<merged|segments>`), deleted at
the end with their two templates, on failure too.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import re
import statistics
import time
import urllib.error
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from bench import at_least, doc_cost, procstat, report, services, summary
from collector import templates
from collector.enrich import Doc
from collector.read import cursor
from collector.read.cursor import TAIL_KEY, Position
from collector.read.filters import Filters
from collector.read.query import query
from collector.shape import flat

Body = dict[str, Any]
CODECS = ("best_compression", "default")
NAMES = {"best_compression": "best_compression (zstd)", "default": "default (LZ4)"}
DISCOVER_SIZE = 500
RARE_SIZE = 100
PAGE = 1000  # the tail's page (collector.read.poller.PAGE)
TAIL_SEGMENTS = 60  # segments of PAGE documents in the tail's index
MIN_DOCS = 2 * PAGE
WINDOW = 2.0  # seconds of queries per measured window, at least


@dataclass(frozen=True)
class Shape:
    """One way of reading: its index (merged or segments) and queries per window."""

    name: str
    about: str
    index: str  # "merged" | "segments"
    queries: int  # at least, per measured window (the tail: whole reads of its index)


SHAPES = (
    Shape(
        "discover",
        f"newest {DISCOVER_SIZE}, whole, sorted by @timestamp desc (merged index)",
        "merged",
        15,
    ),
    Shape(
        "discover-one",
        "the same for one of the 20 containers (a filter on container.name)",
        "merged",
        15,
    ),
    Shape("rare", f"match on message for a rare word, newest {RARE_SIZE} (merged)", "merged", 30),
    Shape("terms", "terms on container.name over the whole index, size 0 (merged)", "merged", 10),
    Shape(
        "tail",
        f"every document of {TAIL_SEGMENTS} segments of {PAGE:,}, by the tail's query",
        "segments",
        1,
    ),
)


def discover_body() -> Body:
    """Discover's first page: the newest 500, every field."""
    return {
        "query": {"match_all": {}},
        "sort": [{"@timestamp": {"order": "desc"}}],
        "size": DISCOVER_SIZE,
        "track_total_hits": False,
    }


def discover_one_body(container: str) -> Body:
    """Discover's first page filtered to one container: the newest 500 of its lines, which
    lie among the other containers' (every 20th document), not side by side."""
    return {
        **discover_body(),
        "query": {"bool": {"filter": [{"term": {"container.name": container}}]}},
    }


def rare_body(word: str) -> Body:
    """The newest 100 documents whose message holds `word`."""
    return {
        "query": {"match": {"message": word}},
        "sort": [{"@timestamp": {"order": "desc"}}],
        "size": RARE_SIZE,
        "track_total_hits": False,
    }


def terms_body() -> Body:
    """Documents per container over the whole index: doc values only, no _source."""
    return {
        "size": 0,
        "track_total_hits": False,
        "aggs": {"names": {"terms": {"field": "container.name", "size": 100}}},
    }


def tail_body(position: Position | None) -> Body:
    """One page of the read API's tail (collector.read.poller): after `position` (from
    the start when None) in order of event.ingested then @timestamp, whole documents."""
    extra = [] if position is None else [cursor.after(position, TAIL_KEY, "asc")]
    return {
        "query": query(Filters(), *extra),
        "sort": cursor.sort(TAIL_KEY, "asc"),
        "size": PAGE,
        "track_total_hits": False,
    }


_WORD = re.compile(r"\b[a-z][a-z0-9]{3,}\b")


def rare_word(messages: Sequence[str], want: int) -> tuple[str, int]:
    """The word (a letter, then 3+ letters or digits; once per message) found in the
    number of messages nearest `want`, and that number; ties go to the word first in
    alphabetical order. Elasticsearch's own count of its matches is what the table says."""
    seen: collections.Counter[str] = collections.Counter()
    for message in messages:
        seen.update(set(_WORD.findall(message.lower())))
    if not seen:
        raise ValueError("no message holds a word of 4 letters or more")
    word = min(seen, key=lambda w: (abs(seen[w] - want), w))
    return word, seen[word]


@dataclass
class Window:
    """What one batch of queries cost the node."""

    net_ms: float  # CPU-ms per query, less the idle rate
    raw_ms: float
    docs: int  # documents returned per query

    @property
    def us_per_doc(self) -> float | None:
        """CPU-µs per document returned (None for an aggregation)."""
        return self.net_ms * 1000 / self.docs if self.docs else None


def measure(
    pids: list[int], idle: float, least: int, read: Callable[[], int], seconds: float = WINDOW
) -> Window:
    """Run `read` (one query or one whole tail read; the documents it returned) inside
    one CPU window of the node, at least `least` times and for at least `seconds` (the
    node's CPU is counted in ticks of 10 ms: a short window would be mostly rounding)."""
    window = procstat.CpuWindow(pids)
    began = time.monotonic()
    window.start()
    times = returned = 0
    while times < least or time.monotonic() - began < seconds:
        returned += read()
        times += 1
    used = window.stop()
    seconds = time.monotonic() - began
    net = max(0.0, used - idle * seconds)
    return Window(net / times * 1000, used / times * 1000, returned // times)


def search(index: str, body: Body) -> list[Body]:
    """The hits of one search (the shard request cache off: each query does its work)."""
    got = services.es("POST", f"/{index}/_search?request_cache=false", body)
    hits: list[Body] = got["hits"]["hits"]
    return hits


def read_tail(index: str) -> int:
    """Every document of `index` in pages, as a tail meets them; how many."""
    position: Position | None = None
    total = 0
    while True:
        hits = search(index, tail_body(position))
        for hit in hits:
            position = (position or Position(())).then(tuple(hit["sort"]), hit["_id"])
        total += len(hits)
        if len(hits) < PAGE:
            return total


def reader(shape: Shape, index: str, word: str, container: str) -> Callable[[], int]:
    """The read of one shape on `index`: documents returned."""
    if shape.name == "discover":
        return lambda: len(search(index, discover_body()))
    if shape.name == "discover-one":
        return lambda: len(search(index, discover_one_body(container)))
    if shape.name == "rare":
        return lambda: len(search(index, rare_body(word)))
    if shape.name == "terms":
        return lambda: len(search(index, terms_body()))
    return lambda: read_tail(index)


def template(run: str, codec: str) -> Body:
    """The collector's template with `codec`, for this run's plain indices of that codec."""
    body = templates.index_template(codec=codec)
    body.pop("data_stream", None)  # plain indices: deleted at the end, unlike streams
    body["index_patterns"] = [f"bench-read{run}-{codec}-*"]
    body["priority"] = 1000
    body["_meta"] = {"managed_by": "logpipe bench.read_cost"}
    return body


def bulk_lines(docs: Sequence[Doc], index: str) -> list[bytes]:
    """`index` items of the documents with the collector's ids and flat bodies."""
    action = b'{"index":{"_index":"%s","_id":"%s"}}\n'
    return [
        action % (index.encode(), d.id.encode()) + orjson.dumps(flat(d.body)) + b"\n" for d in docs
    ]


def load_merged(index: str, docs: Sequence[Doc]) -> None:
    """All documents, then one segment (a day's index once merged). One connection: the
    segment then holds them in time order, so the newest 500 lie side by side, which
    Elasticsearch's fetch reads in one pass; over several connections the merge had put
    them apart in some loads and not in others (5 against 55 CPU-ms a page of 500 with
    best_compression, 20,000 documents)."""
    services.es("PUT", f"/{index}", {"settings": {"refresh_interval": "-1"}})
    failed = asyncio.run(doc_cost.post(bulk_lines(docs, index), 2000, 1))
    if failed:
        raise RuntimeError(f"{failed} documents refused by {index}")
    services.es("POST", f"/{index}/_forcemerge?max_num_segments=1", timeout=600)
    services.refresh(index)


def load_segments(index: str, docs: Sequence[Doc]) -> None:
    """The documents a page at a time, a refresh after each: a segment per page, and a
    merge policy that leaves that many alone (fresh segments a tail reads): the node picks
    the log byte size policy for indices with @timestamp (it merges `merge_factor`
    segments, 32 by default), the tiered policy for others."""
    most = 4 * TAIL_SEGMENTS
    settings = {
        "refresh_interval": "-1",
        "merge.policy.segments_per_tier": most,
        "merge.policy.merge_factor": most,
    }
    services.es("PUT", f"/{index}", {"settings": {"index": settings}})
    lines = bulk_lines(docs, index)
    for start in range(0, len(lines), PAGE):
        if asyncio.run(doc_cost.post(lines[start : start + PAGE], PAGE, 1)):
            raise RuntimeError(f"documents refused by {index}")
        services.refresh(index)


def segments(index: str) -> int:
    """Searchable segments of `index`."""
    got = services.es("GET", f"/{index}/_stats/segments?filter_path=_all.primaries.segments.count")
    return int(got["_all"]["primaries"]["segments"]["count"])


def bytes_per_doc(index: str) -> float:
    """Bytes of the live segments per document of a loaded index."""
    got = services.live_bytes_per_doc(index)
    if got is None:
        raise RuntimeError(f"{index} holds no documents")
    return got


def cleanup(run: str) -> None:
    """Delete the run's indices and templates (whatever exists of them)."""
    with contextlib.suppress(urllib.error.HTTPError):
        services.es(
            "DELETE", f"/bench-read{run}-*?allow_no_indices=true&expand_wildcards=open,closed"
        )
    for codec in CODECS:
        services.delete_run_template(f"logpipe-bench-read{run}-{codec}")


Results = dict[str, dict[str, list[Window]]]  # shape -> codec -> one window per round


def ratios(results: Results, shape: str) -> tuple[float | None, list[float]]:
    """best_compression / LZ4 of the median CPU per query, and of each round's pair."""
    zstd = [w.net_ms for w in results[shape]["best_compression"]]
    lz4 = [w.net_ms for w in results[shape]["default"]]
    median_lz4 = statistics.median(lz4)
    whole = statistics.median(zstd) / median_lz4 if median_lz4 else None
    pairs = [z / n for z, n in zip(zstd, lz4, strict=True) if n]
    return whole, pairs


def rows(results: Results) -> list[list[str]]:
    """Per shape: each codec's median and range per query, per document, and the ratio."""
    out = []
    for shape in SHAPES:
        got = results[shape.name]
        cells = [shape.name, shape.about, str(got["default"][0].docs)]
        for codec in CODECS:
            net = [w.net_ms for w in got[codec]]
            cells.append(f"**{statistics.median(net):.1f}** ({min(net):.1f}-{max(net):.1f})")
        for codec in CODECS:
            per_doc = [w.us_per_doc for w in got[codec]]
            kept = [v for v in per_doc if v is not None]
            cells.append(f"{statistics.median(kept):.1f}" if kept else "-")
        whole, pairs = ratios(results, shape.name)
        span = f" ({min(pairs):.2f}-{max(pairs):.2f})" if pairs else ""
        cells.append((f"**{whole:.2f}**" if whole is not None else "-") + span)
        out.append(cells)
    return out


HEADER = [
    "shape",
    "what it reads",
    "docs returned",
    "best_compression CPU-ms/query (range)",
    "LZ4 CPU-ms/query (range)",
    "best_compression µs/doc",
    "LZ4 µs/doc",
    "best_compression / LZ4 (rounds' range)",
]


def prepare(run: str, docs: list[Doc]) -> dict[str, dict[str, str]]:
    """Both codecs' templates and indices, loaded: codec -> kind -> index."""
    indices: dict[str, dict[str, str]] = {}
    for codec in CODECS:
        services.es(
            "PUT", f"/_index_template/logpipe-bench-read{run}-{codec}", template(run, codec)
        )
        merged, tail = f"bench-read{run}-{codec}-merged", f"bench-read{run}-{codec}-segments"
        load_merged(merged, docs)
        load_segments(tail, docs[: TAIL_SEGMENTS * PAGE])
        indices[codec] = {"merged": merged, "segments": tail}
        print(
            f"{codec}: {merged} {segments(merged)} segment(s), {bytes_per_doc(merged):.0f} B/doc; "
            f"{tail} {segments(tail)} segments",
            flush=True,
        )
    return indices


def rounds(
    indices: dict[str, dict[str, str]], word: str, container: str, count: int
) -> tuple[Results, list[float]]:
    """A warm-up pass, then `count` rounds, the codecs' order alternating each round."""
    pids = services.es_pids()
    results: Results = {s.name: {c: [] for c in CODECS} for s in SHAPES}
    for codec in CODECS:  # the node's compiler and caches: not counted
        for shape in SHAPES:
            reader(shape, indices[codec][shape.index], word, container)()
    idles = []
    for r in range(count):
        idle = doc_cost.idle_rate(pids)
        idles.append(idle)
        order = CODECS if r % 2 == 0 else CODECS[::-1]
        for shape in SHAPES:
            for codec in order:
                read = reader(shape, indices[codec][shape.index], word, container)
                got = measure(pids, idle, shape.queries, read)
                results[shape.name][codec].append(got)
                print(
                    f"round {r + 1} {shape.name} {codec}: {got.net_ms:.2f} CPU-ms/query "
                    f"(raw {got.raw_ms:.2f}, {got.docs} docs, idle {idle:.2f} cores, "
                    f"load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
    return results, idles


def epilog() -> str:
    """--help's end: the shapes read, and where the run's indices go."""
    shapes = [f"  {s.name:9} {s.about}" for s in SHAPES]
    return "\n".join(
        [
            "shapes, each read in both codecs' indices every round:",
            *shapes,
            f"the tail's index holds the first {TAIL_SEGMENTS * PAGE:,} documents (fewer if "
            "--docs is smaller);",
            "the run's indices and templates are deleted at the end. The Elasticsearch node",
            "is shared: compare the ratios of one run, not figures across runs.",
        ]
    )


def main() -> None:
    """Load both codecs' indices, read them in every shape, print the table."""
    p = argparse.ArgumentParser(
        description=summary(__doc__),
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--docs",
        type=at_least(MIN_DOCS),
        default=300_000,
        help="documents in each codec's merged index (default 300,000, at least 2,000)",
    )
    p.add_argument(
        "--rounds", type=at_least(1), default=5, help="rounds of every shape and codec (default 5)"
    )
    p.add_argument("--append", action="store_true", help="append the table to docs/BENCHMARKS.md")
    args = p.parse_args()
    measured = doc_cost.code_commit()
    run = services.run_id()
    load = os.getloadavg()[0]
    docs = doc_cost.build(run, args.docs)
    container = str(docs[-1].body["container"]["name"])
    word, found = rare_word([str(d.body["message"]) for d in docs], max(1, args.docs // 1000))
    print(f"{len(docs):,} documents; rare word {word!r} in {found:,} messages", flush=True)
    try:
        indices = prepare(run, docs)
        disk = {c: bytes_per_doc(indices[c]["merged"]) for c in CODECS}
        tail = {c: indices[c]["segments"] for c in CODECS}
        pieces = {c: (services.count(tail[c]), segments(tail[c])) for c in CODECS}
        matches = services.count(indices["default"]["merged"], {"match": {"message": word}})
        results, idles = rounds(indices, word, container, args.rounds)
    finally:
        cleanup(run)
    notes = [
        f"{len(docs):,} documents of 20 containers in each codec's merged index (one segment; "
        f"{disk['best_compression']:.0f} bytes per document with best_compression, "
        f"{disk['default']:.0f} with LZ4); the tail's index: the first "
        + " and ".join(f"{n:,} in {k} segments ({c})" for c, (n, k) in pieces.items())
        + f", refreshed every {PAGE:,}, never merged",
        f"rare word {word!r}: {matches:,} matches; queries per window: at least "
        + ", ".join(f"{s.name} {s.queries}" for s in SHAPES)
        + f", and at least {WINDOW:g} s",
        f"{args.rounds} rounds after a warm-up pass, the codecs' order alternating each round; "
        "CPU = the node's process over the window less its idle rate (the least of 3 s "
        f"before each round: {min(idles):.2f}-{max(idles):.2f} cores) over that time; "
        "the shard request cache off",
        f"the node is shared with others' tests: load average (1 min) {load:.2f} at the "
        f"start, {os.getloadavg()[0]:.2f} at the end",
    ]
    report.publish(
        "Elasticsearch CPU per read, per codec",
        HEADER,
        rows(results),
        notes,
        args.append,
        measured=measured,
    )


if __name__ == "__main__":
    main()
