"""Unit tests of the wire models and what the shipper puts on the wire."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from collector.wire import LINE, Gap, Log, Source
from shipper.batch import encode
from shipper.record import EventRecord, GapRecord, LogRecord, Meta


def test_wire_module_imports_no_server_or_client() -> None:
    """Importing collector.wire pulls in neither aiohttp nor elasticsearch."""
    code = (
        "import sys, collector.wire; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'elasticsearch')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_shipper_batches_validate_against_the_wire_models() -> None:
    """Every line the shipper encodes is a valid wire line of the right kind."""
    meta = Meta("c" * 64, "web", "nginx:1", {"a.b": "c"}, "json", "app", "prod")
    records = [
        LogRecord(meta, "stdout", 5, 0, "é ok".encode(), truncated=True),
        LogRecord(meta, "stderr", 6, 1, b"\xff broken utf8"),
        EventRecord(meta, 7, "die", 137, None),
        GapRecord(meta, "stdout", 1, 9, "rotated", 12),
    ]
    batch = encode(records, "host-1")
    lines = [LINE.validate_json(raw) for raw in batch.body.splitlines()]
    assert isinstance(lines[0], Source)
    assert lines[0].hints.parser == "json"
    assert lines[0].labels == {"a.b": "c"}
    assert [type(x).__name__ for x in lines] == ["Source", "Log", "Log", "Event", "Gap"]
    first = lines[1]
    assert isinstance(first, Log)
    assert first.message == "é ok"
    assert first.truncated
    broken = lines[2]
    assert isinstance(broken, Log)
    assert broken.message.startswith("\ufffd")
    gap = lines[4]
    assert isinstance(gap, Gap)
    assert gap.estimated_lines == 12


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
