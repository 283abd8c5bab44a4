"""Wait for a created container to start, reading its log from the moment it does.

A container seen on its ``create`` event is asked for its logs again and again until it
runs (a request made then stays open): the ``start`` event comes later than the start
itself, too late for a container that exits and is removed within tens of ms. When
such a request carried lines, its end is handled like any follow stream's end
(stream.py): the rest is asked for at once and read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from shipper.errors import ContainerGone, DockerUnavailable, Switched
from shipper.follow.gaps import Gaps
from shipper.follow.progress import Progress
from shipper.follow.stream import LiveStream, close
from shipper.readahead import ReadAhead

PRESTART_FOR = 5.0  # seconds a created container is polled for its start
PRESTART_POLL = (0.002, 0.05)  # first and longest pause between two polls


async def await_start(
    stream: LiveStream,
    gaps: Gaps,
    progress: Progress,
    file_started: Callable[[], bool | None] = lambda: None,
) -> bool:
    """Poll the logs of a created container until it runs; False if there is nothing
    more to follow: it never ran here, or the poll that saw it start found it removed
    as it ended and read its tail from its file (or reported it).

    `file_started`: whether its log file was created (dockerd creates it at the start),
    None while its log is not known to be read from its files: until then dockerd's
    answer tells."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PRESTART_FOR
    pause, longest = PRESTART_POLL
    answered = 0.0
    progress.stats.state = "created"
    while loop.time() < deadline:
        on_files = file_started()
        if on_files:
            return True
        if on_files is False:
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, longest)
            continue
        rest: list[ReadAhead] = []  # asked for if the poll's stream ends with lines
        try:
            await stream.follow(rest, only_after_lines=True)
        except BaseException as exc:
            close(rest)
            if isinstance(exc, Switched):
                continue  # inspected meanwhile: its files will tell
            if isinstance(exc, DockerUnavailable):
                return True  # the ordinary loop retries with backoff
            if not isinstance(exc, ContainerGone):
                raise
            # Polls answer every few ms; removal comes tens of ms after exit. If the
            # last answer is older than that, the container may have come and gone.
            if stream.unread and loop.time() - answered > 0.025:
                await gaps.removed_unread()
            # No run comes after a removal: a start heard meanwhile (replayed after a
            # restart of the shipper, say) was one of those this accounts for, and a
            # follower begun for it would report the same loss again.
            progress.again = False
            progress.read_to_end = True  # accounted for: its cursor is done once on disk
            return False
        answered = loop.time()
        if stream.received:
            # It started during this poll, whose stream ended if it stopped, read or
            # not: what was left is asked for already, before a --rm container goes.
            with contextlib.suppress(DockerUnavailable):  # the ordinary loop retries
                if await stream.drain(rest) and stream.removed:
                    # Following on would find it gone and read its tail again (a second
                    # rescue, its gap documents twice). No run comes after a removal: the
                    # start heard meanwhile was this one's.
                    progress.again = False
                    return False
            return True
        if progress.again:
            return True
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, longest)
    progress.stats.state = "created"
    return False
