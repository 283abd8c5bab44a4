"""Unit tests of the wire models: a light import, errors that name the field."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collector.wire import LINE, Log, LogFields, cut_message, read_line
from shipper.demux import Frame
from shipper.rejoin import Rejoiner
from tests.programs import clean_env


def test_wire_module_imports_no_server_or_client() -> None:
    """Importing collector.wire pulls in neither aiohttp nor elasticsearch."""
    code = (
        "import sys, collector.wire; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'elasticsearch')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_shipper_builds_none_of_the_wire_validators() -> None:
    """Importing the shipper leaves every wire model's validator unbuilt: it writes lines
    with msgspec and never reads one (the collector builds them at first use)."""
    code = (
        "import shipper.__main__; from collector import wire; "
        "models = (wire.Hints, wire.Source, wire.Log, wire.Event, wire.Gap, wire.LineError, "
        "wire.IngestResult, wire.ErrorBody); "
        "print([m.__name__ for m in models if m.__pydantic_complete__], "
        "wire.LINE.pydantic_complete)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[] False", result.stderr


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"kind":"log","src":0,"stream":"stdin","ts":1,"message":"x"}', "stream"),
        (b'{"kind":"log","src":0,"stream":"stdout","ts":-1,"message":"x"}', "ts"),
        (b'{"kind":"log","src":0,"stream":"stdout","ts":1}', "message"),
        (b'{"kind":"blob","src":0}', "kind"),
        (b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"x","extra":1}', "extra"),
    ],
)
def test_off_schema_lines_name_the_field(raw: bytes, field: str) -> None:
    """A line that breaks the schema is refused with the offending field named."""
    with pytest.raises(ValidationError) as info:
        LINE.validate_json(raw)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (
            b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"x","lines":2147483649}',
            "lines",
        ),
        (b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"x","lines":1e20}', "lines"),
        (
            b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"x","lines":99999999999999999999}',
            "lines",
        ),
        (
            b'{"kind":"log","src":0,"stream":"stdout","ts":1796547290566517456.5,"message":"x"}',
            "ts",
        ),
        (b'{"kind":"log","src":0,"stream":"stdout","ts":1.7e18,"message":"x"}', "ts"),
        (b'{"kind":"log","src":0,"stream":"stdout","ts":"17","message":"x"}', "ts"),
        (b'{"kind":"log","src":1.0,"stream":"stdout","ts":1,"message":"x"}', "src"),
        (
            b'{"kind":"source","src":0.5,"container_id":"c","container_name":"n","image":"i","host":"h"}',
            "src",
        ),
        (b'{"kind":"event","src":0,"ts":5.5,"action":"die"}', "ts"),
        (b'{"kind":"event","src":0,"ts":5,"action":"die","exit_code":1.5}', "exit_code"),
    ],
)
def test_numbers_that_are_no_integers_or_past_their_bound_are_refused(
    raw: bytes, field: str
) -> None:
    """An integer field takes integers within its bound, as the fast path does: a number
    with a fraction or an exponent, which would have been rounded (a timestamp by tens of
    nanoseconds), and a count past 2**31 (past 64 bits it could not be indexed at all)
    name their field."""
    with pytest.raises(ValidationError) as info:
        read_line(raw)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("a\ud800b", "a\ufffdb"),  # a high surrogate alone
        ("a\udcff", "a\ufffd"),  # what json.dumps writes of a surrogateescape'd byte
        ("\udcff\U0001f600\ud800", "\ufffd\U0001f600\ufffd"),  # a pair between two lone
    ],
)
def test_escapes_of_lone_surrogates_are_replaced_as_invalid_utf8_is(text: str, read: str) -> None:
    """A `\\u` escape of half a UTF-16 pair is U+FFFD and the line says so; a pair and an
    escaped backslash before `u` are left as they are."""
    line = {"kind": "log", "src": 0, "stream": "stdout", "ts": 1, "message": text}
    got, replaced = read_line(json.dumps(line).encode())
    assert (got.kind, replaced) == ("log", True)
    assert isinstance(got, Log)
    assert got.message == read
    line["message"] = "\\ud800 \U0001f600"
    got, replaced = read_line(json.dumps(line).encode())
    assert isinstance(got, Log | LogFields)
    assert (got.message, replaced) == ("\\ud800 \U0001f600", False)


@pytest.mark.parametrize(
    ("message", "limit", "cut"),
    [
        ("a" * 1024, 1024, None),  # exactly at the limit: whole
        ("a" * 1025, 1024, "a" * 1024),
        ("é" * 513, 1025, "é" * 512),  # 2-byte characters, the limit inside one
        ("é" * 513, 1024, "é" * 512),  # the limit between two
        ("日" * 400, 1024, "日" * 341),  # 3 bytes: 1023 kept, not 1024
        ("\U0001f600" * 300, 1026, "\U0001f600" * 256),  # 4 bytes, the limit inside one
        ("a" + "\U0001f600" * 300, 1025, "a" + "\U0001f600" * 256),
        ("é" * 512, 1024, None),  # 512 characters, 1024 bytes: whole
        ("日" * 300, 1024, None),  # 300 characters but 900 bytes
    ],
)
def test_a_message_is_cut_at_the_limit_in_bytes_never_in_a_character(
    message: str, limit: int, cut: str | None
) -> None:
    """cut_message counts UTF-8 bytes, keeps at most `limit` of them, and drops a
    character the limit falls inside; a message within the limit is left alone (None)."""
    assert cut_message(message, limit) == cut
    if cut is not None:
        assert len(cut.encode()) <= limit
        assert message.startswith(cut)


@given(
    # A line Docker hands over holds no newline but the one that ends it.
    st.text(st.characters(codec="utf-8", exclude_characters="\n"), min_size=1000, max_size=3000),
    st.integers(min_value=1024, max_value=4096),
)
@settings(max_examples=200, deadline=None)
def test_the_collector_cuts_a_message_as_the_shipper_cuts_a_line(text: str, limit: int) -> None:
    """What cut_message keeps of a message is what the shipper's rejoiner keeps of the
    same line at the same LOGPIPE_MAX_LINE_BYTES: the same bytes, marked truncated alike."""
    data = text.encode()
    [line] = Rejoiner(limit).push(Frame(1, 7, data + b"\n"))
    cut = cut_message(text, limit)
    if len(data) <= limit:
        assert (cut, line.truncated, line.data) == (None, False, data)
    else:
        assert cut is not None
        assert (cut.encode(), line.truncated) == (line.data, True)
