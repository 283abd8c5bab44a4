"""Fuzzing the batch decoder and the ingest endpoint: no exception escapes, no good line is lost.

A batch is good log lines (any text, some with invalid UTF-8 bytes) interleaved with
junk: random bytes, and good lines cut short or with a byte overwritten. Whatever the
mix, every good line must become a document (in Elasticsearch, for the endpoint) and
the answer must be 200, or 400 naming only junk lines.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from elasticsearch import AsyncElasticsearch, Elasticsearch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.app import SINK_KEY, make_app
from collector.batch import decode
from collector.enrich import Context
from collector.shape import nested
from collector.sink import Sink
from collector.wire import NDJSON, PATH_LOGS, ErrorBody, IngestResult
from tests.collector.test_app import AUTH, config, served
from tests.collector.wirelines import log, log_doc_id, source
from tests.conftest import ES_URL

NOW = "2024-05-01T00:00:00.000Z"
# Each generated good line gets a timestamp of its own, so its _id is new everywhere.
_clock = itertools.count(time.time_ns())


@dataclass
class Batch:
    """A body and the ids of the good lines in it (and of those with invalid UTF-8)."""

    lines: list[bytes]
    good_ids: list[str]
    bad_utf8_ids: list[str]
    junk_numbers: set[int]

    @property
    def body(self) -> bytes:
        """The NDJSON body."""
        return b"\n".join(self.lines)


@st.composite
def good_line(draw: st.DrawFn) -> tuple[bytes, str, bool]:
    """A valid log line, its _id, and whether invalid UTF-8 was put into its message."""
    ts = next(_clock)
    raw = log(draw(st.text(max_size=200)) + "@@", ts)
    bad_utf8 = draw(st.booleans())
    if bad_utf8:
        raw = raw.replace(b"@@", draw(st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"])))
    return raw, log_doc_id(ts), bad_utf8


@st.composite
def junk_line(draw: st.DrawFn) -> bytes:
    """Bytes that are not a good line: random, or a good line cut or with a byte replaced."""
    base = log("junk", 1)
    kind = draw(st.sampled_from(["random", "cut", "flip"]))
    if kind == "random":
        raw = draw(st.binary(min_size=1, max_size=300))
    elif kind == "cut":
        raw = base[: draw(st.integers(1, len(base) - 1))]
    else:
        at = draw(st.integers(0, len(base) - 1))
        raw = base[:at] + bytes([draw(st.integers(0, 255))]) + base[at + 1 :]
    return raw.replace(b"\n", b" ")


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    """A source line, then good and junk lines in any order."""
    goods = draw(st.lists(good_line(), max_size=12))
    junks = draw(st.lists(junk_line(), max_size=6))
    entries: list[tuple[bytes, str | None, bool]] = [*goods, *((j, None, False) for j in junks)]
    entries = draw(st.permutations(entries))
    lines, good_ids, bad_utf8_ids, junk_numbers = [source()], [], [], set()
    for number, (raw, doc_id, bad_utf8) in enumerate(entries, start=2):
        lines.append(raw)
        if doc_id is None:
            junk_numbers.add(number)
        else:
            good_ids.append(doc_id)
            if bad_utf8:
                bad_utf8_ids.append(doc_id)
    return Batch(lines, good_ids, bad_utf8_ids, junk_numbers)


@given(batches())
@settings(max_examples=300, deadline=None)
def test_decoder_keeps_every_good_line(batch: Batch) -> None:
    """The decoder raises nothing, makes a document of every good line, names only junk."""
    out = decode(batch.body, Context(), NOW)
    ids = {d.id for d in out.docs}
    assert set(batch.good_ids) <= ids
    assert {e.line for e in out.errors} <= batch.junk_numbers
    assert len(out.errors) == len(out.dead_letters)
    tagged = {d.id for d in out.docs if "invalid_utf8" in d.body.get("tags", [])}
    assert set(batch.bad_utf8_ids) <= tagged


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_decoder_survives_any_bytes(body: bytes) -> None:
    """Any body at all decodes without an exception, every line accounted for."""
    out = decode(body, Context(), NOW)
    lines = body.removeprefix("\ufeff".encode()).split(b"\n")  # a leading BOM is ignored
    non_blank = [raw for raw in lines if raw.strip()]
    assert out.received == len(non_blank)
    assert len(out.docs) + len(out.errors) <= out.received


class Endpoint:
    """A real collector app with a real Sink on the shared node, on its own event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.dataset = "fz." + uuid.uuid4().hex[:10]
        try:
            self.client = self.loop.run_until_complete(self._start())
        except BaseException:
            self.loop.close()
            raise

    async def _start(self) -> TestClient[Any, Any]:
        sink = Sink(AsyncElasticsearch(ES_URL, max_retries=0))
        app = make_app(config(self.dataset), sink)
        client = TestClient(await served(app))
        await client.start_server()
        for _ in range(100):
            if (await client.get("/readyz")).status == 200:
                return client
            await asyncio.sleep(0.1)
        await client.close()
        await sink.__aexit__(None, None, None)
        pytest.fail("collector did not become ready")

    def post(self, body: bytes, gzipped: bool) -> tuple[int, bytes]:
        """POST a batch, return status and raw answer."""
        return self.loop.run_until_complete(self._post(body, gzipped))

    async def _post(self, body: bytes, gzipped: bool) -> tuple[int, bytes]:
        headers = {**AUTH, "Content-Type": NDJSON}
        if gzipped:
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        resp = await self.client.post(PATH_LOGS, data=body, headers=headers)
        return resp.status, await resp.read()

    def close(self) -> None:
        """Stop the app, close the sink and the loop."""
        sink = self.client.app[SINK_KEY]
        self.loop.run_until_complete(self.client.close())
        self.loop.run_until_complete(sink.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(scope="module")
def endpoint(template: None) -> Iterator[Endpoint]:
    """One collector app for every example of the module."""
    e = Endpoint()
    yield e
    e.close()


@pytest.mark.integration
@given(batch=batches(), gzipped=st.booleans())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_endpoint_indexes_every_good_line(
    endpoint: Endpoint, es: Elasticsearch, batch: Batch, gzipped: bool
) -> None:
    """The endpoint answers 200 or a 400 naming junk lines only; every good line is searchable."""
    status, raw = endpoint.post(batch.body, gzipped)
    if batch.junk_numbers:
        assert status in (200, 400), raw  # junk may happen to be a valid line
    else:
        assert status == 200, raw
    if status == 200:
        result = IngestResult.model_validate_json(raw)
    else:
        answer = ErrorBody.model_validate_json(raw)
        assert answer.result is not None
        assert {d.line for d in answer.detail} <= batch.junk_numbers
        result = answer.result
    assert result.received == len([x for x in batch.lines if x.strip()])
    if not batch.good_ids:
        return
    index = f"logs-{endpoint.dataset}*"
    es.indices.refresh(index=index)
    hits = es.search(index=index, query={"ids": {"values": batch.good_ids}}, size=100)
    found = {h["_id"]: nested(h["_source"]) for h in hits["hits"]["hits"]}
    assert set(batch.good_ids) == set(found)
    for doc_id in batch.bad_utf8_ids:
        assert "invalid_utf8" in found[doc_id]["tags"]
