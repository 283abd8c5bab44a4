"""Decoding a wire batch into documents: good lines kept, bad lines named and dead-lettered."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from collector import batch, native, steps
from collector.batch import (
    MAX_REJECTED,
    MAX_SOURCES,
    Decoded,
    decode,
    decoding,
    set_apart_same_ids,
    setting_apart,
)
from collector.bulk import encode
from collector.enrich import Context, EncodedDoc
from collector.errors import BadRequest
from collector.retention.rules import RetentionConfig, RulesHolder
from collector.rules.engine import Engine
from collector.rules.masking import RedactConfig
from collector.templates import DEADLETTER_STREAM
from tests.collector.test_steps import count_steps
from tests.collector.wirelines import HOST, body, log, log_doc_id, source

TS = 1_714_000_000_123_456_789
NOW = "2024-05-01T00:00:00.000Z"


def test_good_lines_become_documents_with_deterministic_ids() -> None:
    """Each log line becomes one document whose _id comes from host, container, stream, ts, seq."""
    out = decode(body(source(), log("a", TS), log("b", TS, seq=1)), Context(), NOW)
    assert out.received == 3
    assert out.errors == []
    assert [d.id for d in out.docs] == [log_doc_id(TS), log_doc_id(TS, 1)]
    assert [d.body["message"] for d in out.docs] == ["a", "b"]
    assert out.docs[0].original == "a"


def test_malformed_json_line_is_named_and_dead_lettered_others_kept() -> None:
    """A line that is not JSON is reported by number and kept in the dead-letter stream."""
    raw = b'{"kind": "log", "src": 0, oops'
    out = decode(body(source(), log("before", TS), raw, log("after", TS + 1)), Context(), NOW)
    assert [d.body["message"] for d in out.docs] == ["before", "after"]
    [error] = out.errors
    assert error.line == 3
    assert error.error.startswith("not valid JSON")
    [dead] = out.dead_letters
    assert dead.stream == DEADLETTER_STREAM
    assert dead.body["event"]["original"] == raw.decode()
    assert dead.body["error"]["message"].startswith("line 3: not valid JSON")


def test_off_schema_line_names_the_field() -> None:
    """A line of the wrong shape is refused with the name of the offending field."""
    out = decode(body(source(), log("x", TS, stream="stdweird")), Context(), NOW)
    [error] = out.errors
    assert error.line == 2
    assert "field 'stream' of a 'log' line" in error.error
    out = decode(body(b'{"kind": "logz"}', b'{"src": 1}', b"[1]"), Context(), NOW)
    assert [e.error.split(":")[0] for e in out.errors] == [
        "field 'kind'",
        "field 'kind' is missing",
        "not a JSON object",
    ]


def test_log_line_is_judged_by_its_last_kind_as_the_union_does() -> None:
    """A line opening with kind "log" but naming another kind later is refused like any other."""
    log_first = b'{"kind":"log","src":0,"stream":"stdout","ts":1,"message":"x","kind":"event"}'
    out = decode(body(source(), log_first, log("y", TS, stream="stdweird")), Context(), NOW)
    assert out.docs == []
    assert [e.line for e in out.errors] == [2, 3]
    assert "of an 'event' line" in out.errors[0].error
    assert "field 'stream' of a 'log' line" in out.errors[1].error


def test_unknown_source_is_a_line_error() -> None:
    """A line naming a src no earlier line declared is refused, not guessed."""
    out = decode(body(source(0), log("x", TS, src=7)), Context(), NOW)
    [error] = out.errors
    assert error.error == "src 7 not declared by an earlier 'source' line"
    assert out.docs == []


def test_invalid_utf8_is_replaced_and_tagged_not_refused() -> None:
    """Bytes that are not UTF-8 become U+FFFD and the document is tagged invalid_utf8."""
    raw = log("caf\u00e9 XX ok", TS).replace(b"XX", b"\xff\xfe")
    out = decode(body(source(), raw, log("clean", TS + 1)), Context(), NOW)
    assert out.errors == []
    bad, clean = out.docs
    assert bad.body["message"] == "caf\u00e9 \ufffd\ufffd ok"
    assert "invalid_utf8" in bad.body["tags"]
    assert "invalid_utf8" not in clean.body.get("tags", [])


def test_time_beyond_nanosecond_range_is_a_line_error() -> None:
    """A timestamp past 2262 (or past any calendar) is refused by line, not raised."""
    huge = log("x", 1).replace(b'"ts":1', b'"ts":' + str(10**30).encode())
    past_2262 = log("y", 2**63)
    out = decode(body(source(), huge, past_2262, log("ok", TS)), Context(), NOW)
    assert [e.line for e in out.errors] == [2, 3]
    assert all("field 'ts'" in e.error for e in out.errors)
    assert [d.body["message"] for d in out.docs] == ["ok"]


def test_blank_lines_and_crlf_are_tolerated() -> None:
    """Empty lines are skipped and a trailing CR does not make a line invalid."""
    out = decode(source() + b"\r\n\n  \n" + log("x", TS) + b"\r\n", Context(), NOW)
    assert out.errors == []
    assert out.received == 2
    assert [d.body["message"] for d in out.docs] == ["x"]


def test_events_and_gaps_become_documents() -> None:
    """Lifecycle events and gaps are indexed beside the log lines."""
    event = b'{"kind":"event","src":0,"ts":1,"action":"die","exit_code":3}'
    gap = b'{"kind":"gap","src":0,"stream":"stderr","from_ts":1,"to_ts":2,"reason":"rotated"}'
    out = decode(body(source(), event, gap), Context(), NOW)
    assert out.errors == []
    assert [d.body["event"]["action"] for d in out.docs] == ["die", "gap"]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_a_body_of_mostly_junk_lines_is_refused_whole(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to MAX_REJECTED bad lines are dead-lettered; one more refuses the body, first named."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    good = [source(), log("kept", TS)]
    out = decode(body(*good, *[b"x"] * MAX_REJECTED), Context(), NOW)
    assert (len(out.docs), len(out.dead_letters)) == (1, MAX_REJECTED)
    with pytest.raises(BadRequest, match=r"more than 10000 lines .* \(first: line 3: not valid"):
        decode(body(*good, *[b"x"] * (MAX_REJECTED + 1)), Context(), NOW)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_a_body_of_too_many_source_lines_is_refused_whole(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to MAX_SOURCES source lines are read; one more refuses the body, saying why."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    sources = [source(k, container_id=f"{k:064x}") for k in range(MAX_SOURCES)]
    out = decode(body(*sources, log("kept", TS, src=7)), Context(), NOW)
    assert (out.received, len(out.docs), out.errors) == (MAX_SOURCES + 1, 1, [])
    with pytest.raises(BadRequest, match=r"more than 10000 'source' lines in one body \(line"):
        decode(body(*sources, source(MAX_SOURCES), log("lost", TS)), Context(), NOW)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_a_dead_letter_names_who_sent_the_line(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad line naming a declared container carries its fields as its documents do; any
    other carries the host of the body's source lines; each the address it came from."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    off_schema = log("x", TS, stream="stdweird")
    raw = body(b"{oops", source(), log("kept", TS), off_schema, log("y", TS, src=5))
    out = decode(raw, Context(environment="prod"), NOW, address="10.1.2.3")
    assert [e.line for e in out.errors] == [1, 4, 5]
    early, named, unknown = (d.body for d in out.dead_letters)
    assert named["container"] == out.docs[0].body["container"]
    assert named["service"] == {"name": "web", "environment": "prod"}
    for dead in (early, named, unknown):
        assert dead["host"] == {"name": HOST}
        assert dead["source"] == {"ip": "10.1.2.3"}
    assert "container" not in early
    assert "container" not in unknown
    # Two hosts in one body: no shipper's; the line names none of them.
    two = decode(body(source(), source(1, host="other"), b"{oops"), Context(), NOW)
    assert "host" not in two.dead_letters[0].body
    assert "source" not in two.dead_letters[0].body


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_the_lines_of_a_rejected_source_line_are_never_another_container_s(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source line that is rejected ends what its src named before: its lines are
    rejected, saying why, instead of going to the container declared earlier."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    other = source(container_id="d" * 64, color="red")  # a field the wire does not have
    raw = body(source(), log("mine", TS), other, log("not mine", TS + 1), log("x", TS, src=3))
    out = decode(raw, Context(), NOW)
    assert [d.body["message"] for d in out.docs] == ["mine"]
    assert [(e.line, e.error) for e in out.errors[1:]] == [
        (4, "src 0: its 'source' line (line 3) was rejected"),
        (5, "src 3 not declared by an earlier 'source' line"),
    ]
    again = decode(body(other, source(), log("declared anew", TS)), Context(), NOW)
    assert [d.body["message"] for d in again.docs] == ["declared anew"]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_a_line_numbered_like_an_earlier_one_is_dead_lettered_not_lost(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two lines of a stream with one ts and one seq have one _id: the second, of another
    text, is dead-lettered (indexed, it would be a 409, a "duplicate"); the same line
    twice stays a duplicate."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    raw = body(source(), log("a", TS), log("b", TS), log("a", TS), log("c", TS, seq=1))
    out = decode(raw, Context(), NOW)
    assert len(out.docs) == 4, "decode leaves the documents as read"
    set_apart_same_ids(out)
    assert [d.body["message"] for d in out.docs] == ["a", "a", "c"]
    [dead] = out.dead_letters
    assert dead.body["error"]["type"] == "duplicate_id"
    assert dead.body["message"] == "b"
    assert dead.body["event"]["original"] == "b"
    assert dead.body["container"] == out.docs[0].body["container"]
    assert out.errors == []


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_lines_of_one_id_are_set_apart_alike_in_steps(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set apart in steps of no time, the lines of one `_id` give what they give at once,
    the step yielding between every two parts of the documents, in both passes (ids,
    then the documents kept)."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    monkeypatch.setattr(steps, "PART", 4)
    lines = [log(f"line {i}", TS + i) for i in range(30)]
    raw = body(source(), *lines, log("other", TS + 3), log("line 5", TS + 5), log("x", TS + 29))
    whole = decode(raw, Context(), NOW)
    set_apart_same_ids(whole)
    stepped = decode(raw, Context(), NOW)
    _, taken = count_steps(setting_apart(stepped, seconds=0))
    same_results(stepped, whole)
    assert [d.body["message"] for d in stepped.dead_letters] == ["other", "x"]
    assert taken == 2 * -(-33 // 4)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_a_lone_surrogate_escape_is_indexed_tagged_not_dead_lettered(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Python sender's `\\udcff` (a byte read with surrogateescape) is U+FFFD, as
    invalid UTF-8 is: the line is indexed and tagged invalid_utf8."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    line = log("x", TS).replace(b'"x"', b'"caf\\udce9"')
    out = decode(body(source(), line), Context(), NOW)
    assert out.errors == []
    [doc] = out.docs
    assert (doc.body["message"], doc.body["tags"]) == ("caf\ufffd", ["invalid_utf8"])


def test_a_byte_order_mark_before_the_first_line_is_ignored() -> None:
    """A body saved with a UTF-8 BOM reads as without it: its source line still counts."""
    out = decode("\ufeff".encode() + body(source(), log("a", TS)), Context(), NOW)
    assert out.errors == []
    assert [d.id for d in out.docs] == [log_doc_id(TS)]


def test_a_gap_that_ends_before_it_starts_is_refused_naming_to_ts() -> None:
    """A gap whose to_ts is before its from_ts is a 400 naming to_ts (the line kept as a
    dead letter), not a gap document of negative length; the other lines are indexed."""
    gap = b'{"kind":"gap","src":0,"stream":"stdout","from_ts":5,"to_ts":3,"reason":"r"}'
    same = b'{"kind":"gap","src":0,"stream":"stdout","from_ts":5,"to_ts":5,"reason":"r"}'
    out = decode(body(source(), gap, same, log("ok", TS)), Context(), NOW)
    assert [(e.line, e.error) for e in out.errors] == [
        (
            2,
            "field 'to_ts' of a 'gap' line: 3 ns is before from_ts (5 ns): a gap ends after "
            "it starts",
        )
    ]
    gap_doc, line = out.docs  # a gap of no length still is one
    assert gap_doc.body["tags"] == ["gap"]
    assert gap_doc.body["logpipe"]["gap"]["from"] == gap_doc.body["logpipe"]["gap"]["to"]
    assert line.body["message"] == "ok"


def test_an_exit_code_beyond_a_long_is_refused_naming_the_field() -> None:
    """An exit code Elasticsearch's long cannot hold is a 400 naming exit_code, rather than
    an event that only the node refuses; a long's extremes are events."""
    big = b'{"kind":"event","src":0,"ts":1,"action":"die","exit_code":%d}'
    lines = [big % 2**63, big % -(2**63 + 1), big % (2**63 - 1), big % -(2**63)]
    out = decode(body(source(), *lines), Context(), NOW)
    problem = "field 'exit_code' of an 'event' line: Input should be "
    assert [(e.line, e.error.startswith(problem)) for e in out.errors] == [(2, True), (3, True)]
    assert [d.body["process"]["exit_code"] for d in out.docs] == [2**63 - 1, -(2**63)]


