"""The span a resumed read skipped in a log whose rotated files are compressed.

dockerd (20.10) decompresses a log's rotated files oldest first and stops at the first
whose last entry is older than ``since``: a ``since`` inside the log skips every
compressed file, the newer ones too (docs/docker-logs.md). A read resumed from the
positions (the shipper restarted, a stream cut and asked again) then begins with the
current file, and the lines of the compressed files after the positions, still in the
log, looked lost: they were reported as a gap (73,902 of 80,000 lines written with
``max-size=200k compress=true`` through a 10 s stop of a shipper without file access).

So when such a read's first line of a stream comes later than that stream's position
(:func:`late_start`), the span is read again first, as the rotation audit reads a window
(shipper/logfiles/audit.py): from the log's start (``since=0``) up to the resumed read's
first line (:func:`reread`), a response chunk at a time, keeping only the lines from the
positions on (:func:`after_positions`), numbered and queued before the read goes on.
What that read does not have either (files rotated away for good) is still a gap. Only
a read that began late pays for it, not every reconnect: the positions are past the
compressed files afterwards.

A ``--rm`` container is removed some 30 ms after it stops, and the request for the rest
of its stream is such a resumed read: the read from the log's start then found it
removed, and the span, still in the log file the shipper holds for the container's
tail (shipper/follow/rescue.py), was reported as a gap. What dockerd no longer gives is
read from that file instead, as the rotation audit reads its windows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import Counter

from shipper.cursor import Position
from shipper.demux import STREAM_NAMES, format_since
from shipper.dockerd import ServesLogs
from shipper.errors import ContainerGone
from shipper.logfiles.audit import FromFiles, read_lines
from shipper.rejoin import Line

REREADS = Counter(
    "logpipe_shipper_resume_rereads_total",
    "Reads resumed through dockerd that began past a position in a log whose rotated "
    "files are compressed, whose skipped span was read again from the log's start.",
)
REREAD_LINES = Counter(
    "logpipe_shipper_resume_lines_reread_total",
    "Lines such a read found from the positions on (dockerd had skipped them).",
)

Emit = Callable[[list[Line]], Awaitable[None]]

SKEW_SLACK_NS = 1_000_000_000  # past the stop line: see reread()


def late_start(first: Iterable[tuple[str, int]], expect: dict[str, Position]) -> bool:
    """Whether a read began past a position it was asked from.

    `first`: (stream, ts) of the read's first lines, in order; `expect`: the positions of
    the streams whose first line is checked. A stream's first line later than its
    position says so; a stream with no line among `first` began late if the read's first
    line is already later than its position."""
    pending = dict(expect)
    start: int | None = None
    for stream, ts in first:
        if start is None:
            start = ts
        wanted = pending.pop(stream, None)
        if wanted is not None and ts > wanted.ts:
            return True
        if not pending:
            return False
    return start is not None and any(p.ts < start for p in pending.values())


def after_positions(
    lines: list[Line], positions: dict[str, Position], expect: dict[str, Position]
) -> list[Line]:
    """Of lines read from the log's start, those from their stream's position on.

    A stream whose first line is checked (in `expect`) and comes at or before its
    position leaves `expect`: the log still holds where it was read to, so what follows
    is whole. Its first line later than the position stays checked: numbering reports a
    gap before it (the files that held the lines between are gone)."""
    kept = []
    for line in lines:
        stream = STREAM_NAMES[line.stream]
        if expect and (wanted := expect.get(stream)) is not None and line.ts <= wanted.ts:
            del expect[stream]
        if line.ts >= positions[stream].ts:
            kept.append(line)
    return kept


def before(lines: list[Line], stop: tuple[str, int]) -> tuple[list[Line], bool]:
    """The lines before the first one of `stop` (stream, ts), and whether it was met."""
    stream, ts = stop
    for i, line in enumerate(lines):
        if line.ts == ts and STREAM_NAMES[line.stream] == stream:
            return lines[:i], True
    return lines, False


async def reread(
    docker: ServesLogs,
    cid: str,
    max_line_bytes: int,
    stop: tuple[str, int],
    keep: Callable[[list[Line]], list[Line]],
    emit: Emit,
    from_files: FromFiles | None = None,
    since: int = 0,
) -> int:
    """Read the log from its start up to its line `stop` (stream, ts: the resumed read's
    first line), passing each response chunk's lines that `keep` keeps to `emit`; how
    many it kept. Only a chunk's lines are held at a time. A container removed meanwhile
    ends the read; the span from `since` (the earliest position) is then read from the
    log files held (`from_files`), and what neither reached stays unread: a gap.

    dockerd ends a read at its first entry later than `until`, in the file's order, and
    there one stream's entries can come before the other's that are stamped earlier
    (by up to about 11 ms): an `until` at the stop line could end the read before
    entries that the resumed read does not have either. So `until` is a second past it,
    and the read ends at the stop line itself: from there on, the resumed read has
    every entry."""
    REREADS.inc()
    kept = 0
    until = format_since(stop[1] + SKEW_SLACK_NS)
    read = read_lines(docker, cid, "0", until, max_line_bytes)
    try:
        async with contextlib.aclosing(read):
            async for got in read:
                lines, met = before(got, stop)
                lines = keep(lines)
                if lines:
                    kept += len(lines)
                    await emit(lines)
                if met:
                    break
    except ContainerGone:
        kept += await _from_held(from_files, since, stop, keep, emit)
    REREAD_LINES.inc(kept)
    return kept


async def _from_held(
    from_files: FromFiles | None,
    since: int,
    stop: tuple[str, int],
    keep: Callable[[list[Line]], list[Line]],
    emit: Emit,
) -> int:
    """The span from `since` up to the line `stop`, read from the log files held, passed
    through `keep` to `emit` (lines read already are dropped: those behind the positions
    by `keep`, a repeat at a position by the numbering); how many it kept. Nothing
    without files held."""
    # Up to a second past `stop`, as from dockerd: the files' order ends the span.
    read = None if from_files is None else await from_files(since, stop[1] + SKEW_SLACK_NS)
    if read is None:
        return 0
    lines, _ = before(read.lines, stop)
    lines = keep(lines)
    if lines:
        await emit(lines)
    return len(lines)
