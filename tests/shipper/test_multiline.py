"""Unit and property tests of multiline joining, include/exclude filters and label parsing."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.rules.regex import Regex, RegexRefused
from collector.wire import MAX_LINE_BYTES
from shipper.cursor import Position
from shipper.demux import parse_ts
from shipper.multiline import (
    BOUNDS,
    BUILTINS,
    LOOKAHEAD_LINES,
    LOOKAHEAD_WINDOW_NS,
    Joiner,
    Pattern,
    Rule,
    Shaping,
    join,
    shaping_from,
)
from shipper.record import LogRecord, Meta
from tests.programs import clean_env

META = Meta("c1", "app", "busybox")
CORPUS = Path(__file__).parent.parent / "corpus"


def _records(lines: list[str], ts_step: int = 1) -> list[LogRecord]:
    return [
        LogRecord(META, "stdout", 1000 + (i // 2) * ts_step, i % 2, line.encode())
        for i, line in enumerate(lines)
    ]


def _run(rule: Rule, lines: list[str]) -> list[LogRecord]:
    joiner = Joiner(rule)
    out: list[LogRecord] = []
    for record in _records(lines):
        out += joiner.push(record, now=0.0)
    return out + joiner.flush()


def _messages(events: list[LogRecord]) -> list[str]:
    return [e.data.decode() for e in events]


_line = st.text(alphabet="ab \t", max_size=6)
_rules = st.builds(
    Rule,
    pattern=st.sampled_from([Pattern(p) for p in ("^a", "^ ", "b$", "^$", "ab")]),
    negate=st.booleans(),
    match=st.sampled_from(["after", "before"]),
    max_lines=st.integers(min_value=1, max_value=6),
    max_bytes=st.integers(min_value=1, max_value=30),
)


@given(_rules, st.lists(_line, max_size=40))
def test_joining_keeps_every_line_once_in_order(rule: Rule, lines: list[str]) -> None:
    """Whatever the rule, the events hold exactly the input lines, in order, counted."""
    events = _run(rule, lines)
    assert [part for e in events for part in e.data.decode().split("\n")] == (
        lines if events else []
    )
    assert sum(e.lines for e in events) == len(lines)


@given(_rules, st.lists(_line, min_size=1, max_size=40))
def test_an_event_has_its_first_lines_identity_and_its_last_lines_end(
    rule: Rule, lines: list[str]
) -> None:
    """Each event is numbered like its first physical line and ends past its last one."""
    records = _records(lines)
    events = _run(rule, lines)
    i = 0
    for event in events:
        first, last = records[i], records[i + event.lines - 1]
        assert (event.ts, event.seq) == (first.ts, first.seq)
        assert event.end() == Position(last.ts, last.seq + 1)
        i += event.lines


@given(_rules, st.lists(_line, max_size=40))
def test_events_stay_within_their_bounds(rule: Rule, lines: list[str]) -> None:
    """No event has more lines than max_lines, nor more bytes than max_bytes unless alone."""
    for event in _run(rule, lines):
        assert event.lines <= rule.max_lines
        assert event.lines == 1 or len(event.data) <= rule.max_bytes


def test_after_appends_matching_lines_to_the_line_before() -> None:
    """negate=false, match=after: lines matching the pattern continue the previous event."""
    rule = Rule(Pattern(r"^\s"))
    events = _run(rule, ["start", "  more", "  more", "next", "  x"])
    assert _messages(events) == ["start\n  more\n  more", "next\n  x"]


def test_after_negated_appends_lines_not_matching_to_the_matching_one() -> None:
    """negate=true, match=after: lines not matching continue the last matching line."""
    rule = Rule(Pattern(r"^\d{4}-"), negate=True)
    events = _run(rule, ["2024-01 a", "detail", "detail", "2024-01 b", "2024-01 c"])
    assert _messages(events) == ["2024-01 a\ndetail\ndetail", "2024-01 b", "2024-01 c"]


def test_before_prepends_matching_lines_to_the_next_line() -> None:
    """negate=false, match=before: matching lines wait for the first line that does not match."""
    rule = Rule(Pattern(r"\\$"), match="before")
    events = _run(rule, ["one \\", "two \\", "three", "four"])
    assert _messages(events) == ["one \\\ntwo \\\nthree", "four"]


def test_before_negated_prepends_lines_not_matching_to_the_next_matching_one() -> None:
    """negate=true, match=before: lines not matching wait for the next line that matches."""
    rule = Rule(Pattern(r";$"), negate=True, match="before")
    events = _run(rule, ["SELECT *", "FROM t", "WHERE x;", "COMMIT;"])
    assert _messages(events) == ["SELECT *\nFROM t\nWHERE x;", "COMMIT;"]


def test_a_held_event_is_due_after_its_timeout_and_flushes_whole() -> None:
    """An event waiting longer than the timeout for its next line is sent as it is."""
    joiner = Joiner(Rule(Pattern(r"^\s"), timeout=2.0))
    records = _records(["start", "  more"])
    assert joiner.push(records[0], now=10.0) == []
    assert joiner.push(records[1], now=11.0) == []
    assert not joiner.due(12.5)
    assert joiner.due(13.0)
    [event] = joiner.flush()
    assert event.data == b"start\n  more"
    assert event.lines == 2
    assert joiner.flush() == []


def test_join_counts_lines_of_already_joined_records_and_keeps_truncation() -> None:
    """Joining keeps the line count of each part and the truncated flag of any part."""
    a, b = _records(["a", "b"])
    b.truncated = True
    b.lines = 3
    joined = join([a, b])
    assert joined.lines == 4
    assert joined.truncated


def _corpus_events() -> list[str]:
    return [json.loads(line) for line in (CORPUS / "multiline.jsonl").read_text().splitlines()]


def _find(prefix: str) -> str:
    return next(e for e in _corpus_events() if e.startswith(prefix))


def _around(name: str, before: str, traces: list[str], after: str) -> list[str]:
    """The events built-in `name` makes of `before`, each trace, and `after`."""
    lines = [before, *(line for trace in traces for line in trace.split("\n")), after]
    return _messages(_run(BUILTINS[name], lines))


def test_builtin_java_makes_one_event_of_a_stack_trace() -> None:
    """logpipe.multiline=java joins the log line, exception, frames and causes."""
    trace = _find("java.lang.IllegalStateException")
    lines = ["2024-01-02 INFO started", "", "2024-01-02 ERROR request failed"]
    events = _run(BUILTINS["java"], [*lines, *trace.split("\n"), "2024-01-02 INFO next"])
    assert _messages(events)[-2] == "2024-01-02 ERROR request failed\n" + trace
    assert _messages(events)[-1] == "2024-01-02 INFO next"
    spring = (CORPUS / "java_stacktrace.log").read_text().splitlines()
    events = _run(BUILTINS["java"], spring[:10])
    assert [e.lines for e in events] == [9, 1]
    assert _messages(events)[1].startswith("Exception in thread")


def test_builtin_java_starts_a_trace_under_a_line_that_did_not_log_it() -> None:
    """A java exception starts its own event under an INFO line or another trace."""
    bare, thread = _find("java.lang.IllegalStateException"), _find("Exception in thread")
    before, after = "2024-05-01 12:00:00 INFO Starting", "2024-05-01 12:00:01 INFO next"
    assert _around("java", before, [bare], after) == [before, bare, after]
    assert _around("java", before, [thread, bare], after) == [before, thread, bare, after]


@pytest.mark.parametrize("level", ["ERROR", "WARN", "SEVERE"])
def test_builtin_java_keeps_a_trace_with_the_log_line_that_introduces_it(level: str) -> None:
    """An exception right under a WARN/ERROR/SEVERE log line stays in that line's event."""
    trace = _find("java.lang.IllegalStateException")
    logged = f"2024-05-01 12:00:00 {level} Request failed"
    assert _around("java", logged, [trace], "next") == [f"{logged}\n{trace}", "next"]


