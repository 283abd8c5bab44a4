"""What the shipper writes, the collector reads back with the same values.

Records go through the shipper's own path (``shipper.batch.encode``) and every line
through the collector's (``collector.wire.read_line``), and through the pydantic union
alone (the reader that names errors), which must agree.
"""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from collector.wire import (
    ACTION_CHARS,
    CONTAINER_ID_CHARS,
    CONTAINER_NAME_CHARS,
    DETAIL_CHARS,
    HOST_CHARS,
    IMAGE_CHARS,
    LINE,
    MAX_ESTIMATED_LINES,
    MAX_NS,
    MAX_SEQ,
    NAME_PART_PATTERN,
    REASON_CHARS,
    Event,
    Gap,
    LogFields,
    ParserName,
    Source,
    read_line,
)
from shipper.batch import encode
from shipper.record import EventRecord, GapRecord, LogRecord, Meta, Record

# No lone surrogates: the shipper's strings come from UTF-8 (Docker's JSON), never hold one.
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


def _long(max_repeat: int) -> st.SearchStrategy[str]:
    """Text up to a few times a bound, with multi-byte characters in it."""
    units = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=3)
    return st.builds(lambda unit, n: unit * n, units, st.integers(0, max_repeat))


def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([low, high]), st.integers(low, high))


def _sized(low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=["Cs"]), min_size=low, max_size=high)


_NS = _ints(0, MAX_NS)
_STREAMS = st.sampled_from(["stdout", "stderr"])
_PART = st.one_of(st.none(), st.just(""), st.from_regex(NAME_PART_PATTERN, fullmatch=True))
_METAS = st.builds(
    Meta,
    id=_sized(1, CONTAINER_ID_CHARS),
    name=_sized(0, CONTAINER_NAME_CHARS),
    image=_sized(0, IMAGE_CHARS),
    labels=st.dictionaries(_TEXT, _TEXT, max_size=4),
    parser=st.sampled_from(get_args(ParserName)),
    dataset=_PART,
    namespace=_PART,
)
_DATA = st.one_of(
    st.binary(max_size=64),  # invalid UTF-8 included
    _TEXT.map(str.encode),
    _long(12_000).map(str.encode),  # past the 16 KiB Docker splits lines at
)


def _log(meta: Meta) -> st.SearchStrategy[Record]:
    return st.builds(
        LogRecord,
        st.just(meta),
        _STREAMS,
        _NS,
        _ints(0, MAX_SEQ),
        _DATA,
        truncated=st.booleans(),
        lines=_ints(1, 2**31),
    )


def _event(meta: Meta) -> st.SearchStrategy[Record]:
    detail = st.one_of(st.none(), _TEXT, _long(DETAIL_CHARS))
    exit_code = st.one_of(st.none(), _ints(-(2**31), 2**31))
    action = _sized(1, ACTION_CHARS)
    return st.builds(EventRecord, st.just(meta), _NS, action, exit_code, detail)


def _gap(meta: Meta) -> st.SearchStrategy[Record]:
    reason = st.one_of(_TEXT, _long(REASON_CHARS))
    estimate = st.one_of(st.none(), _ints(0, MAX_ESTIMATED_LINES))
    bounds = st.tuples(_NS, _NS).map(sorted)  # a gap ends after it starts (or then)

    def gap(stream: str, span: list[int], why: str, lines: int | None) -> GapRecord:
        return GapRecord(meta, stream, span[0], span[1], why, lines)

    return st.builds(gap, _STREAMS, bounds, reason, estimate)


def _records(metas: list[Meta]) -> st.SearchStrategy[list[Record]]:
    one = st.sampled_from(metas).flatmap(lambda m: st.one_of(_log(m), _event(m), _gap(m)))
    return st.lists(one, min_size=1, max_size=8)


_BATCHES = st.lists(_METAS, min_size=1, max_size=3).flatmap(_records)


def _values(line: object) -> dict[str, Any]:
    if isinstance(line, BaseModel):
        return line.model_dump()
    assert isinstance(line, msgspec.Struct)
    return msgspec.structs.asdict(line)


