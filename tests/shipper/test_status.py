"""/healthz and /status: what they say while the shipper cannot do its work, and lag."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from shipper.batch import encode
from shipper.cursor import CursorStore, Position
from shipper.record import LogRecord, Meta
from shipper.spool import Spool
from shipper.status import HEALTH, SUPERVISOR, Health, _container, _oldest_pending, healthz


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
    """Waiting for dockerd at start, then ok, then a disk buffer it cannot write."""
    batcher = SimpleNamespace(write_error=None)
    health = Health(batcher)  # type: ignore[arg-type]
    assert health.state() == ("waiting for dockerd", None)
    health.waiting_for_dockerd = False
    assert health.state() == ("ok", None)
    batcher.write_error = "/s/spool: ENOSPC: No space left on device"
    assert health.state() == ("disk buffer not writable", batcher.write_error)


async def test_healthz_answers_503_while_the_disk_buffer_cannot_be_written() -> None:
    """Waiting for dockerd is up (200, saying so); a disk buffer it cannot write is not."""
    batcher = SimpleNamespace(write_error=None)
    health = Health(batcher)  # type: ignore[arg-type]
    app = web.Application()
    app[SUPERVISOR] = SimpleNamespace(connected=False)  # type: ignore[assignment]
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
