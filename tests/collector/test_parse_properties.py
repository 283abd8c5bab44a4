"""Property tests of the parsers: any text parses, nothing is lost, levels stay normalised."""

from __future__ import annotations

from typing import get_args

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from collector.parse import JSONValue, parse
from collector.parse.ansi import strip_ansi
from collector.parse.level import LEVELS, PLAIN_WINDOW, detect_level, normalise_level
from collector.parse.logfmt import split_by_quotes, split_by_regex
from collector.parse.structured import KNOWN_KEYS
from collector.wire import ParserName

PARSERS: tuple[ParserName, ...] = get_args(ParserName)
WHOLE_LINE_PARSERS = {"plain", "nginx", "apache", "access"}

# Text that often looks like a log line: fragments the detectors react to, glued together.
FRAGMENTS = st.sampled_from(
    [
        "{",
        "}",
        '"',
        "=",
        " ",
        "\t",
        "\n",
        "[",
        "]",
        "<",
        ">",
        "/",
        ":",
        "\\",
        "-",
        "\x1b[31m",
        "\x1b[0m",
        "\x1b]0;t\x07",
        "\x1b",
        "ERROR",
        "warn",
        "E/",
        "I0102 ",
        "level=",
        "msg=",
        '"GET / HTTP/1.1"',
        "200",
        "-",
        "1.2.3.4",
        "::1",
        "[pid 1]",
        "2024/01/02 03:04:05 [error] 1#1: ",
        '] "',
        "Traceback (most recent call last):",
        "panic: ",
        "\ud800",
        "é",
        "\x00",
    ]
)
LOGLIKE = st.lists(FRAGMENTS | st.text(max_size=8), max_size=24).map("".join)
ANY_TEXT = st.text() | LOGLIKE

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=8,
)
# Keys drawn partly from the ones the parser maps, so that mapping paths are exercised.
JSON_KEYS = st.sampled_from(sorted(KNOWN_KEYS)) | st.text(max_size=12)


@settings(max_examples=300)
@given(ANY_TEXT, st.sampled_from(PARSERS), st.booleans())
def test_any_text_parses(text: str, parser: ParserName, keep_original: bool) -> None:
    """No exception and no internal parser failure for any text under any parser."""
    parsed = parse(text, parser, keep_original)
    assert "parse_error" not in parsed.flags
    assert parsed.level is None or parsed.level in LEVELS
    assert isinstance(parsed.message, str)
    assert all(flag == flag.lower() and " " not in flag for flag in parsed.flags)


@settings(max_examples=300)
@given(ANY_TEXT, st.sampled_from(PARSERS))
def test_whole_line_parsers_keep_the_message(text: str, parser: ParserName) -> None:
    """Plain, invalid and access/error-log lines keep the ANSI-stripped line as message."""
    parsed = parse(text, parser)
    if parsed.parser in WHOLE_LINE_PARSERS:
        assert parsed.message == strip_ansi(text)


@settings(max_examples=200)
@given(ANY_TEXT)
def test_original_only_when_stripping_changed_something(text: str) -> None:
    """``original`` is the raw line exactly when escapes were removed and it was asked for."""
    parsed = parse(text, keep_original=True)
    if "ansi" in parsed.flags:
        assert parsed.original == text
    else:
        assert parsed.original is None
        assert parse(text).message == parsed.message


@settings(max_examples=100)
@given(st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=8))
def test_json_objects_parse_and_lose_no_key(record: dict[str, JSONValue]) -> None:
    """Any JSON object parses as JSON; each key is either mapped or kept unchanged."""
    line = orjson.dumps(record).decode()
    parsed = parse(line)
    assert parsed.parser == "json"
    assert parsed.flags in ([], ["ansi"])
    attributes = parsed.attributes or {}
    for key, value in record.items():
        if key in attributes and key != "log":
            assert attributes[key] == value
        else:
            assert key in KNOWN_KEYS
    orjson.dumps(attributes)  # what enrich will do with it
    strings = [v for v in record.values() if isinstance(v, str)]
    assert parsed.message in [line, *strings, *map(strip_ansi, strings)]


LOGFMT_KEYS = st.text(
    alphabet=st.characters(
        blacklist_characters=' ="\t\n\r\x0b\x0c',
        blacklist_categories=["Zs", "Zl", "Zp", "Cc", "Cs"],
    ),
    min_size=1,
    max_size=10,
).filter(lambda k: k not in KNOWN_KEYS)
LOGFMT_VALUES = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20)


@settings(max_examples=200)
@given(st.dictionaries(LOGFMT_KEYS, LOGFMT_VALUES, min_size=1, max_size=6))
def test_logfmt_round_trip(record: dict[str, str]) -> None:
    """Pairs written by a logfmt encoder (quoted when needed) come back as written."""
    line = " ".join(f"{k}={orjson.dumps(v).decode()}" for k, v in record.items())
    parsed = parse(line, "logfmt")
    assert parsed.parser == "logfmt"
    assert parsed.attributes == record


