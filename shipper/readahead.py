"""A response read ahead of its consumer, by a task of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from shipper.docker_api import JOIN_BYTES
from shipper.errors import DockerError

READ_AHEAD = 16  # chunks a ReadAhead may read ahead of its consumer (each <= JOIN_BYTES)


class ReadAhead:
    """A response read by a task of its own into a bounded queue.

    The request goes out at once and is read while its consumer is busy elsewhere: the
    rest of a log, asked for the moment a follow stream ends, is read before the
    container is removed even though the follow stream's lines are still being taken.
    A follow stream itself is read by its consumer (a task of its own costs a wake-up
    and a hand-over per read); :meth:`shipper.docker_api.DockerClient.logs` sees its end at once.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._queue: asyncio.Queue[bytes | DockerError | None] = asyncio.Queue(READ_AHEAD)
        self._task = asyncio.create_task(self._pump(chunks))

    async def _pump(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in chunks:
                await self._queue.put(chunk)
        except DockerError as exc:
            await self._queue.put(exc)
            return
        await self._queue.put(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The response's bytes, what waits already joined (up to JOIN_BYTES); its error is
        raised here, in order. A consumer that fell behind catches up in fewer steps, each
        short enough not to hold up the other containers' reads."""
        queue = self._queue
        held: list[bytes | DockerError | None] = []  # taken from the queue, not handed over
        while True:
            item = held.pop() if held else await queue.get()
            if type(item) is bytes:
                parts = [item]
                size = len(item)
                while size < JOIN_BYTES and not queue.empty():
                    more = queue.get_nowait()
                    if type(more) is not bytes or size + len(more) > JOIN_BYTES:
                        held.append(more)
                        break
                    parts.append(more)
                    size += len(more)
                yield parts[0] if len(parts) == 1 else b"".join(parts)
            elif isinstance(item, DockerError):
                raise item
            else:
                return

    def close(self) -> None:
        """Stop reading (the consumer gave up)."""
        self._task.cancel()
