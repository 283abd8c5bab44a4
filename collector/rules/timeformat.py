"""strptime formats compiled once into a pattern and read by hand: the hot path's times.

``datetime.strptime`` costs about 10 µs a call (it rebuilds its state each time); a rule
taking every access line's time would double the collector's cost per line. The formats
logs use (``%d/%b/%Y:%H:%M:%S %z``, ``%Y-%m-%d %H:%M:%S.%f``, ``%b %d %H:%M:%S``) are
made of the directives below, compiled here into one regular expression (ours, from the
format: no user pattern reaches Python's ``re``); a format with any other directive
(``%a``, ``%p``, ``%j``...) is left to ``strptime``. As with strptime, whitespace in the
format matches any run of whitespace; month names are English (the C locale).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

_DIRECTIVES = {
    "Y": r"(?P<Y>\d{4})",
    "y": r"(?P<y>\d\d)",
    "m": r"(?P<m>\d{1,2})",
    "b": r"(?P<b>[A-Za-z]{3})",
    "d": r"(?P<d>\d{1,2})",
    "H": r"(?P<H>\d{1,2})",
    "M": r"(?P<M>\d{1,2})",
    "S": r"(?P<S>\d{1,2})",
    "f": r"(?P<f>\d{1,9})",
    "z": r"(?P<z>Z|[+-]\d\d:?\d\d)",
}
_MONTHS = {
    name: n
    for n, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_EPOCH_DAY = date(1970, 1, 1).toordinal()


def compile_format(fmt: str) -> re.Pattern[str] | None:
    """The pattern of a strptime format, or None if it uses a directive not compiled here."""
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char == "%" and i + 1 < len(fmt):
            code = fmt[i + 1]
            if code == "%":
                out.append("%")
            elif code in _DIRECTIVES and code not in seen:
                out.append(_DIRECTIVES[code])
                seen.add(code)
            else:
                return None
            i += 2
            continue
        out.append(r"\s+" if char.isspace() else re.escape(char))
        i += 1
    return re.compile("".join(out), re.ASCII)


@lru_cache(maxsize=1024)
def _days(year: int, month: int, day: int) -> int:
    return date(year, month, day).toordinal() - _EPOCH_DAY  # ValueError if no such day


def _offset(text: str) -> int:
    if text == "Z":
        return 0
    digits = text[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + int(digits[2:]) * 60
    return -seconds if text[0] == "-" else seconds


def read(found: re.Match[str], tz: ZoneInfo, utc: bool, year_now: int) -> int:
    """Nanoseconds since the epoch of a match of a compiled format (ValueError if none)."""
    g = found.groupdict()
    if g.get("Y") is not None:
        year = int(g["Y"])
    elif g.get("y") is not None:
        short = int(g["y"])
        year = 2000 + short if short < 69 else 1900 + short  # as strptime reads %y
    else:
        year = year_now
    month = _MONTHS.get(g["b"].lower(), 0) if g.get("b") else int(g.get("m") or 1)
    hour, minute, second = int(g.get("H") or 0), int(g.get("M") or 0), int(g.get("S") or 0)
    if not (1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        raise ValueError("a field out of range")
    day = int(g.get("d") or 1)
    secs = _days(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    if g.get("z") is not None:
        secs -= _offset(g["z"])
    elif not utc:
        offset = datetime(year, month, day, hour, minute, second, tzinfo=tz).utcoffset()
        secs -= int(offset.total_seconds()) if offset is not None else 0
    return secs * 10**9 + int((g.get("f") or "0").ljust(9, "0"))