def test_a_time_off_the_wire_bounds_is_said_in_dates() -> None:
    """A ts past what nanosecond time holds, or before 1970, is named with the date it misses."""
    late = log("late", 2**63 + 5)
    gap = b'{"kind":"gap","src":0,"stream":"stdout","from_ts":-1,"to_ts":1,"reason":"r"}'
    out = decode(body(source(), late, gap), Context(), NOW)
    assert [e.error for e in out.errors] == [
        "field 'ts' of a 'log' line: 9223372036854775813 ns is after "
        "2262-04-11T23:47:16.854775807Z, the last instant that nanoseconds since 1970 in "
        "64 bits (Elasticsearch's date_nanos) hold",
        "field 'from_ts' of a 'gap' line: -1 ns is before 1970-01-01T00:00:00Z: times are "
        "nanoseconds since then",
    ]


def in_steps(
    raw: bytes,
    ctx: Context,
    between: Callable[[int], None] = lambda _: None,
    ingested: str = NOW,
    address: str | None = "192.0.2.7",
) -> tuple[Decoded, int]:
    """`raw` decoded in the shortest steps there are (`between(step)` called after each
    but the last); the result and how many steps it took."""
    steps = decoding(raw, ctx, ingested, address=address, seconds=0)
    taken = 0
    while True:
        taken += 1
        try:
            next(steps)
        except StopIteration as done:
            return done.value, taken
        between(taken)


