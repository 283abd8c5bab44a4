"""Delivery against an in-process collector: refusals are retried, failures are not silent."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gzip
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from isal import igzip

from collector.wire import BODY_LIMIT, PATH_LOGS, SENT_AGAIN, UNWRITTEN
from shipper import metrics
from shipper import sink as sink_module
from shipper.batch import encode
from shipper.config import load_config
from shipper.cursor import CursorStore
from shipper.deliver import Sender, split_body, split_under
from shipper.errors import RejectedDelivery, RetryableDelivery
from shipper.inbox import Inbox
from shipper.record import EventRecord, LogRecord, Meta, Record
from shipper.sink import NOT_A_COLLECTOR, CollectorClient, Endpoint, body_size
from shipper.spool import Spool
from tests.conftest import ES_URL, free_port

META = Meta("c1", "app", "busybox")
# A collector's answer to a batch of one source line and one log line.
ANSWER = {"received": 2, "indexed": 1, "duplicates": 0, "dead_lettered": 0, "dropped": 0}


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, list[str]]]:
    """A collector that takes only the token "good"; the Authorization headers it saw."""
    seen: list[str] = []

    async def logs(request: web.Request) -> web.Response:
        await request.read()
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer good":
            return web.json_response({"error": "unknown token"}, status=401)
        return web.json_response(ANSWER)

    app = web.Application()
    app.router.add_post(PATH_LOGS, logs)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), seen
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def serving(*routes: web.RouteDef) -> AsyncIterator[str]:
    """A scripted collector with `routes` on a free port, for the block: its base URL."""
    app = web.Application()
    app.add_routes(routes)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def _failed(reason: str) -> float:
    return float(metrics.BATCHES_FAILED.labels(reason)._value.get())


async def _sender_of(tmp_path: Path, client: object, url: str, segments: int) -> Sender:
    """A Sender through the scripted `client`, its disk buffer holding `segments` batches
    of one line (timestamps 1, 2, ...)."""
    config = load_config(state_dir=tmp_path, collector_url=url)
    spool = Spool(tmp_path / "spool", 10**6)
    spool.open()
    queue = Inbox(100, metrics.PerContainer(False, 1))
    sender = Sender(config, queue, spool, client, CursorStore(tmp_path))  # type: ignore[arg-type]
    for ts in range(1, segments + 1):
        await spool.write(encode([LogRecord(META, "stdout", ts, 0, b"x")], "h"))
    return sender


async def test_a_token_file_missing_at_a_401_is_a_refusal_retried(
    tmp_path: Path, collector: tuple[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    """A token file being replaced when a 401 comes is a counted, logged refusal: the
    batch stays and is delivered once the file holds the right token again, which is
    logged too (the failures were, and a log that ends on them reads as an outage)."""
    caplog.set_level(logging.INFO, logger="logpipe.shipper.deliver")
    url, seen = collector
    token = tmp_path / "token"
    token.write_text("old\n")
    config = load_config(state_dir=tmp_path, collector_url=url, token_file=token)
    spool = Spool(tmp_path / "spool", 10**6)
    spool.open()
    await spool.write(encode([LogRecord(META, "stdout", 5, 0, b"hello")], "h"))
    store = CursorStore(tmp_path)
    unauthorized, unreadable = _failed("unauthorized"), _failed("token_file")
    async with CollectorClient(config) as client:
        sender = Sender(config, Inbox(100, metrics.PerContainer(False, 1)), spool, client, store)
        token.unlink()
        task = asyncio.create_task(sender.run())
        for _ in range(200):
            if _failed("token_file") > unreadable:
                break
            await asyncio.sleep(0.02)
        assert _failed("unauthorized") > unauthorized
        assert "LOGPIPE_TOKEN_FILE: cannot read" in sender.last_error
        assert not task.done()
        token.write_text("good\n")
        assert await sender.drain(10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert seen[0] == "Bearer old"
    assert seen[-1] == "Bearer good"
    [again] = [r for r in caplog.records if r.getMessage() == "batches delivered again"]
    assert again.levelname == "INFO"
    assert again.waited_seconds >= 0  # type: ignore[attr-defined]


async def test_a_401_names_the_unreadable_token_file(
    tmp_path: Path, collector: tuple[str, list[str]]
) -> None:
    """The refusal says both why the batch was refused and why the token was not re-read."""
    url, _ = collector
    token = tmp_path / "token"
    token.write_text("old\n")
    config = load_config(state_dir=tmp_path, collector_url=url, token_file=token)
    async with CollectorClient(config) as client:
        token.unlink()
        endpoint, _ = client.pick()
        with pytest.raises(RejectedDelivery, match=r"answered 401.*LOGPIPE_TOKEN_FILE: cannot"):
            await client.send(b"", endpoint)


@pytest.mark.integration
async def test_elasticsearch_at_the_collector_url_is_named_as_such(tmp_path: Path) -> None:
    """A shipper pointed at Elasticsearch (the collector's LOGPIPE_ES_URL copied) gets
    its 400 for a path it has not; the refusal says what answered, not only the 400."""
    config = load_config(state_dir=tmp_path, collector_url=ES_URL, token="not-for-es")
    async with CollectorClient(config) as client:
        endpoint, _ = client.pick()
        body = gzip.compress(encode([LogRecord(META, "stdout", 5, 0, b"hi")], "h").body)
        with pytest.raises(RejectedDelivery) as raised:
            await client.send(body, endpoint, 1)
    said = str(raised.value)
    assert said.startswith(f"{ES_URL} answered 4"), said
    assert said.endswith(f"; {NOT_A_COLLECTOR}"), said


async def test_a_refused_connection_names_the_setting_to_check(tmp_path: Path) -> None:
    """A collector URL with the wrong port says the connection was refused and names
    LOGPIPE_COLLECTOR_URL, not aiohttp's "Cannot connect to host ... ssl:default"."""
    config = load_config(state_dir=tmp_path, collector_url=f"http://127.0.0.1:{free_port()}")
    async with CollectorClient(config) as client:
        endpoint, _ = client.pick()
        with pytest.raises(RetryableDelivery) as raised:
            await client.send(b"", endpoint, 1)
    assert "connection refused" in str(raised.value)
    assert "LOGPIPE_COLLECTOR_URL" in str(raised.value)
    assert "ssl:default" not in str(raised.value)


def test_an_unknown_host_name_names_the_setting_to_check() -> None:
    """A misspelt collector host is told as a name that does not resolve."""
    key = SimpleNamespace(host="colector", port=8080, ssl=True)
    exc = aiohttp.ClientConnectorDNSError(key, socket.gaierror(-2, "Name or service not known"))  # type: ignore[arg-type]
    reason = sink_module._connection_failure(exc)
    assert reason.startswith("cannot resolve the collector's host name (Name or service not known)")
    assert "LOGPIPE_COLLECTOR_URL" in reason


async def test_https_to_a_plain_http_collector_says_to_write_http(tmp_path: Path) -> None:
    """An https:// URL for a collector that serves plain HTTP is told as such, not as a
    certificate authority to check."""

    async def logs(request: web.Request) -> web.Response:
        return web.json_response(ANSWER)

    async with serving(web.post(PATH_LOGS, logs)) as url:
        https = url.replace("http://", "https://")
        config = load_config(state_dir=tmp_path, collector_url=https)
        async with CollectorClient(config) as client:
            endpoint, _ = client.pick()
            with pytest.raises(RejectedDelivery) as raised:
                await client.send(b"", endpoint, 1)
    assert "does not speak TLS there" in str(raised.value)
    assert "write http:// in LOGPIPE_COLLECTOR_URL" in str(raised.value)
    assert "LOGPIPE_CA_FILE" not in str(raised.value)


async def test_a_redirect_to_a_page_that_answers_200_delivers_nothing(tmp_path: Path) -> None:
    """A proxy redirecting /v1/logs to a landing page: aiohttp would send the POST on as a
    GET and take the page's 200. The redirect is not followed and the batch stays."""
    gets: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/landing")

    async def landing(request: web.Request) -> web.Response:
        gets.append(request.path)
        return web.Response(text="<html>welcome</html>", content_type="text/html")

    async with serving(web.post(PATH_LOGS, moved), web.get("/landing", landing)) as url:
        config = load_config(state_dir=tmp_path, collector_url=url)
        async with CollectorClient(config) as client:
            endpoint, _ = client.pick()
            with pytest.raises(RejectedDelivery, match=r"answered 301, a redirect to .*/landing"):
                await client.send(b"", endpoint, 1)
    assert gets == []


async def test_a_collector_that_hung_is_given_up_and_the_next_one_takes_the_batch(
    tmp_path: Path,
) -> None:
    """A collector that hung (the kernel takes its connections, nothing answers them)
    held every batch for request_timeout (an hour here): once it answers /healthz no
    more either, the batch is given up, counted, and the next collector takes it."""
    taken: list[bytes] = []
    body = gzip.compress(b"x")  # batches travel gzip

    async def logs(request: web.Request) -> web.Response:
        taken.append(await request.read())
        return web.json_response(ANSWER)

    async with serving(web.post(PATH_LOGS, logs)) as url:
        with socket.socket() as hung:
            hung.bind(("127.0.0.1", 0))
            hung.listen(64)
            urls = [f"http://127.0.0.1:{hung.getsockname()[1]}", url]
            config = load_config(state_dir=tmp_path, collector_url=urls, request_timeout=3600)
            gave_up = _failed("hung")
            async with CollectorClient(config, hang_check=0.2, probe_timeout=0.2) as client:
                sender = await _sender_of(tmp_path, client, urls[0], 1)
                await sender._deliver(await sender.spool.take(), body)
    assert taken == [b"x"]
    assert _failed("hung") - gave_up == 1
    assert urls[0] in sender.last_error
    assert "hung" in sender.last_error


async def test_a_batch_given_up_behind_the_only_url_is_sent_again_at_once(
    tmp_path: Path,
) -> None:
    """Behind one URL (a load balancer) a hung collector's batch is sent again at once,
    the URL not backed off: the balancer's other collectors take it. With several URLs
    the hung one is backed off as after any failure."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        for urls, back_off in (([url], False), ([url, f"http://127.0.0.1:{free_port()}"], True)):
            config = load_config(state_dir=tmp_path, collector_url=urls, request_timeout=3600)
            async with CollectorClient(config, hang_check=0.1, probe_timeout=0.1) as client:
                endpoint, _ = client.pick()
                with pytest.raises(RetryableDelivery, match="hung") as caught:
                    await client.send(gzip.compress(b"x"), endpoint, 1)
            assert caught.value.back_off is back_off


async def test_only_a_collector_that_lets_the_probe_time_out_is_hung(tmp_path: Path) -> None:
    """A collector that refuses the probe's connection is shutting down or gone (the
    batch's request ends by itself), not hung; one whose kernel takes it and nothing
    answers is."""
    config = load_config(state_dir=tmp_path)
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        async with CollectorClient(config, probe_timeout=0.2) as client:
            session = client._session
            assert session is not None
            assert not await client._answers(session, f"http://127.0.0.1:{hung.getsockname()[1]}")
            assert await client._answers(session, f"http://127.0.0.1:{free_port()}")


async def test_a_batch_sent_again_says_so(tmp_path: Path) -> None:
    """A batch whose first try failed (a 503: part of it may be indexed) is sent again
    with SENT_AGAIN, so that the collector looks its ids up in their whole streams (a
    rollover between the tries made a second copy); a first try is not marked."""
    marks: list[str | None] = []

    async def logs(request: web.Request) -> web.Response:
        await request.read()
        marks.append(request.headers.get(SENT_AGAIN))
        if len(marks) == 1:
            return web.json_response({"error": "busy"}, status=503, headers={"Retry-After": "0"})
        return web.json_response(ANSWER)

    async with serving(web.post(PATH_LOGS, logs)) as url:
        config = load_config(state_dir=tmp_path, collector_url=url)
        async with CollectorClient(config) as client:
            sender = await _sender_of(tmp_path, client, url, 2)
            await sender._deliver(await sender.spool.take(), gzip.compress(b"x"))
            await sender._deliver(await sender.spool.take(), gzip.compress(b"x"))
    assert marks == [None, "1", None]


async def test_only_a_try_that_may_have_written_marks_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A try the collector refused before writing any of it (UNWRITTEN: busy, not ready)
    leaves the next try unmarked (no lookup of its ids, which costs Elasticsearch a
    search); one without that word (some may be indexed) marks every later try."""
    monkeypatch.setattr(sink_module, "BACKOFF_INITIAL", 0.001)
    marks: list[str | None] = []
    unwritten = {UNWRITTEN: "1", "Retry-After": "0"}
    answers = [unwritten, {"Retry-After": "0"}, unwritten]

    async def logs(request: web.Request) -> web.Response:
        await request.read()
        marks.append(request.headers.get(SENT_AGAIN))
        if len(marks) <= len(answers):
            headers = answers[len(marks) - 1]
            return web.json_response({"error": "busy"}, status=503, headers=headers)
        return web.json_response(ANSWER)

    async with serving(web.post(PATH_LOGS, logs)) as url:
        config = load_config(state_dir=tmp_path, collector_url=url)
        async with CollectorClient(config) as client:
            sender = await _sender_of(tmp_path, client, url, 1)
            await sender._deliver(await sender.spool.take(), gzip.compress(b"x"))
    assert marks == [None, None, "1", "1"]


async def test_a_try_that_found_no_collector_does_not_mark_the_next(tmp_path: Path) -> None:
    """A collector that refused the connection got none of the batch: the try at the next
    one is a first try still."""
    marks: list[str | None] = []

    async def logs(request: web.Request) -> web.Response:
        await request.read()
        marks.append(request.headers.get(SENT_AGAIN))
        return web.json_response(ANSWER)

    refused = _failed("connection")
    async with serving(web.post(PATH_LOGS, logs)) as url:
        urls = [f"http://127.0.0.1:{free_port()}", url]
        config = load_config(state_dir=tmp_path, collector_url=urls)
        async with CollectorClient(config) as client:
            sender = await _sender_of(tmp_path, client, url, 2)
            for _ in range(2):  # one of the two goes to the closed port first
                await sender._deliver(await sender.spool.take(), gzip.compress(b"x"))
    assert _failed("connection") == refused + 1
    assert marks == [None, None]


async def test_a_collector_slow_to_answer_a_batch_but_alive_is_waited_for(
    tmp_path: Path,
) -> None:
    """A collector that takes long with a batch (Elasticsearch is slow) but answers
    /healthz is waited for: the batch is sent once."""
    posts: list[bytes] = []
    body = gzip.compress(b"x")
    probes: list[str] = []

    async def logs(request: web.Request) -> web.Response:
        posts.append(await request.read())
        await asyncio.sleep(1.5)
        return web.json_response(ANSWER)

    async def healthz(request: web.Request) -> web.Response:
        probes.append(request.path)
        return web.json_response({"status": "ok"})

    async with serving(web.post(PATH_LOGS, logs), web.get("/healthz", healthz)) as url:
        config = load_config(state_dir=tmp_path, collector_url=url)
        async with CollectorClient(config, hang_check=0.2, probe_timeout=1) as client:
            endpoint, _ = client.pick()
            await client.send(body, endpoint, 1)
    assert posts == [b"x"]
    assert len(probes) >= 2, "probed while it waited"


def _kinds(body: bytes) -> list[tuple[str, int]]:
    """Each wire line of a gzip body: its kind and src."""
    import orjson

    return [
        (line["kind"], line["src"])
        for line in map(orjson.loads, gzip.decompress(body).splitlines())
    ]


def test_a_body_splits_into_halves_that_keep_every_source_line_in_place() -> None:
    """Two containers' lines: each half keeps both `source` lines where they stood, the
    lines are split by count, and a body of one line does not split."""
    other = Meta("c2", "db", "busybox")
    records: list[Record] = [LogRecord(META, "stdout", i, 0, b"a") for i in range(3)]
    records += [LogRecord(other, "stdout", i, 0, b"b") for i in range(2)]
    records.append(EventRecord(other, 9, "die", 1))
    whole = encode(records, "h")
    body = gzip.compress(whole.body)
    halves = split_body(body)
    assert halves is not None
    assert [lines for _, lines in halves] == [3, 3]
    assert sum(lines for _, lines in halves) == whole.lines
    first, second = (_kinds(half) for half, _ in halves)
    assert first == [("source", 0), ("log", 0), ("log", 0), ("log", 0), ("source", 1)]
    assert second == [("source", 0), ("source", 1), ("log", 1), ("log", 1), ("event", 1)]
    one = gzip.compress(encode(records[:1], "h").body)
    assert split_body(one) is None


def test_a_body_over_a_learnt_size_splits_into_the_fewest_parts_under_it() -> None:
    """Parts of equal line counts, each keeping the `source` line, every line once in
    order; a body a few bytes over twice the size goes in three parts, not in halves of
    halves (gzip sizes differ from half to half); one line does not split."""
    records: list[Record] = [
        LogRecord(META, "stdout", i, 0, f"line {i}".encode() * 50) for i in range(12)
    ]
    body = gzip.compress(encode(records, "h").body)
    halves = split_body(body)
    assert halves is not None
    cap = max(len(half) for half, _ in halves) - 1  # the halves are just over it
    parts = split_under(body, cap)
    assert parts is not None
    assert [lines for _, lines in parts] == [4, 4, 4]
    assert all(len(part) <= cap for part, _ in parts)
    assert all(_kinds(part)[0] == ("source", 0) for part, _ in parts)
    messages = [m for part, _ in parts for m in _messages(part)]
    assert messages == [f"line {i}" * 50 for i in range(12)]
    assert split_under(gzip.compress(encode(records[:1], "h").body), 1) is None


async def test_a_batch_over_the_collectors_body_limit_is_delivered_in_parts(
    tmp_path: Path,
) -> None:
    """A collector answering 413 to bodies of more than 2 lines gets the segment in parts
    it takes; every line arrives once, and the segment counts as delivered."""
    received: list[bytes] = []

    async def logs(request: web.Request) -> web.Response:
        data = await request.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        lines = [line for line in data.splitlines() if b'"kind":"source"' not in line]
        if len(lines) > 2:
            return web.json_response({"error": "over the limit"}, status=413)
        received.extend(lines)
        count = len(data.splitlines())
        answer = {"received": count, "indexed": len(lines), "duplicates": 0, "dead_lettered": 0}
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post(PATH_LOGS, logs)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        config = load_config(state_dir=tmp_path, collector_url=url)
        spool = Spool(tmp_path / "spool", 10**6)
        spool.open()
        await spool.write(
            encode([LogRecord(META, "stdout", i, 0, f"line {i}".encode()) for i in range(7)], "h")
        )
        async with CollectorClient(config) as client:
            queue = Inbox(100, metrics.PerContainer(False, 1))
            sender = Sender(config, queue, spool, client, CursorStore(tmp_path))
            task = asyncio.create_task(sender.run())
            assert await sender.drain(10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await server.close()
    import orjson

    assert sorted(orjson.loads(line)["message"] for line in received) == [
        f"line {i}" for i in range(7)
    ]


async def test_a_delivery_worker_that_fails_ends_the_sender(tmp_path: Path) -> None:
    """An unexpected error in a delivery worker is raised by run(), never left unseen
    while nothing is delivered any more."""
    config = load_config(state_dir=tmp_path, collector_url="http://x")
    spool = Spool(tmp_path / "spool", 10**6)
    spool.open()
    await spool.write(encode([LogRecord(META, "stdout", 5, 0, b"hello")], "h"))

    async def broken(segment: object) -> bytes:
        raise RuntimeError("disk went away")

    spool.read = broken  # type: ignore[method-assign]  # a disk that fails every read
    no_client = None  # the spool fails before any collector is asked
    sender = Sender(
        config,
        Inbox(100, metrics.PerContainer(False, 1)),
        spool,
        no_client,  # type: ignore[arg-type]
        CursorStore(tmp_path),
    )
    with pytest.raises(RuntimeError, match="disk went away"):
        await asyncio.wait_for(sender.run(), 5)


async def test_drain_at_exit_keeps_the_segments_when_the_cursors_cannot_be_saved(
    tmp_path: Path,
) -> None:
    """A cursor save refused by the disk during the drain at exit ends the drain (False)
    instead of raising, and the acknowledged segment stays on disk for the next start."""
    config = load_config(state_dir=tmp_path, collector_url="http://x")
    spool = Spool(tmp_path / "spool", 10**6)
    spool.open()
    segment = await spool.write(encode([LogRecord(META, "stdout", 5, 0, b"hello")], "h"))
    spool.acked(await spool.take())
    store = CursorStore(tmp_path)

    async def full_disk() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    store.save_in_thread = full_disk  # type: ignore[method-assign]
    sender = Sender(config, Inbox(100, metrics.PerContainer(False, 1)), spool, None, store)  # type: ignore[arg-type]
    assert await asyncio.wait_for(sender.drain(5), 5) is False
    assert spool.has_acked
    assert os.listdir(segment.path.parent) == [segment.path.name]


async def test_delivery_runs_on_when_the_cursors_cannot_be_saved(tmp_path: Path) -> None:
    """A refused cursor save while running keeps the acknowledged segment on disk and the
    sender running; the first save the disk takes lets the segment go."""
    config = load_config(state_dir=tmp_path, collector_url="http://x")
    spool = Spool(tmp_path / "spool", 10**6)
    spool.open()
    await spool.write(encode([LogRecord(META, "stdout", 5, 0, b"hello")], "h"))
    spool.acked(await spool.take())
    store = CursorStore(tmp_path)
    save = store.save_in_thread
    full = True

    async def maybe_full() -> None:
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")
        await save()

    store.save_in_thread = maybe_full  # type: ignore[method-assign]
    sender = Sender(config, Inbox(100, metrics.PerContainer(False, 1)), spool, None, store)  # type: ignore[arg-type]
    sender._acked.set()
    task = asyncio.create_task(sender.run())
    try:
        await asyncio.sleep(0.5)
        assert not task.done()
        assert spool.has_acked
        full = False
        for _ in range(100):
            if spool.empty:
                break
            await asyncio.sleep(0.05)
        assert spool.empty
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_batch_taken_ends_the_backoff_of_the_others(tmp_path: Path) -> None:
    """After an outage each worker backs off until its own time (up to 30 s apart): the
    first batch a collector takes wakes the others, so the oldest segment, whose worker
    waits longest, does not reach Elasticsearch half a minute after the newest."""

    class Client:
        def __init__(self) -> None:
            self.endpoint = Endpoint("http://c", failures=3)  # failing until now
            self.waits = [60.0, 0.0, 0.0]  # the first worker's backoff is a minute
            self.sent: list[bytes] = []

        def pick(self) -> tuple[Endpoint, float]:
            return self.endpoint, self.waits.pop(0)

        async def send(
            self, body: bytes, endpoint: Endpoint, lines: int = 0, again: bool = False
        ) -> None:
            self.sent.append(body)

    client = Client()
    sender = await _sender_of(tmp_path, client, "http://c", 2)
    oldest, newest = await sender.spool.take(), await sender.spool.take()
    waiting = asyncio.create_task(sender._deliver(oldest, b"oldest"))
    await asyncio.sleep(0.05)  # backing off, a minute to go
    await sender._deliver(newest, b"newest")
    await asyncio.wait_for(waiting, 10)  # woken, not a minute later
    assert client.sent == [b"newest", b"oldest"]


def test_a_retry_after_still_holds_after_a_batch_is_taken() -> None:
    """A collector that asked for 30 s (Retry-After) and then took one batch is not sent
    the others at once: the end of what it asked for stays the next try. Without one, a
    success makes it free again, and says whether it was failing before."""
    import time as clock

    busy = Endpoint("http://c")
    busy.failed(30.0)
    assert busy.succeeded() is True
    assert busy.next_try > clock.monotonic() + 25
    down = Endpoint("http://c")
    down.failed(None)
    assert down.succeeded() is True
    assert down.next_try == 0.0
    assert down.succeeded() is False


async def test_batches_delivered_again_is_said_only_when_a_failing_collector_takes_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With two collectors and one down, every batch the live one took was logged as
    "batches delivered again" while the other still failed. Only a collector that was
    failing, taking a batch again after its failure was logged, says so."""
    caplog.set_level(logging.INFO, logger="logpipe.shipper.deliver")

    class Client:
        def __init__(self) -> None:
            self.dead, self.live = Endpoint("http://dead"), Endpoint("http://live")
            self.turn = 0
            self.down = True

        def pick(self) -> tuple[Endpoint, float]:
            self.turn += 1
            return (self.dead if self.turn % 2 else self.live), 0.0

        async def send(
            self, body: bytes, endpoint: Endpoint, lines: int = 0, again: bool = False
        ) -> None:
            if endpoint is self.dead and self.down:
                raise RetryableDelivery("cannot reach the collector: connection refused")

    client = Client()
    sender = await _sender_of(tmp_path, client, "http://dead,http://live", 5)
    spool = sender.spool
    for _ in range(4):  # each: refused by the dead one, taken by the live one
        await sender._deliver(await spool.take(), b"body")
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("batch not delivered, kept in the disk buffer and retried") == 1
    assert "batches delivered again" not in messages
    client.down = False
    await sender._deliver(await spool.take(), b"body")  # the dead one takes it
    assert [r.getMessage() for r in caplog.records].count("batches delivered again") == 1


async def test_a_request_a_collector_holds_shows_in_the_oldest_request(tmp_path: Path) -> None:
    """A collector that hangs left /status saying nothing until nginx gave up (45 s):
    the request waiting for its answer shows, from when it was sent, and goes once
    answered."""

    class Client:
        def __init__(self) -> None:
            self.answer = asyncio.Event()

        def pick(self) -> tuple[Endpoint, float]:
            return Endpoint("http://c"), 0.0

        async def send(
            self, body: bytes, endpoint: Endpoint, lines: int = 0, again: bool = False
        ) -> None:
            await self.answer.wait()

    client = Client()
    sender = await _sender_of(tmp_path, client, "http://c", 1)
    assert sender.oldest_request() == 0.0
    sending = asyncio.create_task(sender._deliver(await sender.spool.take(), b"body"))
    await asyncio.sleep(0.15)
    assert sender.oldest_request() > 0
    client.answer.set()
    await asyncio.wait_for(sending, 5)
    assert sender.oldest_request() == 0.0


# Over a slow link a batch's body takes longer than the hang check: the collector below
# reads it slowly for HOLD seconds, a little at a time (its receive buffer small, the body
# larger than any socket buffer, so the shipper is still sending it), and answers /healthz
# only once the body has arrived, as a probe queued behind the body on a saturated link
# would be.
HOLD = 2.0  # seconds: longer than the hang check and both probes, at 0.3 s each
SLOW_BODY = 8 * 1024 * 1024


@contextlib.asynccontextmanager
async def small_buffers(
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    serving: set[asyncio.Task[None]],
) -> AsyncIterator[str]:
    """A raw HTTP server of `serve` whose connections have small receive buffers, so a
    large body outgrows them; its URL. The tasks in `serving` are cancelled at the end."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the accepted ones inherit it
    sock.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(serve, sock=sock)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.close()
        for task in serving:
            task.cancel()
        await asyncio.gather(*serving, return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def slow_link(answers: bool) -> AsyncIterator[tuple[str, list[int]]]:
    """A collector reached over a slow link that answers a batch and /healthz once the
    body is in (`answers`), or neither (hung once it has the body): its URL and the
    sizes of the bodies it received."""
    bodies: list[int] = []
    arrived = asyncio.Event()
    serving: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        serving.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            answer = await take(reader)
            if not answers:
                await asyncio.Event().wait()
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(answer)}\r\nConnection: close\r\n"
            writer.write(head.encode() + b"\r\n" + answer)
            await writer.drain()
        finally:
            writer.close()

    async def take(reader: asyncio.StreamReader) -> bytes:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        if head.startswith("GET /healthz "):
            await arrived.wait()
            return b'{"status": "ok"}'
        length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
        slow_until = asyncio.get_running_loop().time() + HOLD
        received = 0
        while received < length:  # in pieces, each a pause apart (longer ones at first)
            received += len(await reader.read(64 * 1024))
            slow = asyncio.get_running_loop().time() < slow_until
            await asyncio.sleep(0.01 if slow else 0)
        bodies.append(received)
        arrived.set()
        return json.dumps(ANSWER).encode()

    async with small_buffers(serve, serving) as url:
        yield url, bodies


# aiohttp warns of any body over 1 MiB given as bytes; the warning is about the event
# loop, not the link, and this body must outgrow the socket buffers.
@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")
async def test_a_batch_whose_body_crosses_a_slow_link_is_not_taken_for_hung(
    tmp_path: Path,
) -> None:
    """A body that takes longer than the hang check to arrive, the probes stuck behind
    it, was taken for a hung collector and sent again, every try alike: the check starts
    once the body is sent, so the batch is delivered once."""
    body = os.urandom(SLOW_BODY)
    gave_up = _failed("hung")
    async with slow_link(answers=True) as (url, bodies):
        config = load_config(state_dir=tmp_path, collector_url=url, request_timeout=3600)
        async with CollectorClient(config, hang_check=0.3, probe_timeout=0.3) as client:
            endpoint, _ = client.pick()
            await client.send(body, endpoint, 1)
    assert bodies == [len(body)]
    assert _failed("hung") == gave_up


@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")
async def test_a_collector_that_hangs_after_a_slow_body_is_still_taken_for_hung(
    tmp_path: Path,
) -> None:
    """A collector that took the whole body over a slow link and then answers neither it
    nor /healthz is taken for hung, as one that takes a small body at once is."""
    gave_up = _failed("hung")
    async with slow_link(answers=False) as (url, bodies):
        config = load_config(state_dir=tmp_path, collector_url=url, request_timeout=3600)
        async with CollectorClient(config, hang_check=0.3, probe_timeout=0.3) as client:
            endpoint, _ = client.pick()
            with pytest.raises(RetryableDelivery, match="hung"):
                await client.send(os.urandom(SLOW_BODY), endpoint, 1)
    assert bodies == [SLOW_BODY]
    assert _failed("hung") - gave_up == 1


def _split(reason: str) -> float:
    return float(metrics.BATCHES_SPLIT.labels(reason)._value.get())


def _messages(data: bytes) -> list[str]:
    """The messages of a (gzip) body's log lines."""
    import orjson

    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    records = [orjson.loads(line) for line in data.splitlines()]
    return [record["message"] for record in records if record["kind"] == "log"]


async def _deliver_all(tmp_path: Path, config: object, messages: list[bytes]) -> Sender:
    """Run a Sender through `config`'s collector until it delivered one segment holding
    `messages`, or for at most 30 s (then it fails)."""
    spool = Spool(tmp_path / "spool", 10**8)
    spool.open()
    await spool.write(
        encode([LogRecord(META, "stdout", i, 0, text) for i, text in enumerate(messages)], "h")
    )
    async with CollectorClient(config) as client:  # type: ignore[arg-type]
        queue = Inbox(100, metrics.PerContainer(False, 1))
        sender = Sender(config, queue, spool, client, CursorStore(tmp_path))  # type: ignore[arg-type]
        task = asyncio.create_task(sender.run())
        try:
            assert await sender.drain(30), "the segment was not delivered"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return sender


@pytest.mark.parametrize("written_first", [False, True])
async def test_a_batch_whose_body_reached_the_collector_too_slowly_is_sent_in_halves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, written_first: bool
) -> None:
    """A collector whose LOGPIPE_BODY_TIMEOUT a body of more than 2 lines outlasts
    (over a slow link) answers it 408; sent whole again it failed the same way forever.
    It is sent in halves, and halves of those, until each arrives: every line once. A
    batch a failed try may have written (a 503 without X-Logpipe-Unwritten) has each of
    its halves marked sent again; one no try wrote, none."""
    received: list[str] = []
    marks: list[str | None] = []

    async def logs(request: web.Request) -> web.Response:
        data = await request.read()
        marks.append(request.headers.get(SENT_AGAIN))
        lines = _messages(data)
        if written_first and len(marks) == 1:
            return web.json_response({"error": "busy"}, status=503, headers={"Retry-After": "0"})
        if len(lines) > 2:  # as the collector answers it: nothing of it was written
            error = {"error": "the request body did not arrive within 20 s"}
            return web.json_response(error, status=408, headers={UNWRITTEN: "1"})
        received.extend(lines)
        answer = {"received": len(data.splitlines()), "indexed": len(lines)}
        return web.json_response({**answer, "duplicates": 0, "dead_lettered": 0})

    split, timed_out = _split("too_slow"), _failed("http_408")
    presplit = metrics.BATCHES_PRESPLIT._value.get()
    caplog.set_level(logging.INFO, logger="logpipe.shipper.deliver")
    async with serving(web.post(PATH_LOGS, logs)) as url:
        config = load_config(state_dir=tmp_path, collector_url=url)
        await _deliver_all(tmp_path, config, [f"line {i}".encode() for i in range(7)])
    assert sorted(received) == [f"line {i}" for i in range(7)]
    # 7 lines: 3 + 4, then 1 + 2; the 4, larger than the halves that went through, are
    # sent as 2 + 2 without a try of their own
    assert _split("too_slow") - split == 2
    assert metrics.BATCHES_PRESPLIT._value.get() - presplit == 1
    assert _failed("http_408") - timed_out == 2
    said = [r for r in caplog.records if "reached the collector too slowly" in r.getMessage()]
    assert len(said) == 1, "logged once for the batch, not for each of its halves"
    later = marks[1:] if written_first else marks
    assert later == (["1"] * len(later) if written_first else [None] * len(later))


async def test_a_batch_of_one_line_that_reached_the_collector_too_slowly_is_sent_again_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One line cannot be split: its batch is sent whole again, the collector backed off,
    and the log says what to check; once the link carries it, it arrives once."""
    monkeypatch.setattr(sink_module, "BACKOFF_INITIAL", 0.001)
    received: list[str] = []
    tries = 0

    async def logs(request: web.Request) -> web.Response:
        nonlocal tries
        lines = _messages(await request.read())
        tries += 1
        if tries <= 2:
            return web.json_response({"error": "too slow"}, status=408, headers={UNWRITTEN: "1"})
        received.extend(lines)
        return web.json_response({"received": 2, "indexed": 1, "duplicates": 0, "dead_lettered": 0})

    split = _split("too_slow")
    async with serving(web.post(PATH_LOGS, logs)) as url:
        config = load_config(state_dir=tmp_path, collector_url=url)
        await _deliver_all(tmp_path, config, [b"alone"])
    assert received == ["alone"]
    assert tries == 3
    assert _split("too_slow") == split
    failures = [r for r in caplog.records if r.getMessage().startswith("batch not delivered")]
    assert failures, "the failure is logged"
    reason = failures[0].reason  # type: ignore[attr-defined]
    assert "answered 408" in reason
    assert "a batch of one line cannot be split" in reason
    assert "LOGPIPE_BODY_TIMEOUT" in reason


@contextlib.asynccontextmanager
async def trickling(slow_over: int) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A collector behind a link that carries bodies of more than `slow_over` bytes
    slowly, a little at a time (and smaller ones at once, as if the link were only
    congested by large bodies): its URL and the bodies it received whole."""
    bodies: list[bytes] = []
    serving: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        serving.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
            if length > slow_over:
                while True:  # a little at a time, until the shipper gives up
                    if not await reader.read(4096):
                        return
                    await asyncio.sleep(0.05)
            data = await reader.readexactly(length)
            bodies.append(data)
            lines = len(_messages(data))
            answer = json.dumps(
                {"received": lines + 1, "indexed": lines, "duplicates": 0, "dead_lettered": 0}
            ).encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(answer)}\r\nConnection: close\r\n"
            writer.write(head.encode() + b"\r\n" + answer)
            await writer.drain()
        finally:
            writer.close()

    async with small_buffers(serve, serving) as url:
        yield url, bodies


