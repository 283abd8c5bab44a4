"""Properties of parsing rules: no rule, however written, and no line raise out of them."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collector.batch import decode
from collector.enrich import Context
from collector.errors import RulesError
from collector.parse import parse
from collector.rules.config import ParseRule
from collector.rules.convert import FIELD_TYPES
from collector.rules.dissect import Dissect
from collector.rules.engine import Engine, ParsingRules
from collector.wire import Source
from tests.collector.wirelines import body, log, source

NAMES = st.sampled_from(["a", "b", "status", "time", "ts", "msg", "level", "n_1"])
LITERALS = st.text(alphabet=" -[]:;=\"'|/,.x0", min_size=1, max_size=3)
TIME_FORMATS = st.sampled_from(
    ["rfc3339", "unix", "unix_ms", "unix_ns", "%d/%b/%Y:%H:%M:%S %z", "%b %d %H:%M:%S", "%H"]
)
SOURCE = Source.model_validate_json(source())


@st.composite
def dissects(draw: st.DrawFn) -> str:
    """A dissect pattern: keys (some skipped or padded) between literals."""
    keys = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    parts = [draw(st.sampled_from(["", "<"]))]
    for key in keys:
        mod = draw(st.sampled_from(["", "?", "->"]))
        parts.append(
            "%{" + (f"?{key}" if mod == "?" else key + ("->" if mod == "->" else "")) + "}"
        )
        parts.append(draw(LITERALS))
    if draw(st.booleans()):
        parts[-1] = ""  # the last key takes the rest
    return "".join(parts)


REGEXES = st.one_of(
    st.sampled_from(
        [
            r"(?P<a>\d+)",
            r"^(?P<msg>.*)$",
            r"(?P<status>\w+)=(?P<b>[^ ]*)",
            r"(a+)+$",
            r"(?P<ts>\S+)",
        ]
    ),
    st.text(max_size=12),
)


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    """Any rule the config accepts (or not: the caller skips those)."""
    rule: dict[str, Any] = {"name": draw(st.sampled_from(["r1", "r2", "r3"]))}
    kind = draw(st.sampled_from(["dissect", "regex", "none"]))
    if kind == "dissect":
        rule["dissect"] = draw(dissects())
    elif kind == "regex":
        rule["regex"] = draw(REGEXES)
    fields = draw(st.dictionaries(NAMES, st.sampled_from(FIELD_TYPES), max_size=4))
    rule["fields"] = {
        k: {"type": "date", "format": draw(TIME_FORMATS)} if v == "date" else v
        for k, v in fields.items()
    }
    if draw(st.booleans()):
        rule["timestamp"] = {"field": draw(NAMES), "format": draw(TIME_FORMATS)}
    rule["drop"] = draw(st.booleans()) and not fields and "timestamp" not in rule
    return rule


def _engine(raw: list[dict[str, Any]]) -> Engine:
    try:
        parsed = [ParseRule.model_validate(r) for r in raw]
    except ValidationError:
        assume(False)
        raise
    assume(len({r.name for r in parsed}) == len(parsed))
    return Engine(parsed, "400d")


LINES = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda d, t: f"<{d} - [{t}] status=2OO ts={t}",
        st.text(max_size=20),
        st.sampled_from(["01/May/2025:12:00:00 +0000", "1746100800", "x", "-1e400", "2025-05-01"]),
    ),
    st.dictionaries(
        NAMES, st.one_of(st.integers(), st.floats(), st.text(max_size=10), st.none())
    ).map(json.dumps),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(st.lists(rules(), min_size=1, max_size=3), LINES, st.integers(0, 2**62))
def test_no_rule_and_no_line_raise_out_of_the_engine(
    raw: list[dict[str, Any]], line: str, ts: int
) -> None:
    """Whatever the rules and the line, apply returns, and what it made serializes."""
    engine = _engine(raw)
    parsed = parse(line)
    outcome = engine.apply(SOURCE, Context(), parsed, ts, {})
    if outcome.shaped is not None:
        orjson.dumps(outcome.shaped.fields)
        assert all(isinstance(f, str) for f in outcome.shaped.failures)
    orjson.dumps(parsed.attributes)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(st.lists(rules(), min_size=1, max_size=3), st.lists(LINES, min_size=1, max_size=5))
def test_every_line_is_a_document_or_counted_as_dropped(
    raw: list[dict[str, Any]], lines: list[str]
) -> None:
    """Rules never lose a line: each one is a document, or dropped under a rule's name."""
    ctx = Context(parsing=ParsingRules(_engine(raw)))
    wire = [log(text, 1746100800 * 10**9 + i, 0) for i, text in enumerate(lines)]
    decoded = decode(body(source(), *wire), ctx, "2025-05-01T12:00:00.000Z")
    assert len(decoded.docs) + sum(decoded.rules.dropped.values()) == len(lines)
    for doc in decoded.docs:
        orjson.dumps(doc.body)


def _reference_dissect(d: Dissect, text: str) -> dict[str, str] | None:
    """Dissect's cut, written as the plain loop of str.find it stands for."""
    if not text.startswith(d.prefix):
        return None
    pos, found = len(d.prefix), {}
    for key in d.keys:
        if not key.delimiter:
            end = after = len(text)
        else:
            end = text.find(key.delimiter, pos)
            if end < 0:
                return None
            after = end + len(key.delimiter)
            while key.padded and text.startswith(key.delimiter, after):
                after += len(key.delimiter)
        if key.name is not None:
            found[key.name] = text[pos:end]
        pos = after
    return found


@settings(max_examples=500, deadline=None)
@given(
    dissects(),
    st.lists(st.sampled_from([" ", "-", "[", "]", ":", "x", "0", "=", "\n"]), max_size=30),
)
def test_compiled_dissect_cuts_as_the_plain_loop(pattern: str, chars: list[str]) -> None:
    """The atomic-group regex gives exactly the cut of the find loop, on any text."""
    try:
        d = Dissect(pattern)
    except RulesError:
        assume(False)
        raise
    text = "".join(chars)
    assert d(text) == _reference_dissect(d, text)
    built = d.prefix + "".join(f"v{i}" + k.delimiter * 2 for i, k in enumerate(d.keys))
    assert d(built) == _reference_dissect(d, built)
