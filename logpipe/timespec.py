"""Times on the command line (`--since 15m`, `--until 2026-12-02T10:00:00Z`), made absolute.

A relative time is that long before now: a number and a unit, `s`, `m`, `h`, `d` or `w`,
and several may follow each other (`1h30m`). An absolute time is ISO 8601 / RFC 3339:
a date (`2026-12-02`, midnight), or a date and time with an optional fraction and an
offset (`Z`, `+01:00`); without an offset it is the local time of this machine.

Instants are nanoseconds since the epoch, as Elasticsearch's `date_nanos` holds them
(a datetime would cut `.521860474Z` to the microsecond, before the time given), and
must lie in its range, 1970 to 2262: outside it is a usage error here, not a refusal
of Elasticsearch's later. The command line sends every time to the collector as an
absolute UTC instant, fixed
once when it starts, so that all pages of one search (and every reconnect of one tail)
cover the same range.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from fractions import Fraction

from logpipe.errors import UsageError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
RELATIVE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
FRACTION = re.compile(r"(.*[T ]\d\d:\d\d:\d\d)\.(\d{7,9})(.*)", re.IGNORECASE)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_NS = 2**63 - 1  # 2262-04-11T23:47:16.854775807Z, the last instant of `date_nanos`
# How far the clocks that stamp the logs may run ahead of this machine's before a
# `--since` is told to be in the future.
CLOCK_SKEW_NS = 5 * 10**9
NOT_A_TIME = (
    "is not a time: write a duration before now (30s, 15m, 2h, 7d, 1h30m) or a date and "
    "time (2026-12-02, 2026-12-02T10:00:00Z)"
)


def nanos(when: datetime) -> int:
    """An aware datetime as ns since the epoch, exactly."""
    return (when - EPOCH) // (EPOCH.resolution) * 1000


def parse_time(option: str, text: str, now: datetime) -> int:
    """The instant `text` means (relative to `now`), in ns since the epoch; a UsageError
    naming `option`."""
    value = text.strip()
    if RELATIVE.fullmatch(value):
        # Past 30 digits a number is long past 2262 (and past 4300 int() refuses it).
        too_long = any(len(number) > 30 for number, _ in PART.findall(value))
        when = -1 if too_long else nanos(now) - relative(value)
    else:
        when = absolute(option, text, value)
    if not 0 <= when <= MAX_NS:
        raise UsageError(
            f"{option}: {text if len(text) <= 60 else text[:57] + '...'!r} is outside the "
            "times logs are stored with "
            "(1970-01-01 to 2262-04-11)"
        )
    return when


def absolute(option: str, text: str, value: str) -> int:
    """An ISO 8601 time as ns, its fraction kept to the nanosecond."""
    extra = 0
    fraction = FRACTION.fullmatch(value)
    if fraction:  # beyond microseconds: datetime keeps six digits
        value = fraction.group(1) + fraction.group(3)
        extra = int(fraction.group(2).ljust(9, "0"))
    try:
        when = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise UsageError(f"{option}: {text!r} {NOT_A_TIME}") from None
    try:
        if when.tzinfo is None:
            when = when.astimezone()  # local time, as `date` shows it
        return nanos(when) + extra
    except (ValueError, OverflowError):  # year 1 in a zone east of UTC
        return -1


def relative(value: str) -> int:
    """`1h30m` in ns, exactly (a float would make 400 nines of weeks infinite)."""
    return sum(int(Fraction(n) * UNITS[unit] * 10**9) for n, unit in PART.findall(value))


def rfc3339(ns: int) -> str:
    """ns since the epoch as RFC 3339 in UTC, with as many fraction digits as it needs."""
    seconds, fraction = divmod(ns, 10**9)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f".{fraction:09d}".rstrip("0") if fraction else ""
    return f"{whole}{digits}Z"


def understood(option: str, text: str, ns: int) -> str:
    """An option as the user wrote it, with the UTC instant it was taken for when that
    is not what they wrote (`--since 2h (2026-12-02T08:00:00Z)`)."""
    shown = text if len(text) <= 60 else text[:57] + "..."
    instant = rfc3339(ns)
    return f"{option} {shown}" if text.strip() == instant else f"{option} {shown} ({instant})"


def in_future(text: str | None, since: int | None, now: datetime) -> str | None:
    """`--since ... is in the future (...)` when `since` is later than now by more than
    the clocks may disagree (CLOCK_SKEW_NS); None otherwise."""
    if text is None or since is None or since <= nanos(now) + CLOCK_SKEW_NS:
        return None
    return (
        f"{understood('--since', text, since)} is in the future "
        f"(this machine's clock says {rfc3339(nanos(now) // 10**9 * 10**9)})"
    )


def time_range(
    since: str | None, until: str | None, now: datetime
) -> tuple[int | None, int | None]:
    """`--since` and `--until` made absolute; a UsageError when the range is empty."""
    start = parse_time("--since", since, now) if since is not None else None
    end = parse_time("--until", until, now) if until is not None else None
    if since is None or until is None or start is None or end is None or start < end:
        return start, end
    raise UsageError(
        f"{understood('--since', since, start)} is not before "
        f"{understood('--until', until, end)}: the range holds no time"
    )
