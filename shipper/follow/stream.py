"""One container's log as dockerd serves it: a follow stream, then what it left out.

dockerd ends a follow stream when the container stops even if its reader was behind,
so the rest (a read without ``follow`` from the position reached) is asked for the
moment the stream ends, before a ``--rm`` container is removed, and read after the
stream's lines. Only then does an inspection tell whether the container is done: a
stream that ended while the container runs (dockerd restarting, a silent stream cut)
is resumed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any

from shipper import native
from shipper.demux import STREAM_NAMES, format_since
from shipper.docker_api import Pace
from shipper.dockerd import Following
from shipper.errors import (
    ContainerGone,
    DemuxError,
    DockerError,
    DockerUnavailable,
    Switched,
    Unanchored,
)
from shipper.follow.numbering import Numbering
from shipper.follow.progress import Progress
from shipper.follow.rescue import Rescue
from shipper.readahead import ReadAhead
from shipper.rejoin import Line, LineReader

log = logging.getLogger("logpipe.shipper.follow")


class LiveStream:
    """Reads one container's log from dockerd, from the positions reached, into records."""

    def __init__(
        self,
        docker: Following,
        progress: Progress,
        numbering: Numbering,
        rescue: Rescue,
        max_line_bytes: int,
        unread: bool,
    ) -> None:
        self._docker = docker
        self._progress = progress
        self._numbering = numbering
        self._rescue = rescue
        self._max_line_bytes = max_line_bytes
        self.unread = unread  # its log may hold lines past the positions
        self.received = 0  # bytes of the last response
        self.removed = False  # drain found it removed and read (or reported) its tail
        self.pace = Pace()  # follow streams read at once until inspection says otherwise
        self._undecided: asyncio.Task[Any] | None = None  # a stream read before inspection
        self._switching = False

    async def follow(
        self, rest: list[ReadAhead], only_after_lines: bool = False, tail: int | None = None
    ) -> None:
        """Follow from the positions; the moment the stream ends, ask for the rest (a start
        poll only if its stream carried lines: an empty one just means not started yet).

        With `tail` (the log was just read from its files up to the positions), only the
        log's last `tail` entries are asked for, and its first line must be one read
        already, else :class:`Unanchored` is raised before any line is queued.
        """

        def ended(received: int) -> None:
            if received or not only_after_lines:
                rest.append(ReadAhead(self._logs(follow=False)))

        stream = self._logs(follow=True, on_end=ended, tail=tail)
        try:
            reading = self.consume(stream, follow=True, anchored=tail is not None)
            if self._progress.decided.is_set():
                await reading
            else:
                await self._until_switched(reading)
        finally:
            await stream.aclose()

    async def _until_switched(self, reading: Coroutine[Any, Any, Any]) -> None:
        """Read a stream begun before the container was inspected, unless switch() ends
        it first (then Switched is raised)."""
        self._switching = False
        task = asyncio.create_task(reading)
        self._undecided = task
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._switching and (current is None or not current.cancelling()):
                raise Switched("its log is read from its files") from None
            raise
        finally:
            self._undecided = None

    def switch(self) -> bool:
        """End the stream read before the container was inspected, if one is (its lines
        wait for the inspection, so none was queued); True if one was ended. Called
        before the inspection's answer lets its lines go."""
        task = self._undecided
        if task is None or task.done():
            return False
        self._switching = True
        task.cancel()
        return True

    async def drain(self, rest: list[ReadAhead]) -> bool:
        """Read what a follow stream left out; True when the container is done."""
        if not rest:
            return False
        self._progress.stats.state = "draining"
        try:
            reader = await self.consume(rest[0].chunks(), follow=False)
        except ContainerGone:
            # A --rm container is being removed by the time its follow stream ends
            # (measured: ~30 ms after die, 3-7 ms before destroy): its file, if we
            # could open it, holds what the stream may have left out.
            await self._rescue.read_tail()
            self.removed = True
            return True
        finally:
            close(rest)
        if await self._running():
            return False
        await self._numbering.emit(reader.finish())
        self._progress.read_to_end = True
        return True

    def _logs(
        self, follow: bool, on_end: Callable[[int], None] | None = None, tail: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The logs from the positions reached now (asked for when first iterated)."""
        since = format_since(min(p.ts for p in self._progress.positions.values()))
        pace = self.pace if follow else None
        cid = self._progress.cid
        return self._docker.logs(cid, since, follow=follow, pace=pace, on_end=on_end, tail=tail)

    async def consume(
        self, chunks: AsyncIterator[bytes], follow: bool, anchored: bool = False
    ) -> native.LinesReader:
        """Lines of a response, numbered from the positions reached now. `anchored`: the
        response starts at the end of the log, and its first line must be one read
        already (then nothing lies between; a late first line is no gap by itself)."""
        self._numbering.restart(check_start=not anchored, audit=True, dockerd=True)
        reader: native.LinesReader
        if native.enabled():
            reader = native.reader(self._max_line_bytes)
        else:
            reader = LineReader(self._max_line_bytes)
        self._progress.stats.state = "following" if follow else "draining"
        self.received = 0
        try:
            async for chunk in chunks:
                self.received += len(chunk)
                self.unread = False
                self._rescue.keep_up()
                lines = reader.feed(chunk)
                if anchored and len(lines):
                    self._anchor(lines)
                    anchored = False
                await self._numbering.emit(lines)
        except DemuxError as exc:
            log.error(
                "log stream unreadable, reconnecting",
                extra={"container": self._progress.cid[:12], "reason": str(exc)},
            )
            raise DockerUnavailable(str(exc)) from exc
        return reader

    def _anchor(self, lines: list[Line] | native.NativeLines) -> None:
        """Raise Unanchored unless the first line is older than its stream's position
        (then it, and so the response, began within what was read)."""
        if isinstance(lines, list):
            stream, ts = lines[0].stream, lines[0].ts
        else:
            stream, ts, _, _ = lines.items()[0]
        if ts >= self._progress.positions[STREAM_NAMES[stream]].ts:
            raise Unanchored(f"first line at {ts}, after the positions")

    async def _running(self) -> bool:
        try:
            info = await self._docker.inspect(self._progress.cid)
        except ContainerGone:
            return False
        except DockerError as exc:
            raise DockerUnavailable(f"cannot inspect after stream end: {exc}") from exc
        return info["running"]


def close(responses: list[ReadAhead]) -> None:
    """Stop reading responses asked for ahead (their reader gave up)."""
    for response in responses:
        response.close()