def test_builtin_java_keeps_spring_s_root_cause_trace_after_its_blank_line() -> None:
    """Spring's "... with root cause", a blank line, then the exception: one event."""
    logged = (
        "2026-12-05T08:00:00.123Z ERROR 1 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/]"
        ".[dispatcherServlet] : Servlet.service() threw exception with root cause"
    )
    trace = "java.lang.NullPointerException: s is null\n\tat c.e.Demo.hello(Demo.java:15)"
    after = "2026-12-05T08:00:01.000Z  INFO 1 --- [main] c.e.Demo : next"
    lines = [logged, "", *trace.split("\n"), "", after]
    events = _run(BUILTINS["java"], lines)
    assert _messages(events) == [f"{logged}\n\n{trace}", after]
    assert [e.lines for e in events] == [len(lines) - 1, 1]


@pytest.mark.parametrize("name", ["java", "python", "go", "node"])
def test_a_builtin_event_leaves_the_blank_lines_it_ends_with_out_of_its_message(
    name: str,
) -> None:
    """Blank lines after a trace continue its event, but its message ends at the trace:
    they still count as its lines and its end is past them."""
    trace = {
        "java": _find("java.lang.IllegalStateException"),
        "python": _find('Traceback (most recent call last):\n  File "/app/worker/main.py"'),
        "go": _find("panic: assignment"),
        "node": _find("TypeError: Cannot read"),
    }[name]
    lines = [*trace.split("\n"), "", "  ", "INFO next"]
    records = _records(lines)
    events = _run(BUILTINS[name], lines)
    assert _messages(events) == [trace, "INFO next"]
    assert events[0].lines == len(lines) - 1
    assert events[0].end() == records[-2].end()


def test_a_custom_rule_keeps_the_blank_lines_it_joined() -> None:
    """A rule of one's own joins as Filebeat does: every line it joined is in the message."""
    rule = Rule(Pattern("^[ \t]*$"))
    assert _messages(_run(rule, ["a", "", "b"])) == ["a\n", "b"]


@pytest.mark.parametrize(
    ("level", "with_trace"), [("SEVERE", True), ("WARNING", True), ("INFO", False), ("FINE", False)]
)
def test_builtin_java_joins_java_util_logging_s_two_lines_and_its_trace(
    level: str, with_trace: bool
) -> None:
    """java.util.logging's default format (time and source, then `LEVEL: message`) is one
    event, with the trace logged under it at SEVERE or WARNING (as under any log line)."""
    trace = _find("java.lang.IllegalStateException")
    head = "Dec 05, 2026 8:00:00 AM com.acme.Foo bar"
    second = f"{level}: Request failed"
    after = ["Dec 05, 2026 8:00:01 AM com.acme.Foo baz", "INFO: next"]
    events = _messages(_run(BUILTINS["java"], [head, second, *trace.split("\n"), *after]))
    logged = f"{head}\n{second}"
    joined = [f"{logged}\n{trace}"] if with_trace else [logged, trace]
    assert events == [*joined, "\n".join(after)]


@pytest.mark.parametrize(
    ("head", "level", "with_trace"),
    [
        ("Dez. 05, 2026 8:00:00 AM com.acme.Foo bar", "SCHWERWIEGEND", True),
        ("März 05, 2026 8:00:00 PM com.acme.Foo bar", "WARNUNG", True),
        ("Feb. 05, 2026 8:00:00 AM com.acme.Foo bar", "AM FEINSTEN", False),
        ("dic 05, 2026 8:00:00 A. M. com.acme.Foo bar", "GRAVE", True),
        ("févr. 05, 2026 8:00:00 PM com.acme.Foo bar", "AVERTISSEMENT", True),
        ("août 05, 2026 8:00:00 PM com.acme.Foo bar", "INFOS", False),
        ("dez. 05, 2026 8:00:00 AM com.acme.Foo bar", "ADVERTÊNCIA", True),
        ("dec. 05, 2026 8:00:00 FM com.acme.Foo bar", "ALLVARLIG", True),
        ("12月 05, 2026 8:00:00 午前 com.acme.Foo bar", "重大", True),
        ("3월 05, 2026 8:00:00 오후 com.acme.Foo bar", "경고", True),
        ("2月 05, 2026 8:00:00 上午 com.acme.Foo bar", "信息", False),
        ("Sept 05, 2026 8:00:00 AM com.acme.Foo bar", "SEVERE", True),  # en_GB
        ("de des. 05, 2026 8:00:00 A. M. com.acme.Foo bar", "WARNING", True),  # ca_ES
    ],
)
def test_builtin_java_joins_java_util_logging_in_the_jdk_s_languages(
    head: str, level: str, with_trace: bool
) -> None:
    """JUL's two lines as the JDK prints them in other languages (localized month, AM/PM
    marker and level name) are one event, with a trace under its SEVERE or WARNING."""
    trace = _find("java.lang.IllegalStateException")
    second = f"{level}: Request failed"
    events = _messages(_run(BUILTINS["java"], [head, second, *trace.split("\n"), "next"]))
    logged = f"{head}\n{second}"
    assert events == [
        f"{logged}\n{trace}" if with_trace else logged,
        *([] if with_trace else [trace]),
        "next",
    ]


