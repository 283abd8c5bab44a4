"""Terminal escape sequences (colours, cursor moves, titles) removed from log text."""

from __future__ import annotations

import re

# CSI (``ESC [ ... final``: colours, cursor), OSC (``ESC ] ... BEL|ST``: titles, links),
# and the short two- or three-byte escapes (``ESC ( B``, ``ESC 7``). A lone ESC stays.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-~])")


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (the same object if it had none)."""
    if "\x1b" not in text:
        return text
    return _ESCAPE.sub("", text)
