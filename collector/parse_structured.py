"""Key/value records (a JSON object, a logfmt line) mapped to a Parsed line.

Well-known keys become ECS fields; every other key is kept, as is, in ``attributes``
(one ``flattened`` field, so arbitrary keys cannot cause a mapping explosion). A
well-known key whose value does not fit (a ``level`` of 3, a ``msg`` that is an object)
stays in ``attributes`` too: nothing a line carried is dropped.

- message: ``msg``, ``message``, ``@message``, ``log``, ``event`` (structlog),
  ``short_message`` (GELF): the first that holds a string. Without one the message is
  the whole line.
- level: ``level``, ``lvl``, ``severity``, ``log.level``, ``levelname``, ``level_name``,
  ``loglevel``, ``at`` (Heroku), or ``level`` inside a ``log`` object (ECS, nested).
- logger: ``logger``, ``logger_name``, ``loggerName``, ``log.logger``, ``name``, or
  ``logger`` inside a ``log`` object, when a string.
- trace/span ids: ``trace_id``, ``traceId``, ``trace.id``, ``traceid``, ``dd.trace_id``,
  ``otelTraceID``
  and the same for span, when a string or an integer.
- Time keys (``time``, ``ts``, ``@timestamp``, ``timestamp``) stay in ``attributes``: the
  document's ``@timestamp`` is Docker's, which is always present and always parseable.
"""

from __future__ import annotations

from collector.parse_ansi import strip_ansi
from collector.parse_level import normalise_level
from collector.parse_result import JSONValue, Parsed

_MESSAGE_KEYS = ("msg", "message", "@message", "log", "event", "short_message")
_LEVEL_KEYS = ("level", "lvl", "severity", "log.level", "levelname", "level_name", "loglevel")
_LEVEL_KEYS_LAST = ("at",)  # Heroku's `at=info`; only a level when nothing else is
_LOGGER_KEYS = ("logger", "logger_name", "loggerName", "log.logger", "name")
_TRACE_KEYS = ("trace_id", "traceId", "trace.id", "traceid", "dd.trace_id", "otelTraceID")
_SPAN_KEYS = ("span_id", "spanId", "span.id", "spanid", "dd.span_id", "otelSpanID")
KNOWN_KEYS = frozenset(
    _MESSAGE_KEYS + _LEVEL_KEYS + _LEVEL_KEYS_LAST + _LOGGER_KEYS + _TRACE_KEYS + _SPAN_KEYS
)
# A record naming one of these is a log record, whatever else it holds.
RECORD_KEYS = frozenset(_MESSAGE_KEYS + _LEVEL_KEYS + ("ts", "time", "timestamp"))


def structured(fields: dict[str, JSONValue], line: str, parser: str) -> Parsed:
    """Map ``fields`` (owned: keys are popped from it) to a Parsed line."""
    parsed = Parsed(message=line, parser=parser)
    known = KNOWN_KEYS.intersection(fields)
    if known:
        _take_message(parsed, fields, known)
        parsed.level = _take_level(fields, known)
        parsed.logger = _take_string(fields, known, _LOGGER_KEYS)
        parsed.trace_id = _take_id(fields, known, _TRACE_KEYS)
        parsed.span_id = _take_id(fields, known, _SPAN_KEYS)
        if "log" in fields:
            _take_nested_log(parsed, fields)
    parsed.attributes = fields or None
    return parsed


def _take_message(parsed: Parsed, fields: dict[str, JSONValue], known: frozenset[str]) -> None:
    message = _take_string(fields, known, _MESSAGE_KEYS)
    if message is None:
        return
    if "\x1b" in message:
        # A JSON string can carry colour codes as \u001b escapes, invisible in the raw line.
        message = strip_ansi(message)
        parsed.flags.append("ansi")
    parsed.message = message


def _take_level(fields: dict[str, JSONValue], known: frozenset[str]) -> str | None:
    for key in _LEVEL_KEYS + _LEVEL_KEYS_LAST:
        if key in known:
            level = normalise_level(fields[key])
            if level is not None:
                del fields[key]
                return level
    return None


def _take_string(
    fields: dict[str, JSONValue], known: frozenset[str], keys: tuple[str, ...]
) -> str | None:
    for key in keys:
        if key in known:
            value = fields[key]
            if isinstance(value, str):
                del fields[key]
                return value
    return None


def _take_id(
    fields: dict[str, JSONValue], known: frozenset[str], keys: tuple[str, ...]
) -> str | None:
    for key in keys:
        if key in known:
            value = fields[key]
            if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
                del fields[key]
                return str(value)
    return None


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
