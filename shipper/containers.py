"""What dockerd tells of a container: its inspected summary, its state in a listing. Pure.

Parsed from the Engine API's JSON answers, which :mod:`shipper.docker_api` fetches.
"""

from __future__ import annotations

from typing import Any, TypedDict

from shipper.demux import parse_ts
from shipper.errors import DemuxError


class ContainerSummary(TypedDict):
    """What the shipper needs from `GET /containers/json` and inspect."""

    id: str
    name: str
    image: str
    labels: dict[str, str]
    env: list[str]
    tty: bool
    running: bool
    started_at: str
    finished_ns: int  # 0 when it never stopped
    log_driver: str
    log_opts: dict[str, str]
    log_path: str  # the json-file driver's file on the host ("" for other drivers)
    auto_remove: bool  # --rm


class Listed(TypedDict):
    """One container of `GET /containers/json?all=1`."""

    id: str
    state: str  # created, running, paused, restarting, removing, exited, dead


def summary_from_inspect(data: dict[str, Any]) -> ContainerSummary:
    """The fields we use, from an inspect answer."""
    config = data.get("Config") or {}
    state = data.get("State") or {}
    host_config = data.get("HostConfig") or {}
    return ContainerSummary(
        id=data["Id"],
        name=str(data.get("Name", "")).lstrip("/"),
        image=str(config.get("Image", "")),
        labels=dict(config.get("Labels") or {}),
        env=list(config.get("Env") or []),
        tty=bool(config.get("Tty")),
        running=bool(state.get("Running")),
        started_at=str(state.get("StartedAt", "")),
        finished_ns=_time_ns(str(state.get("FinishedAt") or "")),
        log_driver=str((host_config.get("LogConfig") or {}).get("Type", "")),
        log_opts=dict((host_config.get("LogConfig") or {}).get("Config") or {}),
        log_path=str(data.get("LogPath") or ""),
        auto_remove=bool(host_config.get("AutoRemove")),
    )


def _time_ns(value: str) -> int:
    """Nanoseconds from Docker's RFC 3339 time; 0 for its zero time or nonsense."""
    if not value or value.startswith("0001-"):
        return 0
    try:
        return parse_ts(value.encode())
    except DemuxError:
        return 0
