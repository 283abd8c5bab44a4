"""The ingest API answers every request precisely, and indexes what it can.

A real ``make_app`` with a real Sink on the shared Elasticsearch (marked integration),
except where a scripted Elasticsearch stands in for an overloaded or unprepared node.
"""

from __future__ import annotations

import asyncio
import gzip
import hmac
import logging
import time
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import GeneratorType
from typing import Any, cast

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch, Elasticsearch

from collector import app as app_module
from collector import batch as batch_module
from collector import steps
from collector.app import make_app
from collector.badhttp import Runner
from collector.batch import Decoded
from collector.config import CollectorConfig
from collector.deadletter import Sender, unreadable_line
from collector.shape import nested
from collector.sink import Sink, SinkSettings
from collector.templates import DEADLETTER_STREAM
from collector.wire import BODY_LIMIT, NDJSON, PATH_LOGS, UNWRITTEN, IngestResult, LineError
from tests.collector.fake_es import each, fake_es, ok, whole
from tests.collector.wirelines import CONTAINER, HOST, body, log, log_doc_id, source
from tests.conftest import ES_URL, REFUSED_FIELD, REFUSED_KEY, free_port, refusing_template

TOKEN = "unit-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 64 * 1024
integration = pytest.mark.integration


@dataclass
class Api:
    """A running collector app, its client, and where its documents go."""

    client: TestClient[web.Request, web.Application]
    dataset: str

    async def post(self, data: Any, **headers: str) -> tuple[int, dict[str, Any], Any]:
        """POST a batch with the token; (status, json body, headers)."""
        headers = {**AUTH, "Content-Type": NDJSON, **headers}
        resp = await self.client.post(PATH_LOGS, data=data, headers=headers)
        return resp.status, await resp.json(), resp.headers


def config(dataset: str, **overrides: Any) -> CollectorConfig:
    """A collector config for tests: one token, a small body limit, our own dataset."""
    settings: dict[str, Any] = {
        "es_url": [ES_URL],
        "tokens": [TOKEN],
        "routing": {"dataset": dataset},
        "max_body_bytes": LIMIT,
    }
    return CollectorConfig(**(settings | overrides))


@asynccontextmanager
async def running(
    es_url: str = ES_URL, settings: SinkSettings | None = None, **overrides: Any
) -> AsyncIterator[Api]:
    """A collector app on a free port, with a real Sink on `es_url`."""
    dataset = "ut." + uuid.uuid4().hex[:10]
    sink = Sink(AsyncElasticsearch(es_url, max_retries=0), settings)
    app = make_app(config(dataset, **overrides), sink)
    async with sink, TestClient(await served(app)) as client:
        yield Api(client, dataset)


class _Served(TestServer):
    """aiohttp's test server with the runner `serve` uses."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return Runner(self.app, **kwargs)


async def served(app: web.Application) -> TestServer:
    """`app` on a free port, served as `serve` serves it (its runner; body.py inflates the
    bodies)."""
    server = _Served(app)
    await server.start_server(auto_decompress=False)
    return server


def json_body(response: web.Response) -> Any:
    """What the JSON body of `response`, made in memory, holds."""
    assert isinstance(response.body, bytes), response.body
    return orjson.loads(response.body)


async def wait_ready(api: Api) -> None:
    """Until /readyz says ready (the template check runs in the background at start)."""
    for _ in range(100):
        if (await api.client.get("/readyz")).status == 200:
            return
        await asyncio.sleep(0.1)
    pytest.fail("collector did not become ready")


@pytest.fixture
async def api(template: None) -> AsyncIterator[Api]:
    """A ready collector app on the shared Elasticsearch."""
    async with running() as a:
        await wait_ready(a)
        yield a


def stored(es: Elasticsearch, index: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The documents with these ids in `index` (a pattern), by id."""
    es.indices.refresh(index=index)
    hits = es.search(index=index, query={"ids": {"values": ids}}, size=len(ids) + 10)
    return {h["_id"]: nested(h["_source"]) for h in hits["hits"]["hits"]}


def ts0() -> int:
    """A timestamp no other test run used, so ids are new."""
    return time.time_ns()


