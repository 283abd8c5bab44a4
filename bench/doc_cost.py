"""What one logpipe document costs Elasticsearch: CPU-µs per document, merges included.

N documents made by the collector's own parse + enrich from the corpus are bulk-loaded
(op_type create) into a fresh backing index of a data stream of this run's own, whose
template is the collector's (`collector.templates`) changed as each variant says; the
node's CPU is counted from the first request until it is idle again (a refresh, then no
merge for 2 s), less its idle rate before the load (others' tests share the node),
then per document. Variants alternate, their order
rotating each round, and the table gives the median and the range of the rounds.

    python -m bench.doc_cost [--docs 100000] [--rounds 3] [--variants a,b,...] [--append]

`--list` names the variants. The node cannot delete data streams: each round rolls the
run's one stream over (so the variant's template applies to a fresh index) and deletes
the index before; the run's template and last backing index are deleted at the end,
leaving one empty write index (`.ds-logs-bench.cost<run>-default-*`). The documents
are built in this process by the work tree's collector (the table's commit says
`+dirty` when `collector/` had changes).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import hashlib
import os
import statistics
import subprocess
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from isal import igzip

from bench import corpus, documents, procstat, report, services, summary
from collector import templates
from collector.attributes import UNINDEXED, AttributeFilter
from collector.enrich import Doc
from collector.labels import EVERY_LABEL, LabelFilter
from collector.shape import flat

Body = dict[str, Any]
Mappings = dict[str, Any]


@dataclass
class Variant:
    """One way of shaping the documents, their ids, the template or the requests."""

    about: str
    ids: str = "collector"  # collector | hash | time | auto
    body: Callable[[Body], Body] | None = None
    mappings: Callable[[Mappings], None] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    per_request: int = 2000
    connections: int = 4
    nested: bool = False  # the documents as nested objects, not flat as the collector sends
    order: Callable[[list[Doc]], list[Doc]] | None = None  # None: in time order
    gzip: bool = False  # request bodies gzipped (level 1), as LOGPIPE_ES_COMPRESSION=gzip


def _ns(stamp: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 UTC time with nine digits."""
    secs, _, frac = stamp.rstrip("Z").partition(".")
    whole = datetime.strptime(secs, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return int(whole) * 1_000_000_000 + int(frac.ljust(9, "0"))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hash_id(body: Body) -> str:
    """The id of logpipe before time-ordered ids: blake2b of host, container, stream, ts, seq."""
    raw = "\x1f".join(
        [
            body["host"]["name"],
            body["container"]["id"],
            body["stream"],
            str(_ns(body["@timestamp"])),
            "0",
        ]
    )
    return _b64(hashlib.blake2b(raw.encode(), digest_size=16).digest())


def time_id(body: Body) -> str:
    """8 bytes of big-endian ns, then 8 bytes of blake2b of host, container, stream, seq."""
    raw = "\x1f".join([body["host"]["name"], body["container"]["id"], body["stream"], "0"])
    digest = hashlib.blake2b(raw.encode(), digest_size=8).digest()
    return _b64(_ns(body["@timestamp"]).to_bytes(8, "big") + digest)


def _without(*paths: str) -> Callable[[Body], Body]:
    def drop(body: Body) -> Body:
        out = copy.deepcopy(body)
        for path in paths:
            *parents, last = path.split(".")
            node = out
            for part in parents:
                node = node.get(part, {})
            node.pop(last, None)
            if parents and not node:
                out.pop(parents[0], None)
        return out

    return drop


def _with_ingested(body: Body) -> Body:
    out = copy.deepcopy(body)
    out.setdefault("event", {})["ingested"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return out


def _six(body: Body) -> Body:
    return {
        "@timestamp": body["@timestamp"],
        "message": body["message"],
        "stream": body["stream"],
        "host": {"name": body["host"]["name"]},
        "container": {"name": body["container"]["name"]},
        "log": {"level": body.get("log", {}).get("level", "")},
    }


def _fluent_bit(body: Body) -> Body:
    # Fluent Bit's es output: the Docker line as `log`, `stream`, `time`, and @timestamp.
    return {
        "@timestamp": body["@timestamp"],
        "log": body.get("event", {}).get("original") or body["message"] + "\n",
        "stream": body["stream"],
        "time": body["@timestamp"],
    }


# What `docker compose up` puts on every container beside the service (Compose v2).
COMPOSE_LABELS = {
    "com.docker.compose.config-hash": "9c1f0e6b2d0f4c7e8a1b5d3c2e4f6a8b" * 2,
    "com.docker.compose.container-number": "1",
    "com.docker.compose.depends_on": "db:service_started:false",
    "com.docker.compose.image": "sha256:" + "5b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e" * 2,
    "com.docker.compose.oneoff": "False",
    "com.docker.compose.project": "shop",
    "com.docker.compose.project.config_files": "/srv/shop/docker-compose.yml",
    "com.docker.compose.project.working_dir": "/srv/shop",
    "com.docker.compose.version": "2.24.6",
}


def _compose_labels(body: Body) -> Body:
    out = copy.deepcopy(body)
    out["container"]["labels"] = {**COMPOSE_LABELS, **out["container"].get("labels", {})}
    return out


def _compose_kept(body: Body) -> Body:
    out = _compose_labels(body)
    out["container"]["labels"] = EVERY_LABEL(out["container"]["labels"])
    return out


# A service behind Traefik, as its compose file labels it (routing, TLS, a middleware).
TRAEFIK_LABELS = {
    "traefik.enable": "true",
    "traefik.http.routers.shop-api.rule": "Host(`shop.example.com`) && PathPrefix(`/api`)",
    "traefik.http.routers.shop-api.entrypoints": "websecure",
    "traefik.http.routers.shop-api.tls": "true",
    "traefik.http.routers.shop-api.tls.certresolver": "letsencrypt",
    "traefik.http.routers.shop-api.middlewares": "shop-ratelimit@docker",
    "traefik.http.services.shop-api.loadbalancer.server.port": "8080",
    "traefik.http.middlewares.shop-ratelimit.ratelimit.average": "100",
}


def _traefik_labels(body: Body) -> Body:
    out = _compose_kept(body)
    out["container"]["labels"] = {**out["container"]["labels"], **TRAEFIK_LABELS}
    return out


def _traefik_chosen(body: Body) -> Body:
    out = _traefik_labels(body)
    out["container"]["labels"] = LabelFilter(["*", "!traefik.*"])(out["container"]["labels"])
    return out


# What a JSON-heavy service adds to each of its lines (a logging library's context, the
# request's client): twelve keys, one of them new on every line.
WIDE_ATTRIBUTES = {
    "env": "production",
    "region": "eu-west-1",
    "build": "2026.12.01-3f9c2a1",
    "thread": "http-nio-8080-exec-7",
    "class": "com.example.shop.checkout.CheckoutService",
    "method": "placeOrder",
    "client_version": "ios-5.12.0",
    "locale": "de-DE",
    "feature_flags": "new-cart,fast-checkout",
    "retry": 0,
    "upstream_ms": 12.5,
}


def _wide(body: Body) -> Body:
    """The document with WIDE_ATTRIBUTES and a session id in its attributes, where it has
    attributes (lines with keys of their own)."""
    if not body.get("attributes"):
        return body
    out = copy.deepcopy(body)
    session = hashlib.blake2b(orjson.dumps(body["attributes"]), digest_size=8).hexdigest()
    out["attributes"] = {**out["attributes"], **WIDE_ATTRIBUTES, "session_id": session}
    return out


def _indexing(*patterns: str, wide: bool = False) -> Callable[[Body], Body]:
    """The document as the collector makes it with LOGPIPE_INDEXED_ATTRIBUTES=patterns."""
    chosen = AttributeFilter(patterns)

    def split(body: Body) -> Body:
        out = _wide(body) if wide else copy.deepcopy(body)
        attributes = out.pop("attributes", None)
        if attributes:
            indexed, unindexed = chosen.split(attributes)
            if indexed:
                out["attributes"] = indexed
            if unindexed:
                out[UNINDEXED] = unindexed
        return out

    return split


# The keys a team would leave unindexed in the corpus: the line's own time (the
# document's @timestamp has Docker's) and the logger's source position.
CORPUS_UNSEARCHED = ("!ts", "!time", "!@timestamp", "!caller")
# Of a JSON-heavy service's keys, those searched: the ids and where the line came from.
WIDE_SEARCHED = ("request_id", "user_id", "session_id", "component", "service.name")


def _keys_without(path: str, *keys: str) -> Callable[[Body], Body]:
    """The object-valued field at `path` (`attributes`, `container.labels`) without
    `keys`; left out when nothing else is in it."""
    *parents, last = path.split(".")

    def drop(body: Body) -> Body:
        out = copy.deepcopy(body)
        node = out
        for part in parents:
            node = node[part]
        found = node.get(last)
        if isinstance(found, dict):
            for key in keys:
                found.pop(key, None)
            if not found:
                del node[last]
        return out

    return drop


# The template's properties are leaves under dotted names (version 5 on): a variant
# changes `m["properties"]["container.id"]`, say.
def _text(change: dict[str, Any]) -> Callable[[Mappings], None]:
    def apply(m: Mappings) -> None:
        for spec in m["properties"].values():
            if spec.get("type") == "text":
                spec.update(change)

    return apply


def _message(change: dict[str, Any]) -> Callable[[Mappings], None]:
    return lambda m: m["properties"]["message"].update(change)


def _unmapped(*paths: str) -> Callable[[Mappings], None]:
    def apply(m: Mappings) -> None:
        for path in paths:
            m["properties"].pop(path, None)

    return apply


def _remap(change: dict[str, Any], *paths: str) -> Callable[[Mappings], None]:
    def apply(m: Mappings) -> None:
        for path in paths:
            m["properties"][path].update(change)

    return apply


def _both(*changes: Callable[[Mappings], None]) -> Callable[[Mappings], None]:
    def apply(m: Mappings) -> None:
        for change in changes:
            change(m)

    return apply


def _nested_mappings(m: Mappings) -> None:
    """The template before version 5: object mappers for nested documents, not dynamic
    but under `fields` (none here)."""
    m.clear()
    m.update(
        {
            "dynamic": False,
            "properties": copy.deepcopy(templates.MAPPINGS["properties"]),
        }
    )


# One value per data stream: the stream's own name parts, and its dataset.
PER_STREAM = templates.PER_STREAM
# One value per container (or host): what the shipper says about where a line came from.
PER_SOURCE = (
    "host.name",
    "container.id",
    "container.name",
    "container.image.name",
    "service.name",
    "service.environment",
)
# Few values, one per line: how it was parsed, its stream, how many lines it joined.
PER_LINE_SMALL = ("stream", "logpipe.parser", "tags")
# Unique per line, searched by value, never charted.
UNIQUE = ("trace.id", "span.id")
DOC_VALUES_ONLY = {"index": False}
INDEX_ONLY = {"doc_values": False}


def _attributes_dynamic(m: Mappings) -> None:
    """attributes.* as one keyword field per key (dynamic), not one flattened field."""
    del m["properties"]["attributes"]
    m["dynamic_templates"].insert(
        0,
        {
            "attributes": {
                "path_match": "attributes.*",
                "mapping": {"type": "keyword", "ignore_above": 1024},
            }
        },
    )


def _fluent_bit_mappings(m: Mappings) -> None:
    m.clear()
    m["properties"] = {"@timestamp": {"type": "date_nanos"}}


def drained(docs: list[Doc]) -> list[Doc]:
    """`docs` in the order the shipper's catch-up sends them (:func:`drain_order` with
    four containers at a time, 1,000 lines of each in turn)."""
    return drain_order(docs, at_once=4, chunk=1000)


VARIANTS: dict[str, Variant] = {
    "collector": Variant("the collector's documents, ids and template"),
    "hash-ids": Variant("ids hashed from host, container, stream, ts, seq", ids="hash"),
    "time-ids": Variant("ids of 8 bytes of ns then 8 of hash", ids="time"),
    "auto-ids": Variant("ids made by Elasticsearch", ids="auto"),
    "norms": Variant("text fields with norms (scoring)", mappings=_text({"norms": True})),
    "no-norms": Variant("text fields without norms", mappings=_text({"norms": False})),
    "message-freqs": Variant(
        "message without positions (no phrase queries)",
        mappings=_message({"index_options": "freqs", "norms": False}),
    ),
    "ingested": Variant("event.ingested in every document", body=_with_ingested),
    "no-ingested": Variant(
        "no event.ingested", body=_without("event.ingested"), mappings=_unmapped("event.ingested")
    ),
    "no-constants": Variant(
        "no data_stream.* nor event.dataset in documents",
        body=_without("data_stream", "event.dataset"),
    ),
    "no-labels": Variant("no container.labels", body=_without("container.labels")),
    "compose-labels": Variant(
        "the 9 labels Compose adds to every container, in container.labels",
        body=_compose_labels,
    ),
    "compose-kept": Variant(
        "of those, what the collector keeps by default (labels.EVERY_LABEL)", body=_compose_kept
    ),
    "traefik-labels": Variant(
        "Compose's labels the collector keeps and 8 Traefik ones (a service behind Traefik)",
        body=_traefik_labels,
    ),
    "traefik-chosen": Variant(
        "the same with LOGPIPE_DOCUMENT_LABELS=*,!traefik.*", body=_traefik_chosen
    ),
    "six-fields": Variant("@timestamp, message, stream, host, container name, level", body=_six),
    "fluent-bit": Variant(
        "as Fluent Bit sends the line (dynamic mapping, ids by Elasticsearch)",
        ids="auto",
        body=_fluent_bit,
        mappings=_fluent_bit_mappings,
        settings={"codec": "default"},  # its own index has no template: the default codec
    ),
    "const-dv": Variant(
        "data_stream.*, event.dataset: doc values only (index: false)",
        mappings=_remap(DOC_VALUES_ONLY, *PER_STREAM),
    ),
    "indexed-constants": Variant(
        "data_stream.*, event.dataset: indexed keywords with doc values (template v3)",
        mappings=_remap({"type": "keyword", "ignore_above": 1024, "index": True}, *PER_STREAM),
    ),
    "const-index": Variant(
        "data_stream.*, event.dataset: index only (doc_values: false)",
        mappings=_remap(INDEX_ONLY, *PER_STREAM),
    ),
    "const-ck": Variant(
        "data_stream.*, event.dataset: constant_keyword (not on every distribution)",
        mappings=_remap({"type": "constant_keyword"}, *PER_STREAM),
    ),
    "source-dv": Variant(
        "host, container, service keywords: doc values only (index: false)",
        mappings=_remap(DOC_VALUES_ONLY, *PER_SOURCE),
    ),
    "small-dv": Variant(
        "stream, logpipe.parser, tags: doc values only (index: false)",
        mappings=_remap(DOC_VALUES_ONLY, *PER_LINE_SMALL),
    ),
    "unique-index": Variant(
        "trace.id, span.id: index only (doc_values: false)", mappings=_remap(INDEX_ONLY, *UNIQUE)
    ),
    "labels-no-service": Variant(
        "container.labels without com.docker.compose.service (service.name has it)",
        body=_keys_without("container.labels", "com.docker.compose.service"),
    ),
    "no-attributes": Variant("no attributes (the parsed keys)", body=_without("attributes")),
    "const-small-dv": Variant(
        "const-dv and small-dv together",
        mappings=_both(
            _remap(DOC_VALUES_ONLY, *PER_STREAM), _remap(DOC_VALUES_ONLY, *PER_LINE_SMALL)
        ),
    ),
    "all-dv": Variant(
        "const-dv, source-dv and small-dv together",
        mappings=_both(
            _remap(DOC_VALUES_ONLY, *PER_STREAM),
            _remap(DOC_VALUES_ONLY, *PER_SOURCE),
            _remap(DOC_VALUES_ONLY, *PER_LINE_SMALL),
        ),
    ),
    "attrs-no-dv": Variant(
        "attributes (flattened) without doc values (no aggregations on its keys)",
        mappings=_remap(INDEX_ONLY, "attributes"),
    ),
    "attrs-stored": Variant(
        "attributes kept in _source only (flattened, neither indexed nor doc values)",
        mappings=_remap({"index": False, "doc_values": False}, "attributes"),
    ),
    "labels-no-dv": Variant(
        "container.labels (flattened) without doc values (no aggregations on labels)",
        mappings=_remap(INDEX_ONLY, "container.labels"),
    ),
    "flattened-no-dv": Variant(
        "attributes and container.labels without doc values",
        mappings=_remap(INDEX_ONLY, "attributes", "container.labels"),
    ),
    "attrs-no-time": Variant(
        "attributes without the line's own time (ts, time, @timestamp)",
        body=_keys_without("attributes", "ts", "time", "@timestamp"),
    ),
    "attrs-no-unique": Variant(
        "attributes without the line's own time, request_id and user_id",
        body=_keys_without("attributes", "ts", "time", "@timestamp", "request_id", "user_id"),
    ),
    "attrs-chosen": Variant(
        "LOGPIPE_INDEXED_ATTRIBUTES=" + ",".join(CORPUS_UNSEARCHED),
        body=_indexing(*CORPUS_UNSEARCHED),
    ),
    "attrs-wide": Variant(
        "12 more keys in the documents with attributes (a JSON-heavy service)", body=_wide
    ),
    "attrs-wide-chosen": Variant(
        "the same with LOGPIPE_INDEXED_ATTRIBUTES=" + ",".join(WIDE_SEARCHED),
        body=_indexing(*WIDE_SEARCHED, wide=True),
    ),
    "attrs-dynamic": Variant(
        "attributes: one keyword per key (dynamic mapping), not one flattened field",
        mappings=_attributes_dynamic,
    ),
    "nested": Variant(
        "before template version 5: nested documents, object mappers",
        nested=True,
        mappings=_nested_mappings,
    ),
    "nested-docs": Variant(
        "nested documents into the template of today (no object mappers)", nested=True
    ),
    "lz4": Variant(
        "index.codec default (LZ4), the template's before best_compression",
        settings={"codec": "default"},
    ),
    "refresh-5s": Variant("refresh_interval 5s", settings={"refresh_interval": "5s"}),
    "req-500": Variant("500 documents per request", per_request=500),
    "req-5000": Variant("5,000 documents per request", per_request=5000),
    "req-10000": Variant("10,000 documents per request", per_request=10000),
    "conn-1": Variant("1 connection", connections=1),
    "conn-2": Variant("2 connections", connections=2),
    "gzip": Variant("request bodies gzipped, level 1 (LOGPIPE_ES_COMPRESSION=gzip)", gzip=True),
    "drain-order": Variant(
        "in the order a drain sends them: 4 containers' lines at a time, from their start",
        order=drained,
    ),
    "drain-order-5000": Variant(
        "drain-order in requests of 5,000 (the collector's bulk_max_docs)",
        order=drained,
        per_request=5000,
    ),
    "drain-sorted": Variant(
        "drain-order-5000 with each request's documents sorted by _id",
        order=lambda docs: sorted_within(drained(docs), 5000),
        per_request=5000,
    ),
}


def sorted_within(docs: list[Doc], size: int) -> list[Doc]:
    """`docs` cut in runs of `size` (one bulk request each), each run sorted by `_id`."""
    return [
        d
        for start in range(0, len(docs), size)
        for d in sorted(docs[start : start + size], key=lambda d: d.id)
    ]


def drain_order(docs: list[Doc], at_once: int, chunk: int) -> list[Doc]:
    """`docs` (in time order) as a shipper catching up finished logs sends them: the
    containers `at_once` at a time, each read from its first line, `chunk` lines of
    each in turn; so the ids of every group go back to the first line's time."""
    by_container: dict[str, list[Doc]] = {}
    for doc in docs:
        by_container.setdefault(str(doc.body["container"]["id"]), []).append(doc)
    queues = list(by_container.values())
    out: list[Doc] = []
    for g in range(0, len(queues), at_once):
        group = queues[g : g + at_once]
        for start in range(0, max(len(q) for q in group), chunk):
            for q in group:
                out.extend(q[start : start + chunk])
    return out


DEFAULT = "collector,hash-ids,time-ids,auto-ids,no-norms,no-ingested,no-labels,fluent-bit"


@dataclass
class Run:
    """What one bulk load of one variant cost."""

    cpu_us: float  # ES CPU-µs per document, window minus the idle rate before
    raw_us: float  # the same without subtracting anything
    seconds: float
    failed: int
    load: float


def build(run: str, n: int) -> list[Doc]:
    """N documents as the collector makes them from the corpus (20 containers)."""
    lines = corpus.lines(min(n, 20_000))
    metas = documents.containers(20, run)
    batches = documents.wire_batches(lines, metas, f"bench-{run}", 5000, -(-n // 5000))
    out: list[Doc] = []
    for body in batches:
        out.extend(documents.documents(body, f"bench.cost{run}"))
    return out[:n]


def items(docs: list[Doc], stream: str, variant: Variant) -> list[bytes]:
    """The bulk lines of every document, shaped as the variant says."""
    out = []
    for doc in docs:
        body = variant.body(doc.body) if variant.body else doc.body
        action: dict[str, Any] = {"_index": stream}
        if variant.ids == "collector":
            action["_id"] = doc.id
        elif variant.ids == "hash":
            action["_id"] = hash_id(doc.body)
        elif variant.ids == "time":
            action["_id"] = time_id(doc.body)
        source = body if variant.nested else flat(body)
        out.append(orjson.dumps({"create": action}) + b"\n" + orjson.dumps(source) + b"\n")
    return out


def template(run: str, variant: Variant) -> dict[str, Any]:
    """The collector's template for this run's stream, changed as the variant says."""
    body = templates.index_template()
    body["index_patterns"] = [f"logs-bench.cost{run}-*"]
    body["priority"] = 1000
    body["_meta"] = {"managed_by": "logpipe bench.doc_cost"}
    mappings = copy.deepcopy(body["template"]["mappings"])
    if variant.mappings:
        variant.mappings(mappings)
    body["template"]["mappings"] = mappings
    body["template"]["settings"] = {**body["template"]["settings"], **variant.settings}
    return body


def fresh_index(run: str, stream: str, variant: Variant) -> str:
    """Apply the variant's template and roll the stream over; delete the older indices."""
    services.es("PUT", f"/_index_template/logpipe-bench-cost{run}", template(run, variant))
    old = [i for s in services.data_streams(stream) for i in s["backing_indices"]]
    if old:
        services.es("POST", f"/{stream}/_rollover")
    else:  # no `PUT _data_stream` on the test node: the first document creates it
        services.es("POST", f"/{stream}/_doc", {"@timestamp": "2000-01-01T00:00:00Z"})
    for index in old:
        services.es("DELETE", f"/{index}")
    [now] = services.data_streams(stream)
    return str(now["backing_indices"][-1])


async def post(lines: list[bytes], per_request: int, connections: int, gzip: bool = False) -> int:
    """Send every item in requests of `per_request` over `connections`; the failed items."""
    url = services.ES_URL + "/_bulk?filter_path=errors,items.*.error.type"
    headers = {"Content-Type": "application/x-ndjson"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    starts = list(range(0, len(lines), per_request))
    failed = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failed
        while starts:
            start = starts.pop(0)
            body = b"".join(lines[start : start + per_request])
            if gzip:
                body = igzip.compress(body, 1)
            async with session.post(url, data=body, headers=headers) as resp:
                answer = orjson.loads(await resp.read())
            if resp.status != 200:
                failed += len(lines[start : start + per_request])
            elif answer.get("errors"):
                failed += len(answer["items"])

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    return failed


def cpu_rate(pids: list[int], seconds: float = 1.0) -> float:
    """Cores the node uses over the next `seconds`."""
    window = procstat.CpuWindow(pids)
    window.start()
    time.sleep(seconds)
    return window.stop() / seconds


def idle_rate(pids: list[int]) -> float:
    """Cores the node uses while nobody of this run talks to it: the least of 3 seconds
    (others' tests use the same node)."""
    return min(cpu_rate(pids) for _ in range(3))


def merging(index: str) -> int:
    """Merges running on `index` now."""
    stats = services.es("GET", f"/{index}/_stats/merge?filter_path=_all.primaries.merges.current")
    return int(stats["_all"]["primaries"]["merges"]["current"])


def wait_idle(pids: list[int], index: str, limit: float = 60) -> None:
    """Until no merge has run on `index` for 2 s (others' use of the node makes its CPU
    a poor sign of this run's end; their share is subtracted as the idle rate)."""
    quiet = 0
    deadline = time.monotonic() + limit
    while quiet < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
        quiet = quiet + 1 if merging(index) == 0 else 0


def measure(run: str, stream: str, docs: list[Doc], variant: Variant) -> Run:
    """Bulk-load the documents as `variant` into a fresh index; Elasticsearch's CPU per doc."""
    lines = items(variant.order(docs) if variant.order else docs, stream, variant)
    index = fresh_index(run, stream, variant)
    pids = services.es_pids()
    idle = idle_rate(pids)
    load = os.getloadavg()[0]
    window = procstat.CpuWindow(pids)
    began = time.monotonic()
    window.start()
    failed = asyncio.run(post(lines, variant.per_request, variant.connections, variant.gzip))
    services.refresh(index)
    wait_idle(pids, index)
    used = window.stop()
    seconds = time.monotonic() - began
    n = len(docs)
    net = max(0.0, used - idle * seconds)
    return Run(net / n * 1e6, used / n * 1e6, seconds, failed, load)


def code_commit() -> str:
    """The commit whose collector builds the documents, in this process, from the work
    tree: '+dirty' when `collector/` has changes."""
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "collector"],
        cwd=report.ROOT, capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    head = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"],
        cwd=report.ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return head + ("+dirty" if dirty else "")


def cleanup(run: str, stream: str) -> None:
    """Delete the run's template and every index it can (the write index must stay)."""
    services.free_disk(stream)
    with contextlib.suppress(urllib.error.HTTPError):
        services.es("DELETE", f"/_index_template/logpipe-bench-cost{run}")


def main() -> None:
    """Measure each variant's CPU per document, alternating, and print the table."""
    p = argparse.ArgumentParser(description=summary(__doc__))
    p.add_argument("--docs", type=int, default=100_000, help="documents per load")
    p.add_argument("--rounds", type=int, default=3, help="loads of each variant")
    p.add_argument("--variants", default=DEFAULT, help=f"comma-separated (default {DEFAULT})")
    p.add_argument(
        "--warmup", type=int, default=1, help="loads of the first variant before, not counted"
    )
    p.add_argument("--list", action="store_true", help="list the variants and exit")
    p.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    args = p.parse_args()
    if args.list:
        for name, v in VARIANTS.items():
            print(f"{name:18} {v.about}")
        return
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}: see --list")
    measured = code_commit()
    run = services.run_id()
    stream = f"logs-bench.cost{run}-default"
    docs = build(run, args.docs)
    loads = [os.getloadavg()[0]]
    results: dict[str, list[Run]] = {n: [] for n in names}
    try:
        for _ in range(args.warmup):  # the node's JIT: a fresh node's first load costs 2-3x
            got = measure(run, stream, docs, VARIANTS[names[0]])
            print(f"warm-up {names[0]}: {got.cpu_us:.1f} µs/doc (not counted)", flush=True)
        for r in range(args.rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                got = measure(run, stream, docs, VARIANTS[name])
                results[name].append(got)
                print(f"round {r + 1} {name}: {got.cpu_us:.1f} µs/doc (raw {got.raw_us:.1f}, "
                      f"{got.seconds:.1f} s, load {got.load:.2f}, failed {got.failed})",
                      flush=True)  # fmt: skip
    finally:
        cleanup(run, stream)
    loads.append(os.getloadavg()[0])
    publish(args, names, results, loads, docs, measured)


def publish(
    args: argparse.Namespace,
    names: list[str],
    results: dict[str, list[Run]],
    loads: list[float],
    docs: list[Doc],
    measured: str,
) -> None:
    """The table: per variant the median and range of the rounds."""
    base = statistics.median(r.cpu_us for r in results[names[0]]) or 1.0
    rows = []
    for name in names:
        runs = results[name]
        net = [r.cpu_us for r in runs]
        med = statistics.median(net)
        rows.append(
            [
                name,
                VARIANTS[name].about,
                f"**{med:.1f}**",
                f"{min(net):.1f}-{max(net):.1f}",
                f"{statistics.median(r.raw_us for r in runs):.1f}",
                f"{med / base:.2f}",
                f"{statistics.median(r.seconds for r in runs):.1f}",
                f"{min(r.load for r in runs):.1f}-{max(r.load for r in runs):.1f}",
                str(sum(r.failed for r in runs)),
            ]
        )
    size = sum(len(orjson.dumps(flat(d.body))) for d in docs) / len(docs)
    report.publish(
        "Elasticsearch CPU per document",
        [
            "variant",
            "what changes",
            "ES CPU-µs/doc (median)",
            "range",
            "raw median",
            f"x {names[0]}",
            "s per load",
            "loadavg (1 min)",
            "failed",
        ],
        rows,
        [
            f"{len(docs):,} documents per load ({size:.0f} bytes of _source on average), "
            f"{args.rounds} rounds after {args.warmup} warm-up load(s), "
            "the variants' order rotating each round",
            "ES CPU = the node's process from the first request until no merge has run for 2 s, "
            "minus its idle rate (the least of 3 s before the load) over that time; "
            "raw = without subtracting it",
            f"load average (1 min) {loads[0]:.2f} at the start, {loads[1]:.2f} at the end",
        ],
        args.append,
        measured,
    )


if __name__ == "__main__":
    main()