def test_builtin_java_joins_a_level_line_only_right_under_java_util_logging_s_first() -> None:
    """`SEVERE: ...` under any other line, or a second one, starts an event of its own."""
    head = "Dec 05, 2026 8:00:00 AM com.acme.Foo bar"
    lines = ["2026-12-05 INFO started", "SEVERE: a", head, "INFO: b", "WARNING: c", "Dec 5 x"]
    assert _messages(_run(BUILTINS["java"], lines)) == [
        "2026-12-05 INFO started",
        "SEVERE: a",
        f"{head}\nINFO: b",
        "WARNING: c",
        "Dec 5 x",
    ]


@pytest.mark.parametrize(
    "logged", ["SEVERE: Servlet.service() threw exception", "ERROR [main] c.e.App - failed"]
)
def test_builtin_java_keeps_a_trace_under_a_line_that_opens_with_its_level(logged: str) -> None:
    """A log line whose first word is its level (java.util.logging's second line, log4j's
    `%-5p [%t]`) keeps the exception printed under it."""
    trace = _find("java.lang.IllegalStateException")
    assert _around("java", "INFO: started", [logged, trace], "next") == [
        "INFO: started",
        f"{logged}\n{trace}",
        "next",
    ]


def test_builtin_python_starts_an_event_at_a_traceback() -> None:
    """A traceback is not glued onto the line before it; the line after it is its own event."""
    chained = _find('Traceback (most recent call last):\n  File "/app/worker/fetch.py"')
    interrupted = _find('Traceback (most recent call last):\n  File "/app/worker/main.py"')
    before, after = "INFO starting worker", "INFO next"
    assert _around("python", before, [chained], after) == [before, chained, after]
    assert _around("python", before, [interrupted, chained], "INFO: next") == [
        before,
        interrupted,
        chained,
        "INFO: next",
    ]


def test_builtin_python_keeps_a_logged_error_and_its_traceback_apart() -> None:
    """logging.exception's message line and its traceback are two events, both complete."""
    logged = _find("2024-01-02 09:14:10,002 ERROR").split("\n")
    message, traceback = logged[0], "\n".join(logged[1:])
    assert _around("python", message, [traceback], "next") == [message, traceback, "next"]


def test_builtin_python_ends_an_exception_group_at_its_closing_box() -> None:
    """An exception group traceback starts an event, and a log line after its box is not in it."""
    group = _find("  + Exception Group Traceback")
    before, after = "INFO starting worker", "WARNING:root:retrying"
    assert _around("python", before, [group], after) == [before, group, after]


def test_builtin_python_joins_an_exception_line_only_inside_a_traceback() -> None:
    """A log line like an exception line after an indented detail line starts a new event."""
    lines = ["INFO config loaded", "  workers: 4", "WARNING:root:slow start", "ValueError: x"]
    assert _messages(_run(BUILTINS["python"], lines)) == [
        "INFO config loaded\n  workers: 4",
        "WARNING:root:slow start",
        "ValueError: x",
    ]


def test_builtin_go_makes_one_event_of_a_panic() -> None:
    """logpipe.multiline=go joins a panic or fatal error with its goroutine dump."""
    before, after = "2024/01/02 listening on :8080", "2024/01/02 listening on :8080"
    traces = [_find("panic: assignment"), _find("panic: close"), _find("fatal error: unexpected")]
    for trace in traces:
        assert _around("go", before, [trace], after) == [before, trace, after]
    assert _around("go", before, traces, after) == [before, *traces, after]


# The first lines of the Node.js errors in the corpus, each as Node prints it: by
# console.error(err), console.error('Server error:', err), VError, and uncaught (where it
# was thrown, the source line, the caret, the error, its properties, the version).
NODE_ERRORS = [
    "TypeError: Cannot read",
    "Error [ERR_HTTP_HEADERS_SENT]",
    "node:internal/fs/utils:347",
    "/app/index.js:9",
    "node:events:497",
    "node:internal/process/promises:289",
    "/app/index.js:1\nthrow 'boom'",
    "file:///app/index.mjs:2",
    "Server error: Error: connect",
    "VError: failed",
    "AggregateError: All promises",
    # Captured from Node v20.20.2 in a container (`docker logs`, stderr): messages of
    # several lines, by console.error(err) and uncaught, with properties, causes, an
    # AggregateError, a subclass, a rejected promise, an assertion's diff.
    "Error: connect failed\n  host: db\nretrying disabled",
    "Error: query failed\nSELECT",
    "Error: fetch failed\nafter 3 attempts",
    "Server error: Error: boom\nline two",
    "Oops [Error]: bad\nvery bad",
    "AggregateError: all failed\nno host left",
    "/app/uncaught_multi.js:1",
    "/app/async_multi.js:1",
    "node:internal/process/promises:389",
    "node:assert:90",
    "node:events:502",
    "/app/named_multi.js:2",
]
_FRAME = "    at Object.<anonymous> (/app/index.js:2:8)"
PINO = (
    '{"level":50,"time":1764921600000,"pid":1,"hostname":"api","err":{"type":"Error",'
    '"message":"boom","stack":"Error: boom\\n    at /app/index.js:5:3"},"msg":"boom"}'
)


@pytest.mark.parametrize("first", NODE_ERRORS)
@pytest.mark.parametrize(
    ("before", "after"),
    [("2026-12-05T08:00:00.000Z INFO listening on 3000", "GET /health 200"), (PINO, PINO)],
)
def test_builtin_node_makes_one_event_of_an_error(first: str, before: str, after: str) -> None:
    """logpipe.multiline=node: an error (frames, properties, causes; an uncaught one from
    where it was thrown to the `Node.js v20` line) is one event, apart from the lines
    around it, JSON lines included."""
    trace = _find(first)
    assert _around("node", before, [trace], after) == [before, trace, after]


def test_builtin_node_keeps_errors_printed_in_a_row_apart() -> None:
    """Each error starts its own event, right after another's frames, `}` or version."""
    traces = [_find(first) for first in NODE_ERRORS]
    assert _around("node", "INFO up", traces, "INFO next") == ["INFO up", *traces, "INFO next"]


