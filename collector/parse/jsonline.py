"""JSON log records (zap, logrus, bunyan, pino, structlog, python-json-logger, ECS)."""

from __future__ import annotations

from typing import cast

import orjson

from collector.parse.result import JSONValue, Parsed
from collector.parse.structured import structured


def parse_json(line: str) -> Parsed | None:
    """The record a JSON-object line holds, or None if the line is not a JSON object."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:  # also raised for lone surrogates and deep nesting
        return None
    if not isinstance(value, dict):
        return None
    return structured(cast(dict[str, JSONValue], value), line, "json")
