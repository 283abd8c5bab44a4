"""The rules' fast paths give exactly what the plain ways of doing the same work give."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

import pytest
import re2
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collector import native
from collector.batch import decode
from collector.enrich import Context, Doc, format_ns, log_document
from collector.parse import JSONValue, Parsed, parse
from collector.rules.compiled import Shaped
from collector.rules.config import ParseRule
from collector.rules.convert import to_ip, to_long
from collector.rules.dissect import Dissect
from collector.rules.document import Tallies
from collector.rules.engine import Engine, ParsingRules
from collector.rules.fused import SLOW
from collector.rules.masking import Masking, RedactConfig
from collector.rules.redact import BUILTIN_NAMES, Redactor, RedactSpec
from collector.rules.regex import Regex
from collector.wire import Log, LogFields, Source, read_line
from tests.collector.test_rules_properties import LINES as LINES_OF_RULES
from tests.collector.test_rules_properties import rules
from tests.collector.wirelines import body, log, source

INGESTED = "2025-05-01T12:00:00.000Z"

CUSTOM = [RedactSpec(name="session", pattern=r"session=(?P<secret>[0-9a-f]+)")]
PIECES = st.sampled_from(
    [
        "password=hunter2",
        "a@b.io",
        "4111 1111 1111 1111",
        "session=ab12",
        "Bearer abcdefgh1",
        "redis://u:pw@h",
        "info",
        "GET",
        " ",
        "x" * 130,
    ]
)
TEXTS = st.one_of(st.text(max_size=40), st.lists(PIECES, max_size=4).map("".join))


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXTS, max_size=12))
def test_masking_remembering_clean_texts_masks_and_counts_as_the_redactor(
    texts: list[str],
) -> None:
    """A Masking that skips texts it found clean masks and counts each as a fresh search."""
    masking = Masking(BUILTIN_NAMES, CUSTOM)
    reference = Redactor(BUILTIN_NAMES, CUSTOM)
    for text in [*texts, *texts]:  # each seen again, once remembered
        counts: dict[str, int] = {}
        masked, found = reference.redact(text)
        assert masking.text(text, counts) == masked
        assert counts == found


@settings(max_examples=100, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=6))
def test_masking_a_parsed_line_skips_only_remembered_clean_values(texts: list[str]) -> None:
    """Attributes (at any depth) are masked and counted alike, remembered clean or not."""
    masking = Masking(BUILTIN_NAMES, CUSTOM)
    reference = Redactor(BUILTIN_NAMES, CUSTOM)
    for text in texts:
        masking.text(text, {})  # the clean ones are remembered
    attributes: dict[str, JSONValue] = {f"k{i}": t for i, t in enumerate(texts)}
    attributes["deep"] = [{"v": texts[0]}, 3]
    parsed = Parsed(texts[-1], attributes=attributes)
    counts: dict[str, int] = {}
    masking.parsed(parsed, counts)
    expected: dict[str, int] = {}
    for text in [texts[-1], *texts, texts[0]]:
        for name, n in reference.redact(text)[1].items():
            expected[name] = expected.get(name, 0) + n
    assert parsed.attributes is not None
    assert parsed.attributes["deep"] == [{"v": reference.redact(texts[0])[0]}, 3]
    assert [parsed.attributes[f"k{i}"] for i in range(len(texts))] == [
        reference.redact(t)[0] for t in texts
    ]
    assert (parsed.message, counts) == (reference.redact(texts[-1])[0], expected)


def reference_dissect(pattern: str) -> re.Pattern[str]:
    """Dissect as one regular expression of atomic groups (the cut, written another way)."""
    cut = Dissect(pattern)
    out = [re.escape(cut.prefix)]
    for key in cut.keys:
        opening = f"(?P<{key.name}>" if key.name is not None else "(?:"
        if not key.delimiter:
            out.append(opening + ".*)")
            continue
        literal = re.escape(key.delimiter)
        out.append(f"(?>{opening}.*?)" + (f"(?:{literal})+)" if key.padded else f"{literal})"))
    return re.compile("".join(out), re.DOTALL)


LITERALS = st.text(alphabet=' -[]:"|x0\n', min_size=1, max_size=3)


@st.composite
def dissect_cases(draw: st.DrawFn) -> tuple[str, str]:
    """A dissect pattern, and a text of its literals and a few other characters."""
    parts = [draw(st.sampled_from(["", "<", "- "]))]
    for n in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["k", "?k", "k->", ""]))
        parts.append("%{" + kind.replace("k", f"k{n}") + "}")
        parts.append(draw(LITERALS))
    if draw(st.booleans()):
        parts[-1] = ""  # the last key takes the rest
    bits = st.sampled_from([*parts[::2], "a", "b c", "-", " ", "\n", "é"])
    if draw(st.booleans()):  # any text
        return "".join(parts), "".join(draw(st.lists(bits, max_size=14)))
    # A text of the pattern's shape, values made of the same bits, literals repeated.
    text = [parts[0]]
    for literal in parts[2::2]:
        text.append("".join(draw(st.lists(bits, max_size=3))))
        text.append(literal * draw(st.integers(1, 3)))
    return "".join(parts), "".join(text) + draw(st.sampled_from(["", "x", parts[-1]]))


@settings(max_examples=500, deadline=None)
@given(dissect_cases())
def test_dissect_cuts_as_atomic_groups_do(case: tuple[str, str]) -> None:
    """The str.find chain cuts every text exactly as the atomic-group expression does."""
    pattern, text = case
    found = reference_dissect(pattern).match(text)
    assert Dissect(pattern)(text) == (None if found is None else found.groupdict())


@settings(max_examples=500, deadline=None)
@given(dissect_cases())
def test_written_out_cut_cuts_as_the_step_loop(case: tuple[str, str]) -> None:
    """`Dissect.cut` (the pattern as straight-line code) equals the loop over its steps."""
    pattern, text = case
    dissect = Dissect(pattern)
    assert dissect.cut(text) == dissect(text)
    cut = dissect.cut(text)
    assert cut is None or list(cut) == list(dissect(text) or {})  # the keys' order too


def test_written_out_cut_never_runs_the_literals_as_code() -> None:
    """Quotes, braces and backslashes in literals are text the cut looks for, nothing more."""
    pattern = '%{a}""" + \'{}\' %{b}\\n%{c}'
    dissect = Dissect(pattern)
    text = '1""" + \'{}\' 2\\n3'
    assert dissect.cut(text) == dissect(text) == {"a": "1", "b": "2", "c": "3"}


