"""Reading an application's own time out of a parsed value. Pure: no clock.

Formats: ``rfc3339`` (also ``iso8601``: ``2024-05-01T12:00:00.123456789+02:00``, to
the nanosecond), ``unix`` / ``unix_ms`` / ``unix_us`` / ``unix_ns`` (numbers since the
epoch, as numbers or text; text read exactly to the nanosecond), or a ``strptime``
format such as ``%d/%b/%Y:%H:%M:%S %z``.
A time without an offset is read in the rule's ``timezone`` (an IANA name, default
UTC); a format without a year takes the year that puts the time nearest Docker's time
for the line (a line of Dec 31 that Docker read on Jan 1 is of the year before).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.errors import RulesError
from collector.parse import JSONValue
from collector.rules.timeformat import compile_format, read
from collector.wire import MAX_NS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIX_SCALE = {"unix": 10**9, "unix_ms": 10**6, "unix_us": 10**3, "unix_ns": 1}
_NAMED = ("rfc3339", "iso8601", *_UNIX_SCALE)
# The fraction is cut out and read by hand: datetime keeps microseconds, Docker gives ns.
# Further than this from Docker's time, a time read without a year is of the next or
# previous year.
_HALF_YEAR_NS = 183 * 86400 * 10**9
# Date and time, the fraction (nanoseconds kept), then only an offset: `12:00:00.5.5`
# would have been read as 12:00:00.5 plus half a second.
_ISO = re.compile(
    r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?)(?:[.,](\d{1,9})\d*)?([Zz]|[+-][0-9:.]+)?",
    re.ASCII,
)


# The directives Python's strptime reads.
_STRPTIME = frozenset("aAwdbBmyYHIpMSfzZjUWcxXGuV%")
_DIRECTIVE = re.compile(r"%(.?)", re.DOTALL)
# A time every format can write and read back (a Thursday in week 18, after noon).
_SAMPLE = datetime(2025, 5, 1, 13, 4, 5, 123456, tzinfo=UTC)


def check_format(fmt: str) -> None:
    """Refuse a format that is neither a named one nor a strptime format that can read a
    time it writes itself (an unknown directive, one given twice, %G without %V...)."""
    if fmt in _NAMED:
        return
    if "%" not in fmt:
        raise RulesError(
            f"time format {fmt!r}: use one of {', '.join(_NAMED)} or a strptime format "
            "such as '%d/%b/%Y:%H:%M:%S %z'"
        )
    seen: set[str] = set()
    for found in _DIRECTIVE.finditer(fmt):
        if found.group(1) in seen and found.group(1) != "%":
            raise RulesError(
                f"time format {fmt!r}: {found.group()!r} is given twice; a time has one of it"
            )
        seen.add(found.group(1) or "")
        if found.group(1) == "s":
            raise RulesError(f"time format {fmt!r}: for seconds since 1970 write format: unix")
        if found.group(1) not in _STRPTIME:
            code = found.group() if found.group(1) else "a lone '%' at the end"
            raise RulesError(
                f"time format {fmt!r}: {code!r} is not a strptime directive "
                "(write %% for a literal '%')"
                if found.group(1)
                else f"time format {fmt!r}: {code}: write %% for a literal '%'"
            )
    try:
        datetime.strptime(_SAMPLE.strftime(fmt), fmt)
    except (ValueError, re.error) as exc:
        raise RulesError(f"time format {fmt!r} cannot be read: {exc}") from None


def zone(name: str) -> ZoneInfo:
    """The time zone of an IANA name, or a RulesError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RulesError(
            f"time zone {name!r} is unknown: write an IANA name such as UTC or Europe/Berlin"
        ) from None