def same_results(stepped: Decoded, whole: Decoded) -> None:
    """Two decodings of one body gave the same documents, in order, byte for byte, and the
    same dead letters, errors and counts."""
    assert [encode(d) for d in stepped.docs] == [encode(d) for d in whole.docs]
    assert [(d.id, d.stream, d.original) for d in stepped.docs] == [
        (d.id, d.stream, d.original) for d in whole.docs
    ]
    assert [encode(d) for d in stepped.dead_letters] == [encode(d) for d in whole.dead_letters]
    assert (stepped.errors, stepped.received) == (whole.errors, whole.received)


def _mixed_body() -> bytes:
    """Every kind of line, good and bad, with sources declared, redeclared and refused, and
    lines naming each well after it."""
    event = b'{"kind":"event","src":1,"ts":1,"action":"die","exit_code":3}'
    gap = b'{"kind":"gap","src":0,"stream":"stderr","from_ts":1,"to_ts":2,"reason":"rotated"}'
    api = {"com.docker.compose.service": "api"}
    access = '10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] "GET /a HTTP/1.1" 200 2326 "-" "curl"'
    return body(
        b"{oops",
        source(0),
        *[log(f"plain INFO line {i}", TS + i) for i in range(150)],
        source(1, container_id="1" * 64, labels=api),
        *[log(f'{{"level":"warn","n":{i},"msg":"json {i}"}}', TS + i, src=1) for i in range(70)],
        b"",
        b"   ",
        log(access, TS, src=0),
        event,
        gap,
        log("nobody declared src 9", TS, src=9),
        source(2, host=5),  # refused: its lines are too
        log("of a refused source", TS, src=2),
        *[log(f"ERROR {i} again", TS + i, src=1) for i in range(70)],
        source(0, container_id="2" * 64),  # src 0 is another container from here on
        log("after the redeclaration", TS, src=0),
        log("bad stream", TS, stream="stdweird"),
        log("last", TS + 1, src=1),
    )


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_decoding_in_steps_gives_what_decoding_at_once_gives(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body decoded in many steps, a source line in one and the lines naming it in later
    ones, gives the documents, order, dead letters, errors and counts of one step."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    raw = _mixed_body()
    whole = decode(raw, Context(), NOW, address="192.0.2.7")
    monkeypatch.setattr(batch, "_PYTHON_STEP_LINES", 3)
    stepped, taken = in_steps(raw, Context())
    # A step ends after each source line at the latest, and every few lines between.
    assert taken >= 10
    same_results(stepped, whole)
    # The compiled path made the same documents itself: no step forgot a container.
    assert [type(d) for d in stepped.docs] == [type(d) for d in whole.docs]
    assert len(whole.docs) == 150 + 70 + 1 + 2 + 70 + 1 + 1
    made = sum(isinstance(d, EncodedDoc) for d in whole.docs)
    assert made == (150 + 70 + 1 + 70 + 1 + 1 if compiled and native.MODULE else 0)
    assert [e.line for e in whole.errors] == [1, 229, 230, 231, 304]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_a_body_refused_whole_is_refused_whole_in_steps(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too many source lines, or too many bad ones, refuse a body decoded in steps with the
    answer it gets decoded at once."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
        monkeypatch.setattr(batch, "_PYTHON_STEP_LINES", 64)
    sources = [source(k, container_id=f"{k:064x}") for k in range(MAX_SOURCES + 1)]
    junk = [source(), log("kept", TS), *[b"x"] * (MAX_REJECTED + 1)]
    for raw in (body(*sources, log("lost", TS)), body(*junk)):
        with pytest.raises(BadRequest) as whole:
            decode(raw, Context(), NOW)
        with pytest.raises(BadRequest) as stepped:
            in_steps(raw, Context())
        assert str(stepped.value) == str(whole.value)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_a_retention_reload_between_steps_routes_the_lines_after_it(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules a reload brings between two steps route every line read after it, those of
    containers declared before it too, as a batch received after it would be routed."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
        monkeypatch.setattr(batch, "_PYTHON_STEP_LINES", 1)
    raw = body(source(), *[log(f"line {i}", TS + i) for i in range(100)])
    ctx = Context()
    ninety = RetentionConfig.model_validate(
        {"rules": [{"match": {"service": "web"}, "keep": "90d"}]}
    )

    def reload(step: int) -> None:
        if step == 1:  # the source line alone was read
            ctx.retention.rules = RulesHolder(ninety).rules

    stepped, taken = in_steps(raw, ctx, reload)
    assert taken > 2
    assert {d.stream for d in stepped.docs} == {"logs-docker.keep_90d-default"}
    same_results(stepped, decode(raw, ctx, NOW, address="192.0.2.7"))


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_a_reload_of_the_parsing_rules_applies_from_the_next_batch(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing rules swapped between two steps of a batch change none of its lines, not even
    how a bad line is masked; the next batch gets them."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
        monkeypatch.setattr(batch, "_PYTHON_STEP_LINES", 1)
    raw = body(source(), log("password=hunter2 first", TS), b"{oops password=hunter2")
    ctx = Context()
    masking = RedactConfig.model_validate({"custom": [{"name": "pw", "pattern": "hunter2"}]})

    def reload(step: int) -> None:
        if step == 1:
            ctx.parsing.engine = Engine([], "1d", masking)

    stepped, taken = in_steps(raw, ctx, reload)
    assert taken > 1
    same_results(stepped, decode(raw, Context(), NOW, address="192.0.2.7"))
    masked = decode(raw, ctx, NOW)
    assert "hunter2" not in masked.docs[0].body["message"]
    assert b"hunter2" not in encode(masked.dead_letters[0])


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_a_line_longer_than_the_limit_is_indexed_cut_and_tagged_not_dead_lettered(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another sender's line past max_line_bytes is indexed cut there (no half character),
    tagged truncated once (also when its sender had cut it already), and counted; a line
    of exactly the limit, and the lines around the long ones, are indexed as sent."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    limit = 1024
    raw = body(
        source(),
        log("before", TS),
        log("a" * 1024, TS + 1),
        log("b" * 5000, TS + 2),
        log("é" * 513, TS + 3),
        log("c" * 2000, TS + 4, truncated=True),
        log("d" * 10, TS + 5, truncated=True),
        log("after", TS + 6),
    )
    out = decode(raw, Context(max_line_bytes=limit), NOW)
    assert (out.errors, out.dead_letters, out.truncated) == ([], [], 3)
    got = [(d.body["message"], d.body.get("tags")) for d in out.docs]
    assert got == [
        ("before", None),
        ("a" * 1024, None),
        ("b" * 1024, ["truncated"]),
        ("é" * 512, ["truncated"]),
        ("c" * 1024, ["truncated"]),
        ("d" * 10, ["truncated"]),
        ("after", None),
    ]
    # The cut line is what the document holds, and what a dead letter of it would keep.
    assert out.docs[2].original == "b" * 1024
    assert [d.id for d in out.docs] == [log_doc_id(TS + i) for i in range(7)]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_a_json_line_cut_at_the_limit_is_its_text_as_the_shipper_s_would_be(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON line one of whose fields takes it past the limit is cut as a shipper's line
    is, and indexed as the text it became; one within the limit keeps its huge field in
    `attributes` (kept in _source, not indexed past 1024 characters: the template's
    ignore_above)."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    big = '{"msg": "hello", "blob": "' + "y" * 3000 + '"}'
    fits = '{"msg": "hello", "blob": "' + "y" * 900 + '"}'
    out = decode(body(source(), log(big, TS), log(fits, TS + 1)), Context(max_line_bytes=1024), NOW)
    cut, whole = (d.body for d in out.docs)
    assert cut["message"] == big[:1024]
    assert "truncated" in cut["tags"]
    assert "attributes" not in cut
    assert whole["message"] == "hello"
    assert whole["attributes"] == {"blob": "y" * 900}
    assert "tags" not in whole


def test_a_long_line_the_pydantic_model_reads_is_cut_too() -> None:
    """A log line of an unusual shape (keys in another order, read by pydantic's Log rather
    than the quick reader) is cut alike."""
    line = b'{"src":0,"kind":"log","stream":"stdout","ts":%d,"message":"%s"}' % (TS, b"z" * 2000)
    out = decode(body(source(), line), Context(max_line_bytes=1024), NOW)
    [doc] = out.docs
    assert (doc.body["message"], doc.body["tags"], out.truncated) == ("z" * 1024, ["truncated"], 1)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_parsing_rules_and_redaction_see_the_cut_line(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under redaction a long line is cut first, as a shipper's line arrives cut, then
    masked: the document holds the cut text masked (a mask may be longer than what it
    hides), tagged truncated."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    masking = RedactConfig.model_validate({"custom": [{"name": "pw", "pattern": "hunter2"}]})
    ctx = Context(max_line_bytes=1024)
    ctx.parsing.engine = Engine([], "1d", masking)
    out = decode(body(source(), log("password=hunter2 " + "x" * 3000, TS)), ctx, NOW)
    [doc] = out.docs
    assert doc.body["message"] == "password=[REDACTED] " + "x" * (1024 - len("password=hunter2 "))
    assert "truncated" in doc.body["tags"]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_long_free_text_is_indexed_cut_and_tagged_with_the_lines_next_to_it(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another sender's event detail, gap reason and source image past their bounds are
    cut there, not dead-lettered: every document of the container whose image was cut is
    tagged truncated (it holds the cut name), and the other container's are untouched."""
    if not compiled:
        monkeypatch.setattr(native, "MODULE", None)
    event = b'{"kind":"event","src":1,"ts":1,"action":"die","detail":"%s"}' % (b"d" * 5000)
    gap = b'{"kind":"gap","src":1,"stream":"stderr","from_ts":1,"to_ts":2,"reason":"%s"}' % (
        b"r" * 300
    )
    raw = body(
        source(),
        source(1, container_id="d" * 64, image="€" * 2000),
        log("before", TS),
        log('{"msg":"of the cut one"}', TS, src=1),
        event,
        gap,
        log("after", TS + 1),
    )
    out = decode(raw, Context(), NOW)
    assert (out.errors, out.dead_letters) == ([], [])
    got = [(d.body["message"][:20], d.body.get("tags")) for d in out.docs]
    assert got == [
        ("before", None),
        ("of the cut one", ["truncated"]),
        ("container web-1 die:", ["truncated"]),
        ("logpipe could not re", ["gap", "truncated"]),
        ("after", None),
    ]
    assert [d.body["container"]["image"]["name"] for d in out.docs[1:4]] == ["€" * 1024] * 3
    assert out.docs[2].body["event"]["reason"] == "d" * 4096
    assert out.docs[3].body["event"]["reason"] == "r" * 256
    assert out.docs[0].id == log_doc_id(TS)
    # Counted once per line cut, not per document tagged for its container.
    assert out.texts_truncated == {"source": 1, "event": 1, "gap": 1}


def test_a_source_line_declared_again_whole_ends_its_truncated_tags() -> None:
    """A container's lines are tagged for the source line they follow: after that source
    is declared again within its bounds, they are not."""
    raw = body(source(image="i" * 1025), log("cut", TS), source(), log("whole", TS + 1))
    out = decode(raw, Context(), NOW)
    assert [(d.body["message"], d.body.get("tags")) for d in out.docs] == [
        ("cut", ["truncated"]),
        ("whole", None),
    ]


def test_the_lines_of_a_source_line_refused_for_its_id_stay_dead_lettered() -> None:
    """A source line whose container id cannot be read cannot give its lines an `_id` or
    a container: they are dead-lettered naming that line, the other lines indexed."""
    raw = body(source(1, container_id="c" * 129), log("lost?", TS, src=1), source(), log("ok", TS))
    out = decode(raw, Context(), NOW)
    assert [e.error for e in out.errors] == [
        "field 'container_id' of a 'source' line: String should have at most 128 characters",
        "src 1: its 'source' line (line 1) was rejected",
    ]
    assert [d.body["message"] for d in out.docs] == ["ok"]
    assert len(out.dead_letters) == 2
