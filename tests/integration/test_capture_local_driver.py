"""Docker's `local` log driver on the real dockerd: its file read directly gives the lines
the logs API gives, and a `--rm` container's tail that its stream left out is read from
that file by the shipper's supervisor and follower, each line once, no gap."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import docker
import pytest
from prometheus_client import REGISTRY

from shipper import metrics
from shipper.catchup import ReplayCheck
from shipper.config import load_config
from shipper.cursor import CursorStore
from shipper.docker_api import DockerClient
from shipper.events import ContainerEvent
from shipper.follow.gaps import ROTATED_AWAY_GAP, ROTATED_FULL_GAP, UNREAD_GAP
from shipper.inbox import Inbox
from shipper.logfiles import jsonfile, localfile
from shipper.logfiles.watch import LogFiles
from shipper.record import DoneRecord, GapRecord, LogRecord, Record
from shipper.rejoin import Line, LineReader
from shipper.source import Supervisor
from tests.conftest import Pipeline
from tests.integration.capture import expected_numbered, numbered, run, until_made, wait_exit
from tests.shipper.test_backlog import drained, follower_for

pytestmark = pytest.mark.integration

LOCAL = docker.types.LogConfig(type="local")
# A line of 20,000 bytes (two pieces), one of exactly 16 KiB (a piece, then an empty
# last piece), stderr between, a character cut by the 16 KiB split, an empty line, and
# a last line without a newline.
SHAPES = (
    "echo one; head -c 20000 /dev/zero | tr '\\0' a; echo; echo two;"
    " head -c 16384 /dev/zero | tr '\\0' b; echo; echo three >&2;"
    " head -c 32768 /dev/zero | tr '\\0' c; echo; head -c 16383 /dev/zero | tr '\\0' d;"
    " printf '\\303\\251end\\n'; printf '\\n'; printf 'tail-no-newline'"
)
PAIRS = 20_000


async def _api_lines(cid: str) -> list[Line]:
    """The container's whole log as dockerd's logs API gives it, as lines."""
    async with DockerClient("unix:///var/run/docker.sock") as api:
        reader = LineReader(1 << 20)
        got: list[Line] = []
        async for chunk in api.logs(cid, "0", follow=False):
            got += reader.feed(chunk)
        return got + reader.finish()


async def test_the_file_gives_the_lines_the_api_gives(
    pipeline: Pipeline, docker_client: docker.DockerClient
) -> None:
    """Lines, streams, times and joins of the `local` file read directly are exactly the
    API's for the same log, long and unfinished lines included; inspect gives no
    LogPath, the file is under local-logs/."""
    c = run(docker_client, pipeline, SHAPES, log_config=LOCAL)
    assert wait_exit(c) == 0
    c.reload()
    assert c.attrs["LogPath"] == ""
    root = docker_client.info()["DockerRootDir"]
    data = await asyncio.to_thread(Path(localfile.local_log_path(root, c.id)).read_bytes)
    found, problems = localfile.lines([data], 1 << 20, tty=False)
    assert problems == []
    want = await _api_lines(c.id)
    assert found == want
    lengths = sorted(len(line.data) for line in found)
    assert lengths == [0, 3, 3, 5, 15, 16384, 16388, 20000, 32768]


class _Watched(Supervisor):
    """The supervisor, saying when it reads dockerd's events and which containers' destroy
    it read (dockerd is shared: other containers are destroyed too)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.subscribed = asyncio.Event()
        self.destroyed: set[str] = set()
        self._destroy = asyncio.Event()

    async def removed(self, cid: str) -> None:
        """Wait until the destroy event of `cid` was read."""
        while cid not in self.destroyed:
            self._destroy.clear()
            await self._destroy.wait()

    async def _consume(self, events: AsyncIterator[ContainerEvent], replay: ReplayCheck) -> None:
        self.subscribed.set()
        await super()._consume(events, replay)

    def _on_event(self, event: ContainerEvent) -> None:
        super()._on_event(event)
        if event.action == "destroy":
            self.destroyed.add(event.cid)
            self._destroy.set()


Ready = Callable[[Inbox, list[Record], Any], Awaitable[None]]


