"""logfmt records (Go kit, logrus text, log15, Heroku router): ``key=value key2="a b"``."""

from __future__ import annotations

import re
from typing import NamedTuple

import orjson

from collector.parse.result import JSONValue, Parsed
from collector.parse.structured import RECORD_KEYS, structured

# One token: a key with an optional `=value` (quoted with escapes, or bare), standing
# alone; anything else (a stray quote, `a=b"c`) is caught by the last group as garbage.
_TOKEN = re.compile(
    r'([^\s="]+)(?:(=)("[^"\\]*(?:\\.[^"\\]*)*"|[^\s"]*))?(?=\s|\Z)|(\S+)', re.DOTALL
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)


class Tokens(NamedTuple):
    """A line split into logfmt pairs, with counts to judge whether it is logfmt."""

    fields: dict[str, JSONValue]
    pairs: int
    bare: int


def split_logfmt(line: str) -> Tokens | None:
    """The line's pairs (bare keys are ``True``), or None if some token is not logfmt."""
    if "\\" in line:
        return split_by_regex(line)
    return split_by_quotes(line)


def split_by_quotes(line: str) -> Tokens | None:
    """:func:`split_by_regex` for lines without escapes, with str methods (3x faster)."""
    parts = line.split('"')
    last = len(parts) - 1
    if last % 2:
        return None  # an unterminated quote
    fields: dict[str, JSONValue] = {}
    pairs = bare = 0
    for i in range(0, last + 1, 2):
        words = parts[i].split()
        quoted_key = None
        if i < last:
            quoted_key = _key_before_quote(parts, i, words)
            if quoted_key is None:
                return None
        pairs += len(words)
        for word in words:
            key, eq, value = word.partition("=")
            if not key:
                return None
            if eq:
                fields[key] = value
            else:
                fields[key] = True
                pairs -= 1
                bare += 1
        if quoted_key is not None:
            fields[quoted_key] = parts[i + 1]
            pairs += 1
    return Tokens(fields, pairs, bare)


def _key_before_quote(parts: list[str], i: int, words: list[str]) -> str | None:
    """The key of the quoted value after ``parts[i]`` (popped from ``words``), if valid.

    A quote may only open a value (the segment ends in ``key=``), and the closing quote
    must be followed by whitespace or the end of the line.
    """
    after = parts[i + 2]
    closed = after[:1].isspace() or (not after and i + 2 == len(parts) - 1)
    if not closed or not parts[i].endswith("="):
        return None
    key = words.pop()[:-1]
    return key if key and "=" not in key else None


def split_by_regex(line: str) -> Tokens | None:
    """The line's pairs, read token by token with a regex that understands escapes."""
    fields: dict[str, JSONValue] = {}
    pairs = bare = 0
    for key, eq, value, garbage in _TOKEN.findall(line):
        if garbage:
            return None
        if eq:
            fields[key] = _unquote(value) if value[:1] == '"' else value
            pairs += 1
        else:
            fields[key] = True
            bare += 1
    return Tokens(fields, pairs, bare)


def looks_like_logfmt(tokens: Tokens) -> bool:
    """At least two pairs, and a log record's key or more pairs than bare words."""
    if tokens.pairs < 2:
        return False
    return tokens.pairs > tokens.bare or not RECORD_KEYS.isdisjoint(tokens.fields)


def parse_logfmt(line: str, strict: bool) -> Parsed | None:
    """The record a logfmt line holds; ``strict`` (auto-detection) asks for a clear case.

    In strict mode the line must also start with a pair: that rules out prose such as
    ``Connected to db host=x port=5432`` without splitting it, and every logfmt encoder
    starts with one (``level=``, ``ts=``, ``time=``, ``at=``).
    """
    if strict:
        space = line.find(" ")
        if not 0 < line.find("=") < (space if space >= 0 else len(line)):
            return None
    tokens = split_logfmt(line)
    if tokens is None or tokens.pairs == 0:
        return None
    if strict and not looks_like_logfmt(tokens):
        return None
    return structured(tokens.fields, line, "logfmt")


def _unquote(quoted: str) -> str:
    inner = quoted[1:-1]
    if "\\" not in inner:
        return inner
    try:
        # Go's %q output (what logfmt encoders write) is JSON for all common escapes.
        return str(orjson.loads(quoted))
    except orjson.JSONDecodeError:
        return _ESCAPE.sub(_unescape, inner)


def _unescape(m: re.Match[str]) -> str:
    """One Go escape sequence; what UTF-8 cannot carry (surrogates) is kept as written."""
    code = m.group(1)
    if len(code) == 1:
        return _ESCAPES.get(code, code)
    value = int(code[1:], 16)
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        return m.group(0)
    return chr(value)
