"""Unit tests of the wire models: a light import, errors that name the field."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from collector.wire import LINE


def test_wire_module_imports_no_server_or_client() -> None:
    """Importing collector.wire pulls in neither aiohttp nor elasticsearch."""
    code = (
        "import sys, collector.wire; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'elasticsearch')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


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