def test_builtin_node_keeps_node_14_s_crash_report_whole() -> None:
    """Node 14 and older name the place of a crash without `node:` (`events.js:377`)."""
    crash = (
        "events.js:377\n      throw er; // Unhandled 'error' event\n      ^\n\n"
        "Error: listen EADDRINUSE: address already in use :::5678\n"
        "    at Server.setupListenHandle [as _listen2] (net.js:1331:16)\n"
        "Emitted 'error' event on Server instance at:\n"
        "    at emitErrorNT (net.js:1358:8) {\n  code: 'EADDRINUSE'\n}"
    )
    assert _around("node", "INFO up", [crash], "INFO next") == ["INFO up", crash, "INFO next"]


@pytest.mark.parametrize("level", ["ERROR", "WARN", "FATAL"])
def test_builtin_node_keeps_an_error_with_the_log_line_that_introduces_it(level: str) -> None:
    """An error printed right under a WARN/ERROR/FATAL log line (NestJS's Logger) stays in
    that line's event."""
    nest = _find("[Nest] 1").replace("ERROR", level, 1)
    assert _around("node", "INFO up", [nest], "INFO next") == ["INFO up", nest, "INFO next"]


@pytest.mark.parametrize(
    "before",
    [
        "[Nest] 1  - 12/05/2026, 8:00:00 AM     LOG [RoutesResolver] AppController",
        "Server error:",  # console.error('Server error:') and console.error(err): two calls
        '{"level":"ERROR","msg":"request failed"}',  # a JSON line is its own event
    ],
)
def test_builtin_node_starts_an_error_under_a_line_that_did_not_log_it(before: str) -> None:
    """Under a line at another level, a message printed by a call of its own, or a JSON
    line (even at ERROR), an error starts its own event."""
    trace = _find("TypeError: Cannot read")
    assert _around("node", "INFO up", [before, trace], "x") == ["INFO up", before, trace, "x"]


def test_builtin_node_keeps_json_lines_whole() -> None:
    """pino's lines, with the stack inside a field, are one event each, even in a row."""
    lines = [PINO, PINO.replace("50", "30"), PINO]
    assert _messages(_run(BUILTINS["node"], lines)) == lines


def test_builtin_node_joins_an_error_s_message_of_several_lines() -> None:
    """The lines of a message after its first, not indented, stay with the error: its
    first frame shows they were its message (AssertionError's `1 !== 2`)."""
    error = (
        "node:assert:125\n  throw new AssertionError(obj);\n  ^\n\n"
        "AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:\n\n1 !== 2\n\n"
        "    at Object.<anonymous> (/app/index.js:2:8)\n\nNode.js v20.10.0"
    )
    assert _around("node", "INFO up", [error], "INFO next") == ["INFO up", error, "INFO next"]


# pm2-runtime 7.0.4 (Node v20.20.2) in a container, cluster mode (`-i 1`): a rejected
# promise's error under pm2's own sentence, on stderr, as `docker logs` gave it.
PM2_SENTENCE = (
    "You have triggered an unhandledRejection, you may have forgotten to catch a Promise rejection:"
)
PM2_REJECTION = [
    PM2_SENTENCE,
    "Error: db down",
    "no retry",
    "    at Timeout._onTimeout (/app/reject.js:2:31)",
    "    at listOnTimeout (node:internal/timers:581:17)",
    "    at process.processTimers (node:internal/timers:519:7)",
]


def test_builtin_node_joins_the_error_pm2_runtime_prints_to_pm2_s_sentence() -> None:
    """pm2-runtime prints a rejected promise's reason under its own sentence: the
    sentence, the error and its message of two lines are one event."""
    error = "\n".join(PM2_REJECTION)
    assert _around("node", "INFO starting", PM2_REJECTION, "INFO still here") == [
        "INFO starting",
        error,
        "INFO still here",
    ]


@pytest.mark.parametrize("reason", [["boom"], ["Timeout: took too long", "again", _FRAME]])
def test_builtin_node_joins_whatever_pm2_s_sentence_introduces(reason: list[str]) -> None:
    """The line under pm2's sentence is the reason, whatever it is (a string rejected, an
    error of any name), and the reason's message lines stay with it up to its frame."""
    lines = ["INFO up", PM2_SENTENCE, *reason, "INFO next"]
    assert _messages(_run(BUILTINS["node"], lines)) == [
        "INFO up",
        "\n".join([PM2_SENTENCE, *reason]),
        "INFO next",
    ]


def test_builtin_node_starts_an_event_at_pm2_s_sentence() -> None:
    """pm2's sentence under lines held back after `Error: x` lets them go: it is no line
    of that message, and a frame under it does not join them."""
    lines = ["Error: x", "retrying", PM2_SENTENCE, "Error: db down", _FRAME]
    assert _messages(_run(BUILTINS["node"], lines)) == [
        "Error: x",
        "retrying",
        "\n".join(lines[2:]),
    ]


# What an app printed after an error's first line when it was no error at all (Node
# v20.20.2 in a container: console.error('Error: x') and two more calls).
NOT_AN_ERROR = ["Error: x", "retrying in 5s", "still waiting"]


@pytest.mark.parametrize(
    "after",
    [
        [],
        ["INFO next"],
        ['{"level":30,"msg":"up"}'],
        ["2026-12-05T08:00:00.000Z GET /health 200"],
        ["[Nest] 1  - 12/05/2026, 8:00:00 AM     LOG [RoutesResolver] AppController"],
        ["TypeError: boom", "    at f (/app/index.js:1:1)"],
        ["/app/index.js:3", "throw err;", "^", "", "Error: boom", "    at /app/index.js:3:7"],
        [PM2_SENTENCE, "Error: db down", _FRAME],
    ],
)
def test_builtin_node_keeps_lines_under_an_error_s_first_line_apart_without_a_frame(
    after: list[str],
) -> None:
    """Lines under `Error: x` that no frame follows (the lines end, a log record's line,
    JSON, another error begins) are one event each, as without the lookahead."""
    lines = [*NOT_AN_ERROR, *after]
    assert _messages(_run(BUILTINS["node"], lines)) == _messages(_run(_NO_LOOK, lines))
    assert _messages(_run(BUILTINS["node"], lines))[:3] == NOT_AN_ERROR


_NO_LOOK = dataclasses.replace(BUILTINS["node"], look=None)


def test_builtin_node_lets_lines_under_an_error_go_at_a_line_that_opens_another() -> None:
    """A line that opens another error, a log record's or JSON line lets what was held
    back go at once: it is not held until the end."""
    joiner = Joiner(BUILTINS["node"])
    records = _records([*NOT_AN_ERROR, "INFO next", "Error: y", "more", "{}"])
    assert [joiner.push(r, 0.0) for r in records[:3]] == [[], [], []]
    assert _messages(joiner.push(records[3], 0.0)) == NOT_AN_ERROR
    assert _messages(joiner.push(records[4], 0.0)) == ["INFO next"]
    assert joiner.push(records[5], 0.0) == []
    assert _messages(joiner.push(records[6], 0.0)) == ["Error: y", "more"]
    assert _messages(joiner.flush()) == ["{}"]


