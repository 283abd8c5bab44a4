"""/healthz and /status: what they say while the shipper cannot do its work, and lag."""

from __future__ import annotations

import errno
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from shipper import metrics
from shipper.batch import encode
from shipper.cursor import CursorStore, Position
from shipper.record import LogRecord, Meta
from shipper.spool import Spool
from shipper.status import (
    HEALTH,
    SENDER,
    SUPERVISOR,
    Health,
    _container,
    _oldest_pending,
    healthz,
    status,
)


def _follower(name: str) -> SimpleNamespace:
    stats = SimpleNamespace(state="gone", lines=3, bytes=30, recovered=0, gaps=0)
    return SimpleNamespace(meta=SimpleNamespace(name=name), positions={}, stats=stats)


async def test_lag_is_the_age_of_the_oldest_line_not_yet_acknowledged(tmp_path: Path) -> None:
    """A container whose lines were all acknowledged has no lag, however old they are; one
    with a batch still unacknowledged has the age of that batch's oldest line."""
    now = time.time_ns()
    spool = Spool(tmp_path / "spool", 10**6)
    spool.open()
    old, pending = now - 60 * 10**9, now - 5 * 10**9
    for cid, ts in (("done", old), ("late", pending)):
        await spool.write(encode([LogRecord(Meta(cid, cid, "i"), "stdout", ts, 0, b"x")], "h"))
    spool.acked(await spool.take())  # "done"'s batch
    store = CursorStore(tmp_path)
    store.advance("done", "stdout", Position(old, 1))
    store.advance("late", "stdout", Position(pending, 1))
    oldest = _oldest_pending(SimpleNamespace(spool=spool))  # type: ignore[arg-type]
    assert oldest == {"late": pending}
    supervisor = SimpleNamespace(store=store)
    done = _container(supervisor, "done", _follower("done"), False, now, oldest.get("done"))  # type: ignore[arg-type]
    late = _container(supervisor, "late", _follower("late"), False, now, oldest.get("late"))  # type: ignore[arg-type]
    assert done["lag_seconds"] == 0.0
    assert done["cursor"]["stdout"]["ts"] == old
    assert late["lag_seconds"] == 5.0


def test_health_says_what_stops_the_shipper() -> None:
    """Waiting for dockerd at start, then ok, then cursors it cannot save, then a disk
    buffer it cannot write (which stops the reading too, so it is named first)."""
    store = SimpleNamespace(save_error=None)
    batcher = SimpleNamespace(write_error=None, store=store)
    health = Health(batcher)  # type: ignore[arg-type]
    assert health.state() == ("waiting for dockerd", None)
    health.waiting_for_dockerd = False
    assert health.state() == ("ok", None)
    store.save_error = "/s/cursors.json: EROFS: Read-only file system"
    assert health.state() == ("cursors not saved", store.save_error)
    batcher.write_error = "/s/spool: ENOSPC: No space left on device"
    assert health.state() == ("disk buffer not writable", batcher.write_error)


async def test_healthz_answers_503_while_the_disk_buffer_cannot_be_written() -> None:
    """Waiting for dockerd is up (200, saying so); a disk buffer it cannot write is not."""
    batcher = SimpleNamespace(write_error=None, store=SimpleNamespace(save_error=None))
    health = Health(batcher)  # type: ignore[arg-type]
    app = web.Application()
    app[SUPERVISOR] = SimpleNamespace(connected=False)  # type: ignore[misc]  # what /healthz reads
    app[HEALTH] = health
    app.router.add_get("/healthz", healthz)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/healthz")
        assert (resp.status, await resp.json()) == (
            200,
            {"status": "waiting for dockerd", "docker_connected": False},
        )
        health.waiting_for_dockerd = False
        batcher.write_error = "/s/spool: ENOSPC: No space left on device"
        resp = await client.get("/healthz")
        assert resp.status == 503
        assert (await resp.json())["error"] == batcher.write_error


async def test_healthz_and_status_say_while_the_cursors_cannot_be_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cursor save the disk refuses makes /healthz answer 503 with the file and errno,
    /status say so, and is counted; the next save that works makes /healthz 200 again."""
    read_only = True

    def write(path: Path, data: bytes) -> None:
        if read_only:
            raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("shipper.cursor.write_durably", write)
    store = CursorStore(tmp_path)
    health = Health(SimpleNamespace(write_error=None, store=store))  # type: ignore[arg-type]
    health.waiting_for_dockerd = False
    app = web.Application()
    app[SUPERVISOR] = SimpleNamespace(  # type: ignore[misc]  # what /healthz and /status read
        connected=True, recent={}, followers={}, tasks={}, store=store
    )
    app[SENDER] = SimpleNamespace(  # type: ignore[misc]  # what /status reads
        waiting_since=None,
        spool=SimpleNamespace(unacknowledged=list),
        queue=SimpleNamespace(qsize=lambda: 0),
        tracker=SimpleNamespace(pending_batches=0),
        oldest_request=lambda: 0.0,
    )
    app[HEALTH] = health
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    error = f"{tmp_path / 'cursors.json'}: EROFS: Read-only file system"
    failed = metrics.CURSOR_SAVE_ERRORS._value.get()
    async with TestClient(TestServer(app)) as client:
        assert not await store.save_or_log()
        assert metrics.CURSOR_SAVE_ERRORS._value.get() == failed + 1
        resp = await client.get("/healthz")
        assert (resp.status, await resp.json()) == (
            503,
            {"status": "cursors not saved", "docker_connected": True, "error": error},
        )
        body = await (await client.get("/status")).json()
        assert (body["status"], body["cursor_save_error"]) == ("cursors not saved", error)
        assert body["disk_buffer_error"] is None
        assert body["oldest_request_seconds"] == 0.0
        read_only = False
        assert await store.save_or_log()
        assert (await client.get("/healthz")).status == 200
        body = await (await client.get("/status")).json()
        assert (body["status"], body["cursor_save_error"]) == ("ok", None)
    assert metrics.CURSOR_SAVE_ERRORS._value.get() == failed + 1


async def test_an_unknown_path_or_method_is_answered_in_json() -> None:
    """aiohttp's own 404 and 405 were text/plain; they are JSON naming what there is,
    as every other answer of the shipper's."""
    from shipper.status import json_not_found

    app = web.Application(middlewares=[json_not_found])
    app.router.add_get("/healthz", healthz)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/nope")
        assert resp.status == 404
        assert (await resp.json())["error"] == (
            "no such endpoint: GET /nope (GET /healthz, /status, /metrics, /logs)"
        )
        resp = await client.post("/healthz")
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET,HEAD"
        assert (await resp.json())["error"] == "method POST not allowed on /healthz (use GET)"
