"""The pieces of parsing rules alone: dissect, RE2 regexes, typed conversion, times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import RulesError
from collector.parse import JSONValue
from collector.rules.convert import converter, to_boolean, to_double, to_ip, to_keyword, to_long
from collector.rules.dissect import Dissect
from collector.rules.regex import Regex
from collector.rules.timestamp import TimeParser

NS = 10**9
# 2025-05-01T12:00:00Z
NOON = 1746100800 * NS


def test_dissect_cuts_at_literals_and_last_key_takes_the_rest() -> None:
    """Each key takes the text up to its literal; the last one the rest of the line."""
    d = Dissect('%{client} - %{user} [%{time}] "%{request}" %{rest}')
    line = '10.0.0.1 - ann [01/May/2025:12:00:00 +0000] "GET / HTTP/1.1" 200 5 x y'
    assert d(line) == {
        "client": "10.0.0.1",
        "user": "ann",
        "time": "01/May/2025:12:00:00 +0000",
        "request": "GET / HTTP/1.1",
        "rest": "200 5 x y",
    }


def test_dissect_skips_keys_and_padding_and_refuses_other_shapes() -> None:
    """%{} and %{?x} skip text, %{x->} skips repeated literals; another shape gives None."""
    d = Dissect("[%{level->}] %{?pid} %{} %{msg}")
    # The padding skipped is repeats of the literal after the key ("] "), not spaces within.
    assert d("[INFO   ] 12 main hello there") == {"level": "INFO   ", "msg": "hello there"}
    padded = Dissect("%{level->} %{msg}")
    assert padded("INFO     hello there") == {"level": "INFO", "msg": "hello there"}
    assert Dissect("%{a} %{?b} %{} %{c}")("1 2 3 4 5") == {"a": "1", "c": "4 5"}
    assert Dissect("x=%{a};")("y=1;") is None
    assert Dissect("%{a}:%{b}")("no colon") is None


def test_dissect_refuses_adjacent_keys_bad_names_and_no_key() -> None:
    """Patterns that cannot work are refused with the reason."""
    with pytest.raises(RulesError, match="no text between"):
        Dissect("%{a}%{b}")
    with pytest.raises(RulesError, match="a key is a name"):
        Dissect("%{a b} x")
    with pytest.raises(RulesError, match="at least one"):
        Dissect("plain text")
    with pytest.raises(RulesError, match="twice"):
        Dissect("%{a} %{a}")
    with pytest.raises(RulesError, match=r"a key is not closed: '%\{b' has no '\}'"):
        Dissect("%{a} %{b")
    with pytest.raises(RulesError, match=re.escape("a key is not closed: '%{a '")):
        Dissect("%{a %{b}")
    # A pattern whose only key is unclosed has no key, but the missing '}' is the reason.
    with pytest.raises(
        RulesError, match=re.escape("a key is not closed: '%{client - %{user' has no")
    ):
        Dissect("%{client - %{user")
    with pytest.raises(RulesError, match=re.escape("a key is not closed: '%{time' has no")):
        Dissect("[%{time")


def test_regex_gives_named_groups_that_took_part() -> None:
    """Named groups of the first match; groups that did not take part are left out."""
    r = Regex(r"took (?P<ms>\d+)ms|failed: (?P<reason>.+)")
    assert r("request took 25ms") == {"ms": "25"}
    assert r("failed: timeout") == {"reason": "timeout"}
    assert r("nothing here") is None
    assert r.names == ("ms", "reason")


def test_regex_refuses_what_only_backtracking_can_do() -> None:
    """Look-behind and back-references do not compile under RE2, and the error says so."""
    with pytest.raises(RulesError, match=r"does not compile \(RE2\)"):
        Regex(r"(?<=a)b")
    with pytest.raises(RulesError, match="RE2"):
        Regex(r"(a)\1")


def test_regex_refuses_a_group_name_given_twice() -> None:
    """RE2 kept the first group of a name only, so a line the other alternative took lost
    its value: a name given twice is refused; escaped or bracketed text is no group."""
    with pytest.raises(RulesError, match="the group name 'ms' is given twice"):
        Regex(r"took (?P<ms>\d+)ms|took (?P<ms>\d+)s")
    assert Regex(r"\(?P<ms>x\) [(?P<ms>] (?P<ms>\d+)")(r"(?P<ms>x) < 42") == {"ms": "42"}


def test_regex_runs_a_hostile_pattern_on_a_hostile_line_and_lone_surrogates() -> None:
    """(a+)+$ on 'aaaa...!' returns (no backtracking); a lone surrogate is no error."""
    assert Regex(r"(?P<x>(a+)+)$")("a" * 50_000 + "!") is None
    assert Regex(r"(?P<x>b)")("a\ud800b") == {"x": "b"}


def test_long_takes_whole_numbers_in_64_bits_only() -> None:
    """Integers, integral floats and their text are longs; others say why not."""
    assert to_long("42") == 42
    assert to_long(" -7 ") == -7
    assert to_long(3.0) == 3
    assert to_long(2**63 - 1) == 2**63 - 1
    for bad in ("4.5", "1_000", "", "٣", 2**63, True, None, {"a": 1}, "9" * 30):
        with pytest.raises(ValueError, match="is not a long"):
            to_long(bad)  # type: ignore[arg-type]
    assert to_long("0" * 20 + "512") == 512  # leading zeros are no digits of the number


def test_a_value_that_cannot_be_typed_is_quoted_as_the_line_held_it() -> None:
    """JSON's null, true and objects were quoted as Python's None, True and {'a': 1};
    a double's reason named 'inf' for the line's 1e999."""
    for value, reason in [
        (None, "'null' is not a long"),
        (True, "'true' is not a long"),
        ({"a": 1}, """'{"a":1}' is not a long"""),
        (1e30, "'1e+30' is not a long"),
    ]:
        with pytest.raises(ValueError, match=re.escape(reason)):
            to_long(value)  # type: ignore[arg-type]
    not_doubles: list[tuple[JSONValue, str]] = [
        ("1e999", "'1e999' is not a double"),
        (True, "'true' is not a double"),
    ]
    for bad, reason in not_doubles:
        with pytest.raises(ValueError, match=re.escape(reason)):
            to_double(bad)


def test_double_takes_finite_numbers_only() -> None:
    """Numbers and their text are doubles; NaN, infinities and words are not."""
    assert to_double("0.042") == 0.042
    assert to_double("1e3") == 1000.0
    assert to_double(7) == 7.0
    for bad in ("nan", "inf", "1e999", "abc", True, None, [1]):
        with pytest.raises(ValueError, match="is not a double"):
            to_double(bad)  # type: ignore[arg-type]


def test_boolean_ip_and_keyword() -> None:
    """Booleans by their usual words, IPs written canonically, keywords from scalars."""
    assert to_boolean("Yes") is True
    assert to_boolean("0") is False
    assert to_boolean(False) is False
    with pytest.raises(ValueError, match="is not a boolean"):
        to_boolean("maybe")
    assert to_ip("2001:DB8::1") == "2001:db8::1"
    assert to_ip("10.0.0.1") == "10.0.0.1"
    for bad in ("10.0.0.256", "fe80::1%eth0", 17):
        with pytest.raises(ValueError, match="is not an IP"):
            to_ip(bad)
    assert to_keyword(12) == "12"
    assert to_keyword(True) == "true"
    with pytest.raises(ValueError, match="is not a keyword"):
        to_keyword({"a": 1})


def test_date_fields_are_written_as_utc_to_the_millisecond() -> None:
    """A date field with a format is converted to RFC 3339 UTC."""
    to_date = converter("date", TimeParser("%d/%b/%Y:%H:%M:%S %z"))
    assert to_date("01/May/2025:14:00:00 +0200", NOON) == "2025-05-01T12:00:00.000Z"
    with pytest.raises(ValueError, match="does not have the format"):
        to_date("yesterday", NOON)


def test_rfc3339_keeps_nanoseconds_and_offsets() -> None:
    """RFC 3339 with nine fractional digits and an offset is read to the nanosecond."""
    p = TimeParser()
    assert p.parse("2025-05-01T14:00:00.123456789+02:00", 0) == NOON + 123456789
    assert p.parse("2025-05-01T12:00:00Z", 0) == NOON
    assert p.parse("2025-05-01 12:00:00.5", 0) == NOON + NS // 2
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        p.parse("May 1st", 0)


def test_time_zone_applies_to_times_without_offset_and_year_comes_from_docker() -> None:
    """A naive time is read in the rule's zone; a format without a year takes Docker's."""
    berlin = TimeParser("%Y-%m-%d %H:%M:%S", "Europe/Berlin")
    assert berlin.parse("2025-05-01 14:00:00", 0) == NOON
    syslog = TimeParser("%b %d %H:%M:%S")
    assert syslog.parse("May  1 12:00:00", NOON + 5 * NS) == NOON


def test_a_time_without_a_year_takes_the_year_nearest_dockers() -> None:
    """A line of Dec 31 read on Jan 1 is of the year before, and the converse; the ISO
    year of a week format is the line's own."""
    syslog = TimeParser("%b %d %H:%M:%S")
    new_year = int(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC).timestamp()) * NS
    assert syslog.parse("Dec 31 23:59:59", new_year) == new_year - 2 * NS
    assert syslog.parse("Jan  1 00:00:03", new_year - 4 * NS) == new_year + 2 * NS
    by_strptime = TimeParser("%a %b %d %I:%M:%S %p")
    assert by_strptime.parse("Wed Dec 31 11:59:59 PM", new_year) == new_year - 2 * NS
    iso_week = TimeParser("%G-%V-%u %H:%M:%S")
    assert iso_week.parse("2025-18-4 12:00:00", new_year) == NOON