class TimeParser:
    """One format in one time zone: `parse(value, docker_ns)` gives ns since the epoch."""

    __slots__ = ("cacheable", "compiled", "fmt", "has_year", "last", "tz", "utc")

    def __init__(self, fmt: str = "rfc3339", timezone: str = "UTC") -> None:
        check_format(fmt)
        self.fmt = fmt
        self.tz = zone(timezone)
        self.utc = timezone in ("UTC", "Etc/UTC", "Z")
        self.compiled = compile_format(fmt) if fmt not in _NAMED else None
        codes = {found.group(1) for found in _DIRECTIVE.finditer(fmt)}
        self.has_year = bool(codes & {"Y", "y", "G"})  # %G: the ISO year of %V weeks
        # The last text read and its time: lines of a container come in time order, so
        # many in a row share their second. Only where the time is the text's alone: a
        # format without a year takes its year from Docker's time.
        self.cacheable = self.has_year or fmt in _NAMED
        self.last: tuple[str | None, int] = (None, 0)

    def parse(self, value: JSONValue, docker_ns: int) -> int:
        """Nanoseconds since the epoch; ValueError saying why the value is not a time."""
        last = self.last
        if type(value) is str and value == last[0]:
            return last[1]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("not a time: a time is text or a number")
        scale = _UNIX_SCALE.get(self.fmt)
        if scale is not None:
            ns = _unix(value, scale)
        elif not isinstance(value, str):
            raise ValueError(f"a number is not a time of format {self.fmt!r}")
        elif self.fmt in ("rfc3339", "iso8601"):
            ns = self._iso(value)
        else:
            ns = self._strptime(value, docker_ns)
        if not 0 <= ns <= MAX_NS:
            raise ValueError(f"{value!r} is outside 1970-2262, which nanosecond time holds")
        if self.cacheable and type(value) is str:
            self.last = (value, ns)
        return ns

    def _iso(self, text: str) -> int:
        found = _ISO.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"{text[:64]!r} is not an RFC 3339 time")
        base, fraction, rest = found.groups()
        try:
            moment = datetime.fromisoformat(base.replace(" ", "T") + (rest or "").replace("z", "Z"))
        except ValueError:
            raise ValueError(f"{text[:64]!r} is not an RFC 3339 time") from None
        return self._ns(moment) + int((fraction or "0").ljust(9, "0"))

    def _strptime(self, text: str, docker_ns: int) -> int:
        try:
            if self.has_year:
                return self._read(text, 0)
            # Docker's year, unless the time is then more than half a year from Docker's:
            # a line of Dec 31 read on Jan 1 is of the year before (and the converse).
            year = _year(docker_ns)
            ns = self._read(text, year)
            if abs(ns - docker_ns) > _HALF_YEAR_NS:
                ns = self._read(text, year - 1 if ns > docker_ns else year + 1)
            return ns
        except ValueError:
            raise ValueError(f"{text[:64]!r} does not have the format {self.fmt!r}") from None

    def _read(self, text: str, year: int) -> int:
        """The time of `text` in `year` (when the format has none); ValueError if none."""
        if self.compiled is not None:
            found = self.compiled.fullmatch(text.strip())
            if found is None:
                raise ValueError(text)
            return read(found, self.tz, self.utc, year)
        if self.has_year:
            moment = datetime.strptime(text.strip(), self.fmt)
        else:  # read in `year`: strptime's own 1900 has no Feb 29
            moment = datetime.strptime(f"{year:04d} {text.strip()}", f"%Y {self.fmt}")
        return self._ns(moment)

    def _ns(self, moment: datetime) -> int:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _year(ns: int) -> int:
    return datetime.fromtimestamp(ns // 10**9, UTC).year


def _unix(value: str | int | float, scale: int) -> int:
    """Nanoseconds of a number of units since the epoch: exact for an int and for text, and
    for a float exact to the digits it is written with (its shortest repr: the number as
    the line had it, as far as a double holds it)."""
    if isinstance(value, int):
        return value * scale
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        return _unix_text(repr(value), scale)
    return _unix_text(value.strip(), scale)


# A number as text: a sign, digits with perhaps a decimal point, perhaps an exponent;
# ASCII digits only, no `_` separators, no hex, `nan` or `inf`.
_UNIX_NUMBER = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?", re.ASCII)
_UNITS = {10**9: "seconds", 10**6: "milliseconds", 10**3: "microseconds", 1: "nanoseconds"}
# A whole number of nanoseconds past MAX_NS has at least this many digits.
_TOO_MANY_DIGITS = len(str(MAX_NS)) + 1


def _unix_text(text: str, scale: int) -> int:
    """The text's number times `scale`, by integer arithmetic on its digits (a float
    would keep 15-17 of them: a unix time loses its nanoseconds); digits past the
    nanosecond are cut off, as rfc3339's are."""
    found = _UNIX_NUMBER.fullmatch(text)
    if found is None or not (found[2] or found[3]):
        raise ValueError(
            f"{text[:64]!r} is not a number of {_UNITS[scale]} since 1970 (write digits, "
            "perhaps a decimal point and an exponent: 1733400011.123456789, 1.7334e9)"
        )
    sign, whole, fraction, exponent = found.groups(default="")
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return 0
    # The value is int(digits) * 10**power nanoseconds.
    power = len(str(scale)) - 1 - len(fraction) + _exponent(exponent)
    size = len(digits) + power  # digits of its whole nanoseconds
    if size >= _TOO_MANY_DIGITS:
        raise ValueError(f"{text[:64]!r} is outside 1970-2262, which nanosecond time holds")
    # Past the nanosecond digits are cut off; short of it, zeros added (power <= size).
    ns = int(digits[: max(size, 0)] or "0") if power < 0 else int(digits + "0" * power)
    return -ns if sign == "-" else ns


def _exponent(text: str) -> int:
    """An exponent's value; one of more than 7 digits is as good as 10**7 (the number is
    then 0 or too large, whichever way the sign goes)."""
    if not text:
        return 0
    magnitude = text.lstrip("+-").lstrip("0")
    value = int(magnitude or "0") if len(magnitude) <= 7 else 10**7
    return -value if text.startswith("-") else value
