"""The one place that decides whether the shipper's hot paths run compiled or in Python.

The compiled path is the optional extension module ``logpipe_shipper_native`` (the crate
in native/shipper/, installed with ``pip install ./native/shipper``): per read of a logs
response, one call demultiplexes Docker's frames, parses the timestamps and rejoins
16 KiB pieces (shipper/demux.py and shipper/rejoin.py in Python), as one call per chunk
of a container's json-file or ``local`` log files does (shipper/logfiles/jsonfile.py,
localfile.py), and one call numbers
the lines among equal timestamps, drops repeats and makes the records
(shipper/follow/numbering.py); per batch, one call writes the NDJSON body
(shipper/batch.py). It gives the same records and bodies as the Python path, byte for
byte (tests/shipper/test_native.py runs both on the same inputs).

The Python path is used when the module is not installed or is built from older sources
(it lacks one of ``NEEDS``), or when the environment
variable ``LOGPIPE_NATIVE`` asks for it (``0``, ``false``, ``no`` or ``off``, as for the
collector; another value is refused at start: shipper/config.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Protocol

from collector import envnames
from shipper.cursor import Position
from shipper.demux import parse_ts
from shipper.errors import DemuxError
from shipper.logfiles import jsonfile, localfile
from shipper.rejoin import Line

ENV = envnames.NATIVE


def switched_off() -> bool:
    """Whether ``LOGPIPE_NATIVE`` asks for the Python path."""
    return envnames.native_off()


MODULE_NAME = "logpipe_shipper_native"
# What this shipper calls of the module beyond the reader of a logs response: a build of
# older sources lacks one of these, and is not used (the Python path runs instead).
NEEDS = ("Reader", "FileReader", "LocalReader", "Sequencers", "encode")


def load() -> ModuleType | None:
    """The extension module, or None (missing, built from older sources, or
    ``LOGPIPE_NATIVE=0``)."""
    return envnames.load_native(MODULE_NAME, current)


def current(module: ModuleType) -> bool:
    """Whether `module` has everything this shipper calls (``NEEDS``)."""
    return all(hasattr(module, name) for name in NEEDS)


def _outdated() -> bool:
    try:
        return not current(importlib.import_module(MODULE_NAME))
    except ImportError:
        return False


MODULE: ModuleType | None = load()


def enabled() -> bool:
    """Whether the reading path runs compiled."""
    return MODULE is not None


def describe() -> str:
    """The reading path, as the start-up log line names it."""
    if MODULE is not None:
        return "compiled (logpipe_shipper_native)"
    if switched_off():
        return f"Python ({ENV}={envnames.native_setting()[0].strip()})"
    if _outdated():
        return f"Python ({MODULE_NAME} is older than this shipper: build it again)"
    return f"Python ({MODULE_NAME} not installed)"


def reader(max_line_bytes: int) -> LinesReader:
    """A compiled line reader (the extension's ``Reader``); only when enabled()."""
    assert MODULE is not None
    made: LinesReader = MODULE.Reader(max_line_bytes, parse_ts, DemuxError)
    return made


def file_reader(max_line_bytes: int, tty: bool) -> FileLinesReader:
    """A compiled json-file reader (the extension's ``FileReader``); only when enabled()."""
    assert MODULE is not None
    made: FileLinesReader = MODULE.FileReader(max_line_bytes, tty, parse_ts, jsonfile.entry)
    return made


def local_reader(max_line_bytes: int, tty: bool) -> LocalLinesReader:
    """A compiled ``local`` log reader (the extension's ``LocalReader``); only when
    enabled()."""
    assert MODULE is not None
    made: LocalLinesReader = MODULE.LocalReader(max_line_bytes, tty)
    return made


def local_lines(max_line_bytes: int, tty: bool) -> LocalLinesReader:
    """A ``local`` log's reader: compiled when enabled(), else localfile.LocalLines."""
    if MODULE is not None:
        return local_reader(max_line_bytes, tty)
    return localfile.LocalLines(max_line_bytes, tty)


def file_lines(max_line_bytes: int, tty: bool, local: bool = False) -> FileLinesReader:
    """A json-file log's reader (a ``local`` one's when `local`: local_lines): compiled
    when enabled(), else jsonfile.FileLines."""
    if local:
        return local_lines(max_line_bytes, tty)
    if MODULE is not None:
        return file_reader(max_line_bytes, tty)
    return jsonfile.FileLines(max_line_bytes, tty)


def stamps(lines: list[Line] | NativeLines) -> Iterator[tuple[int, int]]:
    """(stream, ts) of each line, in order, whichever reader read them (for what looks at
    the lines one by one before they are numbered, as the ``--rm`` rescue does)."""
    if isinstance(lines, list):
        return ((line.stream, line.ts) for line in lines)
    return ((stream, ts) for stream, ts, _, _ in lines.items())


class NativeLines(Protocol):
    """Lines read by the compiled reader, held natively until numbered."""

    def __len__(self) -> int: ...

    def items(self) -> list[tuple[int, int, bytes, bool]]: ...


class LinesReader(Protocol):
    """What reads a logs response into lines: shipper/rejoin.py's LineReader or compiled."""

    def feed(self, chunk: bytes) -> list[Line] | NativeLines: ...

    def finish(self) -> list[Line] | NativeLines: ...


class FileLinesReader(Protocol):
    """What reads json-file logs into lines: shipper/logfiles/jsonfile.py's FileLines or
    compiled."""

    def feed(self, chunk: bytes) -> list[Line] | NativeLines: ...

    def end_file(self) -> list[Line] | NativeLines: ...

    def finish(self) -> list[Line] | NativeLines: ...


class LocalLinesReader(FileLinesReader, Protocol):
    """What reads ``local`` logs into lines: localfile.LocalLines or compiled; what it
    could not read piles up in `problems` (the caller clears it)."""

    @property
    def problems(self) -> list[str]: ...


def sequencers(positions: dict[str, Position]) -> Any:
    """Compiled numbering of both streams from `positions`; only when enabled()."""
    assert MODULE is not None
    out, err = positions["stdout"], positions["stderr"]
    return MODULE.Sequencers((out.ts, out.count), (err.ts, err.count))
