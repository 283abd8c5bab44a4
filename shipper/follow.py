"""Follow one container's log stream from its position until the container is done.

The request for the logs goes out first and the container is inspected after: a
``--rm`` container may be removed within milliseconds of its start, and a request
already accepted keeps streaming after removal (DOCKER_LOGS.md). Whether the stream is
multiplexed or a TTY's is told from its first bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from shipper import metrics
from shipper.cursor import STREAMS, Position, Sequencer
from shipper.demux import STREAM_NAMES, Frame, FrameDemuxer, TtyDemuxer, format_since
from shipper.docker_api import DockerClient
from shipper.errors import ContainerGone, DemuxError, DockerError, DockerUnavailable
from shipper.record import GapRecord, LogRecord, Meta, Record
from shipper.rejoin import Line, Rejoiner

log = logging.getLogger("logpipe.shipper.follow")

RECONNECT_INITIAL = 0.2
RECONNECT_MAX = 10.0


@dataclass(slots=True)
class Stats:
    """What /status shows for one container."""

    state: str = "starting"
    lines: int = 0
    bytes: int = 0
    last_ts: int = 0
    started: float = field(default_factory=time.time)


class Follower:
    """Reads one container's logs, numbers and de-duplicates them, and queues records."""

    def __init__(
        self,
        docker: DockerClient,
        meta: Meta,
        positions: dict[str, Position],
        out: asyncio.Queue[Record],
        max_line_bytes: int,
    ) -> None:
        self.docker = docker
        self.meta = meta
        self.positions = positions  # shared with the supervisor: survives this follower
        self.out = out
        self.max_line_bytes = max_line_bytes
        self.stats = Stats()
        self.again = False  # a start event came while we were finishing

    @property
    def cid(self) -> str:
        """The container id."""
        return self.meta.id

    async def run(self) -> None:
        """Follow until the container has stopped (or is gone) and its lines are queued."""
        delay = RECONNECT_INITIAL
        while True:
            self.again = False
            try:
                done = await self._one_request()
            except DockerUnavailable as exc:
                self.stats.state = "reconnecting"
                metrics.RECONNECTS.inc()
                log.warning(
                    "log stream interrupted", extra={"container": self.cid[:12], "reason": str(exc)}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            if done and not self.again:
                self.stats.state = "gone"
                return
            delay = RECONNECT_INITIAL
            await asyncio.sleep(0.05)

    async def _one_request(self) -> bool:
        """One logs request to its end; True when the container is done."""
        sequencers = {s: Sequencer(self.positions.get(s) or Position()) for s in STREAMS}
        expect = {s: p for s, p in self.positions.items() if p.count > 0}
        # The supervisor fills in both streams (at the floor when one never had a line).
        since = min((p.ts for p in self.positions.values()), default=0)
        reader = _StreamReader(self.max_line_bytes)
        self.stats.state = "following"
        try:
            async for chunk in self.docker.logs(self.cid, format_since(since)):
                for line in reader.feed(chunk):
                    await self._emit(line, sequencers, expect)
        except ContainerGone:
            # Removed before we asked: nothing more can be read.
            return True
        except DemuxError as exc:
            log.error(
                "log stream unreadable, reconnecting",
                extra={"container": self.cid[:12], "reason": str(exc)},
            )
            raise DockerUnavailable(str(exc)) from exc
        # The stream ended normally: either the container stopped, or dockerd is going away.
        try:
            info = await self.docker.inspect(self.cid)
        except ContainerGone:
            running = False
        except DockerError as exc:
            raise DockerUnavailable(f"cannot inspect after stream end: {exc}") from exc
        else:
            running = info["running"]
        if running:
            return False
        for line in reader.close():
            await self._emit(line, sequencers, expect)
        return True

    async def _emit(
        self, line: Line, seqs: dict[str, Sequencer], expect: dict[str, Position]
    ) -> None:
        stream = STREAM_NAMES[line.stream]
        wanted = expect.pop(stream, None)
        if wanted is not None and line.ts > wanted.ts:
            await self._gap(stream, wanted.ts, line.ts)
        seq = seqs[stream].number(line.ts)
        if seq is None:
            metrics.DUPLICATES_DROPPED.inc()
            return
        self.positions[stream] = Position(line.ts, seq + 1)
        self.stats.lines += 1
        self.stats.bytes += len(line.data)
        self.stats.last_ts = line.ts
        metrics.LINES_READ.inc()
        metrics.BYTES_READ.inc(len(line.data))
        if line.truncated:
            metrics.LINES_TRUNCATED.inc()
        await self.out.put(LogRecord(self.meta, stream, line.ts, seq, line.data, line.truncated))

    async def _gap(self, stream: str, from_ts: int, to_ts: int) -> None:
        metrics.GAPS.inc()
        reason = "lines before the resume point were no longer in Docker's log (rotated or removed)"
        log.warning(
            "gap: lines lost before they could be read",
            extra={
                "container": self.cid[:12],
                "stream": stream,
                "from_ts": from_ts,
                "to_ts": to_ts,
            },
        )
        await self.out.put(GapRecord(self.meta, stream, from_ts, to_ts, reason))


class _StreamReader:
    """Bytes of one logs response in, whole lines out; detects TTY from the first bytes."""

    def __init__(self, max_line_bytes: int) -> None:
        self._max = max_line_bytes
        self._demux: FrameDemuxer | TtyDemuxer | None = None
        self._head = b""
        self._rejoin: dict[int, Rejoiner] = {}

    def feed(self, chunk: bytes) -> list[Line]:
        if self._demux is None:
            self._head += chunk
            if len(self._head) < 4:
                return []
            chunk, self._head = self._head, b""
            tty = not (chunk[0] in (1, 2) and chunk[1:4] == b"\0\0\0")
            self._demux = TtyDemuxer() if tty else FrameDemuxer()
            self._rejoin = {1: Rejoiner(self._max, tty), 2: Rejoiner(self._max, tty)}
        return self._lines(self._demux.feed(chunk))

    def _lines(self, frames: list[Frame]) -> list[Line]:
        lines = []
        for frame in frames:
            line = self._rejoin[frame.stream].push(frame)
            if line is not None:
                lines.append(line)
        return lines

    def close(self) -> list[Line]:
        """Lines held at the end of the stream (the container has stopped)."""
        if self._demux is None:
            if not self._head:
                return []
            self._demux = TtyDemuxer()
            self._rejoin = {1: Rejoiner(self._max, True), 2: Rejoiner(self._max, True)}
            lines = self._lines(self._demux.feed(self._head))
        else:
            lines = []
        if isinstance(self._demux, TtyDemuxer):
            lines += self._lines(self._demux.close())
        for stream, rejoiner in self._rejoin.items():
            line = rejoiner.flush(stream)
            if line is not None:
                lines.append(line)
        return lines