@integration
async def test_batch_is_indexed_then_answered(api: Api, es: Elasticsearch) -> None:
    """200 comes with counts only once every line is in Elasticsearch."""
    t = ts0()
    status, answer, _ = await api.post(body(source(), log("one", t), log("two", t + 1)))
    assert status == 200
    assert answer == {"received": 3, "indexed": 2, "duplicates": 0, "dead_lettered": 0}
    docs = stored(es, f"logs-{api.dataset}*", [log_doc_id(t), log_doc_id(t + 1)])
    assert sorted(d["message"] for d in docs.values()) == ["one", "two"]


@integration
async def test_replayed_batch_duplicates_nothing(api: Api, es: Elasticsearch) -> None:
    """Sending the same batch again stores nothing new: each line counts as a duplicate."""
    t = ts0()
    batch = body(source(), log("once", t), log("once more", t + 1))
    assert (await api.post(batch))[0] == 200
    status, answer, _ = await api.post(batch)
    assert (status, answer["indexed"], answer["duplicates"]) == (200, 0, 2)
    es.indices.refresh(index=f"logs-{api.dataset}*")
    assert es.count(index=f"logs-{api.dataset}*")["count"] == 2


@integration
async def test_malformed_line_is_named_and_good_lines_kept(api: Api, es: Elasticsearch) -> None:
    """400 names the line that is not JSON; good lines are indexed, the bad one dead-lettered."""
    t = ts0()
    bad = f'{{"kind":"log","src":0,"ts":{t}, broken'.encode()
    status, answer, _ = await api.post(body(source(), log("good", t), bad, log("also", t + 1)))
    assert status == 400
    assert "line 3: not valid JSON" in answer["error"]
    assert answer["detail"][0]["line"] == 3
    assert answer["result"] == {"received": 4, "indexed": 2, "duplicates": 0, "dead_lettered": 1}
    assert len(stored(es, f"logs-{api.dataset}*", [log_doc_id(t), log_doc_id(t + 1)])) == 2
    dead_id = unreadable_line(bad, 3, "", "", Sender(HOST)).id
    [dead] = stored(es, DEADLETTER_STREAM, [dead_id]).values()
    assert dead["event"]["original"] == bad.decode()
    assert dead["error"]["message"].startswith("line 3: not valid JSON")
    assert (dead["host"], dead["source"]) == ({"name": HOST}, {"ip": "127.0.0.1"})


@integration
async def test_a_line_sharing_an_earlier_line_s_id_is_dead_lettered_not_a_duplicate(
    api: Api,
) -> None:
    """Two texts with one stream, ts and seq: the second is kept in the dead-letter
    stream, not answered as a duplicate of the first (which it is not)."""
    t = ts0()
    status, answer, _ = await api.post(body(source(), log("first", t), log("second", t)))
    assert (status, answer) == (
        200,
        {"received": 3, "indexed": 1, "duplicates": 0, "dead_lettered": 1},
    )


@integration
async def test_wrong_schema_is_named_by_field(api: Api) -> None:
    """400 names the field of an off-schema line."""
    t = ts0()
    status, answer, _ = await api.post(body(source(), log("x", t, stream="stdweird")))
    assert status == 400
    assert "line 2: field 'stream' of a 'log' line" in answer["error"]


@integration
async def test_invalid_utf8_is_indexed_and_tagged(api: Api, es: Elasticsearch) -> None:
    """A line with invalid UTF-8 is indexed with U+FFFD, tagged invalid_utf8, answered 200."""
    t = ts0()
    raw = log("bad XX bytes", t).replace(b"XX", b"\xc3\x28")
    status, _, _ = await api.post(body(source(), raw))
    assert status == 200
    [doc] = stored(es, f"logs-{api.dataset}*", [log_doc_id(t)]).values()
    assert doc["message"] == "bad \ufffd( bytes"
    assert "invalid_utf8" in doc["tags"]


@integration
async def test_body_over_the_limit_is_413(api: Api) -> None:
    """A body over max_body_bytes is refused with 413, declared or streamed."""
    big = body(source(), log("x" * LIMIT, 1))
    status, answer, _ = await api.post(big)
    assert status == 413
    assert str(LIMIT) in answer["error"]

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    status, _, _ = await api.post(stream())  # chunked: no Content-Length to check up front
    assert status == 413