def test_feb_29_without_a_year_is_read_in_a_leap_year_by_any_format() -> None:
    """Formats read by hand and those left to strptime (%a, %p, %j) alike: strptime's
    own year without one, 1900, has no Feb 29."""
    leap = int(datetime(2028, 2, 29, 10, 0, 5, tzinfo=UTC).timestamp()) * NS
    for fmt, text in [
        ("%b %d %H:%M:%S", "Feb 29 10:00:00"),
        ("%a %b %d %H:%M:%S", "Tue Feb 29 10:00:00"),
        ("%b %d %I:%M:%S %p", "Feb 29 10:00:00 AM"),
        ("%j %H:%M", "060 10:00"),
    ]:
        assert TimeParser(fmt).parse(text, leap) == leap - 5 * NS, fmt
    with pytest.raises(ValueError, match="does not have the format"):
        TimeParser("%a %b %d %H:%M:%S").parse("Thu Feb 29 10:00:00", leap + 366 * 86400 * NS)


def test_unix_formats_read_numbers_and_text() -> None:
    """unix, unix_ms, unix_us, unix_ns read numbers or their text."""
    assert TimeParser("unix").parse(1746100800.5, 0) == NOON + NS // 2
    assert TimeParser("unix_ms").parse("1746100800000", 0) == NOON
    assert TimeParser("unix_us").parse(1746100800000000, 0) == NOON
    assert TimeParser("unix_ns").parse(str(NOON), 0) == NOON
    with pytest.raises(ValueError, match="outside 1970-2262"):
        TimeParser("unix").parse(-5, 0)
    with pytest.raises(ValueError, match="not a time"):
        TimeParser("unix").parse(True, 0)


