"""Parse one log line into structured fields. Pure: no I/O, no clock.

``parse`` first strips terminal escape sequences, then applies the parser the
container's hint names, or for ``auto`` detects the format, cheapest test first:

1. a line starting with ``{``: a JSON object (see :mod:`collector.parse.structured`);
   if it does not decode, a plain line with flag ``invalid_json``;
2. an access log line (:mod:`collector.parse.access`), parser ``nginx``, ``apache`` or
   ``access`` when the line could be either's;
3. an nginx or Apache error log line (:mod:`collector.parse.errorlog`);
4. logfmt (:mod:`collector.parse.logfmt`) when the line starts with a ``key=value``
   pair and at least two pairs make up most of it or name a log record's key (``msg``,
   ``level``, ``ts``...);
5. otherwise plain text, with the level its logger wrote: its header's level field, or a
   level word near its start marked as a level (``WARN``, ``[debug]``, ``error:``), never
   a word of its prose (:mod:`collector.parse.level`); a Python exception group's traceback
   (``  + Exception Group Traceback ...``) is ``error``.

A hint that does not fit a line never loses it: the line is parsed as plain text and
flagged ``invalid_json`` (hint ``json``, also for JSON that is not an object) or
``parse_failed:<parser>``. Flags (which become the document's ``tags``): ``ansi`` when
escape sequences were removed from the message; the raw line is then kept in
``original`` if ``keep_original``. No exception escapes for any ``str``; should a bug
raise one, the line is kept as plain text with flag ``parse_error``.
"""

from __future__ import annotations

from collections.abc import Callable

from collector.parse.access import parse_access
from collector.parse.ansi import strip_ansi
from collector.parse.errorlog import looks_like_nginx_error, parse_apache_error, parse_nginx_error
from collector.parse.jsonline import parse_json
from collector.parse.level import ERROR, detect_level
from collector.parse.logfmt import parse_logfmt
from collector.parse.result import Http, JSONValue, Parsed
from collector.wire import ParserName

__all__ = ["Http", "JSONValue", "Parsed", "parse"]


def parse(message: str, parser: ParserName = "auto", keep_original: bool = False) -> Parsed:
    """Parse `message` with the named parser (``auto`` detects the format)."""
    text = strip_ansi(message)
    try:
        parsed = _PARSERS.get(parser, _auto)(text)
    except Exception:  # a parser bug must not cost the line; the flag makes it findable
        parsed = _plain(text)
        parsed.flags.append("parse_error")
    if text is not message and "ansi" not in parsed.flags:
        parsed.flags.append("ansi")
    if keep_original and "ansi" in parsed.flags:
        parsed.original = message
    return parsed


def _auto(text: str) -> Parsed:
    first = text[:1]
    if first == "{" or (first.isspace() and text.lstrip()[:1] == "{"):
        return _json(text)
    if '] "' in text:
        parsed = parse_access(text)
        if parsed is not None:
            return parsed
    if first.isdigit() and looks_like_nginx_error(text):
        parsed = parse_nginx_error(text)
        if parsed is not None:
            return parsed
    elif first == "[" and ("] [pid " in text or "] [client " in text):
        parsed = parse_apache_error(text)
        if parsed is not None:
            return parsed
    if "=" in text:
        parsed = parse_logfmt(text, strict=True)
        if parsed is not None:
            return parsed
    return _plain(text)


# Python prints an uncaught exception group's traceback indented, in a box: a level
# word near the start of a line never sees it, yet it is as much a crash as a Traceback.
_EXCEPTION_GROUP = "  + Exception Group Traceback (most recent call last):"


def _plain(text: str) -> Parsed:
    if text.startswith(_EXCEPTION_GROUP):
        return Parsed(message=text, level=ERROR)
    return Parsed(message=text, level=detect_level(text))


def _failed(text: str, flag: str) -> Parsed:
    parsed = _plain(text)
    parsed.flags.append(flag)
    return parsed


def _json(text: str) -> Parsed:
    return parse_json(text) or _failed(text, "invalid_json")


def _logfmt(text: str) -> Parsed:
    return parse_logfmt(text, strict=False) or _failed(text, "parse_failed:logfmt")


def _nginx(text: str) -> Parsed:
    return (
        parse_access(text, "nginx")
        or parse_nginx_error(text)
        or _failed(text, "parse_failed:nginx")
    )


def _apache(text: str) -> Parsed:
    return (
        parse_access(text, "apache")
        or parse_apache_error(text)
        or _failed(text, "parse_failed:apache")
    )


_PARSERS: dict[str, Callable[[str], Parsed]] = {
    "auto": _auto,
    "json": _json,
    "logfmt": _logfmt,
    "nginx": _nginx,
    "apache": _apache,
    "plain": _plain,
}
