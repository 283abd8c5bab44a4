"""What each part of the shipper asks of dockerd, as small Protocols. Typing only.

:class:`shipper.docker_api.DockerClient` answers all of them (mypy proves it where
``__main__`` hands it to the supervisor), and so must every stand-in for dockerd in the
unit tests: a stand-in whose ``logs()`` or ``inspect()`` drifted from the signature the
shipper calls is then a type error instead of a test that passes by luck.

=============  ====================================  =====================================
Protocol       asks                                  asked by
=============  ====================================  =====================================
Inspects       ``inspect``                           follow/backlog.py
ServesLogs     ``logs``                              follow/numbering.py, follow/reread.py,
                                                     logfiles/audit.py
Following      ``logs``, ``inspect``,                follow/ (a follower and its parts)
               ``wait_stopped``
Lists          ``list_all``, ``inspect``             listing.py
ServesInfo     ``info``                              logfiles/root.py
Dockerd        all of the above, ``event_stream``    source.py (the supervisor)
=============  ====================================  =====================================

A log read's options after ``since`` are keyword-only here: the shipper always names them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from shipper.containers import ContainerSummary, Listed
from shipper.docker_api import Pace
from shipper.events import ContainerEvent


class Inspects(Protocol):
    """Inspects a container (ContainerGone once it was removed)."""

    async def inspect(self, cid: str) -> ContainerSummary: ...


class ServesLogs(Protocol):
    """Serves a container's log as raw chunks: see DockerClient.logs."""

    def logs(
        self,
        cid: str,
        since: str,
        *,
        follow: bool = True,
        until: str | None = None,
        pace: Pace | None = None,
        on_end: Callable[[int], None] | None = None,
        tail: int | None = None,
    ) -> AsyncGenerator[bytes, None]: ...


class Following(ServesLogs, Inspects, Protocol):
    """What a follower and its parts ask: a container's log, its state, its stop."""

    async def wait_stopped(self, cid: str) -> None: ...


class Lists(Inspects, Protocol):
    """What a listing asks: every container, then those worth it inspected."""

    async def list_all(self) -> list[Listed]: ...


class ServesInfo(Protocol):
    """Tells about the daemon (`GET /info`: its data root, among others)."""

    async def info(self) -> dict[str, Any]: ...


class Dockerd(Following, Lists, ServesInfo, Protocol):
    """What the supervisor asks, itself and through the listing and the followers."""

    def event_stream(
        self, since: str | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[ContainerEvent]]: ...