@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")
async def test_a_body_still_being_sent_when_the_request_times_out_is_sent_in_halves(
    tmp_path: Path,
) -> None:
    """Behind a proxy that takes bodies as slowly as they come (nginx), or with a
    collector's LOGPIPE_BODY_TIMEOUT raised, a body too slow for the link outlasts the
    shipper's own request timeout instead: the same failure, seen from the shipper. Its
    halves go through; every line arrives once."""
    messages = [os.urandom(512 * 1024).hex().encode() for _ in range(8)]  # 1 MiB each
    batch = encode([LogRecord(META, "stdout", i, 0, text) for i, text in enumerate(messages)], "h")
    whole = len(await asyncio.to_thread(igzip.compress, batch.body, 1))  # as the spool makes it
    split, timed_out = _split("too_slow"), _failed("too_slow")
    async with trickling(slow_over=whole * 3 // 4) as (url, bodies):
        config = load_config(state_dir=tmp_path, collector_url=url, request_timeout=1)
        await _deliver_all(tmp_path, config, messages)
    received = [message for body in bodies for message in _messages(body)]
    assert sorted(received) == sorted(m.decode() for m in messages)
    assert _split("too_slow") - split == 1
    assert _failed("too_slow") - timed_out == 1


@contextlib.asynccontextmanager
async def stalling(probes: list[str] | None) -> AsyncIterator[tuple[str, list[int]]]:
    """A collector that stops reading a batch's body after its headers: for HOLD seconds,
    answering /healthz meanwhile (each probe noted in `probes`), then reads it and
    answers; or, `probes` None, for good, answering nothing more (hung mid-body). Its URL
    and the sizes of the bodies it received."""
    bodies: list[int] = []
    serving: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        serving.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            if probes is None:
                await asyncio.Event().wait()
                raise AssertionError("a hung collector never answers")
            if head.startswith("GET /healthz "):
                probes.append(head.split("\r\n")[0])
                answer = b'{"status": "ok"}'
            else:
                length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
                await asyncio.sleep(HOLD)
                received = 0
                while received < length:
                    received += len(await reader.read(64 * 1024))
                bodies.append(received)
                answer = json.dumps(ANSWER).encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(answer)}\r\nConnection: close\r\n"
            writer.write(head.encode() + b"\r\n" + answer)
            await writer.drain()
        finally:
            writer.close()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(serve, sock=sock)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", bodies
    finally:
        server.close()
        for task in serving:
            task.cancel()
        await asyncio.gather(*serving, return_exceptions=True)
        await server.wait_closed()


