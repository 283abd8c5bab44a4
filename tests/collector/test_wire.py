"""Unit tests of the wire models: a light import, errors that name the field."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from collector.wire import LINE, Log, LogFields, read_line
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
