"""The wire format between shipper and collector, version 1: the one place it is defined.

``POST /v1/logs`` with ``Content-Type: application/x-ndjson`` (optionally
``Content-Encoding: gzip``) and ``Authorization: Bearer <token>``. The body is NDJSON:
one JSON object per line, told apart by ``kind``:

- ``source``: a container, numbered by ``src``; every other line names the source it
  belongs to, so container metadata crosses the wire once per batch instead of once per
  line. A line belongs to the latest ``source`` line before it with its ``src``: a
  shipper gives each container of a batch a number of its own, and another sender that
  declares a number again for another container gives it the lines from there on.
- ``log``: one log line of a container's stdout or stderr. Its ``message`` may be of any
  length: the shipper cuts a line at its LOGPIPE_MAX_LINE_BYTES and marks it
  ``truncated``; the collector cuts a longer message at its own (:func:`cut_message`,
  the shipper's cut) and indexes it marked so, for senders that cut nothing.
- ``event``: a container lifecycle event (start, die, oom, restart, health, rename...).
- ``gap``: lines the shipper knows it could not read (rotation, removal), between
  ``from_ts`` and ``to_ts`` (which is not before it).

A free-text field whose bound only limits its size (a source's ``container_name``,
``image`` and ``labels``, an event's ``detail``, a gap's ``reason``) is cut at its bound
when longer, and its line marked ``truncated``, by the shipper for the details and
reasons it writes and by the collector for the rest (:func:`read_line`), rather than
refused: refused, a source line would take every line of its container with it. A
field that tells records apart (``src``, ``host``, ``container_id``, a timestamp, an
event's ``action``) or routes them (``hints``) is refused past its bounds, as cutting it
could merge two containers or send lines elsewhere.

The collector answers 200 with an :class:`IngestResult` only after Elasticsearch
accepted (or dead-lettered) every line; any other status carries an :class:`ErrorBody`.

Both ends use this module: the shipper writes lines with :func:`source_line`,
:func:`log_line`, :func:`event_line` and :func:`gap_line` (msgspec Structs, encoded in
C), the collector reads them with :func:`read_line` (msgspec for ``log`` lines, the
pydantic models for the rest and for naming what is wrong). Names, defaults and bounds
are the ones below, so what one end writes the other reads with the same values.

This module imports nothing heavier than pydantic and msgspec, so the shipper can import it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, cast

import msgspec
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

PATH_LOGS = "/v1/logs"
# Set by the shipper on a batch it sends again (an earlier try failed or got no answer):
# the collector then looks its ids up in their whole streams, not the write index only.
SENT_AGAIN = "X-Logpipe-Sent-Again"
# Set by the collector on an answer other than 200 given before any of the batch went to
# Elasticsearch (busy, not ready, refused): that try wrote nothing, so it alone does not
# make the next one SENT_AGAIN. Without it (a proxy's 502, a timeout) the shipper cannot
# tell, and marks the next try.
UNWRITTEN = "X-Logpipe-Unwritten"
# Set by the collector on every answer to a batch: the largest body it takes, and what
# that counts, as ``<bytes> inflated`` (the body decompressed: its max_body_bytes; a
# compressed body is also refused whose own size is over it) or ``<bytes> sent`` (the
# bytes as they cross the wire). A sender splits larger bodies before sending them,
# instead of learning the limit from 413s; one without it (an older collector, a proxy's
# own 413) is learnt as before.
BODY_LIMIT = "X-Logpipe-Body-Limit"
NDJSON = "application/x-ndjson"

# date_nanos holds instants up to 2262-04-11T23:47:16.854775807Z: later timestamps are
# refused on the wire.
MAX_NS = 2**63 - 1
MAX_SRC = 2**31  # batch-local source numbers
MAX_SEQ = 2**31  # lines sharing one timestamp
MAX_LINES = 2**31  # physical lines joined into one (more would not be one event)
MAX_ESTIMATED_LINES = 2**62
# Longest strings, in characters (code points).
HOST_CHARS = 255
CONTAINER_ID_CHARS = 128
CONTAINER_NAME_CHARS = 255
IMAGE_CHARS = 1024
ACTION_CHARS = 64
DETAIL_CHARS = 4096  # the shipper cuts longer event details
# A container label's key and value. A document holds every label of its container: a
# key past Lucene's longest term (32766 bytes, with its value, in a `flattened` field)
# would make Elasticsearch refuse every document of the container, and a value of
# megabytes would be copied into each. Docker sets no bound; the collector cuts.
LABEL_KEY_CHARS = 1024
LABEL_VALUE_CHARS = 32768
REASON_CHARS = 256  # the shipper cuts longer gap reasons
# The longest line kept whole: a log line's `message` past its sender's limit (the
# shipper's LOGPIPE_MAX_LINE_BYTES, the collector's for other senders) is cut there and
# marked truncated, so that its document can always be indexed. A node counts a document
# about four times its JSON bytes against its indexing-pressure limit (10% of the heap:
# 102 MiB at the compose file's 1 GiB, 51 MiB at 512 MiB), on top of its request's bytes.
# 4 MiB of text fits both, held twice (its message and its JSON keys); 4 MiB of control
# characters (six bytes each, escaped: 24 MiB, 120 MiB counted) fits neither and is
# dead-lettered (collector/bulk.py, over_limit_alone). Neither end takes a larger limit.
MAX_LINE_BYTES = 4 * 1024 * 1024
ParserName = Literal["auto", "json", "logfmt", "nginx", "apache", "plain"]
StreamName = Literal["stdout", "stderr"]

# Data stream name parts follow Elastic's naming scheme: lower case, no '-', short.
NAME_PART_PATTERN = r"^[a-z0-9_.]{1,100}$"


class _Wire(BaseModel):
    # Validators are built at first use: the shipper imports this module to write lines,
    # never to read one (building them was ~5 CPU-ms of its start); the collector builds
    # them for its first batch. Strict, as msgspec reads log lines: a number with a
    # fraction (1.5, 1e18) is no integer, and would have been rounded (a timestamp by
    # nanoseconds, through a float).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, strict=True)


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
    src: int = Field(ge=0, le=MAX_SRC, description="Batch-local number that later lines refer to.")
    host: str = Field(min_length=1, max_length=HOST_CHARS, description="Docker host name.")
    container_id: str = Field(min_length=1, max_length=CONTAINER_ID_CHARS)
    container_name: str = Field(
        max_length=CONTAINER_NAME_CHARS, description="Name without the leading '/'."
    )
    image: str = Field(max_length=IMAGE_CHARS)
    labels: dict[
        Annotated[str, Field(max_length=LABEL_KEY_CHARS)],
        Annotated[str, Field(max_length=LABEL_VALUE_CHARS)],
    ] = Field(default_factory=dict)
    hints: Hints = Field(default_factory=Hints)
    truncated: bool = Field(
        False, description="A name, image or label was cut at its bound (by sender or collector)."
    )


class Log(_Wire):
    """One line of a container's output, without its newline."""

    kind: Literal["log"]
    src: int = Field(ge=0)
    stream: StreamName
    ts: int = Field(ge=0, le=MAX_NS, description="Docker's timestamp, ns since the epoch.")
    seq: int = Field(0, ge=0, le=MAX_SEQ, description="Index among this stream's same-ts lines.")
    message: str
    truncated: bool = Field(
        False, description="The line was cut at its sender's maximum (or the collector's)."
    )
    lines: int = Field(
        1, ge=1, le=MAX_LINES, description="Physical lines joined into this one (multiline)."
    )