def test_builtin_node_joins_an_error_of_any_name_with_its_message() -> None:
    """An error whose name ends in neither Error nor Exception (`Timeout: took too long`)
    keeps its message's further lines, up to its first frame."""
    lines = ["INFO up", "Timeout: took too long", "after 3 attempts", _FRAME, "INFO next"]
    assert _messages(_run(BUILTINS["node"], lines)) == [
        "INFO up",
        "\n".join(lines[1:4]),
        "INFO next",
    ]


@pytest.mark.parametrize(
    "lines",
    [
        ["Status: ok", "ready"],
        ["Status: ok", "ready", "still waiting"],
        ["Status: ok", "Listening: 3000", "ready"],
        ["Ready", "listening on 3000"],
    ],
)
def test_builtin_node_keeps_plain_lines_apart_under_a_line_shaped_like_an_error(
    lines: list[str],
) -> None:
    """Lines under `Status: ok` (a log line, or an error's first line) that no frame
    follows are one event each."""
    assert _messages(_run(BUILTINS["node"], lines)) == lines


def test_builtin_node_takes_a_line_of_the_same_shape_for_another_error() -> None:
    """Under `Status: degraded`, `Timeout: gave up` is another error's first line, not a
    message line: the lines held back go apart, and its frame stays with it."""
    lines = ["Status: degraded", "retrying in 5s", "Timeout: gave up", _FRAME]
    assert _messages(_run(BUILTINS["node"], lines)) == [*lines[:2], "\n".join(lines[2:])]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # the stack NestJS's Logger prints under its ERROR line: one event
        (["ERROR [ExceptionsHandler] x", "Timeout: x", "again", _FRAME], [[0, 1, 2, 3]]),
        # no frame comes: the lines stay apart
        (["ERROR [Proxy] upstream failed", "Status: 502", "retrying"], [[0], [1], [2]]),
        # under `Status: 502`, `Timeout: x` is another error's first line
        (["ERROR upstream failed", "Status: 502", "Timeout: x", _FRAME], [[0], [1], [2, 3]]),
        # under a line at another level, an error of any name starts its own event
        (["INFO [App] x", "Timeout: x", _FRAME], [[0], [1, 2]]),
        (['{"level":"ERROR"}', "Timeout: x", _FRAME], [[0], [1, 2]]),
    ],
)
def test_builtin_node_keeps_an_error_of_any_name_with_the_log_line_that_logged_it(
    lines: list[str], expected: list[list[int]]
) -> None:
    """Under a log line at WARN, ERROR or FATAL, `Timeout: x` whose frame follows joins
    that line's event (as `TypeError: x` does, frame or not); without a frame, the lines
    stay apart."""
    assert _messages(_run(BUILTINS["node"], lines)) == [
        "\n".join(lines[i] for i in event) for event in expected
    ]


def test_builtin_node_keeps_a_message_line_of_that_shape_in_an_error_s_message() -> None:
    """Under `Error: request failed`, `Status: 500` is its message's second line."""
    lines = ["Error: request failed", "Status: 500", _FRAME]
    assert _messages(_run(BUILTINS["node"], lines)) == ["\n".join(lines)]


# What Node v20.20.2 printed in a container, as `docker logs --timestamps` gave its
# stderr: tests/corpus/node/named.js run by `node named.js`, pm2app.js run by
# `pm2-runtime start pm2app.js -i 1` (pm2 7.0.4, cluster mode), and nest.js by `node
# nest.js` with NO_COLOR=1 (@nestjs/common 10), each in /app.
NODE = CORPUS / "node"


def _docker_logs(name: str) -> list[LogRecord]:
    """The lines of `docker logs --timestamps` saved in tests/corpus/node, with their times."""
    lines = (NODE / name).read_text(encoding="utf-8").splitlines()
    return [
        LogRecord(META, "stderr", parse_ts(stamp.encode()), 0, text.encode())
        for stamp, text in (line.split(" ", 1) for line in lines)
    ]


@pytest.mark.parametrize(
    ("name", "firsts"),
    [
        (
            # named.js: errors named `Timeout` (`this.name = 'Timeout'`), one with a message
            # of two lines and a property, and plain lines between them.
            "named.stderr",
            [
                ("Timeout: took too long", 11),
                ("Status: degraded", 1),
                ("retrying in 5s", 1),
                ("Timeout: gave up", 8),
                ("Error: request failed", 9),
                ("Status: ok", 1),
                ("ready", 1),
            ],
        ),
        (
            # pm2app.js under pm2-runtime 7.0.4 in cluster mode: rejected promises (an Error,
            # a Timeout, each with a message of two lines; a string).
            "pm2_cluster.stderr",
            [(PM2_SENTENCE, 6), (PM2_SENTENCE, 6), (PM2_SENTENCE, 2)],
        ),
        (
            # nest.js: NestJS 10's ConsoleLogger.error(message, stack) of a `Timeout` and a
            # TypeError, as its ExceptionsHandler logs them, and an ERROR line that is
            # followed by plain lines, not by a stack.
            "nest.stderr",
            [
                ("[Nest] 1  - 12/05/2026, 5:55:47 PM   ERROR [ExceptionsHandler] took too long", 9),
                ("[Nest] 1  - 12/05/2026, 5:55:47 PM   ERROR [Proxy] upstream failed", 1),
                ("Status: 502", 1),
                ("retrying in 5s", 1),
                ("[Nest] 1  - 12/05/2026, 5:55:47 PM   ERROR [ExceptionsHandler] bad input", 9),
            ],
        ),
    ],
)
def test_builtin_node_makes_one_event_of_each_error_a_real_node_printed(
    name: str, firsts: list[tuple[str, int]]
) -> None:
    """What Node v20.20.2 printed in a container (`docker logs`, with Docker's times): one
    event per error, each plain line one event."""
    records = _docker_logs(name)
    events = _push_all(BUILTINS["node"], records)
    assert [(e.data.decode().split("\n")[0], e.lines) for e in events] == firsts
    assert b"\n".join(e.data for e in events) == b"\n".join(r.data for r in records)