@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")
async def test_a_collector_that_hangs_mid_body_is_taken_for_hung(tmp_path: Path) -> None:
    """A collector that hung while reading a body larger than the socket buffers held the
    batch for the whole request timeout (the hang check began only once the body was
    sent): a body the connection takes none of for the hang check is probed, and a
    collector that lets the probes time out is given up."""
    gave_up = _failed("hung")
    async with stalling(None) as (url, bodies):
        config = load_config(state_dir=tmp_path, collector_url=url, request_timeout=20)
        async with CollectorClient(config, hang_check=0.3, probe_timeout=0.3) as client:
            endpoint, _ = client.pick()
            with pytest.raises(RetryableDelivery, match="took none of the batch's body"):
                await client.send(os.urandom(SLOW_BODY), endpoint, 1)
    assert bodies == []
    assert _failed("hung") - gave_up == 1


@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")
async def test_a_collector_that_pauses_mid_body_but_answers_probes_is_waited_for(
    tmp_path: Path,
) -> None:
    """A collector that stops reading a body for a while (busy) but answers /healthz is
    probed and waited for: the body arrives once, whole."""
    probes: list[str] = []
    gave_up = _failed("hung")
    async with stalling(probes) as (url, bodies):
        config = load_config(state_dir=tmp_path, collector_url=url, request_timeout=3600)
        async with CollectorClient(config, hang_check=0.3, probe_timeout=0.3) as client:
            endpoint, _ = client.pick()
            await client.send(os.urandom(SLOW_BODY), endpoint, 1)
    assert bodies == [SLOW_BODY]
    assert probes, "the stalled body was noticed and the collector probed"
    assert _failed("hung") == gave_up