@settings(max_examples=200)
@given(LOGLIKE)
def test_colours_do_not_change_the_result(text: str) -> None:
    """A line parses to the same message and level whether or not it is coloured."""
    plain = strip_ansi(text)
    coloured = f"\x1b[1;32m{plain}\x1b[0m"
    a, b = parse(plain), parse(coloured)
    assert (a.message, a.level, a.parser) == (b.message, b.level, b.parser)


LOGFMT_PIECES = st.lists(
    st.sampled_from(["a", "key", "=", '"', " ", "  ", "\t", "\u2003", "\x1c", "v", "é", '""'])
    | st.text(alphabet='ab=" \t', max_size=6),
    max_size=16,
).map("".join)


@settings(max_examples=300)
@given(LOGFMT_PIECES)
def test_logfmt_fast_split_agrees_with_the_regex(line: str) -> None:
    """The str-method splitter gives exactly what the escape-aware regex splitter gives."""
    assert split_by_quotes(line) == split_by_regex(line)


# Levels told by their place in the line: logcat's level column and machine-log headers.

LOGCAT_LEVELS = {"V": "trace", "D": "debug", "I": "info", "W": "warn", "E": "error"}
LOGCAT_LEVELS |= {"F": "fatal", "A": "fatal"}
LOGCAT_TAGS = st.from_regex(r"[A-Za-z][A-Za-z0-9_.]{0,23}", fullmatch=True)
# Message text full of what a careless detector would take for a level.
DECOYS = st.lists(
    st.sampled_from(["E", "W", "ERROR", "error", "FATAL", "warn", "E/Tag:", "[E]", "<3>", "x"])
    | st.text(max_size=6),
    max_size=12,
).map(" ".join)


@settings(max_examples=200)
@given(
    st.sampled_from(sorted(LOGCAT_LEVELS)),
    LOGCAT_TAGS,
    st.integers(1, 99999),
    st.integers(1, 99999),
    st.sampled_from(["threadtime", "time", "brief"]),
    DECOYS,
)
def test_logcat_level_is_its_column(
    letter: str, tag: str, pid: int, tid: int, form: str, message: str
) -> None:
    """In logcat's threadtime, time and brief formats only the level column gives the level."""
    stamp = "05-14 09:12:03.512"
    line = {
        "threadtime": f"{stamp} {pid:5d} {tid:5d} {letter} {tag:<8}: {message}",
        "time": f"{stamp} {letter}/{tag}({pid:5d}): {message}",
        "brief": f"{letter}/{tag}({pid:5d}): {message}",
    }[form]
    assert detect_level(line) == LOGCAT_LEVELS[letter]


HEADER_TOKENS = st.one_of(
    st.integers(0, 10**12).map(str),
    st.sampled_from(["2005.06.03", "2005-06-03-15.42.50.675872", "081109", "17/06/09"]),
    st.sampled_from(["09:12:03,512", "00:00:00.008", "-", "|", "#", "--", "Nov", "Mon", "UTC"]),
    st.sampled_from(["RAS", "KERNEL", "APP", "NULL", "BGLMASTER", "UNKNOWN_LOCATION"]),
    st.from_regex(r"R[0-9]{2}-M[01]-N[0-9A-F]-C:J[0-9]{2}-U[01]1", fullmatch=True),
    st.from_regex(
        r"[a-z]{2,8}(-[a-z0-9]{1,6}){0,2}\.[a-z]{2,8}(\.[a-z]{2,6}){0,2}", fullmatch=True
    ),
    st.from_regex(r"\[[a-zA-Z0-9 :./=@$-]{0,24}\]", fullmatch=True),
    st.from_regex(r"[a-z]{2,10}\[[0-9]{1,5}\]:", fullmatch=True),
).filter(lambda token: detect_level(token) is None)
HEADERS = st.lists(HEADER_TOKENS, min_size=1, max_size=14).map(" ".join)
HEADER_LEVELS = st.sampled_from(
    ["INFO", "WARN", "WARNING", "ERROR", "FATAL", "SEVERE", "DEBUG", "TRACE", "CRITICAL"]
)
PROSE = st.from_regex(r"[a-z]{2,12}", fullmatch=True).filter(lambda w: detect_level(w) is None)


@settings(max_examples=300)
@given(HEADERS, HEADER_LEVELS, st.sampled_from(["{}", "[{}]", "{}:"]), PROSE, DECOYS)
def test_header_level_field_at_any_depth(
    header: str, word: str, shape: str, prose: str, message: str
) -> None:
    """A level field after header-like tokens is the level, however long the header."""
    line = f"{header} {shape.format(word)} {prose} {message}"
    assert detect_level(line) == normalise_level(word)


@settings(max_examples=200)
@given(st.lists(HEADER_TOKENS, min_size=12, max_size=24).map(" ".join), PROSE, DECOYS)
def test_level_word_after_prose_past_the_window_does_not_count(
    header: str, prose: str, message: str
) -> None:
    """Past the first PLAIN_WINDOW characters, a level word after prose is message text."""
    assume(len(header) >= PLAIN_WINDOW)
    assert detect_level(f"{header} {prose} {message}") is None