def _peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident size


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def gzip_bomb(size: int) -> bytes:
    """A gzip stream of `size` zero bytes (about a thousandth of that compressed)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [packer.compress(chunk) for _ in range(size >> 20)]
    return b"".join([*parts, packer.flush()])


@integration
async def test_gzip_bomb_is_413_without_inflating_it(template: None) -> None:
    """A 1/4 MiB gzip body that inflates to 256 MiB is refused with 413, memory stays flat."""
    bomb = gzip_bomb(256 << 20)
    async with running(max_body_bytes=1 << 20) as api:
        await wait_ready(api)
        assert len(bomb) < 1 << 20, "the bomb must pass the compressed size check"
        _peak_rss_reset()
        before = _status_kib("VmRSS")
        status, answer, _ = await api.post(bomb, **{"Content-Encoding": "gzip"})
        grown_mib = (_status_kib("VmHWM") - before) / 1024
    assert status == 413
    assert "decompressed body is over the 1048576 byte limit" in answer["error"]
    assert grown_mib < 64, f"peak memory grew by {grown_mib:.0f} MiB"


@integration
async def test_gzip_batch_is_accepted_and_corrupt_gzip_is_400(api: Api) -> None:
    """A gzip body is inflated and indexed; a corrupt one is a 400 saying why."""
    t = ts0()
    packed = gzip.compress(body(source(), log("zipped", t)))
    assert (await api.post(packed, **{"Content-Encoding": "gzip"}))[0] == 200
    corrupt = packed[:12] + bytes(16) + packed[28:]
    status, answer, _ = await api.post(corrupt, **{"Content-Encoding": "gzip"})
    assert status == 400
    assert answer["error"].startswith("body is not valid gzip: Error -3 while decompressing")


@integration
async def test_token_missing_or_wrong_is_401(api: Api) -> None:
    """Without the right bearer token nothing is read: 401 with what to fix."""
    data = body(source(), log("x", 1))
    resp = await api.client.post(PATH_LOGS, data=data)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="logpipe"'
    assert "missing bearer token" in (await resp.json())["error"]
    resp = await api.client.post(PATH_LOGS, data=data, headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
    assert "not accepted" in (await resp.json())["error"]


@integration
async def test_tokens_are_compared_in_constant_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every configured token is checked with hmac.compare_digest, never with ==."""
    seen: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return a == b

    monkeypatch.setattr(hmac, "compare_digest", spy)
    headers = {"Authorization": "Bearer wrong"}
    resp = await api.client.post(PATH_LOGS, data=b"", headers=headers)
    assert resp.status == 401
    assert seen == [(b"wrong", TOKEN.encode())]


@integration
async def test_unknown_path_is_404_and_wrong_method_405(api: Api) -> None:
    """Unknown paths and methods get JSON errors that say what exists."""
    resp = await api.client.post("/v2/logs", data=b"{}", headers=AUTH)
    assert resp.status == 404
    assert "ingest is POST /v1/logs" in (await resp.json())["error"]
    resp = await api.client.get(PATH_LOGS, headers=AUTH)
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    assert "not allowed" in (await resp.json())["error"]


