"""Property tests of the parsers: any text parses, nothing is lost, levels stay normalised."""

from __future__ import annotations

from typing import get_args

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.parse import JSONValue, parse
from collector.parse_ansi import strip_ansi
from collector.parse_level import LEVELS
from collector.parse_logfmt import split_by_quotes, split_by_regex
from collector.parse_structured import KNOWN_KEYS
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