@contextlib.asynccontextmanager
async def _sending(
    tmp_path: Path, url: str, pad: int = 0, **settings: object
) -> AsyncIterator[Callable[[int], Awaitable[None]]]:
    """A Sender (one batch in flight at a time, so batches go in order) to the collector
    at `url`, for the block: a function that writes segments of 8 lines (their messages
    "<n> line <i>", n counting from 0, then `pad` random bytes in hex) and waits until
    every segment was delivered."""
    config = load_config(state_dir=tmp_path, collector_url=url, max_in_flight=1, **settings)
    spool = Spool(tmp_path / "spool", 10**8)
    spool.open()
    written = 0

    async def deliver(n: int) -> None:
        nonlocal written
        for _ in range(n):
            records: list[Record] = [
                LogRecord(META, "stdout", i, 0, f"{written} line {i}".encode() + _noise(pad))
                for i in range(8)
            ]
            await spool.write(encode(records, "h"))
            written += 1
        assert await sender.drain(30), "the segments were not delivered"

    async with CollectorClient(config) as client:
        queue = Inbox(100, metrics.PerContainer(False, 1))
        sender = Sender(config, queue, spool, client, CursorStore(tmp_path))
        task = asyncio.create_task(sender.run())
        try:
            yield deliver
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _noise(size: int) -> bytes:
    return b" " + os.urandom(size).hex().encode() if size else b""


