"""Read a json-file log directly: the last resort for a ``--rm`` container's tail.

dockerd ends a follow stream when the container is being removed, about 30 ms after
it exits, whether or not its own reader had caught up; under CPU pressure it had not
(measured: 762 of 1,000 lines sent), and by then the logs API refuses any request.
A file opened while the container ran stays readable after its removal, so when the
shipper can see the host's /var/lib/docker/containers (on the host, or mounted
read-only into its container), it opens the log of each ``--rm`` container and reads
what the stream left out from there. Parsing is pure; entries become the same frames
the API would have sent (same 16 KiB pieces, same U+FFFD), so lines join and number
exactly as they would have.
"""

from __future__ import annotations

import contextlib
from typing import BinaryIO

import orjson
from prometheus_client import Counter

from shipper.demux import STDERR, STDOUT, Frame, parse_ts
from shipper.errors import DemuxError
from shipper.rejoin import Line, Rejoiner

_STREAMS = {"stdout": STDOUT, "stderr": STDERR}

RESCUES = Counter(
    "logpipe_shipper_logfile_rescues_total",
    "Removed --rm containers whose log file was read directly after their stream ended.",
)


def frames(data: bytes) -> list[Frame]:
    """The entries of a json-file log as frames; a torn or foreign line is skipped."""
    out: list[Frame] = []
    for raw in data.splitlines():
        try:
            entry = orjson.loads(raw)
            stream = _STREAMS[entry["stream"]]
            ts = parse_ts(entry["time"].encode())
            text = entry["log"].encode("utf-8", "surrogatepass")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, DemuxError):
            continue
        out.append(Frame(stream, ts, text))
    return out


def open_log(path: str) -> BinaryIO | None:
    """The log file opened for reading, or None when the shipper cannot see it."""
    if not path:
        return None
    with contextlib.suppress(OSError):
        return open(path, "rb")  # held open on purpose: the follower closes it
    return None


def read_all(f: BinaryIO) -> bytes:
    """Everything in the (possibly already removed) file."""
    f.seek(0)
    return f.read()


def lines(data: bytes, max_line_bytes: int, tty: bool) -> list[Line]:
    """Whole lines of a json-file log, joined as from the logs API."""
    rejoiners = {s: Rejoiner(max_line_bytes, tty) for s in (STDOUT, STDERR)}
    out: list[Line] = []
    for frame in frames(data):
        out += rejoiners[frame.stream].push(frame)
    for stream, rejoiner in rejoiners.items():
        line = rejoiner.flush(stream)
        if line is not None:
            out.append(line)
    return out
