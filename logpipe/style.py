"""How printed lines look: whether to colour them, and which colour each service and level gets.

Colour is on for `--color=always`, off for `never`; `auto` (the default) colours only a
terminal (`isatty`), and not when `NO_COLOR` is set to anything but '' or `TERM=dumb`.
A `color` in the config file counts as the flag (the flag wins). Each service gets one of
ten colours by a hash of its name that is the same in every run and on every machine;
levels colour the message: debug and trace dim, warn yellow, error red, fatal bold red.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ColorMode = Literal["auto", "always", "never"]
COLOR_MODES: tuple[ColorMode, ...] = ("auto", "always", "never")

RESET = "\x1b[0m"
# docker compose's choice of colours for its prefixes: red is left for errors.
SERVICE_COLORS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")
LEVEL_COLORS = {
    "trace": "2",
    "debug": "2",
    "warn": "33",
    "warning": "33",
    "error": "31",
    "err": "31",
    "critical": "1;31",
    "fatal": "1;31",
    "panic": "1;31",
}


@dataclass(frozen=True, slots=True)
class Style:
    """How to print: colours, control characters made visible, timestamps shown."""

    color: bool = False
    visible_controls: bool = False
    timestamps: bool = False


def wants_color(mode: ColorMode, isatty: bool, env: Mapping[str, str]) -> bool:
    """Whether to colour: the mode, else a terminal without NO_COLOR or TERM=dumb."""
    if mode != "auto":
        return mode == "always"
    return isatty and not env.get("NO_COLOR") and env.get("TERM") != "dumb"


def service_color(service: str) -> str:
    """The SGR code of a service's colour: the same for the same name, in every run."""
    return SERVICE_COLORS[zlib.crc32(service.encode()) % len(SERVICE_COLORS)]


def level_color(level: str) -> str | None:
    """The SGR code a level's message is printed in, or None for the terminal's own."""
    return LEVEL_COLORS.get(level)


def paint(text: str, code: str | None) -> str:
    """`text` in the colour `code` (an SGR parameter), or unchanged for None."""
    return f"\x1b[{code}m{text}{RESET}" if code else text