def _limited(status: int, refuse_over: list[int]) -> tuple[web.RouteDef, list[list[str]]]:
    """A collector that answers `status` (408: too slow; 413: too large) to a body of more
    than refuse_over[0] log lines (a list: the test may change it), and takes the others:
    its route, and the lines of each body it took."""
    taken: list[list[str]] = []

    async def logs(request: web.Request) -> web.Response:
        data = await request.read()
        lines = _messages(data)
        if len(lines) > refuse_over[0]:
            error = {"error": "the request body did not arrive within 20 s"}
            return web.json_response(error, status=status, headers={UNWRITTEN: "1"})
        taken.append(lines)
        answer = {"received": len(data.splitlines()), "indexed": len(lines)}
        return web.json_response({**answer, "duplicates": 0, "dead_lettered": 0})

    return web.post(PATH_LOGS, logs), taken


def _every_line_once(taken: list[list[str]], segments: int) -> bool:
    received = sorted(line for lines in taken for line in lines)
    return received == sorted(f"{n} line {i}" for n in range(segments) for i in range(8))


@pytest.mark.parametrize(
    ("status", "failure", "reason"),
    [(408, "http_408", "too_slow"), (413, "too_large", "too_large")],
)
async def test_after_a_batch_was_split_the_next_large_ones_go_in_parts_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int, failure: str, reason: str
) -> None:
    """Over a link too slow for whole batches (or to a collector whose body limit is below
    them) each new batch tried its whole body first, spending a failed try (for a 408,
    LOGPIPE_BODY_TIMEOUT of the link) on every one. Once a batch was split, the next ones
    go in parts under the size of the halves that went through: only the first is
    refused, and every line arrives once."""
    refused = _failed(failure)
    split, presplit = _split(reason), metrics.BATCHES_PRESPLIT._value.get()
    caplog.set_level(logging.INFO, logger="logpipe.shipper.deliver")
    route, taken = _limited(status, [4])
    async with serving(route) as url, _sending(tmp_path, url) as deliver:
        await deliver(5)
    assert _every_line_once(taken, 5)
    assert _failed(failure) - refused == 1
    assert _split(reason) - split == 1
    assert metrics.BATCHES_PRESPLIT._value.get() - presplit == 4
    assert all(len(lines) <= 4 for lines in taken)
    learnt = [r for r in caplog.records if "are sent to this collector in parts" in r.getMessage()]
    assert len(learnt) == 1, "the cap is logged once, not for each batch"