async def _cut_at_removal(
    client: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    script: str,
    log_config: docker.types.LogConfig,
    ready: Ready | None = None,
) -> tuple[list[Record], list[str]]:
    """Run `script` in a `--rm` container (it waits for /go/go before its last lines),
    followed by the shipper's supervisor in this process. Once its first record is
    queued (and `ready` returned: it may read more), the follow stream from dockerd is
    ended at its next chunk as dockerd ends a removed container's stream whether or not
    its reader caught up: that chunk and the rest are never given to the follower, and
    the stream ends once the container's destroy event was read. Everything else is
    real: dockerd, its files, its refusal of the next request. The records queued until
    the container was done, and the containers whose stream was ended."""
    label = f"local-rm-{uuid.uuid4().hex[:12]}"
    config = load_config(state_dir=tmp_path / "state", include_labels=[f"logpipe.test={label}"])
    inbox = Inbox(100_000, metrics.PerContainer(False, 10))
    real_logs = DockerClient.logs
    armed = asyncio.Event()
    cut: list[str] = []

    async def ended_early(self: DockerClient, cid: str, since: str, **kw: Any) -> Any:
        chunks = real_logs(self, cid, since, **kw)
        try:
            async for chunk in chunks:
                if armed.is_set() and kw.get("follow", True) and not cut:
                    cut.append(cid)
                    await sup.removed(cid)
                    return
                yield chunk
        finally:
            await chunks.aclose()

    monkeypatch.setattr(DockerClient, "logs", ended_early)
    go = tmp_path / "go"
    go.mkdir()
    container: Any = None
    async with DockerClient(config.docker_host) as docker_api:
        store = CursorStore(tmp_path / "state")
        store.load()  # makes the state folder, as the shipper's start does
        sup = _Watched(config, docker_api, store, inbox, None)
        supervising = asyncio.create_task(sup.run())
        try:
            await asyncio.wait_for(sup.subscribed.wait(), 60)
            container = await asyncio.to_thread(
                client.containers.run,
                "busybox:latest",
                ["sh", "-c", script],
                detach=True,
                auto_remove=True,
                network_mode="none",
                log_config=log_config,
                labels={"logpipe.test": label},
                volumes={str(go): {"bind": "/go", "mode": "ro"}},
            )
            records: list[Record] = []
            async with asyncio.timeout(180):  # a bound for a hang, not a measurement
                records.append(await inbox.get())  # inspected, its log file held
                if ready is not None:
                    await ready(inbox, records, container)
                armed.set()
                go.joinpath("go").touch()
                await sup.removed(container.id)
                while not isinstance(records[-1], DoneRecord):
                    records.append(await inbox.get())
        finally:
            supervising.cancel()
            await asyncio.gather(supervising, return_exceptions=True)
            if container is not None:
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
    assert cut == [container.id]
    return records, cut


def _lines(records: list[Record]) -> Counter[tuple[str, str]]:
    return Counter((r.stream, r.data.decode()) for r in records if isinstance(r, LogRecord))


WAIT_GO = until_made("/go/go") + "; "