@pytest.mark.parametrize(
    ("fmt", "text", "ns"),
    [
        ("unix", "1733400011.123456789", 1733400011_123456789),
        ("unix", "1733400011.1234567891234", 1733400011_123456789),  # past the ns: cut off
        ("unix", "1733400011.999999999999", 1733400011_999999999),  # cut, never rounded up
        ("unix", "1733400011", 1733400011_000000000),
        ("unix", " 1733400011.5 ", 1733400011_500000000),
        ("unix", "+1733400011.", 1733400011_000000000),
        ("unix", "0001733400011.000000001", 1733400011_000000001),
        ("unix", "1.733400011123456789e9", 1733400011_123456789),
        ("unix", "1.733400011123456789E+9", 1733400011_123456789),
        ("unix", "17334000111234567890e-10", 1733400011_123456789),
        ("unix", ".5", 500000000),
        ("unix", "0", 0),
        ("unix", "-0.0", 0),
        ("unix", "1e-30", 0),
        ("unix", "0e999999999999", 0),
        ("unix", "0." + "1" * 10000, 111111111),  # a long text is cut, not made a huge int
        ("unix_ms", "1733400011123.456789", 1733400011_123456789),
        ("unix_ms", "1733400011123", 1733400011_123000000),
        ("unix_us", "1733400011123456.789", 1733400011_123456789),
        ("unix_us", "1.733400011123456789e15", 1733400011_123456789),
        ("unix_ns", "1733400011123456789", 1733400011_123456789),
        ("unix_ns", "1733400011123456789.9", 1733400011_123456789),
        ("unix_ns", "9223372036854775807", 2**63 - 1),
        ("unix_ns", "9.223372036854775807e18", 2**63 - 1),
    ],
)
def test_unix_text_is_exact_to_the_nanosecond(fmt: str, text: str, ns: int) -> None:
    """A unix time as text is read by integer arithmetic on its digits, exponent and
    all: every nanosecond kept (a float keeps 15-17 digits), digits past it cut off."""
    assert TimeParser(fmt).parse(text, 0) == ns