@pytest.mark.parametrize(("status", "failure"), [(408, "http_408"), (413, "too_large")])
async def test_the_learnt_size_is_lifted_once_larger_bodies_go_through_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status: int,
    failure: str,
) -> None:
    """Once the link carries whole batches again, parts that keep going through raise
    the learnt size until it is lifted: batches go whole again (it is logged once)."""
    monkeypatch.setattr(sink_module, "RAISE_AFTER", 4)
    caplog.set_level(logging.INFO, logger="logpipe.shipper.deliver")
    limit = [4]
    route, taken = _limited(status, limit)
    async with serving(route) as url, _sending(tmp_path, url) as deliver:
        await deliver(1)  # refused whole, its halves taken: the size is learnt
        assert [len(lines) for lines in taken] == [4, 4]
        limit[0] = 8  # the link is fast again
        refused = _failed(failure)
        await deliver(3)
    assert _every_line_once(taken, 4)
    assert _failed(failure) == refused
    # the second batch in parts (with the first's halves, four went through: the size is
    # raised past the first body's), the next ones whole
    assert [len(lines) for lines in taken] == [4, 4, 4, 4, 8, 8]
    lifted = [r for r in caplog.records if "sent whole to this collector again" in r.getMessage()]
    assert len(lifted) == 1