@pytest.mark.parametrize("count", [LOOKAHEAD_LINES, LOOKAHEAD_LINES + 1])
def test_builtin_node_holds_at_most_a_few_lines_under_an_error_s_first(count: int) -> None:
    """Up to LOOKAHEAD_LINES message lines join the error before its frame; with more,
    the lines go as they would have without the lookahead."""
    lines = ["Error: x", *(f"message line {i}" for i in range(count)), _FRAME]
    got = _messages(_run(BUILTINS["node"], lines))
    if count <= LOOKAHEAD_LINES:
        assert got == ["\n".join(lines)]
    else:
        assert got == _messages(_run(_NO_LOOK, lines))
        assert len(got) == count + 1


@pytest.mark.parametrize("late", [LOOKAHEAD_WINDOW_NS, LOOKAHEAD_WINDOW_NS + 1])
@pytest.mark.parametrize("stamps", [(0, 1), (1, 0)])
def test_builtin_node_joins_only_lines_printed_with_the_error_s_first(
    late: int, stamps: tuple[int, int]
) -> None:
    """A message line or frame stamped more than LOOKAHEAD_WINDOW_NS after the error's
    first line is no part of it (Node prints an error with one write): the lines go as
    they would have without the lookahead."""
    lines = ["Error: x", "retrying in 5s", _FRAME]
    times = [0, *(late * n for n in stamps)]
    records = [
        LogRecord(META, "stderr", ts, 0, t.encode()) for ts, t in zip(times, lines, strict=True)
    ]
    joiner = Joiner(BUILTINS["node"])
    events = [e for r in records for e in joiner.push(r, 0.0)] + joiner.flush()
    joined = late <= LOOKAHEAD_WINDOW_NS
    assert _messages(events) == (["\n".join(lines)] if joined else [lines[0], "\n".join(lines[1:])])


@pytest.mark.parametrize("line", ["INFO next", "{}", "/app/index.js:3", "Error: y", "[Nest] 1"])
def test_builtin_node_never_joins_a_log_record_s_line_to_an_error_above_it(line: str) -> None:
    """A line that opens another error, a log record's or JSON line right under an
    error's first line is not held back: the error goes at once, and a frame under the
    line stays with it."""
    joiner = Joiner(BUILTINS["node"])
    first, second, frame = _records(["Error: x", line, _FRAME])
    assert joiner.push(first, 0.0) == []
    assert _messages(joiner.push(second, 0.0)) == ["Error: x"]
    assert joiner.push(frame, 0.0) == []
    assert _messages(joiner.flush()) == [f"{line}\n{_FRAME}"]


@pytest.mark.parametrize("max_lines", [2, 3, 4])
def test_builtin_node_joins_a_message_only_within_the_event_s_bounds(max_lines: int) -> None:
    """An error whose message and frame would not fit in max_lines is split as it would
    have been without the lookahead."""
    rule = dataclasses.replace(BUILTINS["node"], max_lines=max_lines)
    lines = ["Error: x", "line 2", "line 3", _FRAME]
    expected = _run(dataclasses.replace(rule, look=None), lines)
    assert _messages(_run(rule, lines)) == (
        ["\n".join(lines)] if max_lines >= 4 else _messages(expected)
    )


_NODE_LINES = st.sampled_from(
    [
        "Error: x",
        "Oops [Error]: y",
        "retrying",
        "",
        "  host: db",
        _FRAME,
        "INFO next",
        "{}",
        "/app/a.js:3",
        "  ^",
        "}",
        "Node.js v20.20.2",
        "Timeout: z",
        "Status: ok",
        PM2_SENTENCE,
        "ERROR [App] failed",
    ]
)
# Lines stamped in the same nanosecond, a little later, or more than the window later.
_STEPS = st.sampled_from([0, 0, 1, 1000, LOOKAHEAD_WINDOW_NS + 1])


@st.composite
def _node_runs(draw: st.DrawFn) -> tuple[Rule, list[LogRecord]]:
    """The node rule with small bounds, and lines as a node container might print them."""
    node = BUILTINS["node"]
    assert node.look is not None
    look = dataclasses.replace(node.look, lines=draw(st.integers(1, 3)))
    rule = dataclasses.replace(node, max_lines=draw(st.sampled_from([2, 3, 5, 500])), look=look)
    texts = draw(st.lists(_NODE_LINES, max_size=30))
    ts, records = 0, []
    for i, text in enumerate(texts):
        ts += draw(_STEPS)
        records.append(LogRecord(META, "stderr", ts, i, text.encode()))
    return rule, records


def _push_all(rule: Rule, records: list[LogRecord]) -> list[LogRecord]:
    joiner = Joiner(rule)
    return [e for r in records for e in joiner.push(r, 0.0)] + joiner.flush()


@given(_node_runs())
def test_builtin_node_keeps_every_line_once_in_order_and_within_bounds(
    run: tuple[Rule, list[LogRecord]],
) -> None:
    """With lines held back after errors, each line is in one event, in order, each event
    numbered by its first line, ending past its last, within max_lines."""
    rule, records = run
    events = _push_all(rule, records)
    assert sum(e.lines for e in events) == len(records)
    i = 0
    for event in events:
        first, last = records[i], records[i + event.lines - 1]
        assert (event.ts, event.seq, event.end()) == (first.ts, first.seq, last.end())
        assert event.lines <= rule.max_lines
        i += event.lines


@given(_node_runs(), st.data())
def test_builtin_node_rebuilds_the_same_events_when_read_again_from_any_of_them(
    run: tuple[Rule, list[LogRecord]], data: st.DataObject
) -> None:
    """Read again from the first line of any event (a restart: the cursor is past the
    events before it), the node rule makes the same events as it did the first time."""
    rule, records = run
    events = _push_all(rule, records)
    k = data.draw(st.integers(0, len(events)))
    start = sum(e.lines for e in events[:k])
    again = _push_all(rule, records[start:])
    assert [(e.ts, e.seq, e.data, e.lines) for e in again] == [
        (e.ts, e.seq, e.data, e.lines) for e in events[k:]
    ]


@given(st.lists(_NODE_LINES, max_size=40))
def test_builtin_node_s_lookahead_only_joins_events_it_would_have_made(texts: list[str]) -> None:
    """Within the default bounds, the lookahead only ever joins events made without it:
    every event starts where one would have started without it."""
    records = _records(texts)
    starts = {(e.ts, e.seq) for e in _push_all(_NO_LOOK, records)}
    assert {(e.ts, e.seq) for e in _push_all(BUILTINS["node"], records)} <= starts


