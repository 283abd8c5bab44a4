"""A container started again and removed as its follower ends, on the real dockerd.

The window is open only while the follower's last rotation audit runs (up to about half
a second after the container stopped), which a test cannot make dockerd hit at will. So
the shipper's supervisor runs in the test's process, and its first follower is held in
that audit until the container ran again, exited, was removed and its destroy event was
read; everything else is real: dockerd's events, its removal of the container's folder
with its log, its refusals of the next follower's requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest

from shipper import metrics
from shipper.catchup import ReplayCheck
from shipper.config import load_config
from shipper.cursor import CursorStore
from shipper.docker_api import DockerClient
from shipper.events import ContainerEvent
from shipper.follow.gaps import REMOVED_EARLY_GAP
from shipper.follow.numbering import Numbering
from shipper.inbox import Inbox
from shipper.logfiles.watch import LogFiles
from shipper.record import DoneRecord, GapRecord, LogRecord, Record
from shipper.source import Supervisor

pytestmark = pytest.mark.integration

LINES = 50
# Each run numbers itself through a file that survives stop/start in the container.
SCRIPT = (
    "n=$(cat /tmp/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/runs; "
    f'i=1; while [ $i -le {LINES} ]; do echo "run$n $i"; i=$((i+1)); done'
)


async def _no_files(docker_api: DockerClient) -> LogFiles:
    """As for a shipper that does not see dockerd's containers folder."""
    return LogFiles("")


class _Watched(Supervisor):
    """The supervisor, saying when it reads dockerd's events and when it read a destroy."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.subscribed = asyncio.Event()
        self.destroyed = asyncio.Event()

    async def _consume(self, events: AsyncIterator[ContainerEvent], replay: ReplayCheck) -> None:
        self.subscribed.set()
        await super()._consume(events, replay)

    def _on_event(self, event: ContainerEvent) -> None:
        super()._on_event(event)
        if event.action == "destroy":
            self.destroyed.set()


async def _second_run_removed(
    client: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    driver: str = "json-file",
) -> list[Record]:
    """Run the container once; hold its follower in its last audit while it is started,
    exits and is removed; what the supervisor queued until the container was done."""
    label = f"restart-removed-{uuid.uuid4().hex[:12]}"
    config = load_config(state_dir=tmp_path, include_labels=[f"logpipe.test={label}"])
    inbox = Inbox(10_000, metrics.PerContainer(False, 10))
    in_window, release = asyncio.Event(), asyncio.Event()
    finish_audits = Numbering.finish_audits

    async def held(numbering: Numbering) -> None:
        if not in_window.is_set():  # the first follower only
            in_window.set()
            await release.wait()
        await finish_audits(numbering)

    monkeypatch.setattr(Numbering, "finish_audits", held)
    container: Any = None
    async with DockerClient(config.docker_host) as docker_api:
        sup = _Watched(config, docker_api, CursorStore(tmp_path), inbox, None)
        supervising = asyncio.create_task(sup.run())
        try:
            await asyncio.wait_for(sup.subscribed.wait(), 60)
            container = client.containers.run(
                "busybox:latest",
                ["sh", "-c", SCRIPT],
                detach=True,
                network_mode="none",
                labels={"logpipe.test": label},
                log_config=docker.types.LogConfig(type=driver),
            )
            async with asyncio.timeout(60):  # a bound for a hang, not a measurement
                await in_window.wait()
                await asyncio.to_thread(container.start)
                await asyncio.to_thread(container.wait)
                await asyncio.to_thread(container.remove, force=True)
                await sup.destroyed.wait()
                release.set()
                records: list[Record] = []
                while not records or not isinstance(records[-1], DoneRecord):
                    records.append(await inbox.get())
        finally:
            supervising.cancel()
            await asyncio.gather(supervising, return_exceptions=True)
            if container is not None:
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
    return records


@pytest.mark.parametrize("driver", ["json-file", "local"])
async def test_a_run_removed_as_its_follower_ends_is_read_from_its_log_file(
    docker_client: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    driver: str,
) -> None:
    """`docker start` then `docker rm -f` as the follower of the first run ends: the
    second run is read from the log file taken at its start event (dockerd has it no
    more), every line of both runs once, no gap; under either log driver that writes a
    file the shipper can read."""
    records = await _second_run_removed(docker_client, tmp_path, monkeypatch, driver)
    lines = [r.data.decode() for r in records if isinstance(r, LogRecord)]
    assert lines == [f"run{n} {i}" for n in (1, 2) for i in range(1, LINES + 1)]
    assert not [r for r in records if isinstance(r, GapRecord)]


async def test_a_run_removed_as_its_follower_ends_is_a_gap_without_its_file(
    docker_client: docker.DockerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same where the shipper cannot read dockerd's containers folder: the second run
    is reported lost, a gap document for each stream, instead of lost without a word."""
    monkeypatch.setattr("shipper.source.find_log_files", _no_files)
    records = await _second_run_removed(docker_client, tmp_path, monkeypatch)
    lines = [r.data.decode() for r in records if isinstance(r, LogRecord)]
    assert lines == [f"run1 {i}" for i in range(1, LINES + 1)]
    gaps = sorted((r.stream, r.reason) for r in records if isinstance(r, GapRecord))
    assert gaps == [("stderr", REMOVED_EARLY_GAP), ("stdout", REMOVED_EARLY_GAP)]
