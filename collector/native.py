"""The compiled hot path, when it is installed: the one place that decides.

``native/collector`` builds the extension module ``logpipe_collector_native`` (Rust,
PyO3; ``pip install ./native/collector``). Its ``Batch`` reads a batch's wire lines in
order, in steps (collector/batch.py, ``decoding``), and writes the `_bulk` lines of each
``log`` line whose text a ported parser reads
(JSON objects, access logs, logfmt, plain text) itself, byte for byte what the Python
path writes; every other line (source, event and gap lines, invalid lines, shapes not
ported, terminal escapes) goes through the Python path in its place in the batch, and
so does every line that parsing rules or redaction may shape (collector/batch.py),
except where written-out dissect rules decide for a container (``Plan.fasts``: one
rule or several, in order): the module tries them as ``Engine.first_fit`` does and
applies the first that fits itself, as ``fitted_document`` does (its ``long``, ``ip``,
``keyword``, ``double`` and ``boolean`` fields converted there, its ``date`` fields and
time read by the rule's own Python readers), and leaves to the Python path what the
rule's written-out way cannot decide. A ``log`` line whose message is longer than the
collector keeps whole (``LOGPIPE_MAX_LINE_BYTES``) goes to the Python path too, which
cuts it. The Python
path is used whole when the module is missing or built from older sources (without
``Batch``), and when ``LOGPIPE_NATIVE=0`` (or ``false``, ``no``, ``off``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, TypeVar

import orjson

from collector import envnames
from collector.bulk import action_prefix
from collector.enrich import NATIVE_MODULE, Context, _Place, _source_fields
from collector.errors import ConfigError
from collector.ids import _suffix
from collector.routing import Route, route
from collector.rules.compiled import CompiledRule
from collector.rules.dissect import Dissect
from collector.shape import flat
from collector.wire import MAX_NS, Source

_T = TypeVar("_T")

ENV = envnames.NATIVE
MODULE_NAME = NATIVE_MODULE
# The native path's level order for a source's places: no level first.
LEVELS = (None, "trace", "debug", "info", "warn", "error", "fatal")


def switched_off() -> bool:
    """Whether ``LOGPIPE_NATIVE`` asks for the Python path."""
    return envnames.native_off()


def check_setting() -> None:
    """Refuse a ``LOGPIPE_NATIVE`` that is no boolean (`false` read as on would mislead)."""
    problem = envnames.native_problem(envnames.native_setting()[0])
    if problem is not None:
        raise ConfigError(problem)


def load() -> ModuleType | None:
    """The extension module, or None (missing, built from older sources, or
    ``LOGPIPE_NATIVE=0``)."""
    return envnames.load_native(MODULE_NAME, current)


# What this collector needs of the module beyond ``Batch`` (its ``FEATURES``): it hands
# a line longer than ``Context.max_line_bytes`` to the Python path, which cuts it; and a
# line with a parsed key longer than `attributes` indexes (collector.attributes
# .LONGEST_KEY), which the Python path keeps unindexed; and it hands each document the
# body and its line's offset, the text read again by ``wire_message`` (enrich.EncodedDoc);
# and a line with a parsed key that holds NUL (collector.keys.RESERVED), which the
# Python path keeps unindexed too.
FEATURES = ("max_line_bytes", "long_keys", "wire_message", "nul_keys")


def current(module: ModuleType) -> bool:
    """Whether `module` has what this collector calls (a build of older sources lacks
    ``Batch``, the decoding of a body in steps, or one of ``FEATURES``)."""
    features = getattr(module, "FEATURES", ())
    return hasattr(module, "Batch") and all(name in features for name in FEATURES)


MODULE = load()


def describe(rules: bool = False) -> str:
    """The hot path, as the start-up log line names it."""
    if MODULE is None:
        if switched_off():
            return f"Python ({ENV}={envnames.native_setting()[0].strip()})"
        if _outdated():
            return f"Python ({MODULE_NAME} is older than this collector: build it again)"
        return f"Python ({MODULE_NAME} not installed)"
    if rules:
        return (
            f"compiled ({MODULE_NAME}), with a container's written-out dissect rules; "
            "Python for the other lines parsing rules may shape"
        )
    return f"compiled ({MODULE_NAME})"


def _outdated() -> bool:
    """Whether the module is installed but built from older sources."""
    try:
        return not current(importlib.import_module(MODULE_NAME))
    except ImportError:
        return False


def source_parts(
    raw: bytes,
    source: Source,
    ctx: Context,
    ingested: str,
    needle: str | None = None,
    max_skew_ns: int = 0,
    rules: Sequence[CompiledRule] = (),
) -> tuple[Any, ...] | None:
    """What the native path needs of a ``source`` line to write its lines' documents,
    or None when orjson cannot write its fields (its lines then take the Python path).

    The ECS fields every line shares as JSON, the route of each level (data stream,
    action prefix, `event`, `data_stream`), the `_id` hash of its lines of sequence
    number 0 (collector/ids.py), the `needle` of its parsing rule, if any (a line whose
    parsed message lacks it is made as without rules, one that holds it goes to the
    Python path: rules/engine.py, Plan), the rules the native path applies itself, and
    `AttributeFilter.indexes` of the context where `attributes` does not index every
    parsed key (None where it does; the rules' lines then go to the Python path).

    `rules` are the written-out rules that decide every line, in order (`Plan.fasts`;
    the needle is then the one rule's, or "" for several): a list of each rule's
    (needle, `rule_parts`), or None when one of them cannot be applied natively (the
    lines that hold the needle then go to the Python path).

    What does not depend on the batch is kept by `raw`, the source line's bytes but its
    `src` number, for the next batch that sends the same line (a shipper sends each
    container's line in every batch that holds its lines, numbered in the order the
    batch meets them): only `event.ingested` differs from one batch to the next. It is
    kept with the context, retention rules and parsing rules it was made with, and used
    only while they are the ones in force (a reload applies at once).
    """
    retention = ctx.retention.rules
    # Only a key holds `"src":` and a number in a valid source line (labels are text).
    line = raw.replace(b'"src":%d,' % source.src, b"", 1)
    key = (line, id(ctx), id(retention), needle, max_skew_ns, *map(id, rules))
    kept = _KEPT.get(key)
    if kept is None:
        if len(_KEPT) >= KEPT_SOURCES:
            _KEPT.clear()
        # The entry holds what its key names by id(), so no other object takes one of
        # those ids while the entry is kept.
        template = _template(source, ctx, needle, max_skew_ns, rules)
        kept = _KEPT[key] = (ctx, retention, tuple(rules), template)
    return _with_ingested(kept[3], ingested)


# A source line's parts as _template makes them, by its bytes but `src` and what they
# were made with (source_parts); cleared when full: a collector sees a few lines per
# container.
_KEPT: dict[tuple[Any, ...], tuple[Context, Any, tuple[CompiledRule, ...], Any]] = {}
KEPT_SOURCES = 4096


def _with_ingested(template: tuple[Any, ...] | None, ingested: str) -> tuple[Any, ...] | None:
    """source_parts of a template: each place's `event` completed with `ingested`."""
    if template is None:
        return None
    parser, head, places, *rest = template
    at = orjson.dumps(ingested)
    return (
        parser,
        head,
        [
            (stream, prefix, event + at, data_stream)
            for stream, prefix, event, data_stream in places
        ],
        *rest,
    )


def _template(
    source: Source,
    ctx: Context,
    needle: str | None,
    max_skew_ns: int,
    rules: Sequence[CompiledRule],
) -> tuple[Any, ...] | None:
    """source_parts but for `event.ingested`: each place's `event` members end with
    `"event.ingested":`, for _with_ingested to complete."""
    fields = _source_fields(source, ctx)
    try:
        # Flat (shape.py), each without its braces: the document's bytes go on from it.
        head = _members(
            {"container": fields.container, "host": fields.host, "service": fields.service}
        )
    except TypeError:  # a lone surrogate, say: the Python path says what becomes of it
        return None
    retention = ctx.retention.rules
    if any(rule.match.level is not None for rule in retention.config.rules):
        places = [_place(route(source, ctx, level)) for level in LEVELS]
    else:  # every level is routed alike: one route, not seven
        places = [_place(route(source, ctx))] * len(LEVELS)
    host, container_id = source.host, source.container_id
    prefix = f"{host}\x1f{container_id}\x1f".encode("utf-8", "surrogatepass")
    attributes = ctx.attributes
    indexes = None if attributes.every else attributes.indexes
    # The keys a rule's pattern takes, where not every key is indexed: the Python path's.
    ruled = rules_parts(rules, max_skew_ns) if rules and indexes is None else None
    return (
        source.hints.parser,
        head,
        places,
        prefix,
        _suffix(host, container_id, "stdout", 0),
        _suffix(host, container_id, "stderr", 0),
        needle,
        ruled,
        indexes,
    )


def _place(where: Route) -> tuple[str, bytes, bytes, bytes]:
    """A route's data stream, action prefix, `event` members (up to `"event.ingested":`)
    and `data_stream` members: made once per route, which thousands of containers share."""
    found = _PLACES.get(where)
    if found is None:
        if len(_PLACES) >= KEPT_SOURCES:
            _PLACES.clear()
        place = _Place(where)  # the Python path's fields of the route, encoded
        event = _members({"event": {"dataset": place.dataset}}) + b',"event.ingested":'
        found = _PLACES[where] = (
            place.stream,
            action_prefix(place.stream),
            event,
            _members({"data_stream": place.data_stream}),
        )
    return found


# A route's place as _place makes it: the places of a source line not kept yet (a new
# container) cost a lookup each instead of two JSON encodings.
_PLACES: dict[Route, tuple[str, bytes, bytes, bytes]] = {}


def _members(nested_fields: dict[str, Any]) -> bytes:
    """`"a.b":1,"a.c":2` of {"a": {"b": 1, "c": 2}}: flat JSON members, no braces."""
    return orjson.dumps(flat(nested_fields))[1:-1]


def rules_parts(
    rules: Sequence[CompiledRule], max_skew_ns: int
) -> list[tuple[str, tuple[Any, ...]]] | None:
    """Written-out dissect rules, in order, as the native path tries them: each rule's
    needle and `rule_parts`; None when one of them cannot be applied there exactly."""
    parts = []
    for rule in rules:
        made = rule_parts(rule, max_skew_ns)
        if made is None:
            return None
        parts.append((rule.needle, made))
    return parts


# The kinds of typed fields the native path converts as the Python converters do:
# `long` and `ip` as the written-out rule's first tests, `double` of the text `_DECIMAL`
# reads without surrounding whitespace (correctly rounded, as float()), `boolean` of the
# eight words in ASCII without surrounding whitespace (anything else is SLOW: the line
# goes to the Python path), `keyword` of text as the text itself, and `date` through
# the field's own converter (called from there).
_PORTED = frozenset({"long", "ip", "keyword", "double", "boolean", "date"})


def rule_parts(rule: CompiledRule, max_skew_ns: int) -> tuple[Any, ...] | None:
    """A written-out dissect rule (collector/rules/fused.py) as the native path applies
    it, or None when it cannot be applied there exactly (its lines then take the Python
    path): a typed field of a kind not ported.

    Its name, the pattern's prefix and steps (key name or None, literal, padding), the
    typed fields it cuts in the rule's order (name, kind; a date's with a callable
    `(text, docker_ns) -> text or None`, its converter, and whether a text alone
    decides its date: `TimeParser.cacheable`, when the native path keeps text -> date
    per container), the key of its time, a callable `(text, docker_ns) -> ns or None`
    reading that time (the rule's TimeParser: None where it raises ValueError),
    whether a time's text alone decides it (the native path then keeps text -> ns per
    container), and the allowed skew.
    """
    dissect = rule.extract
    if rule.fast is None or not isinstance(dissect, Dissect):
        return None
    keys = set(dissect.names)
    typed: list[tuple[Any, ...]] = []
    for name, convert in rule.converters:
        if name not in keys:  # only in a line's own attributes: never a native line's
            continue
        kind = rule.kinds[name]
        if kind not in _PORTED:
            return None
        if kind == "date":
            cacheable = rule.date_parsers[name].cacheable
            typed.append((name, kind, _or_none(convert), cacheable))
        else:
            typed.append((name, kind))
    parser = rule.time_parser
    read = _or_none(parser.parse) if rule.time_field is not None and parser is not None else None
    return (
        rule.name,
        dissect.prefix,
        [(name, literal, padded) for name, literal, _size, padded in dissect.steps],
        typed,
        rule.time_field if read is not None else None,
        read,
        parser is not None and parser.cacheable,
        max(-1, min(max_skew_ns, MAX_NS)),  # the native path's check is exact in 64 bits
    )


def _or_none(read: Callable[[str, int], _T]) -> Callable[[str, int], _T | None]:
    """`read` of a text cut from a line (a date field's converter, a time parser's
    parse), None where the text is not what it reads (ValueError)."""

    def read_or_none(text: str, docker_ns: int) -> _T | None:
        try:
            return read(text, docker_ns)
        except ValueError:
            return None

    return read_or_none