def test_builtin_node_flushed_while_holding_lines_back_gives_them_as_they_would_have_gone() -> None:
    """A timeout, the container's end or shutdown while lines wait for a frame: each goes
    as it would have without the lookahead, once, in order, none lost."""
    joiner = Joiner(dataclasses.replace(BUILTINS["node"], timeout=2.0))
    records = _records(["Error: connect failed", "  host: db", "retrying disabled", "  on db"])
    assert [e for r in records for e in joiner.push(r, now=10.0)] == []
    assert joiner.holding == 4
    assert joiner.deadline == 12.0
    assert not joiner.due(11.9)
    assert joiner.due(12.0)
    events = joiner.flush()
    assert _messages(events) == ["Error: connect failed\n  host: db", "retrying disabled\n  on db"]
    assert [(e.ts, e.seq, e.end()) for e in events] == [
        (records[0].ts, records[0].seq, records[1].end()),
        (records[2].ts, records[2].seq, records[3].end()),
    ]
    assert joiner.holding == 0
    assert joiner.flush() == []


@pytest.mark.parametrize(
    "line", ["http://localhost:3000", "/data/orders.csv:12", "Listening on :3000", "^_^"]
)
def test_builtin_node_joins_the_next_line_only_under_a_place_node_names(line: str) -> None:
    """A line like a place (`/app/index.js:3`) but not a script's or Node's own does not
    take the line under it."""
    assert _messages(_run(BUILTINS["node"], [line, "next"])) == [line, "next"]


@pytest.mark.parametrize("name", ["node", "nodejs", "NodeJS", " Node "])
def test_node_and_nodejs_name_the_same_rule(name: str) -> None:
    """`logpipe.multiline=nodejs` is `node`, in any case."""
    shaping, warnings = shaping_from({"logpipe.multiline": name})
    assert warnings == []
    assert shaping is not None
    assert shaping.multiline == BUILTINS["node"]


def test_an_unknown_builtin_names_those_there_are() -> None:
    """`logpipe.multiline=javascript` is reported with every name the shipper accepts."""
    shaping, warnings = shaping_from({"logpipe.multiline": "javascript"})
    assert shaping is None
    assert warnings == [
        "label logpipe.multiline='javascript' is not one of "
        "['go', 'java', 'node', 'nodejs', 'python']"
    ]


@pytest.mark.parametrize(
    ("key", "value", "used", "shown"),
    [
        ("max_bytes", "100000000000", 4 * 1024 * 1024, "4194304 (4 MiB)"),
        ("max_lines", "1000000", 10_000, "10000"),
        ("max_lines", "1e400", 10_000, "10000"),  # inf: once an OverflowError
        ("max_bytes", "inf", 4 * 1024 * 1024, "4194304 (4 MiB)"),
        ("timeout", "3600s", 300.0, "300 s"),
        ("timeout", "inf", 300.0, "300 s"),  # once an event held for ever
    ],
)
def test_a_number_over_its_bound_is_reported_and_the_bound_used(
    key: str, value: str, used: float, shown: str
) -> None:
    """A held event lives in memory and becomes one document: each number label has an
    upper bound, and a value over it is reported and replaced by the bound."""
    shaping, warnings = shaping_from(
        {"logpipe.multiline": "java", f"logpipe.multiline.{key}": value}
    )
    assert shaping is not None
    assert shaping.multiline is not None
    assert getattr(shaping.multiline, key) == used
    assert warnings == [
        f"label logpipe.multiline.{key}={value!r} is over the most allowed, {shown}; "
        f"using {int(used)}"
    ]


def test_numbers_at_their_bounds_are_taken_as_they_are() -> None:
    """The bounds themselves are allowed, without a warning."""
    shaping, warnings = shaping_from(
        {
            "logpipe.multiline.pattern": "^ ",
            "logpipe.multiline.timeout": "300s",
            "logpipe.multiline.max_lines": "10000",
            "logpipe.multiline.max_bytes": "4194304",
        }
    )
    assert warnings == []
    assert shaping is not None
    rule = shaping.multiline
    assert rule is not None
    assert (rule.timeout, rule.max_lines, rule.max_bytes) == (300.0, 10_000, 4 * 1024 * 1024)


def test_the_bound_of_an_event_s_bytes_is_the_longest_line_kept_whole() -> None:
    """max_bytes is bounded as LOGPIPE_MAX_LINE_BYTES is: one event is one document."""
    assert BOUNDS["max_bytes"] == MAX_LINE_BYTES


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("timeout", "1h", "is not a positive number of seconds (5, 5s, 500ms); using 2.0"),
        ("timeout", "nan", "is not a positive number of seconds (5, 5s, 500ms); using 2.0"),
        ("max_lines", "2.5", "is not a positive whole number; using 500"),
        ("max_bytes", "-1", "is not a positive whole number; using 1048576"),
    ],
)
def test_a_number_the_shipper_cannot_use_says_what_it_expects(
    key: str, value: str, says: str
) -> None:
    """A bad number is reported with what the label takes, and the default is used."""
    _, warnings = shaping_from({"logpipe.multiline": "go", f"logpipe.multiline.{key}": value})
    assert warnings == [f"label logpipe.multiline.{key}={value!r} {says}"]


def test_labels_select_a_custom_rule_and_filters() -> None:
    """The multiline and include/exclude labels become one Shaping, bounds included."""
    shaping, warnings = shaping_from(
        {
            "logpipe.multiline.pattern": "^\\[",
            "logpipe.multiline.negate": "true",
            "logpipe.multiline.match": "after",
            "logpipe.multiline.timeout": "500ms",
            "logpipe.multiline.max_lines": "10",
            "logpipe.exclude_lines": "DEBUG",
        }
    )
    assert warnings == []
    assert shaping is not None
    assert shaping.multiline is not None
    assert shaping.multiline.negate
    assert shaping.multiline.timeout == 0.5
    assert shaping.multiline.max_lines == 10
    assert shaping.include is None
    assert shaping.exclude is not None


def test_no_hint_labels_mean_no_shaping() -> None:
    """A container without logpipe multiline or filter labels has its lines passed as they are."""
    assert shaping_from({"logpipe.parser": "json", "other": "x"}) == (None, [])


def test_invalid_labels_are_reported_and_ignored() -> None:
    """Bad regex, unknown built-in, bad negate/match/timeout: a warning each, never an error."""
    shaping, warnings = shaping_from({"logpipe.multiline": "cobol", "logpipe.include_lines": "("})
    assert shaping is None
    assert len(warnings) == 2
    shaping, warnings = shaping_from(
        {
            "logpipe.multiline": "java",
            "logpipe.multiline.negate": "maybe",
            "logpipe.multiline.timeout": "-1",
            "logpipe.multiline.max_lines": "2.5",
        }
    )
    assert shaping is not None
    assert shaping.multiline == BUILTINS["java"]
    assert len(warnings) == 2  # negate only matters with a pattern: not read for built-ins
    _, warnings = shaping_from({"logpipe.multiline.pattern": "x", "logpipe.multiline.match": "up"})
    assert any("match" in w for w in warnings)


