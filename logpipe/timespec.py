"""Times on the command line (`--since 15m`, `--until 2026-12-02T10:00:00Z`), made absolute.

A relative time is that long before now: a number and a unit, `s`, `m`, `h`, `d` or `w`,
and several may follow each other (`1h30m`). An absolute time is ISO 8601 / RFC 3339:
a date (`2026-12-02`, midnight), or a date and time with an optional fraction and an
offset (`Z`, `+01:00`); without an offset it is the local time of this machine.

The command line sends every time to the collector as an absolute UTC instant, fixed
once when it starts, so that all pages of one search (and every reconnect of one tail)
cover the same range.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from logpipe.errors import UsageError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
RELATIVE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_time(option: str, text: str, now: datetime) -> datetime:
    """The instant `text` means (relative to `now`), in UTC; a UsageError naming `option`."""
    value = text.strip()
    if RELATIVE.fullmatch(value):
        return now - relative(value)
    try:
        when = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise UsageError(
            f"{option}: {text!r} is not a time: write a duration before now (30s, 15m, 2h, "
            "7d, 1h30m) or a date and time (2026-12-02, 2026-12-02T10:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time, as `date` shows it
    return when.astimezone(UTC)


def relative(value: str) -> timedelta:
    """`1h30m` as a timedelta."""
    seconds = sum(float(n) * UNITS[unit] for n, unit in PART.findall(value))
    return timedelta(seconds=seconds)


def rfc3339(when: datetime) -> str:
    """`when` (aware) as RFC 3339 in UTC, to the microsecond when it has any."""
    text = when.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def time_range(
    since: str | None, until: str | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """`--since` and `--until` made absolute; a UsageError when the range is empty."""
    start = parse_time("--since", since, now) if since else None
    end = parse_time("--until", until, now) if until else None
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since} is not before --until {until}: the range holds no time")
    return start, end
