"""Micro-benchmarks of the hot spots the profiles found: the code as it is next to a
suggested change, per record, on the corpus. CPU time (process time), best of 7, the
variants interleaved so that load from others hits both alike.

The "suggested" variants are sketches kept here, not in collector/ or shipper/: each is
checked to give the same result as the code it would replace before it is timed.
Usage:
    python -m bench.hotpath [--append]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import time
import zlib
from collections.abc import Callable
from typing import Any

import orjson
from isal import igzip
from zlib_ng import zlib_ng

from bench import corpus, documents, report, summary
from collector.bulk import encode as sink_encode
from collector.enrich import Context, Doc
from collector.ids import log_id
from collector.parse import parse
from collector.routing import Route, route
from collector.runtime import tune_gc, tune_malloc
from collector.shape import flat
from collector.wire import LINE, Log, Source, quick_log
from collector.wire import read_line as validate
from shipper.batch import _record_line
from shipper.batch import encode as shipper_encode
from shipper.record import LogRecord, Record

Case = Callable[[], object]


def _rounds(fn: Case, seconds: float) -> int:
    rounds = 1
    while True:
        start = time.process_time()
        for _ in range(rounds):
            fn()
        if time.process_time() - start >= seconds:
            return rounds
        rounds *= 2


def _once(fn: Case, rounds: int) -> float:
    start = time.process_time()
    for _ in range(rounds):
        fn()
    return (time.process_time() - start) / rounds


def pair_us(now: Case, new: Case, per_call: int, tries: int = 7) -> tuple[float, float]:
    """CPU µs per record of each, best of `tries`, the two interleaved so drift hits both."""
    r_now, r_new = _rounds(now, 0.05), _rounds(new, 0.05)
    best_now = best_new = float("inf")
    for _ in range(tries):
        best_now = min(best_now, _once(now, r_now))
        best_new = min(best_new, _once(new, r_new))
    return best_now / per_call * 1e6, best_new / per_call * 1e6


# --- wire line validation (collector.wire.read_line: pydantic's union for all but logs) ---

_LOG_KEYS = frozenset(Log.model_fields)


def fast_log(raw: bytes) -> Log | None:
    """orjson + plain checks for the common `log` line; None sends it to pydantic."""
    d = orjson.loads(raw)
    if type(d) is not dict or d.get("kind") != "log" or not _LOG_KEYS.issuperset(d):
        return None
    src, ts, seq, msg = d.get("src"), d.get("ts"), d.get("seq", 0), d.get("message")
    if (
        type(src) is int
        and type(ts) is int
        and type(seq) is int
        and src >= 0
        and ts >= 0
        and seq >= 0
        and type(msg) is str
        and d.get("stream") in ("stdout", "stderr")
        and type(d.get("truncated", False)) is bool
        and type(d.get("lines", 1)) is int
        and d.get("lines", 1) >= 1
    ):
        return Log.model_construct(**d)
    return None


# --- bulk action line (collector.sink.encode: orjson.dumps of a dict per document) ---

_STREAM_BYTES: dict[str, bytes] = {}


def action_line(stream: str, doc_id: str) -> bytes:
    """The action line from bytes: stream names and ids never need JSON escaping."""
    prefix = _STREAM_BYTES.get(stream)
    if prefix is None:
        prefix = _STREAM_BYTES[stream] = b'{"create":{"_index":"' + stream.encode() + b'","_id":"'
    return prefix + doc_id.encode() + b'"}}\n'


# --- document body: the fields every line of a source shares, encoded once ---

_SHARED = ("container", "host", "service", "data_stream")


def spliced_body(body: dict[str, Any], cache: dict[int, bytes]) -> bytes:
    """orjson of the per-line fields + the source's fields pre-encoded once (by identity)."""
    key = id(body["container"])
    shared = cache.get(key)
    if shared is None:
        shared = cache[key] = orjson.dumps({k: body[k] for k in _SHARED})[1:-1]
    own = orjson.dumps({k: v for k, v in body.items() if k not in _SHARED})
    return own[:-1] + b"," + shared + b"}\n"


# --- document id (collector.ids.log_id: ns, then blake2b of the other parts) ---

_SUFFIXES: dict[tuple[str, str, str, int], bytes] = {}


def log_id_prefixed(host: str, container_id: str, stream: str, ts: int, seq: int) -> str:
    """The same id: the hash of (host, container, stream, seq) made once per key."""
    key = (host, container_id, stream, seq)
    suffix = _SUFFIXES.get(key)
    if suffix is None:
        raw = f"{host}\x1f{container_id}\x1f{stream}\x1f{seq}".encode("utf-8", "surrogatepass")
        suffix = _SUFFIXES[key] = hashlib.blake2b(raw, digest_size=8).digest()
    return base64.urlsafe_b64encode(ts.to_bytes(8, "big") + suffix).rstrip(b"=").decode("ascii")


# --- routing (collector.routing.route per record, then Route.stream / .stream_dataset) ---

_ROUTES: dict[tuple[int, str | None], tuple[Source, Any, Route, str, str]] = {}


