"""logfmt records (Go kit, logrus text, log15, Heroku router): ``key=value key2="a b"``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from collector.parse_result import JSONValue, Parsed
from collector.parse_structured import RECORD_KEYS, structured

# One token: a key with an optional `=value` (quoted with escapes, or bare), standing
# alone; anything else (a stray quote, `a=b"c`) is caught by the last group as garbage.
_TOKEN = re.compile(
    r'([^\s="]+)(?:(=)("[^"\\]*(?:\\.[^"\\]*)*"|[^\s"]*))?(?=\s|\Z)|(\S+)', re.DOTALL
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)


@dataclass(slots=True)
class Tokens:
    """A line split into logfmt pairs, with counts to judge whether it is logfmt."""

    fields: dict[str, JSONValue]
    pairs: int
    bare: int


def split_logfmt(line: str) -> Tokens | None:
    """The line's pairs (bare keys are ``True``), or None if some token is not logfmt."""
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
    """The record a logfmt line holds; ``strict`` (auto-detection) asks for a clear case."""
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
