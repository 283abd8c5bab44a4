"""The one place that decides whether the shipper's hot paths run compiled or in Python.

The compiled path is the optional extension module ``logpipe_shipper_native`` (the crate
in native/shipper/, installed with ``pip install ./native/shipper``): per read of a logs
response, one call demultiplexes Docker's frames, parses the timestamps and rejoins
16 KiB pieces (shipper/demux.py and shipper/rejoin.py in Python), as one call per chunk
of a container's json-file backlog does (shipper/logfiles/jsonfile.py), and one call numbers
the lines among equal timestamps, drops repeats and makes the records
(shipper/follow/numbering.py); per batch, one call writes the NDJSON body
(shipper/batch.py). It gives the same records and bodies as the Python path, byte for
byte (tests/shipper/test_native.py runs both on the same inputs).

The Python path is used when the module is not installed, or when the environment
variable ``LOGPIPE_NATIVE`` asks for it (``0``, ``false``, ``no`` or ``off``, as for the
collector; another value is refused at start: shipper/config.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Protocol

from collector import envnames
from shipper.cursor import Position
from shipper.demux import parse_ts
from shipper.errors import DemuxError
from shipper.logfiles import jsonfile
from shipper.rejoin import Line

ENV = envnames.NATIVE


def switched_off() -> bool:
    """Whether ``LOGPIPE_NATIVE`` asks for the Python path."""
    return envnames.native_setting()[0].strip().lower() in envnames.NATIVE_OFF


def _load() -> ModuleType | None:
    if switched_off():
        return None
    try:
        return importlib.import_module("logpipe_shipper_native")
    except ImportError:
        return None


MODULE: ModuleType | None = _load()


def enabled() -> bool:
    """Whether the reading path runs compiled."""
    return MODULE is not None


def describe() -> str:
    """The reading path, as the start-up log line names it."""
    if MODULE is not None:
        return "compiled (logpipe_shipper_native)"
    if switched_off():
        return f"Python ({ENV}={envnames.native_setting()[0].strip()})"
    return "Python (logpipe_shipper_native not installed)"


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


def sequencers(positions: dict[str, Position]) -> Any:
    """Compiled numbering of both streams from `positions`; only when enabled()."""
    assert MODULE is not None
    out, err = positions["stdout"], positions["stderr"]
    return MODULE.Sequencers((out.ts, out.count), (err.ts, err.count))