class Event(_Wire):
    """A container lifecycle event, indexed as a document of its own."""

    kind: Literal["event"]
    src: int = Field(ge=0)
    ts: int = Field(ge=0, le=MAX_NS, description="Event time (Docker's timeNano).")
    action: str = Field(min_length=1, max_length=ACTION_CHARS, description="start, die, oom, ...")
    exit_code: int | None = Field(
        None, ge=-(2**63), le=2**63 - 1, description="A die's exit code (a long when indexed)."
    )
    detail: str | None = Field(None, max_length=DETAIL_CHARS)
    truncated: bool = Field(
        False, description="detail was cut at DETAIL_CHARS (by its sender or the collector)."
    )


class Gap(_Wire):
    """Lines of one stream that were lost before the shipper could read them."""

    kind: Literal["gap"]
    src: int = Field(ge=0)
    stream: StreamName
    from_ts: int = Field(ge=0, le=MAX_NS, description="Last timestamp read before the gap (ns).")
    to_ts: int = Field(ge=0, le=MAX_NS, description="First timestamp read after the gap (ns).")
    estimated_lines: int | None = Field(None, ge=0, le=MAX_ESTIMATED_LINES)
    reason: str = Field(max_length=REASON_CHARS)
    truncated: bool = Field(
        False, description="reason was cut at REASON_CHARS (by its sender or the collector)."
    )

    @field_validator("to_ts")
    @classmethod
    def _after_from(cls, to_ts: int, info: ValidationInfo) -> int:
        # A gap runs from the last line read to the first read after it: reversed, it
        # would say lines were lost in no time at all (and sort before its own start).
        from_ts = info.data.get("from_ts")
        if isinstance(from_ts, int) and to_ts < from_ts:
            raise PydanticCustomError(
                "gap_reversed",
                "{to_ts} ns is before from_ts ({from_ts} ns): a gap ends after it starts",
                {"to_ts": to_ts, "from_ts": from_ts},
            )
        return to_ts


