"""The shipper's own HTTP endpoints: /healthz, /status (JSON), /metrics; and /logs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypedDict

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shipper import metrics
from shipper.batch import Batcher
from shipper.cursor import Position
from shipper.deliver import Sender
from shipper.follow import Follower
from shipper.source import Supervisor
from shipper.tail import endpoint

SUPERVISOR: web.AppKey[Supervisor] = web.AppKey("supervisor", Supervisor)
SENDER: web.AppKey[Sender] = web.AppKey("sender", Sender)


@dataclass(slots=True)
class Health:
    """What the shipper as a whole is doing, beyond its containers: still waiting for
    dockerd at start, unable to write its disk buffer, or unable to save its cursors."""

    batcher: Batcher
    waiting_for_dockerd: bool = True

    def state(self) -> tuple[str, str | None]:
        """The state in a few words, and the error that makes it so, if any."""
        if self.waiting_for_dockerd:
            return "waiting for dockerd", None
        if self.batcher.write_error is not None:
            return "disk buffer not writable", self.batcher.write_error
        if self.batcher.store.save_error is not None:
            return "cursors not saved", self.batcher.store.save_error
        return "ok", None


HEALTH: web.AppKey[Health] = web.AppKey("health", Health)


class StreamCursor(TypedDict):
    """An acknowledged position: last timestamp (ns) and entries taken at it."""

    ts: int
    count: int


class ContainerStatus(TypedDict):
    """One container as /status shows it."""

    id: str
    name: str
    # queued, starting, created, following, draining, reconnecting, waiting for collector, gone
    state: str
    cursor: dict[str, StreamCursor]
    lag_seconds: float  # age of its oldest line in batches not yet acknowledged, else 0
    lines: int  # read and queued for shipping
    bytes: int
    recovered: int  # lines read back after dockerd's follow stream skipped them
    gaps: int


async def healthz(request: web.Request) -> web.Response:
    """Up (200, waiting for dockerd included), or 503 while the disk buffer cannot be
    written (nothing read can be shipped then) or the cursors cannot be saved (the disk
    buffer cannot shrink then): a person must make room."""
    state, error = request.app[HEALTH].state()
    body: dict[str, object] = {
        "status": state,
        "docker_connected": request.app[SUPERVISOR].connected,
    }
    if error is not None:
        body["error"] = error
    return web.json_response(body, status=503 if error is not None else 200)


def _oldest_pending(sender: Sender) -> dict[str, int]:
    """Each container's oldest line timestamp among the batches not yet acknowledged
    (a batch's oldest line stands for all its containers'), as the lag metric counts it."""
    oldest: dict[str, int] = {}
    for segment in sender.spool.unacknowledged():
        if not segment.first_ts:
            continue
        for cid, _, _ in segment.positions:
            if segment.first_ts < oldest.get(cid, segment.first_ts + 1):
                oldest[cid] = segment.first_ts
    return oldest


def _container(
    supervisor: Supervisor,
    cid: str,
    follower: Follower,
    waiting: bool,
    now: int,
    oldest: int | None,
) -> ContainerStatus:
    acked = supervisor.store.get(cid)
    streams = acked.streams if acked else {}
    cursor = {s: StreamCursor(ts=p.ts, count=p.count) for s, p in streams.items()}
    unacked = any(streams.get(s, Position()) != p for s, p in follower.positions.items() if p.count)
    state = follower.stats.state
    if waiting and unacked:
        state = "waiting for collector"
    return ContainerStatus(
        id=cid,
        name=follower.meta.name,
        state=state,
        cursor=cursor,
        lag_seconds=round(max(0, now - oldest) / 1e9, 3) if oldest else 0.0,
        lines=follower.stats.lines,
        bytes=follower.stats.bytes,
        recovered=follower.stats.recovered,
        gaps=follower.stats.gaps,
    )


async def status(request: web.Request) -> web.Response:
    """Every followed container (and those gone lately) with cursor, lag, counts, state."""
    supervisor = request.app[SUPERVISOR]
    sender = request.app[SENDER]
    now = time.time_ns()
    waiting = sender.waiting_since is not None
    followers = {cid: f for cid, (f, _) in supervisor.recent.items()} | supervisor.followers
    oldest = _oldest_pending(sender)
    containers = [
        _container(supervisor, cid, follower, waiting, now, oldest.get(cid))
        for cid, follower in sorted(followers.items())
    ]
    health = request.app[HEALTH]
    state, _ = health.state()
    body = {
        "status": state,
        "disk_buffer_error": health.batcher.write_error,
        "cursor_save_error": health.batcher.store.save_error,
        "docker_connected": supervisor.connected,
        "followed": len(supervisor.tasks),
        "tasks": len(asyncio.all_tasks()),
        "queued_records": sender.queue.qsize(),
        "batches_unacknowledged": sender.tracker.pending_batches,
        "oldest_request_seconds": sender.oldest_request(),
        "collector_error": sender.last_error if waiting else None,
        "containers": containers,
    }
    return web.json_response(body)


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    metrics.QUEUED.set(request.app[SENDER].queue.qsize())
    resp = web.Response(body=generate_latest())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own 404 and 405 as JSON naming the endpoints, as every other answer."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status not in (404, 405):
            raise
        error = (
            f"no such endpoint: {request.method} {request.path} "
            "(GET /healthz, /status, /metrics, /logs)"
        )
        if exc.status == 405:
            error = f"method {request.method} not allowed on {request.path} (use GET)"
        response = web.json_response({"error": error}, status=exc.status)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response


def make_app(
    supervisor: Supervisor, sender: Sender, tail: endpoint.Tail, health: Health
) -> web.Application:
    """The status application, with GET /logs (shipper/tail/endpoint.py)."""
    app = web.Application(middlewares=[json_not_found])
    app[SUPERVISOR] = supervisor
    app[SENDER] = sender
    app[HEALTH] = health
    app[endpoint.TAIL] = tail
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics_endpoint)
    # No HEAD: it would hold one of the few /logs places open for a stream never sent.
    app.router.add_get("/logs", endpoint.logs, allow_head=False)
    return app
