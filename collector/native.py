"""The compiled hot path, when it is installed: the one place that decides.

``native/collector`` builds the extension module ``logpipe_collector_native`` (Rust,
PyO3; ``pip install ./native/collector``). Its ``decode`` reads a batch's wire lines in
order and writes the `_bulk` lines of each ``log`` line whose text a ported parser reads
(JSON objects, access logs, logfmt, plain text) itself, byte for byte what the Python
path writes; every other line (source, event and gap lines, invalid lines, shapes not
ported, terminal escapes) goes through the Python path in its place in the batch, and
so does every line that parsing rules or redaction may shape (collector/batch.py). The
Python path is used whole when the module is missing and when ``LOGPIPE_NATIVE=0``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import orjson

from collector.bulk import action_prefix
from collector.enrich import Context, _source_fields
from collector.ids import _suffix
from collector.wire import Source

ENV = "LOGPIPE_NATIVE"
MODULE_NAME = "logpipe_collector_native"
# The native path's level order for a source's places: no level first.
LEVELS = (None, "trace", "debug", "info", "warn", "error", "fatal")


def load() -> ModuleType | None:
    """The extension module, or None (missing, or ``LOGPIPE_NATIVE=0``)."""
    if os.environ.get(ENV, "").strip() == "0":
        return None
    try:
        return importlib.import_module(MODULE_NAME)
    except ImportError:
        return None


MODULE = load()


def describe(rules: bool = False) -> str:
    """The hot path, as the start-up log line names it."""
    if MODULE is None:
        if os.environ.get(ENV, "").strip() == "0":
            return "Python (LOGPIPE_NATIVE=0)"
        return f"Python ({MODULE_NAME} not installed)"
    if rules:
        return f"compiled ({MODULE_NAME}); Python for the lines parsing rules may shape"
    return f"compiled ({MODULE_NAME})"


def source_parts(
    source: Source, ctx: Context, ingested: str, needle: str | None = None
) -> tuple[Any, ...] | None:
    """What the native path needs of a ``source`` line to write its lines' documents,
    or None when orjson cannot write its fields (its lines then take the Python path).

    The ECS fields every line shares as JSON, the route of each level (data stream,
    action prefix, `event`, `data_stream`), the `_id` hash of its lines of sequence
    number 0 (collector/ids.py), and the `needle` of its parsing rule, if any: a line
    whose parsed message holds it goes to the Python path (the rule), any other line is
    made as without rules (rules/engine.py, Plan).
    """
    fields = _source_fields(source, ctx)
    try:
        head = b"".join(
            (
                b'"container":',
                orjson.dumps(fields.container),
                b',"host":',
                orjson.dumps(fields.host),
                b',"service":',
                orjson.dumps(fields.service),
            )
        )
        places = []
        for level in LEVELS:
            where = fields.place(level)
            event = {"dataset": where.dataset, "ingested": ingested}
            places.append(
                (
                    where.stream,
                    action_prefix(where.stream),
                    orjson.dumps(event),
                    orjson.dumps(where.data_stream),
                )
            )
    except TypeError:  # a lone surrogate, say: the Python path says what becomes of it
        return None
    host, container_id = source.host, source.container_id
    prefix = f"{host}\x1f{container_id}\x1f".encode("utf-8", "surrogatepass")
    return (
        source.hints.parser,
        head,
        places,
        prefix,
        _suffix(host, container_id, "stdout", 0),
        _suffix(host, container_id, "stderr", 0),
        needle,
    )
