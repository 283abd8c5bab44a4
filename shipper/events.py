"""Docker's container events: each `/events` line parsed, and what it tells. Pure.

An event's attributes mix the container's labels with ``name``, ``image``,
``exitCode``... (docs/docker-logs.md): a label with one of those names cannot be told
apart here, so metadata taken from an event is replaced by the inspected one as soon
as the container is inspected.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from shipper.containers import ContainerSummary

# Event attributes that are not labels (Docker mixes labels into the same map).
NOT_LABELS = {"name", "image", "exitCode", "signal", "execDuration", "oldName"}
# Actions indexed as lifecycle documents; health_status carries its state as detail.
LIFECYCLE = {
    "start",
    "die",
    "oom",
    "restart",
    "stop",
    "destroy",
    "rename",
    "pause",
    "unpause",
    "health_status",
}


@dataclass(frozen=True, slots=True)
class ContainerEvent:
    """One container event: ``health_status: healthy`` is action health_status, detail healthy.

    Its attributes mix labels with Docker's own (above); ``timeNano`` exceeds 2^53, so
    ``ts`` is kept an int. The stream also hands over events of the other kinds
    (``network``, ``image``...; `kind`, `cid` then their object's id): dockerd keeps
    them in the same ring as the containers', so only counting them tells whether a
    replay reached back far enough (catchup.ReplayCheck); nothing else looks at them.
    """

    cid: str
    action: str
    detail: str
    ts: int
    attrs: dict[str, str]
    kind: str = "container"

    @property
    def exit_code(self) -> int | None:
        """The exit code of a ``die``."""
        code = self.attrs.get("exitCode", "")
        return int(code) if code.lstrip("-").isdigit() else None

    @property
    def name(self) -> str | None:
        """The container's name (its new name for a ``rename``)."""
        name = self.attrs.get("name")
        return name.lstrip("/") if name else None

    @property
    def old_name(self) -> str:
        """The name before a ``rename``."""
        return self.attrs.get("oldName", "?").lstrip("/")


def parse_event(raw: dict[str, Any]) -> ContainerEvent | None:
    """The event of one `/events` line, or None when it names no object or action."""
    action = str(raw.get("Action") or raw.get("status") or "")
    actor = raw.get("Actor") or {}
    cid = str(actor.get("ID") or raw.get("id") or "")
    if not cid or not action:
        return None
    base, _, detail = action.partition(": ")
    attrs = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
    ts = int(raw.get("timeNano") or time.time_ns())
    return ContainerEvent(cid, base, detail, ts, attrs, str(raw.get("Type") or "container"))


def summary_from_event(event: ContainerEvent) -> ContainerSummary:
    """What an event tells about its container (labels best effort; env unknown)."""
    labels = {k: v for k, v in event.attrs.items() if k not in NOT_LABELS}
    return ContainerSummary(
        id=event.cid,
        name=event.name or event.cid[:12],
        image=event.attrs.get("image", ""),
        labels=labels,
        env=[],
        tty=False,
        running=True,
        started_at="",
        finished_ns=0,
        log_driver="",
        log_opts={},
        log_path="",
        auto_remove=False,
    )