Line = Annotated[Source | Log | Event | Gap, Field(discriminator="kind")]
LINE: TypeAdapter[Source | Log | Event | Gap] = TypeAdapter(
    Line, config=ConfigDict(defer_build=True)
)


# What the shipper writes: a Struct per kind, encoded by msgspec in C. The names and
# defaults of the models above; a field at its default is left out (the reader fills it
# in), and `kind` comes first, where the collector's quick path looks for it.


class HintsFields(msgspec.Struct, frozen=True, omit_defaults=True):
    """:class:`Hints` as the shipper writes them."""

    parser: ParserName = "auto"
    dataset: str | None = None
    namespace: str | None = None


class SourceFields(msgspec.Struct, frozen=True, omit_defaults=True):
    """A ``source`` line as the shipper writes it (:class:`Source` checks it)."""

    kind: Literal["source"]
    src: int
    host: str
    container_id: str
    container_name: str
    image: str
    labels: dict[str, str] = {}
    hints: HintsFields = HintsFields()
    truncated: bool = False


class LogFields(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """A ``log`` line: what the shipper writes and what :func:`quick_log` reads.

    The names, types and bounds of :class:`Log`, but strict where pydantic is lax (no
    ``"1"`` or ``1.0`` for an integer): a line this refuses may still be a valid
    :class:`Log`.
    """

    kind: Literal["log"]
    src: Annotated[int, msgspec.Meta(ge=0)]
    stream: StreamName
    ts: Annotated[int, msgspec.Meta(ge=0, le=MAX_NS)]
    message: str
    seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)] = 0
    truncated: bool = False
    lines: Annotated[int, msgspec.Meta(ge=1, le=MAX_LINES)] = 1


class EventFields(msgspec.Struct, frozen=True, omit_defaults=True):
    """An ``event`` line as the shipper writes it (:class:`Event` checks it)."""

    kind: Literal["event"]
    src: int
    ts: int
    action: str
    exit_code: int | None = None
    detail: str | None = None
    truncated: bool = False


class GapFields(msgspec.Struct, frozen=True, omit_defaults=True):
    """A ``gap`` line as the shipper writes it (:class:`Gap` checks it)."""

    kind: Literal["gap"]
    src: int
    stream: StreamName
    from_ts: int
    to_ts: int
    reason: str
    estimated_lines: int | None = None
    truncated: bool = False


_encode = msgspec.json.Encoder().encode

# The shipper's records hold stream and parser names as plain str; the collector checks
# them.


def source_line(
    src: int,
    host: str,
    container_id: str,
    container_name: str,
    image: str,
    labels: dict[str, str],
    parser: str,
    dataset: str | None,
    namespace: str | None,
) -> bytes:
    """A ``source`` line; an empty dataset or namespace is left out (the default applies)."""
    hints = HintsFields(cast(ParserName, parser), dataset or None, namespace or None)
    line = SourceFields("source", src, host, container_id, container_name, image, labels, hints)
    return _encode(line)


def log_line(
    src: int, stream: str, ts: int, seq: int, data: bytes, truncated: bool, lines: int
) -> bytes:
    """A ``log`` line of the bytes `data`; what is not UTF-8 in them becomes U+FFFD."""
    text = data.decode("utf-8", "replace")
    # Not cast(): a call per line, on the shipper's hottest path.
    line = LogFields("log", src, stream, ts, text, seq, truncated, lines)  # type: ignore[arg-type]
    return _encode(line)


