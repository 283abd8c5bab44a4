"""quick_log (msgspec) reads log lines as the wire model's pydantic validation does."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collector.wire import MAX_NS, Log, LogFields, quick_log

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2**31, 2**31 + 1, MAX_NS, 2**63, 2**64 + 5, 7, 1.0, 0.5]),
    st.integers(min_value=-(2**64), max_value=2**65),
    st.sampled_from(["stdout", "stderr", "log", "STDOUT", "", "1", "true", "\u00e9"]),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_KEYS = st.sampled_from(
    ["kind", "src", "stream", "ts", "seq", "message", "truncated", "lines", "extra", "Kind"]
)
_GOOD: dict[str, Any] = {
    "kind": "log",
    "src": 0,
    "stream": "stdout",
    "ts": 1,
    "seq": 0,
    "message": "m",
}


def _pydantic(raw: bytes) -> LogFields | None:
    try:
        v = Log.__pydantic_validator__.validate_json(raw)
    except ValidationError:
        return None
    return LogFields(**v.model_dump())  # a field of Log that LogFields lacks fails here


@settings(max_examples=3000, deadline=None)
@given(
    st.dictionaries(_KEYS, _VALUES, max_size=4),
    st.lists(_KEYS, max_size=3),
)
def test_whatever_quick_log_accepts_log_accepts_with_the_same_values(
    changes: dict[str, Any], dropped: list[str]
) -> None:
    """A good line changed at random: quick_log gives pydantic's values, or leaves it to it."""
    line = {**_GOOD, **changes}
    for key in dropped:
        line.pop(key, None)
    try:
        raw = orjson.dumps(line)
    except TypeError:  # an integer orjson cannot write: the shipper never sends one
        return
    quick = quick_log(raw)
    if quick is not None:
        assert quick == _pydantic(raw)


def test_quick_log_reads_the_lines_the_shipper_writes() -> None:
    """The usual shapes, defaults included, are read without pydantic."""
    raw = orjson.dumps({**_GOOD, "message": "ok \u00e9", "truncated": True, "lines": 3})
    assert quick_log(raw) == LogFields(
        "log", 0, "stdout", 1, "ok \u00e9", seq=0, truncated=True, lines=3
    )
    bare = b'{"kind":"log","src":2,"stream":"stderr","ts":5,"message":""}'
    assert quick_log(bare) == LogFields("log", 2, "stderr", 5, "", seq=0, truncated=False, lines=1)
    assert quick_log(bare) == _pydantic(bare)


def test_lines_quick_log_leaves_to_pydantic() -> None:
    """Bad JSON, lone surrogates, numbers as strings, extra keys: pydantic decides."""
    for raw in (
        b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"m"',
        b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"\\ud800"}',
        b'{"kind":"log","src":"0","stream":"stdout","ts":1,"message":"m"}',
        b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"m","x":1}',
        b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"m","seq":2147483649}',
        b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"m","lines":0}',
        b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"\\xff"}',
        b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"\xff"}',
        b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"\\udc00"}',
        b'{"kind":"log","src":0,"stream":"stdout","ts":1.0,"message":"m"}',
        b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"m","kind":"source"}',
        b'{"src":0,"stream":"stdout","ts":1,"message":"m"}',
        b"[1]",
    ):
        assert quick_log(raw) is None, raw


_EDGES: list[Any] = [
    -1,
    0,
    1,
    2**31,
    2**31 + 1,
    MAX_NS,
    MAX_NS + 1,
    2**64 - 1,
    1.0,
    True,
    "1",
    None,
]


_TYPES = {"kind": str, "src": int, "stream": str, "ts": int, "seq": int, "message": str}
_TYPES |= {"truncated": bool, "lines": int}


@pytest.mark.parametrize("key", list(_TYPES))
def test_each_field_at_its_bounds_is_read_as_pydantic_reads_it(key: str) -> None:
    """Every bound and wrong type of every field: the same value as pydantic, or left to it."""
    for value in [*_EDGES, "stdout", "stderr", "log", "", "m"]:
        raw = orjson.dumps({**_GOOD, key: value})
        quick = quick_log(raw)
        assert quick == _pydantic(raw) or quick is None, raw
        if quick is None:  # refused: only when pydantic refuses too or is laxer
            assert _pydantic(raw) is None or type(value) is not _TYPES[key], raw


_PAIRS = st.lists(st.tuples(_KEYS, _VALUES), max_size=9)


@settings(max_examples=2000, deadline=None)
@given(_PAIRS)
def test_repeated_keys_are_read_as_pydantic_reads_them(pairs: list[tuple[str, Any]]) -> None:
    """A key may come twice in JSON text (a dict cannot say so): the later one counts."""
    try:
        raw = b"{" + b",".join(orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in pairs) + b"}"
    except TypeError:  # an integer orjson cannot write
        return
    quick = quick_log(raw)
    if quick is not None:
        assert quick == _pydantic(raw)