@integration
async def test_a_sender_refused_again_and_again_is_logged_once_per_kind(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A misconfigured sender retries for ever: the collector's log names it and why once
    (per kind of refusal), where otherwise only metrics and dead letters showed it."""
    data = body(source(), log("x", 1))
    with caplog.at_level(logging.WARNING, logger="logpipe.collector.app"):
        for _ in range(3):
            resp = await api.client.post(
                PATH_LOGS, data=data, headers={"Authorization": "Bearer no"}
            )
            assert resp.status == 401
        for _ in range(2):
            status, _, _ = await api.post(data, **{"Content-Type": "application/xml"})
            assert status == 415
        status, _, _ = await api.post(b'{"kind": "log"}\n')
        assert status == 400
    said = [r.getMessage() for r in caplog.records if r.name == "logpipe.collector.app"]
    assert said == [
        "batch refused 401 (no or wrong token) from 127.0.0.1: bearer token not accepted: "
        "check LOGPIPE_TOKEN on the shipper",
        "batch refused 415 (media type not read) from 127.0.0.1: Content-Type "
        "'application/xml' not supported (send application/x-ndjson)",
        "batch refused 400 (bad request or lines) from 127.0.0.1: 1 of 1 lines rejected "
        "(first: line 1: field 'src' of a 'log' line: Field required); the rejected ones "
        f"stored in the dead-letter data stream {DEADLETTER_STREAM}",
    ]


async def test_unsupported_media_is_415(api: Api) -> None:
    """A Content-Type or Content-Encoding the collector cannot read is a 415."""
    data = body(source(), log("x", 1))
    status, answer, _ = await api.post(data, **{"Content-Type": "application/xml"})
    assert status == 415
    assert "application/x-ndjson" in answer["error"]
    status, answer, _ = await api.post(data, **{"Content-Encoding": "compress"})
    assert status == 415
    assert "use gzip, deflate or none" in answer["error"]
    # A declared charset other than UTF-8 would have been read as UTF-8, mangled for good.
    for charset in ("iso-8859-1", '"UTF-16"'):
        ctype = f"{NDJSON}; charset={charset}"
        status, answer, _ = await api.post(data, **{"Content-Type": ctype})
        assert status == 415
        named = charset.strip('"').lower()
        assert answer["error"] == (
            f"Content-Type charset '{named}' not supported: send the body as UTF-8"
        )
    for charset in ("utf-8", "UTF-8", '"utf-8"', "us-ascii"):
        ctype = f"{NDJSON}; charset={charset}"
        status, answer, _ = await api.post(data, **{"Content-Type": ctype})
        assert status == 200, answer


@integration
async def test_busy_collector_answers_503_with_retry_after(
    template: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With max_in_flight batches open, another is refused at once with 503 + Retry-After."""
    release = asyncio.Event()
    t = ts0()
    async with running(max_in_flight=1) as api:
        await wait_ready(api)
        sink = api.client.app[app_module.SINK_KEY]
        write = sink.write

        async def held_write(docs: Any) -> Any:
            await release.wait()  # Elasticsearch slow to answer: the batch stays in flight
            return await write(docs)

        monkeypatch.setattr(sink, "write", held_write)
        first = asyncio.create_task(api.post(body(source(), log("first", t))))
        for _ in range(100):  # until the first batch holds the one place
            if api.client.app[app_module.STATE_KEY].in_flight:
                break
            await asyncio.sleep(0.02)
        status, answer, headers = await api.post(body(source(), log("x", t + 1)))
        release.set()
        assert status == 503
        assert headers["Retry-After"] == "1"
        assert "too many batches in flight" in answer["error"]
        assert headers[UNWRITTEN] == "1"
        done, _, done_headers = await first
        assert done == 200
        assert UNWRITTEN not in done_headers


@integration
async def test_health_readiness_and_metrics(api: Api) -> None:
    """/healthz and /readyz answer 200; /metrics counts records, outcomes and bulk latency."""
    assert (await api.client.get("/healthz")).status == 200
    assert (await (await api.client.get("/readyz")).json()) == {"status": "ready"}
    t = ts0()
    await api.post(body(source(), log("m", t), b"not json"))
    text = await (await api.client.get("/metrics")).text()
    for name in (
        "logpipe_collector_records_received_total",
        "logpipe_collector_records_indexed_total",
        "logpipe_collector_records_retried_total",
        "logpipe_collector_records_dead_lettered_total",
        "logpipe_collector_bulk_seconds_count",
        "logpipe_collector_batches_in_flight",
        'logpipe_collector_requests_total{status="400"}',
    ):
        assert name in text, name
    # A sample is `name{labels} value`, and a label's value may hold spaces: the value is
    # what follows the last one.
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values["logpipe_collector_records_received_total"] >= 3
    assert values["logpipe_collector_records_indexed_total"] >= 1
    assert values["logpipe_collector_records_dead_lettered_total"] >= 1
    assert values["logpipe_collector_bulk_seconds_count"] >= 1
    assert values["logpipe_collector_batches_in_flight"] == 0


async def test_readyz_is_503_when_elasticsearch_is_unreachable() -> None:
    """/readyz says Elasticsearch cannot be reached; ingest answers 503, not an error."""
    async with running(es_url=f"http://127.0.0.1:{free_port()}") as api:
        resp = await api.client.get("/readyz")
        assert resp.status == 503
        assert "not reachable" in (await resp.json())["error"]
        status, _, headers = await api.post(body(source(), log("x", 1)))
        assert status == 503
        assert "Retry-After" in headers
        assert headers[UNWRITTEN] == "1", "refused before writing: the next try needs no lookup"


async def test_missing_template_is_503_naming_setup() -> None:
    """Without our index template, ingest and /readyz answer 503 and say to run setup."""
    async with fake_es() as fake:
        fake.template_status = 404
        async with running(es_url=fake.url) as api:
            resp = await api.client.get("/readyz")
            assert resp.status == 503
            assert "run `logpipe-collector setup`" in (await resp.json())["error"]
            status, answer, headers = await api.post(body(source(), log("x", 1)))
            assert status == 503
            assert "run `logpipe-collector setup`" in answer["error"]
            assert headers["Retry-After"] == "5"
            assert headers[UNWRITTEN] == "1"
            assert fake.requests == [], "nothing may be indexed before setup"


@pytest.mark.parametrize(("failure", "status"), [(whole(429), 429), (whole(503), 503)])
async def test_overloaded_or_failing_elasticsearch_is_retry_later(
    failure: Any, status: int
) -> None:
    """Elasticsearch answering 429 (or 5xx) past the deadline: 429 (or 503) + Retry-After."""
    settings = SinkSettings(retry_deadline=0.3, backoff_initial=0.05)
    async with fake_es(failure) as fake, running(es_url=fake.url, settings=settings) as api:
        await wait_ready(api)
        got, answer, headers = await api.post(body(source(), log("x", 1)))
    assert got == status
    assert int(headers["Retry-After"]) >= 1
    assert "did not take 1 documents in time" in answer["error"]
    # Some of a larger batch may be indexed: the shipper marks its next try.
    assert UNWRITTEN not in headers


async def test_every_answer_to_a_batch_says_the_body_limit_and_what_it_counts() -> None:
    """A sender learns from a batch's answer, taken or refused, the largest body it may
    send, in decompressed bytes: later bodies that compress worse than the one refused
    are split before they are sent, instead of refused again."""
    async with fake_es(ok) as fake, running(es_url=fake.url) as api:
        await wait_ready(api)
        status, _, headers = await api.post(body(source(), log("x", 1)))
        assert status == 200
        assert headers[BODY_LIMIT] == f"{LIMIT} inflated"
        big = gzip.compress(body(source(), log("x" * LIMIT, 1)))
        status, _, headers = await api.post(big, **{"Content-Encoding": "gzip"})
        assert status == 413
        assert headers[BODY_LIMIT] == f"{LIMIT} inflated"


async def test_per_item_429_is_retried_before_answering() -> None:
    """A per-item 429 is retried inside the request; the shipper sees one 200."""
    busy = each(lambda a, s: 429)
    async with fake_es(busy, busy) as fake, running(es_url=fake.url) as api:
        fake.script.append(each(lambda a, s: 201))
        await wait_ready(api)
        status, answer, _ = await api.post(body(source(), log("x", 1)))
    assert (status, answer["indexed"]) == (200, 1)
    assert len(fake.requests) == 3


@integration
async def test_value_the_template_refuses_is_dead_lettered(
    es: Elasticsearch, template: None
) -> None:
    """A real mapping rejection (an operator's template maps the line's logger as a long)
    is dead-lettered; the batch is a 200."""
    async with running() as api:
        refusing_template(es, api.dataset)
        await wait_ready(api)
        t = ts0()
        refused = orjson.dumps({"msg": "refused", REFUSED_KEY: "app"}).decode()
        status, answer, _ = await api.post(body(source(), log(refused, t), log("fine", t + 1)))
    assert status == 200
    assert (answer["indexed"], answer["dead_lettered"]) == (1, 1)
    [dead] = stored(es, DEADLETTER_STREAM, [log_doc_id(t)]).values()
    assert f"failed to parse field [{REFUSED_FIELD}] of type [long]" in dead["error"]["message"]
    assert dead["container"]["id"] == CONTAINER


async def test_exit_code_beyond_a_long_is_refused_naming_the_field() -> None:
    """An exit code Elasticsearch's long cannot hold is answered 400 naming exit_code, not
    taken with a 200 and left for the node to refuse; the good line is indexed."""
    t = ts0()
    event = orjson.dumps({"kind": "event", "src": 0, "ts": t, "action": "die", "exit_code": 2**63})
    async with fake_es(ok) as fake, running(es_url=fake.url) as app:
        await wait_ready(app)
        status, answer, _ = await app.post(body(source(), event, log("fine", t)))
    assert status == 400
    assert "line 2: field 'exit_code' of an 'event' line" in answer["error"]
    assert answer["result"]["indexed"] == 1


def test_a_batch_of_bad_lines_only_is_not_told_the_others_were_indexed() -> None:
    """The 400's message speaks of other lines indexed only when some were."""
    result = IngestResult(received=2, indexed=0, duplicates=0, dead_lettered=1)  # and a source
    bad = [LineError(line=2, error="not valid JSON")]
    alone = json_body(app_module._partial(bad, result))["error"]
    assert alone == (
        "1 of 2 lines rejected (first: line 2: not valid JSON); the rejected ones stored in "
        f"the dead-letter data stream {DEADLETTER_STREAM}"
    )
    result = IngestResult(received=3, indexed=2, duplicates=0, dead_lettered=1)
    mixed = json_body(app_module._partial(bad, result))["error"]
    assert "); the other lines were indexed and the rejected ones stored" in mixed


def test_a_401_names_the_scheme_to_authenticate_with() -> None:
    """Every 401 carries the challenge HTTP requires (WWW-Authenticate: Bearer)."""
    resp = app_module.error_response(401, "missing bearer token")
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="logpipe"'
    assert "WWW-Authenticate" not in app_module.error_response(403, "wrong kind").headers


async def test_no_phase_of_a_batch_holds_the_event_loop_for_all_its_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In steps of no time and parts of 8 documents, every phase of a batch of 200 lines
    yields between every two parts, so none holds the event loop for the whole batch:
    decoding, setting apart same ids, encoding, grouping into requests (before each of
    its 20), freeing the items sent and the documents. Each line is indexed once."""
    yields: Counter[str] = Counter()
    finish = steps.finish

    def counted(job: Generator[None, None, Any]) -> Generator[None, None, Any]:
        assert isinstance(job, GeneratorType)  # a generator function's, named by its code
        while True:
            try:
                next(job)
            except StopIteration as done:
                return done.value
            yields[job.gi_code.co_name] += 1
            yield

    monkeypatch.setattr(steps, "finish", lambda job: finish(counted(job)))
    monkeypatch.setattr(steps, "STEP_SECONDS", 0)
    monkeypatch.setattr(steps, "PART", 8)
    lines = [log(f"line {i}", 1_000 + i) for i in range(200)]
    async with (
        fake_es(ok) as fake,
        running(es_url=fake.url, settings=SinkSettings(max_docs=10)) as api,
    ):
        await wait_ready(api)
        status, answer, _ = await api.post(body(source(), *lines))
    assert (status, answer["indexed"]) == (200, 200)
    assert sorted(fake.ids()) == sorted(log_doc_id(1_000 + i) for i in range(200))
    assert len(fake.requests) == 20
    parts = 200 // 8
    assert yields["decoding"] >= 2
    assert yields["setting_apart"] >= parts
    assert yields["encoding"] >= parts
    assert yields["grouping"] >= 20
    assert yields["releasing"] >= 2 * parts  # the items sent, then the documents


async def test_healthz_is_answered_while_a_big_body_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A body that takes a few hundred ms to decode (2,000 new containers) leaves the event
    loop between steps: /healthz, asked once decoding began, is answered before it ends;
    the batch is indexed whole."""
    decoding = batch_module.decoding
    progress = {"taken": 0, "over": False}
    begun = asyncio.Event()

    def watched(*args: Any, **kwargs: Any) -> Generator[None, None, Decoded]:
        inner = decoding(*args, **kwargs)
        while True:
            try:
                next(inner)
            except StopIteration as done:
                progress["over"] = True
                return cast("Decoded", done.value)
            progress["taken"] += 1
            begun.set()
            yield

    monkeypatch.setattr(batch_module, "decoding", watched)
    # Steps of 1 ms: /healthz on a new connection takes the loop several turns.
    monkeypatch.setattr(steps, "STEP_SECONDS", 0.001)
    lines = []
    for k in range(2000):
        lines += [source(k, container_id=f"{k:064x}"), log(f"line {k}", 1_000 + k, src=k)]
    # _bulk requests under 1 MiB: aiohttp warns of a bigger payload given as bytes.
    settings = SinkSettings(max_bytes=512 * 1024)
    async with (
        fake_es(ok) as fake,
        running(es_url=fake.url, settings=settings, max_body_bytes=2**24) as api,
    ):
        await wait_ready(api)
        posted = asyncio.create_task(api.post(body(*lines)))
        await asyncio.wait_for(begun.wait(), 30)
        resp = await api.client.get("/healthz")
        assert (resp.status, progress["over"]) == (200, False)
        status, answer, _ = await posted
    assert (status, answer["indexed"]) == (200, 2000)
    assert progress["taken"] > 2