def event_line(src: int, ts: int, action: str, exit_code: int | None, detail: str | None) -> bytes:
    """An ``event`` line; a detail past DETAIL_CHARS is cut (the line marked truncated),
    an empty one left out."""
    cut = detail is not None and len(detail) > DETAIL_CHARS
    detail = detail[:DETAIL_CHARS] if detail else None
    return _encode(EventFields("event", src, ts, action, exit_code, detail, cut))


def gap_line(
    src: int, stream: str, from_ts: int, to_ts: int, reason: str, estimated_lines: int | None
) -> bytes:
    """A ``gap`` line; a reason past REASON_CHARS is cut (the line marked truncated)."""
    where = cast(StreamName, stream)
    cut = len(reason) > REASON_CHARS
    why = reason[:REASON_CHARS]
    return _encode(GapFields("gap", src, where, from_ts, to_ts, why, estimated_lines, cut))


def check_max_line_bytes(size: int) -> int:
    """`size` as a LOGPIPE_MAX_LINE_BYTES (the shipper's and the collector's alike), or
    ValueError past MAX_LINE_BYTES."""
    if size > MAX_LINE_BYTES:
        raise ValueError(
            f"{size} is over {MAX_LINE_BYTES} (4 MiB): Elasticsearch counts a document "
            "several times its size against its indexing-pressure limit (10% of the "
            "heap), so a longer line may never be indexed"
        )
    return size


def cut_utf8(data: bytes) -> bytes:
    """Drop a multi-byte character cut in half at the end (a truncation artefact)."""
    i = len(data) - 1
    while i >= 0 and i >= len(data) - 4 and (data[i] & 0xC0) == 0x80:
        i -= 1
    if i < 0 or data[i] < 0xC0:
        return data
    need = 2 if data[i] < 0xE0 else 3 if data[i] < 0xF0 else 4
    return data if len(data) - i >= need else data[:i]


def cut_message(message: str, max_bytes: int) -> str | None:
    """`message` cut to its first `max_bytes` bytes of UTF-8 as the shipper cuts a line
    (:func:`cut_utf8`: a character cut in half is dropped, never half kept), or None when
    it is not longer than that."""
    if len(message) <= max_bytes // 4:  # four bytes a character at most: no need to encode
        return None
    data = message.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return None
    return cut_utf8(data[:max_bytes]).decode("utf-8", "surrogatepass")


# What the collector reads: nearly every line is a ``log`` line, which msgspec reads and
# checks in a fifth of the time pydantic takes; pydantic reads the rest, and names the
# problem of every line that is wrong.

_QUICK = msgspec.json.Decoder(LogFields)


def quick_log(raw: bytes) -> LogFields | None:
    """A ``log`` line of the usual shape, checked in C against :class:`Log`'s rules.

    None (for anything else, including every invalid line) sends the line to pydantic:
    whatever this accepts, ``Log`` accepts with the same values.
    """
    try:
        return _QUICK.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError is a DecodeError
        return None


# The shipper writes `kind` first. A log line of the usual shape passes `quick_log`; a
# line that validates as a Log is what the union would make of it too (its kind can only
# be "log"); any other line, or a Log line that fails, goes through the union, whose
# errors are the ones reported.
_LOG_START = b'{"kind":"log",'


def read_line(raw: bytes) -> tuple[Source | Log | LogFields | Event | Gap, bool]:
    """One line and whether its invalid UTF-8 was replaced (U+FFFD) rather than refused:
    bytes that are not UTF-8, and escapes of lone UTF-16 surrogates (``"\\udcff"``, what
    Python's json module writes of a string read with ``surrogateescape``).

    A free-text field over its bound (:data:`CUT_TO`) is cut there and the line marked
    ``truncated``, as the shipper cuts what it writes (characters, never half of one).

    Raises pydantic's ValidationError, naming the field, for a line off the schema (once
    its long free text is cut: the error names what cutting cannot repair).
    """
    if raw.startswith(_LOG_START):
        quick = quick_log(raw)
        if quick is not None:
            return quick, False
        try:
            return Log.model_validate_json(raw), False
        except ValidationError:
            pass
    try:
        return LINE.validate_json(raw), False
    except ValidationError as exc:
        error = exc
    fixed = raw
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        fixed = raw.decode("utf-8", "replace").encode("utf-8")
    if b"\\u" in fixed:
        fixed = _paired(fixed)
    replaced = fixed != raw
    if replaced:
        try:
            return LINE.validate_json(fixed), True
        except ValidationError as exc:
            error = exc
    cut = _cut_long_text(fixed, error)
    if cut is None:
        raise error
    return LINE.validate_json(cut), replaced