def test_a_raise_that_fails_again_is_tried_more_rarely_until_one_holds() -> None:
    """Over a link that stays slow, each raise of the learnt size costs a try thrown
    away: one that fails doubles the bodies the next waits for, up to RAISE_AFTER_MAX;
    one that holds brings the wait back to RAISE_AFTER. The size is lifted once raised
    to the body that first failed."""
    endpoint = Endpoint("http://collector")
    assert endpoint.too_big(3000, 600)
    assert endpoint.cap == 600
    waits = []
    for _ in range(6):
        count = 0
        while endpoint.cap == 600:
            count += 1
            assert not endpoint.took(400)
        waits.append(count)
        assert endpoint.cap == 1200
        assert not endpoint.too_big(1000, 600)  # the raised size failed again
    assert waits == [16, 32, 64, 128, 128, 128]
    assert not endpoint.took(200), "a body of under half the size is not counted"
    assert endpoint.fitted == 0
    assert not any(endpoint.took(500) for _ in range(128))
    assert (endpoint.cap, endpoint.raise_after) == (1200, 128)
    assert not any(endpoint.took(1000) for _ in range(128))
    assert (endpoint.cap, endpoint.raise_after) == (2400, 0)  # the raise to 1200 held
    lifts = [endpoint.took(2000) for _ in range(16)]
    assert lifts == [False] * 15 + [True]  # raised to 4800, past the 3000 that failed
    assert endpoint.cap is None


def _raised_to_the_end(endpoint: Endpoint, size: int) -> int:
    """Feed `endpoint` bodies of `size` bytes that go through until its cap changes: how many."""
    cap, count = endpoint.cap, 0
    while endpoint.cap == cap:
        count += 1
        endpoint.took(size)
    return count


def test_a_lift_that_holds_makes_the_next_slow_spell_start_afresh() -> None:
    """A link that got better is a new link: once bodies larger than the size lifted go
    through whole (16 of them), a slow spell after it is learnt as the first one was, its
    first raise after 16 bodies, not after the count doubled in the spell before. A
    lift that fails before then counts as a raise refused again: the count doubles."""
    endpoint = Endpoint("http://collector-lift")
    assert endpoint.too_big(3000, 800)
    assert _raised_to_the_end(endpoint, 700) == 16  # raised to 1600
    assert not endpoint.too_big(1500, 800)  # the raise failed: the next waits for 32
    assert _raised_to_the_end(endpoint, 700) == 32  # raised to 1600 again
    assert _raised_to_the_end(endpoint, 1500) == 32  # past 3000: lifted (the raise held)
    assert endpoint.cap is None
    assert endpoint.too_big(3000, 800), "a lift that fails at once is a raise refused"
    assert _raised_to_the_end(endpoint, 700) == 32
    assert _raised_to_the_end(endpoint, 1500) == 32  # lifted again
    for _ in range(15):
        endpoint.took(1500)  # larger than the 1600 lifted? no: says nothing
    for _ in range(16):
        endpoint.took(2500)  # the lift held
    assert endpoint.too_big(1500, 800)  # the link slows again, hours later
    assert _raised_to_the_end(endpoint, 700) == 16  # lifted: 1600 is past 1500
    assert endpoint.too_big(1500, 800)  # the lift failed at once
    assert _raised_to_the_end(endpoint, 700) == 32  # lifted again, from a lowered size
    for _ in range(16):
        endpoint.took(1000)  # the lift held
    assert endpoint.too_big(1500, 800)
    assert _raised_to_the_end(endpoint, 700) == 16


