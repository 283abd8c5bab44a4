"""Docker's container events (parsed at the edge, docker_api.py): what they tell. Pure.

An event's attributes mix the container's labels with ``name``, ``image``,
``exitCode``... (docs/docker-logs.md): a label with one of those names cannot be told
apart here, so metadata taken from an event is replaced by the inspected one as soon
as the container is inspected.
"""

from __future__ import annotations

from shipper.docker_api import ContainerEvent, ContainerSummary

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
