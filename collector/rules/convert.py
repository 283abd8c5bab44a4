"""Typed fields: a parsed value made a long, double, boolean, ip, keyword or date. Pure.

Each converter gives what Elasticsearch takes for the field's mapped type without a
doubt (a value it could refuse would cost the whole document a trip to the dead
letters), or raises ValueError saying why the value is not of that type; the rule then
keeps the value as text in ``attributes`` and tags the document.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import orjson

from collector.parse import JSONValue
from collector.rules.timestamp import TimeParser

FieldType = Literal["long", "double", "boolean", "ip", "keyword", "date"]
FIELD_TYPES: tuple[FieldType, ...] = ("long", "double", "boolean", "ip", "keyword", "date")
Typed = str | int | float | bool

_INTEGER = re.compile(r"[+-]?0*[0-9]{1,19}", re.ASCII)  # leading zeros do not count
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
# An octet 0-255 without leading zeros: ipaddress's own canonical IPv4, in one match.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}", re.ASCII)
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
KEYWORD_MAX = 1024  # the mapping's ignore_above: longer text is kept, not indexed


def _short(value: JSONValue) -> str:
    """The value as the line held it (JSON for what is no text: null, true, {"a":1}),
    quoted, cut at 40 characters."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return repr(text[:40] + "…") if len(text) > 40 else repr(text)


def to_long(value: JSONValue, _docker_ns: int = 0) -> int:
    """A whole number that fits in 64 bits."""
    # The usual case: ASCII digits, at most 18 of them, which always fit.
    if type(value) is str and len(value) < 19 and value.isdigit() and value.isascii():
        return int(value)
    if isinstance(value, bool):
        raise ValueError(f"{_short(value)} is not a long")
    number = value
    whole = isinstance(value, float) and value.is_integer()
    if whole or (isinstance(value, str) and _INTEGER.fullmatch(value.strip()) is not None):
        number = int(value)  # type: ignore[arg-type]
    if isinstance(number, int) and _LONG_MIN <= number <= _LONG_MAX:
        return number
    raise ValueError(f"{_short(value)} is not a long (a whole number in 64 bits)")


def to_double(value: JSONValue, _docker_ns: int = 0) -> float:
    """A finite number."""
    number: JSONValue = value
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()) is not None:
        number = float(value)
    if isinstance(number, int | float) and not isinstance(number, bool):
        finite = float(number)
        if math.isfinite(finite):
            return finite
    raise ValueError(f"{_short(value)} is not a double (a finite number)")


def to_boolean(value: JSONValue, _docker_ns: int = 0) -> bool:
    """true/false, yes/no, on/off, 1/0 (any case)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{_short(value)} is not a boolean (true/false, yes/no, on/off, 1/0)")


def to_ip(value: JSONValue, _docker_ns: int = 0) -> str:
    """An IPv4 or IPv6 address, written the canonical way."""
    if isinstance(value, str) and _IPV4.fullmatch(value) is not None:
        # The usual case, without ipaddress's 2 µs: written as ipaddress would write it.
        return value
    if isinstance(value, str) and "%" not in value:
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            pass
    raise ValueError(f"{_short(value)} is not an IP address")


def to_keyword(value: JSONValue, _docker_ns: int = 0) -> str:
    """Text, or a number or boolean written as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"{_short(value)} is not a keyword (an object or list, not text)")


def date_converter(parser: TimeParser) -> Callable[[JSONValue, int], Typed]:
    """A date field's converter: the time as RFC 3339 UTC, to the millisecond."""

    def to_date(value: JSONValue, docker_ns: int) -> Typed:
        ns = parser.parse(value, docker_ns)
        moment = datetime.fromtimestamp(ns // 10**9, UTC)
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{ns % 10**9 // 10**6:03d}Z"

    return to_date


# Each takes Docker's time as a date's converter does (and ignores it): called directly,
# without a wrapper between the rule and the conversion.
_SIMPLE: dict[str, Callable[[JSONValue, int], Typed]] = {
    "long": to_long,
    "double": to_double,
    "boolean": to_boolean,
    "ip": to_ip,
    "keyword": to_keyword,
}


def converter(kind: FieldType, parser: TimeParser | None) -> Callable[[JSONValue, int], Typed]:
    """The converter of a field of type `kind` (a date's reads its format with `parser`)."""
    if kind == "date":
        return date_converter(parser or TimeParser())
    return _SIMPLE[kind]
