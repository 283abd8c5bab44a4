"""What the benchmarks send: wire batches as the shipper makes them, bulk lines as the
collector makes them, both built by logpipe's own code from the corpus."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import orjson

from collector.batch import decode
from collector.enrich import Context, Doc
from collector.shape import flat
from shipper.batch import encode
from shipper.record import LogRecord, Meta, Record


def containers(count: int, run: str) -> list[Meta]:
    """Metadata of `count` made-up containers, as the shipper would describe them."""
    return [
        Meta(
            id=f"{run}{k:04d}".ljust(64, "0"),
            name=f"bench-{run}-{k}",
            image="busybox:latest",
            labels={"com.docker.compose.service": f"svc{k % 7}", "logpipe.bench": run},
        )
        for k in range(count)
    ]


def records(corpus: list[str], metas: list[Meta], start: int, ts0: int) -> list[LogRecord]:
    """One record per corpus line, spread over `metas`, each with its own timestamp."""
    out = []
    for i, line in enumerate(corpus):
        n = start + i
        meta = metas[n % len(metas)]
        stream = "stderr" if n % 10 == 9 else "stdout"
        out.append(LogRecord(meta, stream, ts0 + n * 1000, 0, line.encode()))
    return out


def wire_batches(
    corpus: list[str], metas: list[Meta], host: str, batch_lines: int, batches: int
) -> Iterator[bytes]:
    """NDJSON bodies exactly as `shipper.batch.encode` makes them, never a line twice."""
    ts0 = time.time_ns()
    for b in range(batches):
        start = b * batch_lines
        lines = [corpus[(start + i) % len(corpus)] for i in range(batch_lines)]
        chosen: list[Record] = list(records(lines, metas, start, ts0))
        yield encode(chosen, host).body


def gzipped(body: bytes) -> bytes:
    """The body as the shipper sends it (gzip level 1)."""
    return gzip.compress(body, compresslevel=1)


def documents(body: bytes, dataset: str) -> list[Doc]:
    """The documents the collector makes of one wire batch (parse + enrich)."""
    ingested = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return decode(body, Context(dataset=dataset), ingested).docs


def bulk_items(docs: list[Doc], suffix: str) -> list[bytes]:
    """Pre-serialized `create` items (action + source), ids made unique by `suffix`."""
    out = []
    for doc in docs:
        action = orjson.dumps({"create": {"_index": doc.stream, "_id": doc.id + suffix}})
        out.append(action + b"\n" + orjson.dumps(flat(doc.body)) + b"\n")
    return out
