"""`--since` and `--until`: relative and absolute times, made absolute in UTC."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from logpipe.errors import UsageError
from logpipe.timespec import CLOCK_SKEW_NS, in_future, nanos, parse_time, rfc3339, time_range

NOW = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def berlin() -> Iterator[None]:
    """This process's local time zone is Europe/Berlin (UTC+1 in December)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_a_duration_is_that_long_before_now(text: str, ago: timedelta) -> None:
    """A number and a unit (or several) mean that long before now."""
    assert parse_time("--since", text, NOW) == nanos(NOW - ago)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-02T09:00:00Z", datetime(2026, 12, 2, 9, tzinfo=UTC)),
        ("2026-12-02T10:30:00+01:00", datetime(2026, 12, 2, 9, 30, tzinfo=UTC)),
        ("2026-12-02t09:00:00.250z", datetime(2026, 12, 2, 9, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_an_absolute_time_is_taken_with_its_offset(text: str, expected: datetime) -> None:
    """RFC 3339 times with `Z` or an offset mean that instant."""
    assert parse_time("--since", text, NOW) == nanos(expected)


def test_a_time_without_offset_is_local_time(berlin: None) -> None:
    """A date, or a date and time without offset, is in this machine's time zone."""
    assert parse_time("--since", "2026-12-02T10:00", NOW) == nanos(
        datetime(2026, 12, 2, 9, tzinfo=UTC)
    )
    assert parse_time("--since", "2026-12-02", NOW) == nanos(datetime(2026, 12, 1, 23, tzinfo=UTC))


@pytest.mark.parametrize("text", ["yesterday", "15", "m15", "-5m", "2026-13-01", ""])
def test_anything_else_is_a_usage_error_naming_the_option(text: str) -> None:
    """A text that is no time is refused with the option's name and examples."""
    with pytest.raises(UsageError, match=r"^--until: .* is not a time: write .*30s"):
        parse_time("--until", text, NOW)


def test_a_range_that_holds_no_time_is_refused() -> None:
    """--since at or after --until is a usage error."""
    with pytest.raises(UsageError) as refused:
        time_range("1h", "2h", NOW)
    assert str(refused.value) == (
        "--since 1h (2026-12-02T09:00:00Z) is not before --until 2h (2026-12-02T08:00:00Z): "
        "the range holds no time"
    )
    with pytest.raises(UsageError, match=r"^--since 2026-12-02T10:00:00Z is not before --unt"):
        time_range("2026-12-02T10:00:00Z", "2026-12-02T10:00:00Z", NOW)
    assert time_range("2h", None, NOW) == (nanos(NOW - timedelta(hours=2)), None)


def test_a_since_in_the_future_is_told_beyond_a_few_seconds_of_skew() -> None:
    """Up to CLOCK_SKEW_NS ahead of this machine's clock a --since may be a log's clock
    running ahead; further, it is in the future, and the message says how it was read."""
    ahead = nanos(NOW) + CLOCK_SKEW_NS
    assert in_future("2026-12-02T10:00:05Z", ahead, NOW) is None
    assert in_future(None, None, NOW) is None
    assert in_future("2027-01-01", ahead + 1, NOW) == (
        "--since 2027-01-01 (2026-12-02T10:00:05.000000001Z) is in the future "
        "(this machine's clock says 2026-12-02T10:00:00Z)"
    )
    assert in_future("2026-12-02T10:00:05.000000001Z", ahead + 1, NOW) == (
        "--since 2026-12-02T10:00:05.000000001Z is in the future "
        "(this machine's clock says 2026-12-02T10:00:00Z)"
    )


def test_times_are_sent_as_rfc3339_in_utc() -> None:
    """The collector gets UTC with `Z`, to the microsecond only when there is one."""
    assert rfc3339(nanos(NOW)) == "2026-12-02T10:00:00Z"
    assert rfc3339(nanos(NOW + timedelta(microseconds=5))) == "2026-12-02T10:00:00.000005Z"


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-05T02:21:28.521860474Z",
        "2026-12-05 02:21:28.521860474Z",  # a space for the T, as `date` and SQL write it
        "2026-12-05t02:21:28.521860474z",
    ],
)
def test_nanoseconds_are_kept(text: str) -> None:
    """Docker stamps lines to the nanosecond; a time copied from one means that instant."""
    assert rfc3339(parse_time("--since", text, NOW)) == "2026-12-05T02:21:28.521860474Z"


def test_a_duration_is_counted_exactly_however_long() -> None:
    """Fractions are exact, and a duration too long for a float is outside the range,
    not an OverflowError."""
    assert parse_time("--since", "0.1s", NOW) == nanos(NOW) - 100_000_000
    with pytest.raises(UsageError, match="outside the times logs are stored"):
        parse_time("--since", "9" * 400 + "w", NOW)


def test_an_empty_since_or_until_is_named_not_taken_as_absent() -> None:
    """`--since ''` (an unset shell variable) is a mistake, not the default day."""
    for since, until in (("", None), (None, "")):
        with pytest.raises(UsageError, match="is not a time"):
            time_range(since, until, NOW)


@pytest.mark.parametrize(
    "text",
    [
        "1000000d",
        "99999999999999999999s",
        "9" * 400 + "w",
        "9" * 5000 + "w",  # past the digits int() takes
        "1." + "9" * 5000 + "s",
        "0001-01-01",
        "1960-01-01",
        "9999-12-31",
    ],
)
def test_a_time_outside_what_is_stored_is_a_usage_error(text: str) -> None:
    """Before 1970 or after 2262 no log can be: said at once, not by Elasticsearch."""
    with pytest.raises(UsageError, match=r"^--since: .* outside the times logs are stored"):
        parse_time("--since", text, NOW)