@pytest.mark.parametrize("key", ["logpipe.include_lines", "logpipe.exclude_lines"])
def test_an_empty_filter_label_is_reported_and_ignored(key: str) -> None:
    """`logpipe.exclude_lines=` (compose's ${VAR:-}) would match, so drop, every line."""
    shaping, warnings = shaping_from({key: ""})
    assert shaping is None
    assert warnings == [f"label {key}='' is empty: ignored, as if it were not set"]


def test_an_empty_multiline_pattern_is_reported_and_not_set() -> None:
    """An empty pattern would join every line into one event; a built-in still applies."""
    shaping, warnings = shaping_from({"logpipe.multiline.pattern": ""})
    assert shaping is None
    assert warnings == [
        "label logpipe.multiline.pattern='' is empty: ignored, as if it were not set"
    ]
    shaping, warnings = shaping_from({"logpipe.multiline.pattern": "", "logpipe.multiline": "java"})
    assert shaping is not None
    assert shaping.multiline == BUILTINS["java"]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("pattern", "says"),
    [("^(?!DEBUG)", "invalid perl operator: (?!"), (r"(a)\1", "invalid escape sequence: \\1")],
)
def test_a_pattern_only_backtracking_can_run_is_reported(pattern: str, says: str) -> None:
    """Look-around and back-references are refused by RE2: a warning naming why, no filter."""
    shaping, warnings = shaping_from({"logpipe.exclude_lines": pattern})
    assert shaping is None
    (warning,) = warnings
    assert warning.startswith(
        f"label logpipe.exclude_lines={pattern!r} is not a regular expression"
    )
    assert warning.endswith(f"RE2 accepts (no look-around, no back-references): {says}")


def test_labels_and_collector_rules_share_one_re2_compiler() -> None:
    """A pattern RE2 refuses is one RegexRefused, carrying RE2's reason, from the
    shipper's labels and the collector's rules alike."""
    with pytest.raises(RegexRefused) as label:
        Pattern(r"(a)\1")
    with pytest.raises(RegexRefused) as rule:
        Regex(r"(a)\1")
    assert label.value.reason == rule.value.reason == "invalid escape sequence: \\1"
    assert str(rule.value) == (
        "the regular expression does not compile (RE2): invalid escape sequence: \\1"
    )


def test_the_shipper_imports_re2_only_when_a_container_needs_a_regex() -> None:
    """Importing the multiline rules pulls in none of RE2, the collector's compiler
    (only its table of JUL's level names), pydantic, aiohttp, elasticsearch or yaml, nor
    does starting the shipper pull in RE2 (most hosts use no regex); a built-in multiline
    rule imports RE2 and the compiler."""
    code = (
        "import sys\n"
        "def loaded(*names):\n"
        "    return sorted(m for m in sys.modules if m.split('.')[0] in names)\n"
        "import shipper.multiline\n"
        "print(loaded('collector', 're2', 'pydantic', 'aiohttp', 'elasticsearch', 'yaml'))\n"
        "import shipper.__main__\n"
        "print('re2' in sys.modules)\n"
        "started = set(sys.modules)\n"
        "shipper.multiline.shaping_from({'logpipe.multiline': 'java'})\n"
        "print(sorted(set(loaded('collector', 're2')) - started))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, check=True
    ).stdout
    at_import, at_start, in_use = out.splitlines()
    # collector.jul is data only: java.util.logging's level names
    assert json.loads(at_import.replace("'", '"')) == ["collector", "collector.jul"]
    assert at_start == "False"
    assert json.loads(in_use.replace("'", '"')) == [
        "collector.errors",
        "collector.rules",
        "collector.rules.regex",
        "re2",
        "re2._re2",
    ]


def test_a_pattern_that_backtracks_takes_linear_time() -> None:
    """(a+)+$ on 25 a's and a b held Python's re (so the event loop) for seconds."""
    shaping, warnings = shaping_from(
        {"logpipe.exclude_lines": "(a+)+$", "logpipe.multiline.pattern": "(a+)+$"}
    )
    assert shaping is not None
    assert shaping.multiline is not None
    assert warnings == []
    line = _records(["a" * 25 + "b"])[0]
    began = time.perf_counter()
    assert shaping.keeps(line)
    assert Joiner(shaping.multiline).push(line, 0.0) == []
    assert time.perf_counter() - began < 0.5


@given(st.lists(st.sampled_from(["keep me", "DEBUG noise", "INFO ok", "drop DEBUG"]), max_size=20))
def test_include_then_exclude_decide_which_events_are_kept(lines: list[str]) -> None:
    """An event is kept when it matches include_lines and does not match exclude_lines."""
    shaping = Shaping(include=Pattern("keep|INFO"), exclude=Pattern("DEBUG"))
    kept = [r.data.decode() for r in _records(lines) if shaping.keeps(r)]
    assert kept == [x for x in lines if ("keep" in x or "INFO" in x) and "DEBUG" not in x]


@given(
    st.sampled_from(["DEBUG", "^DEBUG", "GET /health$", "^\\[", "^a b$", "^", "é", "a\\.b", "a.b"]),
    st.text(alphabet="DEBUGa b.[é/Ht$\\", max_size=12),
)
def test_plain_text_patterns_match_as_re2_does(source: str, text: str) -> None:
    """The str shortcut for plain-text patterns gives RE2's answer (here, re's: the same)."""
    assert Pattern(source).search(text) == (re.search(source, text) is not None)


def test_tuning_labels_without_a_rule_are_warned_about() -> None:
    """logpipe.multiline.timeout on a container with no multiline rule did nothing,
    silently; each such label is now named, and lines pass as they are."""
    shaping, warnings = shaping_from(
        {"logpipe.multiline.timeout": "1s", "logpipe.multiline.negate": "true"}
    )
    assert shaping is None
    assert warnings == [
        f"label logpipe.multiline.{key} ignored: no logpipe.multiline or "
        "logpipe.multiline.pattern label gives a multiline rule for it to apply to"
        for key in ("negate", "timeout")
    ]
    _, warnings = shaping_from({"logpipe.multiline": "java", "logpipe.multiline.timeout": "1s"})
    assert warnings == []