def route_cached(source: Source, ctx: Context, level: str | None) -> tuple[Route, str, str]:
    """Route, stream and stream dataset, computed once per (source, level, rules object)."""
    hit = _ROUTES.get((id(source), level))
    rules = ctx.retention.rules
    if hit is not None and hit[0] is source and hit[1] is rules:
        return hit[2], hit[3], hit[4]
    where = route(source, ctx, level)
    _ROUTES[(id(source), level)] = (source, rules, where, where.stream, where.stream_dataset)
    return where, where.stream, where.stream_dataset


# --- shipper: one wire line per record (collector.wire.log_line: a msgspec Struct) ---


def record_line_bytes(record: LogRecord, src: int) -> bytes:
    """The same wire line from a bytes template; only the message goes through orjson."""
    head = b'{"kind":"log","src":%d,"stream":"%s","ts":%d,"seq":%d,"message":' % (
        src, record.stream.encode(), record.ts, record.seq,
    )  # fmt: skip
    tail = b"}"
    if record.truncated or record.lines > 1:
        extra = b',"truncated":true' if record.truncated else b""
        extra += b',"lines":%d' % record.lines if record.lines > 1 else b""
        tail = extra + b"}"
    return head + orjson.dumps(record.data.decode("utf-8", "replace")) + tail


def setup() -> dict[str, Any]:
    """Wire lines, documents and a bulk answer made by logpipe's own code from the corpus."""
    lines = corpus.lines(5000)
    metas = documents.containers(20, "hot")
    body = next(documents.wire_batches(lines, metas, "bench-hot", 5000, 1))
    raw = [r for r in body.split(b"\n") if r]
    docs = documents.documents(body, "bench.hot")
    records = documents.records(lines, metas, 0, time.time_ns())
    answer = orjson.dumps({"errors": False, "items": [{"create": {"status": 201}}] * len(docs)})
    parsed = [LINE.validate_json(r) for r in raw]
    sources = {p.src: p for p in parsed if isinstance(p, Source)}
    routed = [(sources[p.src], parse(p.message).level) for p in parsed if isinstance(p, Log)]
    return {"raw": raw, "docs": docs, "records": records, "answer": answer, "body": body,
            "routed": routed}  # fmt: skip


def check(data: dict[str, Any]) -> None:
    """Every suggested variant gives what the code it would replace gives."""
    for raw in data["raw"]:
        line = LINE.validate_json(raw)
        fast = fast_log(raw)
        assert fast is None if not isinstance(line, Log) else fast == line, raw
    doc: Doc = data["docs"][0]
    assert action_line(doc.stream, doc.id) + orjson.dumps(flat(doc.body)) + b"\n" == sink_encode(
        doc
    )
    cache: dict[int, bytes] = {}
    for doc in data["docs"][:500]:
        assert orjson.loads(spliced_body(doc.body, cache)) == doc.body
    ctx = Context(dataset="bench.hot")
    for source, level in data["routed"][:500]:
        where = route(source, ctx, level)
        assert route_cached(source, ctx, level) == (where, where.stream, where.stream_dataset)
    for rec in data["records"][:500]:
        args = ("bench-hot", rec.meta.id, rec.stream, rec.ts, rec.seq)
        assert log_id_prefixed(*args) == log_id(*args)
        assert quick_log(record_line_bytes(rec, 3)) == quick_log(_record_line(rec, 3))


def cases(data: dict[str, Any]) -> list[tuple[str, str, Case, str, Case, int]]:
    """(what, now, its call, suggested, its call, records per call)."""
    raw: list[bytes] = data["raw"]
    docs: list[Doc] = data["docs"]
    records: list[LogRecord] = data["records"]
    answer: bytes = data["answer"]
    body: bytes = data["body"]
    zipped = gzip.compress(body, 1)
    n = len(docs)

    def validate_now() -> None:
        for r in raw:
            LINE.validate_json(r)

    def validate_fast() -> None:
        for r in raw:
            if fast_log(r) is None:
                LINE.validate_json(r)

    def action_now() -> None:
        for d in docs:
            orjson.dumps({"create": {"_index": d.stream, "_id": d.id}})

    def action_bytes() -> None:
        for d in docs:
            action_line(d.stream, d.id)

    ctx = Context(dataset="bench.hot")
    routed: list[tuple[Source, str | None]] = data["routed"]

    def route_now() -> None:
        for source, level in routed:
            where = route(source, ctx, level)
            _ = where.stream, where.stream_dataset

    def route_new() -> None:
        for source, level in routed:
            route_cached(source, ctx, level)

    def id_now() -> None:
        for r in records:
            log_id("bench-hot", r.meta.id, r.stream, r.ts, r.seq)

    def id_prefixed() -> None:
        for r in records:
            log_id_prefixed("bench-hot", r.meta.id, r.stream, r.ts, r.seq)

    def line_now() -> None:
        for r in records:
            _record_line(r, 3)

    def line_bytes() -> None:
        for r in records:
            record_line_bytes(r, 3)

    def body_now() -> None:
        for d in docs:
            orjson.dumps(d.body)

    def body_spliced() -> None:
        cache: dict[int, bytes] = {}
        for d in docs:
            spliced_body(d.body, cache)

    return [
        ("validate a wire line", "LINE.validate_json", validate_now,
         "orjson + checks + model_construct (log lines)", validate_fast, len(raw)),
        ("bulk action line", "orjson.dumps(dict)", action_now,
         "bytes template, stream cached", action_bytes, n),
        ("document source", "orjson.dumps(body)", body_now,
         "source fields pre-encoded once per source", body_spliced, n),
        ("bulk answer (5000 items)", "stdlib json (client default)", lambda: json.loads(answer),
         "orjson (OrjsonSerializer)", lambda: orjson.loads(answer), n),
        ("gunzip the batch", "zlib_ng.decompress(wbits=31) (aiohttp's backend)",
         lambda: zlib_ng.decompress(zipped, 31),
         "zlib.decompress(wbits=31)", lambda: zlib.decompress(zipped, 31), n),
        ("route a record", "routing.route + .stream + .stream_dataset", route_now,
         "cached per (source, level, rules object)", route_new, len(routed)),
        ("document id", "ids.log_id", id_now,
         "hash per (source, stream, seq) in a dict", id_prefixed, len(records)),
        ("shipper: wire line", "batch._record_line (wire.log_line: msgspec)", line_now,
         "bytes template, orjson for the message only", line_bytes, len(records)),
    ]  # fmt: skip