async def test_a_removed_rm_containers_tail_is_read_from_its_local_log(
    docker_client: docker.DockerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `--rm` container of the `local` driver prints 40,000 lines and is removed while
    its follow stream has carried only its first line: every line is read once, from
    the log file the shipper held; no gap."""
    rescues = REGISTRY.get_sample_value("logpipe_shipper_logfile_rescues_total") or 0.0
    script = "echo first; " + WAIT_GO + numbered(PAIRS)
    records, _ = await _cut_at_removal(docker_client, tmp_path, monkeypatch, script, LOCAL)
    assert _lines(records) == {pair: 1 for pair in expected_numbered(PAIRS) | {("stdout", "first")}}
    assert not [r for r in records if isinstance(r, GapRecord)]
    assert REGISTRY.get_sample_value("logpipe_shipper_logfile_rescues_total") == rescues + 1


@pytest.mark.parametrize("overflow", [False, True])
async def test_the_tail_is_read_across_compressed_rotations_of_a_local_log(
    docker_client: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    overflow: bool,
) -> None:
    """`max-size=100k`: while its follow stream is read the log rotates several times,
    and dockerd compresses the rotated files (the `local` default); the shipper takes
    each new file as it reads. Then the container prints as many more lines as the
    newest file has room for and is removed with its stream cut: that tail is read
    from the newest file held, every line once, no gap. With 500 pairs more than that
    (`overflow`), rotation begins a file after the stream was cut, just before the
    removal: the watch of the log's folder opened it as dockerd created it, and the
    tail is read on into it, every line once, no gap (before the watch followed
    rotation, those lines were lost, or read from dockerd with a gap saying they may
    be missing). Only when the watch says it could not open a new file in time may
    lines be missing, each stream's tail a gap."""
    monkeypatch.setattr(jsonfile, "CHECK_EVERY", 0.0)  # look for a new file at every read
    unfollowed = _unfollowed()
    first = 4_000  # at about 4,000 lines/s: dockerd's stream keeps up across rotations
    script = (
        f"echo first; {until_made('/go/go1')}; "
        + numbered(first, batch=100, pause_us=50_000)
        + "; echo marker; "
        + WAIT_GO
        + f"i={first + 1}; last=$(({first} + $(cat /go/n))); "
        + 'while [ $i -le $last ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done'
    )
    seen: dict[str, Any] = {}

    async def ready(inbox: Inbox, records: list[Record], container: Any) -> None:
        go = Path(tmp_path, "go")
        await asyncio.to_thread(go.joinpath("go1").touch)
        while not records or getattr(records[-1], "data", b"") != b"marker":
            records.append(await inbox.get())
        root = docker_client.info()["DockerRootDir"]
        log = Path(localfile.local_log_path(root, container.id))
        seen["files"] = sorted(await asyncio.to_thread(os.listdir, log.parent))
        # Entries of `out 4001` to `err 9999`: 36 bytes each. As many pairs as the file
        # takes before it reaches 100,000 bytes, where dockerd would start another.
        size = (await asyncio.to_thread(log.stat)).st_size
        room = (100_000 - size - 100) // 72
        seen["pairs"] = room + 500 if overflow else min(1_000, room)
        await asyncio.to_thread(go.joinpath("n").write_text, str(seen["pairs"]))

    options = {"max-size": "100k"}
    records, _ = await _cut_at_removal(
        docker_client,
        tmp_path,
        monkeypatch,
        script,
        docker.types.LogConfig(type="local", config=options),
        ready,
    )
    assert "container.log.1.gz" in seen["files"], seen
    assert seen["pairs"] > 0, seen
    want = expected_numbered(first + seen["pairs"])
    want |= {("stdout", "first"), ("stdout", "marker")}
    got = _lines(records)
    gaps = sorted((r.stream, r.reason) for r in records if isinstance(r, GapRecord))
    if _unfollowed() == unfollowed:
        assert got == {pair: 1 for pair in want}
        assert gaps == []
        return
    # The watch could not open a new file in time (the machine starved its thread until
    # the removal): the new file's lines may be lost, and then each stream's tail is a
    # gap that says so, never silent.
    assert set(got.values()) == {1}
    assert expected_numbered(first) <= set(got) <= want
    if set(got) < want:
        assert {reason for _, reason in gaps} <= {ROTATED_FULL_GAP, ROTATED_AWAY_GAP, UNREAD_GAP}
        assert {stream for stream, reason in gaps if reason != UNREAD_GAP} == {"stdout", "stderr"}


def _unfollowed() -> float:
    return REGISTRY.get_sample_value("logpipe_shipper_rotation_unfollowed_total") or 0.0


async def test_a_running_local_log_followed_from_its_files_gives_the_apis_lines(
    docker_client: docker.DockerClient,
) -> None:
    """A follower (in-process) follows a running `local` container's log from its files
    while it prints long lines, an unfinished last line and 6,000 short ones across
    rotations at 64 kB (compressed, the driver's default; 50 files kept, so dockerd
    still has the whole log at the end): its lines, streams and times are exactly what
    dockerd's logs API gives for the log, each once, and no gap."""
    run_label = f"lf-{uuid.uuid4().hex[:10]}"
    config = docker.types.LogConfig(type="local", config={"max-size": "64k", "max-file": "50"})
    script = (
        "sleep 1; "
        + SHAPES.replace("printf 'tail-no-newline'", "echo")
        + "; "
        + numbered(3000, batch=100, pause_us=20_000)
        + "; "
        + SHAPES
    )
    c = docker_client.containers.run(
        "busybox:latest",
        ["sh", "-c", script],
        detach=True,
        network_mode="none",
        labels={"logpipe.test": run_label},
        log_config=config,
    )
    assert c.id is not None
    try:
        root = docker_client.info()["DockerRootDir"]
        async with DockerClient("unix:///var/run/docker.sock") as api:
            follower, inbox = follower_for(
                api, None, LogFiles(root), cid=c.id, learn=False, pace=0.01, turns=None
            )
            summary = await api.inspect(c.id)
            assert summary["running"], "the container ended before it was followed"
            follower.learn(summary, follower.meta, skip=False)
            assert follower._file_follow.path == localfile.local_log_path(root, c.id)
            assert await asyncio.wait_for(follower._file_follow.follow(), 120) is True
        rotated = f"{localfile.local_log_path(root, c.id)}.5.gz"
        assert await asyncio.to_thread(os.path.exists, rotated), "write more"
        records = drained(inbox)
        assert not [r for r in records if isinstance(r, GapRecord)]
        followed = [(r.stream, r.ts, r.data) for r in records if isinstance(r, LogRecord)]
        streams = {1: "stdout", 2: "stderr"}
        want = [(streams[line.stream], line.ts, line.data) for line in await _api_lines(c.id)]
        assert len(want) == 2 * 3000 + 2 * 9  # SHAPES twice
        assert followed == want
    finally:
        c.remove(force=True)