@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")
async def test_after_a_request_timed_out_mid_body_the_next_batches_go_in_parts(
    tmp_path: Path,
) -> None:
    """Behind a proxy that takes a body as slowly as it comes, a batch too large for the
    link outlasted the shipper's request timeout each time before it was split. After
    the first, the next batches go in parts small enough: the timeout is met once."""
    timed_out = _failed("too_slow")
    # 8 lines of 1 MiB in hex a batch: over 4 MiB gzipped, its halves about half that
    async with (
        trickling(slow_over=3 * 1024 * 1024) as (url, bodies),
        _sending(tmp_path, url, pad=512 * 1024, request_timeout=1) as deliver,
    ):
        await deliver(3)
    assert _failed("too_slow") - timed_out == 1
    received = [" ".join(m.split(" ")[:3]) for body in bodies for m in _messages(body)]
    assert sorted(received) == sorted(f"{n} line {i}" for n in range(3) for i in range(8))


def _limit_inflated(limit: int, say: bool) -> tuple[web.RouteDef, list[list[str]], list[int]]:
    """A collector whose limit counts bodies decompressed, as a logpipe collector's does:
    one of more than `limit` bytes so is answered 413, and (`say`) every answer says the
    limit (BODY_LIMIT). Its route, the lines of each body it took, and the decompressed
    sizes of those it took."""
    taken: list[list[str]] = []
    sizes: list[int] = []

    async def logs(request: web.Request) -> web.Response:
        data = await request.read()  # (aiohttp inflates it)
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        headers = {BODY_LIMIT: f"{limit} inflated"} if say else {}
        if len(data) > limit:
            error = {"error": f"decompressed body is over the {limit} byte limit"}
            return web.json_response(error, status=413, headers={UNWRITTEN: "1", **headers})
        lines = _messages(data)
        taken.append(lines)
        sizes.append(len(data))
        answer = {"received": len(data.splitlines()), "indexed": len(lines)}
        return web.json_response({**answer, "duplicates": 0, "dead_lettered": 0}, headers=headers)

    return web.post(PATH_LOGS, logs), taken, sizes


async def _deliver_segments(tmp_path: Path, url: str, segments: list[list[bytes]]) -> None:
    """Deliver `segments` (each its messages) one at a time, in order, through a Sender."""
    config = load_config(state_dir=tmp_path, collector_url=url, max_in_flight=1)
    spool = Spool(tmp_path / "spool", 10**8)
    spool.open()
    for messages in segments:
        await spool.write(
            encode([LogRecord(META, "stdout", i, 0, text) for i, text in enumerate(messages)], "h")
        )
    async with CollectorClient(config) as client:
        queue = Inbox(100, metrics.PerContainer(False, 1))
        sender = Sender(config, queue, spool, client, CursorStore(tmp_path))
        task = asyncio.create_task(sender.run())
        try:
            assert await sender.drain(30), "the segments were not delivered"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize(("say", "refusals"), [(True, 1), (False, 2)])
async def test_a_collector_that_says_its_limit_is_sent_no_body_over_it_however_it_compresses(
    tmp_path: Path, say: bool, refusals: int
) -> None:
    """A collector's limit counts bodies decompressed, the size learnt from a 413 counts
    them gzipped: after a batch of random text (gzip halves it) was split, batches of
    repeated text (gzip shrinks them thirtyfold) went whole under the size learnt, and
    were refused again, each. A collector that says its limit in its answers is sent
    every later batch in parts under it, counted as it counts: only the first is
    refused. One that says nothing (an older collector) is learnt from as before."""
    refused, split = _failed("too_large"), _split("too_large")
    presplit = metrics.BATCHES_PRESPLIT._value.get()
    route, taken, sizes = _limit_inflated(6000, say)
    noisy = [os.urandom(500).hex().encode() for _ in range(8)]
    plain = [[f"{n} {i} ".encode() + b"a" * 1000 for i in range(8)] for n in range(3)]
    async with serving(route) as url:
        await _deliver_segments(tmp_path, url, [noisy, *plain])
    received = sorted(line for lines in taken for line in lines)
    assert received == sorted(m.decode() for m in [*noisy, *(m for ms in plain for m in ms)])
    assert all(size <= 6000 for size in sizes)
    assert _failed("too_large") - refused == refusals
    if say:
        assert _split("too_large") - split == 1
        assert metrics.BATCHES_PRESPLIT._value.get() - presplit == 3
        assert metrics.BODY_LIMIT.labels(url)._value.get() == 6000
        assert [len(lines) for lines in taken] == [4] * 8


async def test_a_limit_said_with_a_batch_taken_splits_the_next_before_any_refusal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The limit comes with every answer, a 200 too: a batch over it after one that was
    taken goes in parts at once, and no try is refused (nor a size learnt)."""
    refused = _failed("too_large")
    presplit = metrics.BATCHES_PRESPLIT._value.get()
    caplog.set_level(logging.INFO, logger="logpipe.shipper.deliver")
    route, taken, sizes = _limit_inflated(4000, True)
    big = [f"{i} ".encode() + b"b" * 1000 for i in range(8)]
    async with serving(route) as url:
        await _deliver_segments(tmp_path, url, [[b"small"], big])
    assert _failed("too_large") == refused
    assert metrics.BATCHES_PRESPLIT._value.get() - presplit == 1
    assert [len(lines) for lines in taken] == [1, 2, 3, 3]
    assert all(size <= 4000 for size in sizes)
    assert not [r for r in caplog.records if "in parts" in r.getMessage()]


def test_a_body_limit_said_in_a_form_not_known_changes_nothing() -> None:
    """`<bytes> inflated` or `<bytes> sent`; anything else (a newer form, a proxy's
    header) is ignored, as is an answer without one (an older collector behind the same
    load balancer): the limit said last holds."""
    endpoint = Endpoint("http://collector-limit")
    endpoint.told("1000 sent")
    assert (endpoint.limit, endpoint.limit_inflated) == (1000, False)
    endpoint.told("2000 inflated")
    assert (endpoint.limit, endpoint.limit_inflated) == (2000, True)
    for odd in (None, "", "2k inflated", "0 inflated", "-5 inflated", "3000", "3000 gzip"):
        endpoint.told(odd)
        assert (endpoint.limit, endpoint.limit_inflated) == (2000, True), odd
    body = igzip.compress(b"a" * 5000, 1)
    assert endpoint.over_limit(body), "5000 bytes decompressed, over 2000"
    endpoint.told("2000 sent")
    assert not endpoint.over_limit(body), f"{len(body)} bytes as sent"
    assert body_size(body, inflated=True) == 5000