def test_unix_numbers_keep_the_digits_they_were_written_with() -> None:
    """A JSON number is read from its shortest text, not multiplied as a float (which
    would give 1746100800.123457 s as ...123457024 ns)."""
    assert TimeParser("unix").parse(1746100800.123457, 0) == 1746100800_123457000
    assert TimeParser("unix").parse(1733400011.999999, 0) == 1733400011_999999000
    assert TimeParser("unix_ms").parse(1733400011123.4568, 0) == 1733400011_123456800
    assert TimeParser("unix_ns").parse(1733400011123456789, 0) == 1733400011_123456789
    with pytest.raises(ValueError, match="not a finite number"):
        TimeParser("unix").parse(float("nan"), 0)


@pytest.mark.parametrize(
    ("fmt", "text", "reason"),
    [
        ("unix", "1_733_400_011", "is not a number of seconds since 1970 (write digits,"),
        ("unix", "١٧٣٣٤٠٠٠١١", "is not a number of seconds since 1970"),  # Arabic digits
        ("unix", "nan", "is not a number of seconds"),
        ("unix", "inf", "is not a number of seconds"),
        ("unix", "0x6751", "is not a number of seconds"),
        ("unix", "1733400011,5", "is not a number of seconds"),
        ("unix", "1.2.3", "is not a number of seconds"),
        ("unix", ".", "is not a number of seconds"),
        ("unix", "1e", "is not a number of seconds"),
        ("unix", "e9", "is not a number of seconds"),
        ("unix", "", "is not a number of seconds"),
        ("unix", "1733400011 UTC", "is not a number of seconds"),
        ("unix_ms", "12 ms", "is not a number of milliseconds since 1970"),
        ("unix_us", "x", "is not a number of microseconds since 1970"),
        ("unix_ns", "x", "is not a number of nanoseconds since 1970"),
        ("unix", "-1.5", "is outside 1970-2262"),
        ("unix", "1e10", "is outside 1970-2262"),
        ("unix", "1e999999999999", "is outside 1970-2262"),
        ("unix", "9" * 5000, "is outside 1970-2262"),
        ("unix_ns", "9223372036854775808", "is outside 1970-2262"),
    ],
)
def test_unix_text_that_is_no_time_says_why(fmt: str, text: str, reason: str) -> None:
    """Text that is no plain decimal number (separators, other digits, hex, nan, a unit)
    is refused naming the unit and the form to write; a number before 1970 or past 2262
    is refused as such, however many digits it has."""
    with pytest.raises(ValueError, match=re.escape(reason)):
        TimeParser(fmt).parse(text, 0)


def test_unknown_formats_and_zones_are_refused() -> None:
    """A format that is no name and no strptime format, or an unknown zone, is an error."""
    with pytest.raises(RulesError, match="time format 'dd/mm/yyyy'"):
        TimeParser("dd/mm/yyyy")
    with pytest.raises(RulesError, match="time zone 'Mars/Olympus'"):
        TimeParser("rfc3339", "Mars/Olympus")


