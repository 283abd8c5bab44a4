"""The shipper's own HTTP endpoints: /healthz, /status (JSON) and /metrics."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shipper import metrics
from shipper.deliver import Sender
from shipper.source import Supervisor

SUPERVISOR: web.AppKey[Supervisor] = web.AppKey("supervisor", Supervisor)
SENDER: web.AppKey[Sender] = web.AppKey("sender", Sender)


async def healthz(request: web.Request) -> web.Response:
    """Up, and whether dockerd is connected."""
    connected = request.app[SUPERVISOR].connected
    return web.json_response({"status": "ok", "docker_connected": connected})


async def status(request: web.Request) -> web.Response:
    """Every followed container with its position, lag and counts."""
    supervisor = request.app[SUPERVISOR]
    sender = request.app[SENDER]
    now = time.time_ns()
    waiting = sender.waiting_since is not None
    containers = []
    for cid, follower in sorted(supervisor.followers.items()):
        stats = follower.stats
        acked = supervisor.store.get(cid)
        cursor = (
            {s: {"ts": p.ts, "count": p.count} for s, p in acked.streams.items()} if acked else {}
        )
        lag = (now - stats.last_ts) / 1e9 if stats.last_ts else None
        containers.append(
            {
                "id": cid,
                "name": follower.meta.name,
                "state": "waiting for collector" if waiting else stats.state,
                "cursor": cursor,
                "lag_seconds": round(lag, 3) if lag is not None else None,
                "lines": stats.lines,
                "bytes": stats.bytes,
            }
        )
    body = {
        "docker_connected": supervisor.connected,
        "queued_records": sender.queue.qsize(),
        "batches_unacknowledged": sender.tracker.pending_batches,
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


def make_app(supervisor: Supervisor, sender: Sender) -> web.Application:
    """The status application."""
    app = web.Application()
    app[SUPERVISOR] = supervisor
    app[SENDER] = sender
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics_endpoint)
    return app
