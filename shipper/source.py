"""Discover containers and keep one follower per container, across dockerd restarts.

The event subscription is opened before containers are listed, so a container started
while listing is seen by one or the other (never by neither); followers are keyed by
id, so seeing it twice is harmless. Lifecycle events become records of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from shipper import metrics
from shipper.config import ShipperConfig
from shipper.cursor import STREAMS, CursorStore, Position
from shipper.docker_api import ContainerSummary, DockerClient
from shipper.errors import ContainerGone, DockerError, DockerUnavailable
from shipper.follow import Follower
from shipper.record import EventRecord, Record
from shipper.selection import meta_from, skip_reason

log = logging.getLogger("logpipe.shipper.source")

# Event attributes that are not labels (Docker mixes labels into the same map).
_EVENT_KEYS = {"name", "image", "exitCode", "signal", "execDuration", "oldName"}
_LIFECYCLE = {"start", "die", "oom", "restart", "stop", "destroy", "rename", "pause", "unpause"}


def _now_ns() -> int:
    return time.time_ns()


class Supervisor:
    """Owns the followers; turns Docker events into followers and event records."""

    def __init__(
        self,
        config: ShipperConfig,
        docker: DockerClient,
        store: CursorStore,
        out: asyncio.Queue[Record],
        self_id: str | None,
    ) -> None:
        self.config = config
        self.docker = docker
        self.store = store
        self.out = out
        self.self_id = self_id
        self.followers: dict[str, Follower] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.positions: dict[str, dict[str, Position]] = {}
        self.connected = False
        self._first_listing = True

    async def run(self) -> None:
        """Discover and follow until cancelled; reconnect to dockerd with backoff."""
        delay = 0.2
        while True:
            try:
                async with self.docker.event_stream() as events:
                    await self._list()
                    self.connected = True
                    delay = 0.2
                    async for event in events:
                        await self._on_event(event)
                log.warning("dockerd closed the event stream; reconnecting")
            except DockerUnavailable as exc:
                log.warning("dockerd unavailable", extra={"reason": str(exc), "retry_in": delay})
            self.connected = False
            metrics.RECONNECTS.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _list(self) -> None:
        """Follow every running container, and stopped ones with unread lines."""
        running = set(await self.docker.list_ids())
        known = set(self.store.containers())
        for cid in sorted(running | known):
            try:
                summary = await self.docker.inspect(cid)
            except ContainerGone:
                if cid not in self.tasks:
                    self.store.forget(cid)
                continue
            floor = (
                0 if self.config.start_at == "beginning" or not self._first_listing else _now_ns()
            )
            self._follow(summary, floor)
        self._first_listing = False

    async def _on_event(self, event: dict[str, Any]) -> None:
        action = str(event.get("Action") or event.get("status") or "")
        actor = event.get("Actor") or {}
        cid = str(actor.get("ID") or event.get("id") or "")
        attrs: dict[str, str] = dict(actor.get("Attributes") or {})
        if not cid or not action:
            return
        base, _, detail = action.partition(": ")
        if base == "start":
            self._follow(self._summary_from_event(cid, attrs), 0)
            follower = self.followers.get(cid)
            if follower is not None:
                follower.again = True
        if base in _LIFECYCLE or base == "health_status":
            await self._event_record(cid, attrs, base, detail, event)

    def _summary_from_event(self, cid: str, attrs: dict[str, str]) -> ContainerSummary:
        labels = {k: v for k, v in attrs.items() if k not in _EVENT_KEYS}
        return ContainerSummary(
            id=cid,
            name=attrs.get("name", cid[:12]),
            image=attrs.get("image", ""),
            labels=labels,
            env=[],
            tty=False,
            running=True,
            started_at="",
            log_driver="",
        )

    async def _event_record(
        self, cid: str, attrs: dict[str, str], action: str, detail: str, event: dict[str, Any]
    ) -> None:
        follower = self.followers.get(cid)
        if follower is None:
            summary = self._summary_from_event(cid, attrs)
            if skip_reason(summary, self.config, self.self_id):
                return
            meta, _ = meta_from(summary)
        else:
            meta = follower.meta
        if action == "rename" and follower is not None:
            follower.meta = meta = replace(meta, name=attrs.get("name", meta.name).lstrip("/"))
            detail = f"renamed from {attrs.get('oldName', '?').lstrip('/')}"
        exit_code = attrs.get("exitCode")
        ts = int(event.get("timeNano") or _now_ns())
        code = int(exit_code) if exit_code and exit_code.lstrip("-").isdigit() else None
        await self.out.put(EventRecord(meta, ts, action, code, detail or None))

    def _follow(self, summary: ContainerSummary, floor: int) -> None:
        cid = summary["id"]
        task = self.tasks.get(cid)
        if task is not None and not task.done():
            return
        reason = skip_reason(summary, self.config, self.self_id)
        if reason:
            log.info(
                "not following container", extra={"container": summary["name"], "reason": reason}
            )
            return
        meta, warnings = meta_from(summary)
        for warning in warnings:
            log.warning(
                "invalid hint label ignored", extra={"container": meta.name, "reason": warning}
            )
        positions = self.positions.get(cid)
        if positions is None:
            cursor = self.store.ensure(cid, floor)
            positions = {s: cursor.position(s) for s in STREAMS}
            self.positions[cid] = positions
        follower = Follower(self.docker, meta, positions, self.out, self.config.max_line_bytes)
        self.followers[cid] = follower
        self.tasks[cid] = asyncio.create_task(
            self._run_follower(follower), name=f"follow-{cid[:12]}"
        )
        metrics.FOLLOWED.set(len(self.tasks))

    async def _run_follower(self, follower: Follower) -> None:
        try:
            refine = asyncio.create_task(self._refine_meta(follower))
            await follower.run()
            refine.cancel()
        except Exception:
            log.exception("follower failed", extra={"container": follower.cid[:12]})
        finally:
            self.tasks.pop(follower.cid, None)
            self.followers.pop(follower.cid, None)
            metrics.FOLLOWED.set(len(self.tasks))

    async def _refine_meta(self, follower: Follower) -> None:
        """Replace metadata guessed from an event with the inspected one (exact labels)."""
        try:
            summary = await self.docker.inspect(follower.cid)
        except DockerError:
            return
        meta, _ = meta_from(summary)
        follower.meta = replace(
            meta, name=follower.meta.name if summary["name"] == "" else meta.name
        )

    async def stop(self) -> None:
        """Cancel every follower (their positions stay in memory for the flush)."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