def _expected(record: Record, src: int) -> dict[str, Any]:
    """The values the collector must read for `record`, by the wire format's rules."""
    if isinstance(record, LogRecord):
        message = record.data.decode("utf-8", "replace")
        return {"kind": "log", "src": src, "stream": record.stream, "ts": record.ts,
                "seq": record.seq, "message": message, "truncated": record.truncated,
                "lines": record.lines}  # fmt: skip
    if isinstance(record, EventRecord):
        detail = record.detail[:DETAIL_CHARS] if record.detail else None
        cut = detail != (record.detail or None)
        return {"kind": "event", "src": src, "ts": record.ts, "action": record.action,
                "exit_code": record.exit_code, "detail": detail, "truncated": cut}  # fmt: skip
    assert isinstance(record, GapRecord)
    return {"kind": "gap", "src": src, "stream": record.stream, "from_ts": record.from_ts,
            "to_ts": record.to_ts, "reason": record.reason[:REASON_CHARS],
            "estimated_lines": record.estimated_lines,
            "truncated": len(record.reason) > REASON_CHARS}  # fmt: skip


def _source(meta: Meta, src: int, host: str) -> dict[str, Any]:
    hints = {"parser": meta.parser, "dataset": meta.dataset or None,
             "namespace": meta.namespace or None}  # fmt: skip
    return {"kind": "source", "src": src, "host": host, "container_id": meta.id,
            "container_name": meta.name, "image": meta.image, "labels": meta.labels,
            "hints": hints, "truncated": False}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_BATCHES, _sized(1, HOST_CHARS))
def test_every_record_the_shipper_encodes_is_read_back_with_its_values(
    records: list[Record], host: str
) -> None:
    """Unicode, broken UTF-8, long lines, events, gaps, flags and bounds survive the wire."""
    expected: list[dict[str, Any]] = []
    srcs: dict[int, int] = {}
    for record in records:
        if id(record.meta) not in srcs:
            srcs[id(record.meta)] = len(srcs)
            expected.append(_source(record.meta, srcs[id(record.meta)], host))
        expected.append(_expected(record, srcs[id(record.meta)]))
    raws = encode(records, host).body.splitlines()
    read = [read_line(raw) for raw in raws]
    assert [_values(line) for line, _ in read] == expected
    assert not any(replaced for _, replaced in read)
    assert [_values(LINE.validate_json(raw)) for raw in raws] == expected


@settings(max_examples=100, deadline=None)
@given(_METAS.flatmap(_log))
def test_every_log_line_the_shipper_writes_takes_the_quick_path(record: Record) -> None:
    """The collector reads each log line the shipper writes with msgspec, not pydantic."""
    raw = encode([record], "h").body.splitlines()[1]
    line, _ = read_line(raw)
    assert type(line) is LogFields


def test_details_and_reasons_are_cut_to_what_the_collector_accepts() -> None:
    """An event detail or gap reason one past its bound arrives cut to the bound, marked."""
    meta = Meta("c" * CONTAINER_ID_CHARS, "n", "i")
    records: list[Record] = [
        EventRecord(meta, MAX_NS, "die", 137, "d" * (DETAIL_CHARS + 1)),
        GapRecord(meta, "stderr", 0, MAX_NS, "r" * (REASON_CHARS + 1), MAX_ESTIMATED_LINES),
    ]
    lines = [read_line(raw)[0] for raw in encode(records, "h" * HOST_CHARS).body.splitlines()]
    source, event, gap = lines
    assert isinstance(source, Source)
    assert isinstance(event, Event)
    assert isinstance(gap, Gap)
    assert (event.detail, event.truncated) == ("d" * DETAIL_CHARS, True)
    assert (gap.reason, gap.truncated) == ("r" * REASON_CHARS, True)
    assert (gap.to_ts, gap.estimated_lines) == (MAX_NS, MAX_ESTIMATED_LINES)
