"""Container summaries (what inspecting a container tells the shipper) for unit tests."""

from __future__ import annotations

from shipper.containers import ContainerSummary


def container(
    name: str = "web-1",
    image: str = "nginx:1.27",
    labels: dict[str, str] | None = None,
    env: list[str] | None = None,
    cid: str = "a" * 64,
    running: bool = True,
    finished_ns: int = 0,
    log_driver: str = "json-file",
    auto_remove: bool = False,
) -> ContainerSummary:
    """A running json-file container unless told otherwise."""
    return ContainerSummary(
        id=cid,
        name=name,
        image=image,
        labels=labels or {},
        env=env or [],
        tty=False,
        running=running,
        started_at="",
        finished_ns=finished_ns,
        log_driver=log_driver,
        log_opts={},
        log_path="",
        auto_remove=auto_remove,
    )