# What batch.decode does per line: msgspec for log lines, pydantic for the rest.
VALIDATE = "collector: validate wire lines (msgspec; pydantic for other kinds)"


def stages(data: dict[str, Any]) -> list[list[str]]:
    """CPU µs per record of each stage of the collector's and the shipper's hot path."""
    raw: list[bytes] = data["raw"]
    body: bytes = data["body"]
    docs: list[Doc] = data["docs"]
    records: list[LogRecord] = data["records"]
    mixed: list[Record] = list(records)
    messages = [p.message for p in map(LINE.validate_json, raw) if isinstance(p, Log)]
    zipped = igzip.compress(body, 1)  # as the shipper sends it
    n = len(docs)
    timed = {
        "collector: gunzip the batch (zlib-ng)": (lambda: zlib_ng.decompress(zipped, 31), n),
        VALIDATE: (lambda: [validate(r) for r in raw], n),
        "collector: parse (collector.parse)": (lambda: [parse(m) for m in messages], n),
        "collector: batch.decode (validate + parse + enrich)":
            (lambda: documents.documents(body, "bench.hot"), n),
        "collector: bulk lines (bulk.encode)": (lambda: [sink_encode(d) for d in docs], n),
        "shipper: batch.encode (wire NDJSON)": (lambda: shipper_encode(mixed, "h"), n),
        "shipper: gzip level 1 of the batch (ISA-L)": (lambda: igzip.compress(body, 1), n),
    }  # fmt: skip
    us = {name: pair_us(fn, fn, per, tries=5)[0] for name, (fn, per) in timed.items()}
    enrich = (
        us["collector: batch.decode (validate + parse + enrich)"]
        - us[VALIDATE]
        - us["collector: parse (collector.parse)"]
    )
    rows = [[name, f"{value:.2f}"] for name, value in us.items()]
    rows.insert(4, ["collector: enrich (decode - validate - parse)", f"{enrich:.2f}"])
    total = (
        sum(us[k] for k in us if k.startswith("collector:"))
        - us[VALIDATE]
        - us["collector: parse (collector.parse)"]
    )
    rows.append(["collector in-process total (gunzip + decode + encode)", f"{total:.2f}"])
    return rows


def main() -> None:
    """Time each pair and append the table."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = p.parse_args()
    os.environ["LOGPIPE_BENCH_CODE"] = "worktree"  # imported from the work tree, say so
    tune_gc()  # the GC and heap settings both processes run with
    tune_malloc()
    data = setup()
    check(data)
    rows = []
    for what, now_name, now, new_name, new, per in cases(data):
        before, after = pair_us(now, new, per)
        rows.append([what, now_name, f"{before:.2f}", new_name, f"{after:.2f}",
                     f"{before - after:.2f}"])  # fmt: skip
    report.publish(
        "Hot-path micro-benchmarks (CPU-µs per record, best of 7, interleaved)",
        ["step", "now", "µs/record", "suggested", "µs/record", "saved µs/record"],
        rows,
        ["5000 corpus lines in one wire batch from 20 sources; each suggested variant is "
         "checked to give the same result first (bench/hotpath.py)"],
        args.append,
    )  # fmt: skip
    report.publish(
        "Where a record's CPU goes, in-process (no HTTP, no Elasticsearch client)",
        ["stage", "CPU-µs/record"],
        stages(data),
        ["same 5000-line batch; compare the collector total with CPU-µs/record of "
         "bench.collector_load: the rest is HTTP, the Elasticsearch client and asyncio"],
        args.append,
    )  # fmt: skip


if __name__ == "__main__":
    main()