@pytest.mark.parametrize(
    ("fmt", "reason"),
    [
        ("%Q garbage", "'%Q' is not a strptime directive"),
        ("%a %b %e", "'%e' is not a strptime directive"),
        ("%Y-%m-%d 100%", "a lone '%' at the end"),
        ("%s", "for seconds since 1970 write format: unix"),
        ("%Y %Y", "'%Y' is given twice; a time has one of it"),
        ("%G-%m-%d", "cannot be read: ISO year directive"),
    ],
)
def test_strptime_formats_that_cannot_read_a_time_are_refused(fmt: str, reason: str) -> None:
    """A format with a directive strptime lacks, or one it cannot read back, is refused
    when the rules load, not on every line."""
    with pytest.raises(RulesError, match=re.escape(reason)):
        TimeParser(fmt)


@pytest.mark.parametrize("fmt", ["%%d %Y-%m-%d", "%c", "%a %b %d %H:%M:%S %Y", "%Y%m%d %Z"])
def test_strptime_formats_strptime_reads_are_taken(fmt: str) -> None:
    """Formats of other directives, and a literal %%, are taken as before."""
    assert TimeParser(fmt).fmt == fmt


FORMATS = ["%d/%b/%Y:%H:%M:%S %z", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%y%m%d %H%M%S"]


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2068, 12, 30)),  # %y: 1969-2068
    st.sampled_from(FORMATS),
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
)
def test_compiled_formats_read_what_strptime_reads(moment: datetime, fmt: str, tz: str) -> None:
    """The hand-read formats give the time strptime gives, in any zone."""
    aware = moment.replace(tzinfo=ZoneInfo(tz))
    text = aware.strftime(fmt)
    expected = datetime.strptime(text, fmt)
    if expected.tzinfo is None:
        expected = expected.replace(tzinfo=ZoneInfo(tz))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    want = (expected - epoch) // timedelta(microseconds=1) * 1000
    assert TimeParser(fmt, tz).parse(text, 0) == want


def test_other_directives_fall_back_to_strptime_and_bad_days_are_refused() -> None:
    """%p is left to strptime; 31 February is not a time whichever way it is read."""
    assert TimeParser("%Y-%m-%d %I:%M %p").parse("2025-05-01 12:00 PM", 0) == NOON
    with pytest.raises(ValueError, match="does not have the format"):
        TimeParser("%Y-%m-%d").parse("2025-02-31", 0)
    with pytest.raises(ValueError, match="does not have the format"):
        TimeParser("%d/%b/%Y").parse("01/Foo/2025", 0)


def test_ipv4_fast_path_agrees_with_ipaddress() -> None:
    """Dotted quads are taken as written; leading zeros and octets past 255 are not IPs."""
    assert to_ip("0.0.0.0") == "0.0.0.0"
    assert to_ip("255.255.255.255") == "255.255.255.255"
    for bad in ("01.2.3.4", "1.2.3.256", "1.2.3", "1.2.3.4.5"):
        with pytest.raises(ValueError, match="is not an IP"):
            to_ip(bad)


def test_a_number_for_a_text_time_format_names_the_format() -> None:
    """The message reads as English whatever the format's name (not "a iso8601 time")."""
    for fmt in ("iso8601", "rfc3339", "%Y-%m-%d"):
        with pytest.raises(
            ValueError, match=f"^a number is not a time of format {re.escape(repr(fmt))}$"
        ):
            TimeParser(fmt).parse(5, 0)


def test_an_rfc3339_time_takes_only_an_offset_after_its_fraction() -> None:
    """`12:00:00.5.5` was read as 12:00:01 (the fraction counted twice); what follows the
    fraction is an offset or nothing."""
    parser = TimeParser()
    assert parser.parse("2025-05-01T12:00:00.5Z", 0) == 1746100800_500000000
    assert parser.parse("2025-05-01 12:00:00,123456789+01:00", 0) == 1746097200_123456789
    for bad in ("2025-05-01T12:00:00.5.5", "2025-05-01T12:00:00.5 a", "2025-05-01T12:00:00Zx"):
        with pytest.raises(ValueError, match="is not an RFC 3339 time"):
            parser.parse(bad, 0)