def reference_long(value: JSONValue) -> int:
    """A long read the long way: the whole text checked, then its range."""
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,19}", value.strip(), re.ASCII):
        number = int(value)
        if -(2**63) <= number < 2**63:
            return number
    raise ValueError("not a long")


def reference_ip(value: str) -> str:
    """An address read by ipaddress alone (which refuses IPv4 octets with leading zeros)."""
    if "%" in value:
        raise ValueError("not an IP")
    return str(ipaddress.ip_address(value.strip()))


def _same(fast: Callable[[str], object], slow: Callable[[str], object], value: str) -> None:
    """`fast` and `slow` on `value` both give the same, or both refuse it."""
    try:
        expected = slow(value)
    except ValueError:
        with pytest.raises(ValueError, match="is not"):
            fast(value)
        return
    assert fast(value) == expected


NUMBERS = st.one_of(
    st.integers(-(2**64), 2**64).map(str),
    st.integers(2**59, 2**64).map(str),  # around the 64-bit limit, 18 to 20 digits
    st.text(alphabet="0123456789+- \u0663\u00b2", max_size=21),
)
OCTETS = st.one_of(
    st.integers(0, 300).map(str),
    st.sampled_from(["0", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256"]),
    st.integers(250, 260).map(str),
    st.sampled_from(["00", "01", "010", "", "a"]),
)
ADDRESSES = st.one_of(
    st.lists(OCTETS, min_size=3, max_size=5).map(".".join),
    st.ip_addresses().map(str),
    st.text(alphabet="0123456789.:abcdef %", max_size=20),
)


@settings(max_examples=500, deadline=None)
@given(NUMBERS)
@example("9223372036854775807")
@example("9223372036854775808")
@example("0000000000000000001")
def test_long_fast_path_reads_as_the_full_check(value: str) -> None:
    """A long from text is what the full check gives, digits fast path or not."""
    _same(to_long, reference_long, value)


@settings(max_examples=500, deadline=None)
@given(ADDRESSES)
@example("255.255.255.255")
@example("1.2.3.256")
@example("260.0.0.1")
def test_ip_fast_path_reads_as_ipaddress(value: str) -> None:
    """An IP from text is what ipaddress gives, dotted-quad fast path or not."""
    _same(to_ip, reference_ip, value)


def test_redaction_alone_still_tags_a_label_naming_no_rule() -> None:
    """With no rules, a line skips the rule choice, unless its container's label names one."""
    engine = Engine([], "1d", RedactConfig(builtins=["password_pair"]))
    ctx = Context(parsing=ParsingRules(engine))
    lines = [log("password=x", 1_700_000_000 * 10**9)]
    plain = decode(body(source(), *lines), ctx, "2025-05-01T12:00:00.000Z").docs[0].body
    labelled = source(labels={"logpipe.rule": "nope"}, container_id="e" * 64)
    named = decode(body(labelled, *lines), ctx, "2025-05-01T12:00:00.000Z").docs[0].body
    assert plain["message"] == named["message"] == "password=[REDACTED]"
    assert "rule_failure" not in plain["logpipe"]
    assert named["logpipe"]["rule_failure"] == [
        "label logpipe.rule='nope' names no rule (rules: none)"
    ]


PATTERNS = st.sampled_from(
    [
        r"(?P<a>é+)|(?P<b>x)",
        r"^(?P<w>\w+)=(?P<v>[^ ]*)",
        r"(?P<all>.*)",
        r"(?P<e>)",
        r"(?P<n>\d+)(?P<rest>.)?$",
        r"(?P<c>\C)",
        r"(?i)(?P<k>key)\s*(?P<v>\S*)",
    ]
)
BITS = ["a", "b", " ", "x", "=", "1", "é", "€", "😀", "\n", "\t", "\ud800", "KEY "]
LINES = st.lists(st.sampled_from(BITS), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(PATTERNS, min_size=1, max_size=3), LINES)
def test_regex_on_shared_utf8_finds_what_the_re2_wrapper_finds(
    patterns: list[str], line: str
) -> None:
    """Patterns tried in turn on one line take the groups the re2 wrapper's search takes."""
    for pattern in patterns:
        try:
            found = re2.compile(pattern).search(line)
        except UnicodeEncodeError:
            found = re2.compile(pattern).search(line.encode("utf-8", "replace").decode())
        expected = None if found is None else found.groupdict()
        if expected is not None:
            expected = {k: v for k, v in expected.items() if v is not None}
        assert Regex(pattern)(line) == expected


MATCHES = st.sampled_from(
    [{}, {"service": "web"}, {"service": "db"}, {"level": "error"}, {"level": ["info", "warn"]}]
)
# Containers: of service web, of service db, and one whose label names a rule.
CONTAINERS = [
    {},
    {"labels": {"com.docker.compose.service": "db"}, "container_id": "d" * 64},
    {"labels": {"logpipe.rule": "r2"}, "container_id": "e" * 64},
]


def general_document(
    engine: Engine,
    tallies: Tallies,
    source: Source,
    line: Log | LogFields,
    ctx: Context,
    keep_original: bool,
    bad_utf8: bool,
) -> Doc | None:
    """A line's document the long way: rules chosen for the line, cut by the step loop."""
    text = line.message
    if engine.masks:
        text = engine.masking.text(text, tallies.redactions)
    parsed = parse(text, source.hints.parser, keep_original)
    if engine.masks:
        engine.masking.parsed(parsed, tallies.redactions)
    where = (source.hints.dataset or ctx.dataset, source.hints.namespace or ctx.namespace)
    choice = engine._compute(source, where, parsed.level)
    shaped: Shaped | None = None
    for rule in choice.rules:
        extract = rule.extract
        taken = extract(parsed.message) if extract is not None else {}
        if taken is None:
            continue
        if rule.drop:
            return None
        shaped = rule.shape(parsed, taken, line.ts, engine.max_skew_ns, tallies.redactions)
        break
    else:
        if choice.problem is not None:
            shaped = Shaped("", failures=[choice.problem])
        elif choice.named:
            name = choice.rules[0].name
            shaped = Shaped(name, failures=[f"the pattern of rule '{name}' does not fit"])
    if bad_utf8:
        parsed.flags.append("invalid_utf8")
    doc = log_document(source, line, parsed, ctx, INGESTED)
    if shaped is not None:
        body = doc.body
        logpipe = dict(body["logpipe"])
        if shaped.rule:
            logpipe["rule"] = shaped.rule
        if shaped.failures:
            logpipe["rule_failure"] = shaped.failures
            body["tags"] = [*body.get("tags", ()), "rule_failure"]
        body["logpipe"] = logpipe
        if shaped.fields:
            body["fields"] = shaped.fields
        if shaped.timestamp is not None:
            body["event"] = {**body["event"], "created": body["@timestamp"]}
            body["@timestamp"] = format_ns(shaped.timestamp)
        masking = engine.by_name.get(shaped.rule)
        if masking is not None and masking.masks:
            text = masking.masking.text(text, {})
    doc.original = text
    return doc


def _general_path(engine: Engine, wire: bytes, keep_original: bool) -> list[Doc | None]:
    """Each log line of `wire` through `ruled_document` with no plan: the rules' whole way.

    The engine's choice is made per line (`Engine.apply`), the pattern is the loop over
    its steps and a rule shapes the line its general way.
    """
    sources: dict[int, Source] = {}
    ctx = Context(parsing=ParsingRules(engine))
    out: list[Doc | None] = []
    for raw in wire.splitlines():
        line, bad_utf8 = read_line(raw)
        if isinstance(line, Source):
            sources[line.src] = line
        elif isinstance(line, Log | LogFields):
            tallies = Tallies()
            source = sources[line.src]
            out.append(
                general_document(engine, tallies, source, line, ctx, keep_original, bad_utf8)
            )
            continue
    return out


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(
    st.lists(st.tuples(rules(), MATCHES), min_size=1, max_size=3),
    st.lists(st.tuples(LINES_OF_RULES, st.integers(0, 2)), min_size=1, max_size=6),
    st.booleans(),
    st.booleans(),
)
def test_a_batch_gets_the_documents_of_the_general_path(
    raw: list[tuple[dict[str, Any], dict[str, Any]]],
    lines: list[tuple[str, int]],
    redacting: bool,
    keep_original: bool,
) -> None:
    """Plans per container, the written-out cut and the lean shaping change no document."""
    parsed_rules = [{**rule, "match": match} for rule, match in raw]
    redact = RedactConfig(builtins=["password_pair"]) if redacting else None
    try:
        chosen = [ParseRule.model_validate(r) for r in parsed_rules]
    except ValidationError:
        assume(False)
        raise
    assume(len({r.name for r in chosen}) == len(chosen))
    wire_lines = [source(src=i, **c) for i, c in enumerate(CONTAINERS)]
    for n, (text, src) in enumerate(lines):
        wire_lines.append(log(text, 1746100800 * 10**9 + n * 10**6, n, src=src))
    wire = body(*wire_lines)
    fast = Engine(chosen, "400d", redact)
    decoded = decode(wire, Context(parsing=ParsingRules(fast)), INGESTED, keep_original)
    expected = _general_path(Engine(chosen, "400d", redact), wire, keep_original)
    kept = [doc for doc in expected if doc is not None]
    assert [d.body for d in decoded.docs] == [d.body for d in kept]
    assert [(d.id, d.stream, d.original) for d in decoded.docs] == [
        (d.id, d.stream, d.original) for d in kept
    ]
    assert sum(decoded.rules.dropped.values()) == expected.count(None)


ACCESS_DISSECT = '%{client} - %{user} [%{time}] "%{method} %{path} %{protocol}" %{status} %{bytes}'
FIELD_SETS = st.sampled_from(
    [
        {"client": "ip", "status": "long", "bytes": "long"},
        {"status": "double", "user": "boolean", "method": "keyword"},
        {"bytes": {"type": "date", "format": "unix"}, "client": "keyword", "absent": "long"},
        {},
    ]
)
VALUES = {
    "client": st.sampled_from(["10.0.0.7", "255.255.255.255", "256.1.1.1", "::1", "01.2.3.4", ""]),
    "user": st.sampled_from(["-", "yes", "off", "bob"]),
    "status": st.sampled_from(["200", "2OO", "-1", "1e3", "9" * 19, "\u0663", "0.5", ""]),
    "bytes": st.sampled_from(["512", "-", "1746100801", "17461008010000000000", " 7"]),
    "time": st.sampled_from(
        [
            "01/May/2025:12:00:00 +0000",
            "01/May/2025:11:59:58 +0000",
            "03/May/2025:12:00:00 +0000",  # beyond a day's skew
            "01/May/2025:12:00:00 +0200",
            "31/Feb/2025:12:00:00 +0000",
            "",
        ]
    ),
}


@settings(max_examples=300, deadline=None)
@given(
    FIELD_SETS,
    st.booleans(),
    st.lists(st.fixed_dictionaries(VALUES), min_size=1, max_size=6),
    st.sampled_from(["", "<"]),
)
def test_the_written_out_rule_gives_the_general_ways_documents(
    fields: dict[str, Any], timed: bool, values: list[dict[str, str]], prefix: str
) -> None:
    """Typed fields and times of every kind, read or not, in skew or not: same documents."""
    rule: dict[str, Any] = {"name": "acc", "dissect": prefix + ACCESS_DISSECT, "fields": fields}
    if timed:
        rule["timestamp"] = {"field": "time", "format": "%d/%b/%Y:%H:%M:%S %z"}
    chosen = [ParseRule.model_validate(rule)]
    texts = [
        f"{prefix}{v['client']} - {v['user']} [{v['time']}] "
        f'"GET /a?b=c HTTP/1.1" {v["status"]} {v["bytes"]}'
        for v in values
    ]
    wire_lines = [source(), *(log(t, 1746100800 * 10**9 + n, n) for n, t in enumerate(texts))]
    wire = body(*wire_lines)
    fast = Engine(chosen, "1d")
    assert fast.rules[0].fast is not None  # the rule is written out
    decoded = decode(wire, Context(parsing=ParsingRules(fast)), INGESTED)
    expected = [d for d in _general_path(Engine(chosen, "1d"), wire, False) if d is not None]
    assert [d.body for d in decoded.docs] == [d.body for d in expected]


def test_the_written_out_rule_takes_the_usual_line_itself() -> None:
    """A plain access line is shaped by the written-out rule, not the general way."""
    rule = ParseRule.model_validate(
        {
            "name": "acc",
            "dissect": ACCESS_DISSECT,
            "fields": {"client": "ip", "status": "long"},
            "timestamp": {"field": "time", "format": "%d/%b/%Y:%H:%M:%S %z"},
        }
    )
    compiled = Engine([rule], "1d").rules[0]
    assert compiled.fast is not None
    ns = 1746100800 * 10**9
    line = '10.0.0.7 - - [01/May/2025:11:59:58 +0000] "GET / HTTP/1.1" 200 512'
    made = compiled.fast(line, ns, 86400 * 10**9)
    assert made == (
        {"user": "-", "time": "01/May/2025:11:59:58 +0000", "method": "GET", "path": "/"}
        | {"protocol": "HTTP/1.1", "bytes": "512"},
        {"client": "10.0.0.7", "status": 200},
        ns - 2 * 10**9,
    )
    assert compiled.fast(line.replace(" 200 ", " 2OO "), ns, 86400 * 10**9) is SLOW
    assert compiled.fast("no dashes here", ns, 86400 * 10**9) is None


@pytest.mark.parametrize(
    ("rule", "written_out"),
    [
        ({"dissect": "%{a} %{b}", "fields": {"a": "long"}}, True),
        ({"dissect": "%{a} %{b}", "drop": True}, False),  # a drop rule has nothing to shape
        ({"dissect": "%{a} %{b}", "redact": {"builtins": ["email"]}}, False),  # its own masks
        ({"dissect": "%{a} %{b}", "timestamp": {"field": "c"}}, False),  # time not cut
        ({"dissect": "%{a} %{b}", "fields": {"a": "date"}, "timestamp": {"field": "a"}}, False),
        ({"regex": "(?P<a>x)", "fields": {"a": "long"}}, False),
    ],
)
def test_which_rules_are_written_out(rule: dict[str, Any], written_out: bool) -> None:
    """Only what the written-out function does exactly as the general way is written out."""
    compiled = Engine([ParseRule.model_validate({"name": "r", **rule})], "1d").rules[0]
    assert (compiled.fast is not None) == written_out


def test_a_bug_in_the_written_out_rule_costs_the_line_its_rule_not_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the written-out rule raise, the line goes the general way: tagged, kept."""
    rule = ParseRule.model_validate(
        {"name": "acc", "dissect": ACCESS_DISSECT, "fields": {"status": "long"}}
    )
    engine = Engine([rule], "1d")
    compiled = engine.rules[0]

    def broken(text: str, docker_ns: int, max_skew_ns: int) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(compiled, "fast", broken)
    monkeypatch.setattr(native, "MODULE", None)  # the Python path's written-out rule
    line = '10.0.0.7 - - [01/May/2025:11:59:58 +0000] "GET / HTTP/1.1" 200 512'
    wire = body(source(), log(line, 1746100800 * 10**9), log("no rule here", 1746100800 * 10**9))
    decoded = decode(wire, Context(parsing=ParsingRules(engine)), INGESTED)
    assert [d.body["message"] for d in decoded.docs] == [line, "no rule here"]
    assert decoded.docs[0].body["logpipe"]["rule_failure"] == [
        "internal error in the parsing rules (logged)"
    ]
    assert "rule_failure" not in decoded.docs[1].body["logpipe"]
