"""Key/value records (a JSON object, a logfmt line) mapped to a Parsed line.

Well-known keys become ECS fields; every other key is kept, as is, in ``attributes``
(one ``flattened`` field, so arbitrary keys cannot cause a mapping explosion). A
well-known key whose value does not fit (a ``level`` of 3, a ``msg`` that is an object)
stays in ``attributes`` too: nothing a line carried is dropped.

- message: ``msg``, ``message``, ``@message``, ``log``, ``event`` (structlog),
  ``short_message`` (GELF), ``Message`` (.NET's JSON console), ``@m`` or ``@mt``
  (Serilog's compact JSON): the first that holds a string. Without one the message is
  the whole line.
- level: ``level``, ``lvl``, ``severity``, ``log.level``, ``levelname``, ``level_name``,
  ``loglevel``, ``LogLevel`` (.NET), ``@l`` (Serilog), ``at`` (Heroku), or ``level``
  inside a ``log`` object (ECS, nested).
- logger: ``logger``, ``logger_name``, ``loggerName``, ``log.logger``, ``name``,
  ``Category`` (.NET), ``SourceContext`` (Serilog), or ``logger`` inside a ``log``
  object, when a string.
- trace/span ids: ``trace_id``, ``traceId``, ``trace.id``, ``traceid``, ``dd.trace_id``,
  ``otelTraceID`` and the same for span, when a string or an integer (made a string).
- MongoDB's ``s`` (``F``, ``E``, ``W``, ``I``, ``D1`` ... ``D5``) is the level of a record
  that also has its ``c`` (component) and ``ctx`` keys and no other level.
- Time keys (``time``, ``ts``, ``@timestamp``, ``timestamp``) stay in ``attributes``: the
  document's ``@timestamp`` is Docker's, which is always present and always parseable.
"""

from __future__ import annotations

from collections.abc import Callable

from collector.parse.ansi import strip_ansi
from collector.parse.level import DEBUG, ERROR, FATAL, INFO, WARN, normalise_level
from collector.parse.result import JSONValue, Parsed

# Serilog's template `@mt` comes last: its rendered `@m` is the better message.
_MESSAGE_KEYS = (
    "msg", "message", "@message", "log", "event", "short_message", "Message", "@m", "@mt",
)  # fmt: skip
# Heroku's `at=info` comes last: it is a level only when no other key names one.
_LEVEL_KEYS = (
    "level", "lvl", "severity", "log.level", "levelname", "level_name", "loglevel", "LogLevel",
    "@l", "at",
)  # fmt: skip
_LOGGER_KEYS = (
    "logger", "logger_name", "loggerName", "log.logger", "name", "Category", "SourceContext",
)  # fmt: skip
_TRACE_KEYS = ("trace_id", "traceId", "trace.id", "traceid", "dd.trace_id", "otelTraceID")
_SPAN_KEYS = ("span_id", "spanId", "span.id", "spanid", "dd.span_id", "otelSpanID")
# Parsed's field names; within each tuple the first key whose value fits wins.
_ROLES = {
    "message": _MESSAGE_KEYS,
    "level": _LEVEL_KEYS,
    "logger": _LOGGER_KEYS,
    "trace_id": _TRACE_KEYS,
    "span_id": _SPAN_KEYS,
}
_ROLE_OF = {key: (role, rank) for role, keys in _ROLES.items() for rank, key in enumerate(keys)}
KNOWN_KEYS = frozenset(_ROLE_OF)
# A record naming one of these is a log record, whatever else it holds.
RECORD_KEYS = frozenset(_MESSAGE_KEYS + _LEVEL_KEYS + ("ts", "time", "timestamp"))


def _string(value: JSONValue) -> str | None:
    return value if isinstance(value, str) else None


def _identifier(value: JSONValue) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # Datadog's numeric ids; the field is a keyword
    return None


_CONVERT: dict[str, Callable[[JSONValue], str | None]] = {
    "message": _string,
    "level": normalise_level,
    "logger": _string,
    "trace_id": _identifier,
    "span_id": _identifier,
}


def structured(fields: dict[str, JSONValue], line: str, parser: str) -> Parsed:
    """Map ``fields`` (owned: keys are popped from it) to a Parsed line."""
    parsed = Parsed(message=line, parser=parser)
    known = KNOWN_KEYS.intersection(fields)
    if known:
        # One pass over the few well-known keys present, not over every alias.
        chosen: dict[str, tuple[int, str, str]] = {}
        for key in known:
            role, rank = _ROLE_OF[key]
            if role in chosen and chosen[role][0] < rank:
                continue
            value = _CONVERT[role](fields[key])
            if value is not None:
                chosen[role] = (rank, key, value)
        for role, (_, key, value) in chosen.items():
            del fields[key]
            setattr(parsed, role, value)
        if "\x1b" in parsed.message and "message" in chosen:
            # A JSON string can carry colour codes as \u001b escapes, invisible in the raw line.
            parsed.message = strip_ansi(parsed.message)
            parsed.flags.append("ansi")
        if "log" in fields:
            _take_nested_log(parsed, fields)
    if parsed.level is None and "ctx" in fields and "c" in fields:
        _take_mongodb_severity(parsed, fields)
    parsed.attributes = fields or None
    return parsed


# MongoDB's severities: F, E, W, I, and D1 .. D5 (D in older releases).
_MONGODB = {"F": FATAL, "E": ERROR, "W": WARN, "I": INFO, "D": DEBUG}
_MONGODB.update({f"D{n}": DEBUG for n in range(1, 6)})


def _take_mongodb_severity(parsed: Parsed, fields: dict[str, JSONValue]) -> None:
    """MongoDB's ``{"s": "W", "c": "NETWORK", "ctx": "listener", ...}``: ``s`` is the level."""
    severity = fields.get("s")
    level = _MONGODB.get(severity) if isinstance(severity, str) else None
    if level is not None:
        parsed.level = level
        del fields["s"]


def _take_nested_log(parsed: Parsed, fields: dict[str, JSONValue]) -> None:
    """ECS's nested form: ``{"log": {"level": "info", "logger": "app"}}``."""
    log = fields["log"]
    if not isinstance(log, dict):
        return
    if parsed.level is None and "level" in log:
        parsed.level = normalise_level(log["level"])
        if parsed.level is not None:
            del log["level"]
    if parsed.logger is None and isinstance(log.get("logger"), str):
        parsed.logger = str(log.pop("logger"))
    if not log:
        del fields["log"]