# Per kind of line, its free-text fields whose bound only limits their size: a longer
# value is cut at the bound (in characters) and the line marked truncated, not refused.
CUT_TO: dict[str, dict[str, int]] = {
    "source": {
        "container_name": CONTAINER_NAME_CHARS,
        "image": IMAGE_CHARS,
        "labels": LABEL_VALUE_CHARS,  # and each key LABEL_KEY_CHARS (_cut_labels)
    },
    "event": {"detail": DETAIL_CHARS},
    "gap": {"reason": REASON_CHARS},
}


def _cut_long_text(raw: bytes, error: ValidationError) -> bytes | None:
    """`raw` with its free text over its bounds cut there and marked truncated, or None
    when no such field is among the line's problems."""
    long = any(
        problem["type"] == "string_too_long"
        and len(problem["loc"]) >= 2
        and problem["loc"][1] in CUT_TO.get(str(problem["loc"][0]), {})
        for problem in error.errors(include_url=False)
    )
    if not long:
        return None
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict):
        return None
    for name, bound in CUT_TO.get(str(value.get("kind")), {}).items():
        text = value.get(name)
        if isinstance(text, str) and len(text) > bound:
            value[name] = text[:bound]
            value["truncated"] = True
    labels = value.get("labels") if value.get("kind") == "source" else None
    if isinstance(labels, dict) and any(map(_long_label, labels.items())):
        value["labels"] = _cut_labels(labels)
        value["truncated"] = True
    return _encode(value)


def _long_label(label: tuple[object, object]) -> bool:
    key, text = label
    return len(str(key)) > LABEL_KEY_CHARS or (
        isinstance(text, str) and len(text) > LABEL_VALUE_CHARS
    )


def _cut_labels(labels: dict[str, object]) -> dict[str, object]:
    """`labels` with each key and value cut at its bound; of two keys that are the same
    once cut, the first (in the line's order) is kept."""
    cut: dict[str, object] = {}
    for key, text in labels.items():
        short = text[:LABEL_VALUE_CHARS] if isinstance(text, str) else text
        cut.setdefault(key[:LABEL_KEY_CHARS], short)
    return cut


# One escape of a JSON string: `\` and a character, or `\u` and four hex digits.
_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
_REPLACEMENT = b"\\ufffd"


def _paired(raw: bytes) -> bytes:
    """`raw` with each escape of a UTF-16 surrogate that is not half of a pair as U+FFFD."""
    pieces = []
    at = 0
    escapes = list(_ESCAPE.finditer(raw))
    low_of_pair = -1  # the index of the escape that completes the pair before it
    for index, escape in enumerate(escapes):
        code = escape.group(1)
        if code is None or index == low_of_pair:
            continue
        value = int(code, 16)
        if 0xD800 <= value <= 0xDBFF and index + 1 < len(escapes):
            after = escapes[index + 1]
            if after.start() == escape.end() and _is_low(after.group(1)):
                low_of_pair = index + 1
                continue
        if 0xD800 <= value <= 0xDFFF:
            pieces += [raw[at : escape.start()], _REPLACEMENT]
            at = escape.end()
    return b"".join([*pieces, raw[at:]]) if pieces else raw


def _is_low(code: bytes | None) -> bool:
    return code is not None and 0xDC00 <= int(code, 16) <= 0xDFFF


class LineError(_Wire):
    """Why one line of a batch was not accepted as sent."""

    line: int = Field(description="1-based line number in the (decompressed) body.")
    error: str


class IngestResult(_Wire):
    """Answer to a batch: every line is accounted for."""

    received: int = Field(description="Non-blank lines of the body, 'source' lines included.")
    indexed: int = Field(description="Newly written documents.")
    duplicates: int = Field(description="Documents that already existed (replays).")
    dead_lettered: int = Field(description="Lines stored in the dead-letter data stream.")
    # received = source lines + indexed + duplicates + dead_lettered + dropped. Defaults
    # to 0, so an answer of an older collector still reads; shippers before it ignore the
    # counts.
    dropped: int = Field(0, description="Lines dropped on purpose by the collector's drop rules.")


class ErrorBody(_Wire):
    """Body of every non-2xx answer: a message a person can act on."""

    error: str
    detail: list[LineError] = Field(default_factory=list)
    result: IngestResult | None = Field(
        None, description="Present when the good lines of the batch were indexed anyway."
    )
