"""The wire format between shipper and collector, version 1: the one place it is defined.

``POST /v1/logs`` with ``Content-Type: application/x-ndjson`` (optionally
``Content-Encoding: gzip``) and ``Authorization: Bearer <token>``. The body is NDJSON:
one JSON object per line, told apart by ``kind``:

- ``source``: a container, numbered by ``src`` (unique within the batch); every other
  line names the source it belongs to, so container metadata crosses the wire once
  per batch instead of once per line.
- ``log``: one log line of a container's stdout or stderr.
- ``event``: a container lifecycle event (start, die, oom, restart, health, rename...).
- ``gap``: lines the shipper knows it could not read (rotation, removal).

The collector answers 200 with an :class:`IngestResult` only after Elasticsearch
accepted (or dead-lettered) every line; any other status carries an :class:`ErrorBody`.

This module imports nothing heavier than pydantic and msgspec, so the shipper can import it.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

PATH_LOGS = "/v1/logs"
NDJSON = "application/x-ndjson"

# date_nanos holds instants up to 2262-04-11: later timestamps are refused on the wire.
MAX_NS = 2**63 - 1
ParserName = Literal["auto", "json", "logfmt", "nginx", "apache", "plain"]
StreamName = Literal["stdout", "stderr"]

# Data stream name parts follow Elastic's naming scheme: lower case, no '-', short.
NAME_PART_PATTERN = r"^[a-z0-9_.]{1,100}$"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hints(_Wire):
    """Per-container hints the shipper read from ``logpipe.*`` labels."""

    parser: ParserName = Field("auto", description="Parser to apply to each line.")
    dataset: str | None = Field(
        None, pattern=NAME_PART_PATTERN, description="Data stream dataset override."
    )
    namespace: str | None = Field(
        None, pattern=NAME_PART_PATTERN, description="Data stream namespace override."
    )


class Source(_Wire):
    """A container whose lines follow in the same batch."""

    kind: Literal["source"]
    src: int = Field(ge=0, le=2**31, description="Batch-local number that later lines refer to.")
    host: str = Field(min_length=1, max_length=255, description="Docker host name.")
    container_id: str = Field(min_length=1, max_length=128)
    container_name: str = Field(max_length=255, description="Name without the leading '/'.")
    image: str = Field(max_length=1024)
    labels: dict[str, str] = Field(default_factory=dict)
    hints: Hints = Field(default_factory=Hints)


class Log(_Wire):
    """One line of a container's output, without its newline."""

    kind: Literal["log"]
    src: int = Field(ge=0)
    stream: StreamName
    ts: int = Field(ge=0, le=MAX_NS, description="Docker's timestamp, ns since the epoch.")
    seq: int = Field(0, ge=0, le=2**31, description="Index among this stream's same-ts lines.")
    message: str
    truncated: bool = Field(False, description="The line was cut at the shipper's maximum.")
    lines: int = Field(1, ge=1, description="Physical lines joined into this one (multiline).")


class LogFields(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A ``log`` line that :func:`quick_log` checked: the fields of :class:`Log`.

    The same names, types and bounds, but strict where pydantic is lax (no ``"1"`` or
    ``1.0`` for an integer): a line this refuses may still be a valid :class:`Log`.
    """

    kind: Literal["log"]
    src: Annotated[int, msgspec.Meta(ge=0)]
    stream: StreamName
    ts: Annotated[int, msgspec.Meta(ge=0, le=MAX_NS)]
    message: str
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**31)] = 0
    truncated: bool = False
    lines: Annotated[int, msgspec.Meta(ge=1)] = 1


_QUICK = msgspec.json.Decoder(LogFields)


def quick_log(raw: bytes) -> LogFields | None:
    """A ``log`` line of the usual shape, checked in C against :class:`Log`'s rules.

    Nearly every line of a batch is a ``log`` line; msgspec reads and checks it in a
    fifth of the time pydantic takes. None (for anything else, including every invalid
    line) sends the line to pydantic, which also names the problem: whatever this
    accepts, ``Log`` accepts with the same values.
    """
    try:
        return _QUICK.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError is a DecodeError
        return None


class Event(_Wire):
    """A container lifecycle event, indexed as a document of its own."""

    kind: Literal["event"]
    src: int = Field(ge=0)
    ts: int = Field(ge=0, le=MAX_NS, description="Event time (Docker's timeNano).")
    action: str = Field(min_length=1, max_length=64, description="start, die, oom, ...")
    exit_code: int | None = None
    detail: str | None = Field(None, max_length=4096)


class Gap(_Wire):
    """Lines of one stream that were lost before the shipper could read them."""

    kind: Literal["gap"]
    src: int = Field(ge=0)
    stream: StreamName
    from_ts: int = Field(ge=0, le=MAX_NS, description="Last timestamp read before the gap (ns).")
    to_ts: int = Field(ge=0, le=MAX_NS, description="First timestamp read after the gap (ns).")
    estimated_lines: int | None = Field(None, ge=0, le=2**62)
    reason: str = Field(max_length=256)


Line = Annotated[Source | Log | Event | Gap, Field(discriminator="kind")]
LINE: TypeAdapter[Source | Log | Event | Gap] = TypeAdapter(Line)


class LineError(_Wire):
    """Why one line of a batch was not accepted as sent."""

    line: int = Field(description="1-based line number in the (decompressed) body.")
    error: str


class IngestResult(_Wire):
    """Answer to a batch: every line is accounted for."""

    received: int
    indexed: int = Field(description="Newly written documents.")
    duplicates: int = Field(description="Documents that already existed (replays).")
    dead_lettered: int = Field(description="Lines stored in the dead-letter data stream.")


class ErrorBody(_Wire):
    """Body of every non-2xx answer: a message a person can act on."""

    error: str
    detail: list[LineError] = Field(default_factory=list)
    result: IngestResult | None = Field(
        None, description="Present when the good lines of the batch were indexed anyway."
    )
