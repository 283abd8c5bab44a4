"""Join one stream's physical lines into events (stack traces), and filter events. Pure.

Per container, from its labels, with Filebeat's multiline semantics:

- ``logpipe.multiline.pattern``: a regular expression (RE2 syntax, as Filebeat's Go
  patterns; searched);
- ``logpipe.multiline.negate``: ``true`` inverts it, so *not* matching is what counts;
- ``logpipe.multiline.match``: ``after`` (default): a counting line is appended to the
  event before it, any other line starts a new event; ``before``: a counting line is
  prepended to the next line, and the first line that does not count ends the event;
- ``logpipe.multiline.timeout``: an event waiting this long for its next line is sent
  as it is (default 2 s, at most 300 s; ``5``, ``5s`` and ``500ms`` are understood);
- ``logpipe.multiline.max_lines`` / ``.max_bytes``: bounds of one event (default 500
  lines and 1 MiB, at most 10000 lines and 4 MiB); a line that would cross a bound starts
  a new event (nothing is dropped);
- ``logpipe.multiline`` = ``java`` | ``python`` | ``go`` | ``node`` (or ``nodejs``):
  built-in rules for stack traces (below);
- ``logpipe.include_lines`` / ``logpipe.exclude_lines``: regular expressions applied to
  whole events after joining (as Filebeat does): an event is kept when it matches the
  include expression (if any) and not the exclude expression.

Every expression runs on RE2 (:class:`Pattern`): Python's ``re`` backtracks, and one
line could hold a pattern like ``(a+)+$`` for seconds on the event loop, stalling every
container's shipping. RE2 takes time linear in the line and refuses what only
backtracking can do (look-around, back-references): such a label is reported and
ignored, as is an empty one (it would match every line: compose's ``${VAR:-}`` makes
them). A number the shipper cannot use (not a number, not positive, a fraction of a
line) is reported and the default is used; one over its upper bound (:data:`BOUNDS`: an
event is held in memory, and must stay a document Elasticsearch can index) is reported
and the bound is used. RE2 is imported, and a built-in rule compiled, when a container
first asks for one: most hosts have none, and RE2 would cost every shipper its memory.

The built-in rules start an event at a trace's first line, so the log line before it
stays an event of its own, and keep the trace's lines together up to its last one:

- ``python``: ``Traceback (most recent call last):`` (or ``+ Exception Group Traceback``)
  starts an event unless it follows ``During handling of the above exception...`` or
  ``The above exception was the direct cause...`` (a chained traceback); indented lines
  (frames, code, ``^^^^`` markers, exception group boxes), blank lines and those two
  sentences continue it, and so does the exception line (``ValueError: bad``,
  ``requests.exceptions.ConnectionError: ...``, ``KeyboardInterrupt``) right after an
  indented line of a traceback (not of any other event, nor after an exception group's
  closing box). ``ERROR:root:failed`` before a traceback is an event of its own.
- ``java``: an exception line (``java.lang.IllegalStateException: msg``) starts an event
  unless the line before it is a log line at ``WARN``, ``WARNING``, ``ERROR``,
  ``SEVERE`` or ``FATAL``: a logger prints the exception right under the message it was
  logged with, and the two stay one event. ``Exception in thread "main" ...`` always
  starts an event; indented lines (``\tat ...``, ``\t... 5 more``, ``Suppressed:``),
  ``Caused by:`` and blank lines continue it (Spring's ``... with root cause``, a blank
  line, then the exception, is one event). java.util.logging's default format writes a
  record on two lines, its time and source (``Dec 05, 2026 8:00:00 AM com.acme.Foo
  bar``), then its level and message (``SEVERE: message``), in the JVM locale's month,
  AM/PM marker and level name (``Dez. ...``, ``SCHWERWIEGEND: ...``): the second line
  continues the first only right after it, and an exception under it stays at ``SEVERE`` or
  ``WARNING``, as under any log line.
- ``go``: ``panic:`` (and any line the rule does not know) starts an event; goroutine
  headers, function and file lines, ``created by``, ``[signal ...]``, blank lines and
  ``exit status 2`` continue it.
- ``node``: an error as Node.js prints it (``console.error(err)``, an uncaught
  exception): any line the rule does not know starts an event (``Error: boom``,
  ``TypeError [ERR_INVALID_ARG_TYPE]: ...``, ``Server error: Error: boom`` from
  ``console.error('Server error:', err)``); indented lines (``    at fn (/app/x.js:3:9)``,
  the error's properties, nested ``[cause]: Error: ...`` and ``[errors]: [...]``), blank
  lines, the ``}`` closing the properties, ``caused by: ...`` (VError, pino),
  ``Emitted 'error' event ... at:``, ``Thrown at:``, ``(Use `node --trace-...` ...)`` and
  the ``Node.js v20.10.0`` Node prints last when it crashes continue it. An uncaught
  exception begins with where it was thrown (``/app/index.js:3``, ``node:events:497``,
  ``events.js:174``), the source line and a ``^`` caret line: the line after such a
  place, and the first non-blank line after the caret (``Error: boom``,
  ``[UnhandledPromiseRejection: ...]``, a thrown string), continue it whatever they are.
  As for ``java``, an error line right under a log line at ``WARN``, ``WARNING``,
  ``ERROR`` or ``FATAL`` (not a JSON line) stays in that line's event (NestJS's Logger
  prints the stack under its ``ERROR [ExceptionsHandler] message`` line); under any
  other line it starts its own. A JSON line (pino, winston, bunyan: the stack inside a
  field) is its own event. The lines of an error's message after its first are printed
  as they are, not indented, between its first line and its first frame (``Error:
  connect failed``, ``retrying disabled``, ``    at ...``): after an error's first line
  (or the line under an uncaught exception's caret) the lines that would start events
  are held back (:class:`Lookahead`) until a frame shows they are its message, and join
  it. They go as they would have gone without the lookahead at the first line that
  opens another error or a log record's (a place, JSON, ``[``, a time or a level first),
  after more than 20 of them, at a line stamped over 1 s after the error's first line
  (Node prints an error with one write), at a line the event would not hold within
  max_lines / max_bytes, and when the event is sent on its timeout or flushed. These
  decisions rest on the lines and their Docker timestamps alone, so a stream read again
  after a restart is joined the same way (but for what a timeout sent).

Blank lines that end a built-in rule's event (the line after them started the next one)
are left out of its text: they count among its lines, and ``until`` is past them. A
rule of one's own (``logpipe.multiline.pattern``) keeps every line it joined, as
Filebeat does.

A joined record keeps the timestamp and sequence number of its first physical line (so
its document id does not change when it is read again) and carries in ``until`` the
position just past its last physical line, where the cursor may move.

Each container's lines go through these rules on their way to the queue, in its
follower (:mod:`shipper.shaping` keeps what a container holds back, and when).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from collector import jul
from shipper.record import LogRecord

Match = Literal["after", "before"]

DEFAULT_TIMEOUT = 2.0
DEFAULT_MAX_LINES = 500
DEFAULT_MAX_BYTES = 1024 * 1024
# The most each number label may ask for. An event is held in the shipper's memory until
# its last line, and becomes one document: no longer than the longest line the shipper
# keeps whole (shipper.config.MAX_LINE_BYTES: a default Elasticsearch node can always
# index it). A deep recursion's trace (Java prints 1024 frames) fits in 10000 lines; a
# trace's lines come within milliseconds, and a longer wait only delays the event.
BOUNDS: dict[str, float] = {"timeout": 300.0, "max_lines": 10_000, "max_bytes": 4 * 1024 * 1024}
_BOUNDS_SHOWN = {"timeout": "300 s", "max_lines": "10000", "max_bytes": "4194304 (4 MiB)"}
PREFIX = "logpipe.multiline"
# Every label this module reads (the shipper warns about other logpipe.* keys).
LABELS = (
    PREFIX,
    *(f"{PREFIX}.{key}" for key in ("pattern", "negate", "match", "timeout")),
    *(f"{PREFIX}.{key}" for key in ("max_lines", "max_bytes")),
    "logpipe.include_lines",
    "logpipe.exclude_lines",
)


# RE2's constants for the search, set by the first compile (:func:`_compile`): most
# hosts have no container with a regular expression, and RE2 costs memory once imported.
UNANCHORED: Any = None
NO_SPAN: tuple[int, int] = (-1, -1)


def _compile(source: str) -> Any:
    """`source` compiled by RE2; the first call imports RE2 (RegexRefused: RE2 refuses it)."""
    global UNANCHORED, NO_SPAN
    from collector.rules import regex

    UNANCHORED, NO_SPAN = regex.UNANCHORED, regex.NO_SPAN
    return regex.compile_re2(source)


class Pattern:
    """A regular expression searched by RE2: time linear in the line, whatever the pattern.

    The search goes to RE2's own ``Match`` (kept by the ``re2`` wrapper as ``_regexp``)
    on the line's UTF-8, encoded once for the several patterns tried on a line in a row:
    the wrapper's match objects cost more than the search.
    """

    __slots__ = ("_literal", "_match", "_search", "source")

    def __init__(self, source: str) -> None:
        """Compile `source`; RegexRefused (a ValueError, with RE2's reason) when RE2 refuses it."""
        from collector.rules.regex import raw_match

        compiled = _compile(source)
        self.source = source
        self._search = compiled.search
        self._match = raw_match(compiled)
        self._literal = _literal(source)

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in `text`."""
        if self._literal is not None:
            # Most filters are plain words (``DEBUG``, ``^GET /health``): str's own
            # search does those exactly, in a fifth of the time of a call into RE2.
            start, literal, end = self._literal
            if start:
                return text == literal if end else text.startswith(literal)
            return text.endswith(literal) if end else literal in text
        if self._match is None:
            return self._search(text) is not None
        data = _utf8(text)
        return bool(self._match(UNANCHORED, data, 0, len(data))[0] != NO_SPAN)

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


class _Traits:
    """A built-in rule's patterns searched in one RE2 pass (an RE2 set): which match.

    A search costs about 1 us whatever the pattern, most of it the call: one call per
    line for all of a rule's patterns keeps a built-in rule as fast as it was on ``re``.
    """

    __slots__ = ("_bits", "_match")

    def __init__(self, patterns: list[tuple[int, Pattern]]) -> None:
        from re2 import _re2  # already imported: the patterns are compiled

        from collector.rules.regex import OPTIONS

        found = _re2.Set(_re2.RE2.Anchor.UNANCHORED, OPTIONS)
        for _, pattern in patterns:
            found.Add(pattern.source.encode())
        found.Compile()
        self._match = found.Match
        self._bits = [bit for bit, _ in patterns]

    def __call__(self, text: str) -> int:
        bits = 0
        for i in self._match(_utf8(text)):
            bits |= self._bits[i]
        return bits


_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ")
_SPECIAL = frozenset("\\.^$*+?()[]{}|")


def _literal(source: str) -> tuple[bool, str, bool] | None:
    """(anchored at the start, text, anchored at the end) when `source` is plain text,
    perhaps with ``^`` / ``$`` and escaped punctuation (``^\\[``); else None."""
    start = source.startswith("^")
    i, end, chars = int(start), len(source), []
    anchored_end = False
    while i < end:
        ch = source[i]
        if ch == "\\":
            escaped = source[i + 1 : i + 2]
            if escaped not in _PUNCTUATION or not escaped:
                return None
            chars.append(escaped)
            i += 2
            continue
        if ch == "$" and i == end - 1:
            anchored_end = True
        elif ch in _SPECIAL:
            return None
        else:
            chars.append(ch)
        i += 1
    return start, "".join(chars), anchored_end


_last: tuple[str, bytes] = ("", b"")


def _utf8(text: str) -> bytes:
    """`text` as UTF-8, encoded once for the patterns tried on it in a row."""
    global _last
    last_text, data = _last
    if last_text is not text:
        # A decoded line has no lone surrogate; "replace" only guards other callers.
        data = text.encode("utf-8", "replace")
        _last = (text, data)
    return data


# What a line is to a rule, one bit each: it matches the rule's pattern, start, tail,
# lead, or an exception group's closing box; it is indented; it matches the rule's head
# or second (a record's two first lines); it is a stack frame, an error's first line, a
# line no error's message goes on with, or a caret (a rule's lookahead: :class:`Lookahead`).
PATTERN, START, TAIL, LEAD, BOX_END, INDENTED, HEAD, SECOND = 1, 2, 4, 8, 16, 32, 64, 128
FRAME, OPENS, STOP, CARET = 256, 512, 1024, 2048

# How far the lines after an error's first line are held back, waiting for its first
# frame (:class:`Lookahead`): Node prints an error (message, frames, properties) with one
# write, which Docker stamps within microseconds, and a message runs on for a few lines.
LOOKAHEAD_LINES = 20
LOOKAHEAD_WINDOW_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Lookahead:
    """Built-ins only: the lines of an error's message after its first, not indented.

    Node prints ``new Error('connect failed\\nretrying disabled')`` with the message's
    further lines as they are, between the error's first line and its first frame. After
    a line that `opens` an error (or the line under an uncaught exception's `caret`), the
    lines that would start events of their own are held back: a `frame` joins them all to
    the error; a `stop` line (an error's first line, a log record's, JSON), more than
    `lines` of them, a line stamped more than `window` ns after the error's first, or a
    line past the rule's max_lines / max_bytes lets them go as events of their own.
    """

    frame: Pattern
    opens: Pattern
    stop: Pattern
    caret: Pattern
    lines: int = LOOKAHEAD_LINES
    window: int = LOOKAHEAD_WINDOW_NS


@dataclass(frozen=True, slots=True)
class Rule:
    """How to tell a line that continues an event from one that starts a new event."""

    pattern: Pattern
    negate: bool = False
    match: Match = "after"
    # Built-ins only: a line matching `tail` also continues when the line before it was
    # indented (a Python traceback's last line, ``ValueError: bad``, after its frames).
    tail: Pattern | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_lines: int = DEFAULT_MAX_LINES
    max_bytes: int = DEFAULT_MAX_BYTES
    # Built-ins only: a line matching `start` (a trace's first line) starts a new event
    # even where the pattern would join it, unless the line before it matches `lead`
    # (a chained traceback's "During handling...", a logger's ERROR line).
    start: Pattern | None = None
    lead: Pattern | None = None
    # Built-ins only: a line matching `second` continues right after a line matching
    # `head`, blank lines between (java.util.logging's `Dec 05, 2026 8:00:00 AM
    # com.acme.Foo bar`, then `SEVERE: message`; Node's caret, then the error).
    head: Pattern | None = None
    second: Pattern | None = None
    # Built-ins only: blank lines that end an event are left out of its message.
    trim: bool = False
    # Built-ins only: the lines after an error's first line that are held back until its
    # first frame shows whether its message ran on over them.
    look: Lookahead | None = None
    _traits: _Traits | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plain = self.start is None and self.tail is None and self.lead is None
        if plain and self.head is None and self.look is None:
            return
        patterns = [(PATTERN, self.pattern)]
        patterns += [(START, self.start)] if self.start is not None else []
        patterns += [(TAIL, self.tail), (BOX_END, _box_end())] if self.tail is not None else []
        patterns += [(LEAD, self.lead)] if self.lead is not None else []
        if self.head is not None and self.second is not None:
            patterns += [(HEAD, self.head), (SECOND, self.second)]
        if self.look is not None:
            look = self.look
            patterns += [(FRAME, look.frame), (OPENS, look.opens), (STOP, look.stop)]
            patterns += [(CARET, look.caret)]
        object.__setattr__(self, "_traits", _traits(tuple(patterns)))

    def traits(self, text: str) -> int:
        """What the line is to this rule (PATTERN, START, ... bits)."""
        indented = INDENTED if text[:1] in (" ", "\t") else 0
        if self._traits is None:
            return (PATTERN if self.pattern.search(text) else 0) | indented
        return self._traits(text) | indented

    def counts(self, line: int, previous: int | None, in_trace: bool = False) -> bool:
        """Whether the line (its `traits`) is one that `match` joins.

        `previous` is the traits of the event's last non-blank line; `in_trace` says the
        event began with a `start` line (only a trace has an exception line as its `tail`).
        """
        if line & SECOND and previous is not None and previous & HEAD:
            return True
        if line & START:
            return previous is not None and bool(previous & LEAD)
        if bool(line & PATTERN) != self.negate:
            return True
        return (
            in_trace
            and previous is not None
            and bool(previous & INDENTED)
            and bool(line & TAIL)
            # an exception group's closing box ends the traceback: a log line follows
            and not previous & BOX_END
        )


_TRAITS: dict[tuple[tuple[int, Pattern], ...], _Traits] = {}


def _traits(patterns: tuple[tuple[int, Pattern], ...]) -> _Traits:
    """The set of a built-in's patterns, compiled once (rules are rebuilt per container)."""
    traits = _TRAITS.get(patterns)
    if traits is None:
        traits = _TRAITS[patterns] = _Traits(list(patterns))
    return traits


@functools.cache
def _box_end() -> Pattern:
    """An exception group's closing box, compiled once, when a built-in rule first needs it."""
    return Pattern(r"^[ \t]*\+-+$")


_EXCEPTION_LINE = r"(?:[a-zA-Z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)(?::|$)"
_JAVA = (
    r"^(?:[ \t]+\S|[ \t]*$"  # frames ("\tat ..."), any indented detail line, blank lines
    r"|[ \t]*(?:Caused by|Suppressed): "
    r"|[ \t]*\.\.\. \d+ (?:more|common frames omitted))"
)
_JAVA_START = rf"^{_EXCEPTION_LINE}"
# A logger's message line that the exception printed under it belongs to.
# The level may open the line (`SEVERE: ...` of java.util.logging, `ERROR [main] ...`;
# in other languages `SCHWERWIEGEND: ...`, `警告: ...`).
# java.util.logging's SimpleFormatter (its default format) writes a record on two lines:
# the time and the source (`Dec 05, 2026 8:00:00 AM com.acme.Foo bar`), then the level
# and the message (`SEVERE: message`). The second joins the first only right after it.
# In other languages the JDK localizes the month (`Dez.`, `12月`, Catalan's `de des.`),
# the AM/PM marker (`A. M.`, `午前`), the digits (Arabic) and the level's name
# (`SCHWERWIEGEND: `, collector/jul.py).
_JUL_HEAD = (
    r"^(?:[^\s,]{1,8} )?[^\s,]{1,8} \p{Nd}\p{Nd}?, \p{Nd}{4} "
    r"\p{Nd}\p{Nd}?:\p{Nd}\p{Nd}:\p{Nd}\p{Nd} \S"
)
_JUL_SECOND = rf"^(?:{'|'.join(jul.all_names())}): "
_JAVA_LEAD = (
    r"^(?:(?:\S.{0,80}?)?\b(?:WARN|WARNING|ERROR|SEVERE|FATAL)\b"
    rf"|(?:{'|'.join(jul.names_of('SEVERE') + jul.names_of('WARNING'))}): )"
)
_PYTHON = (
    r"^(?:[ \t]+\S|[ \t]*$"
    r"|During handling of the above exception"
    r"|The above exception was the direct cause)"
)
_PYTHON_START = r"^(?:[ \t]*\+ Exception Group |)Traceback \(most recent call last\):"
_PYTHON_LEAD = r"^(?:During handling of the above exception|The above exception was the direct)"
_PYTHON_TAIL = r"^[A-Za-z_][\w.]*(?::.*)?$"
_GO = (
    r"^(?:[ \t]+\S|[ \t]*$"
    r"|goroutine \d+ .*\]:$|created by |\[signal |exit status \d+$|runtime stack:$"
    r"|\.\.\.\d+ frames elided\.\.\."
    r"|(?:panic|[\w/.-]*\.[\w.*()$/\[\]-]*)\(.*\)$)"  # frame lines: main.(*T).Run(...)
)

# Node.js's util.inspect of an error (console.error(err), an uncaught exception): what
# continues an event whatever the line before it.
_NODE = (
    r"^(?:[ \t]+\S|[ \t]*$"  # frames ("    at ..."), properties, nested causes; blank lines
    r"|\^+[ \t]*$"  # the caret under an uncaught exception's source line, not indented
    r"|\}[ \t]*$"  # the end of the error's properties (`... {`, `  code: 'ENOENT'`, `}`)
    r"|[Cc]aused by: "  # a cause as VError and pino's serializer print it
    r"|Emitted '[^']+' event .*at:$|Thrown at:$"  # an unhandled 'error' event; --trace-uncaught
    r"|\(Use `node --trace-"  # the hint under a warning or a thrown value that is no error
    r"|Node\.js v\d+\.\d+\.\d+)"  # the version Node prints last when it crashes
)
# An error's first line: `Error: boom`, `TypeError [ERR_INVALID_ARG_TYPE]: ...`.
_NODE_START = r"^(?:[A-Za-z_$][\w$]*)?(?:Error|Exception)(?: \[[\w$]+\])?(?::|$)"
# Where an uncaught exception was thrown (`/app/index.js:3`, `node:events:497`,
# `file:///app/index.mjs:2`, Node 14's `events.js:174`), and the caret under its source
# line: the next non-blank line (the source line; the error) continues, whatever it is.
_NODE_PLACE = (
    r"^(?:(?:node:[\w/.-]+|\S*\.(?:[cm]?[jt]s|[jt]sx)):\d+"
    r"|[ \t]*\^+[ \t]*)$"
)
_ANY = r"^"
# A frame of an error's stack (`    at fn (/app/x.js:3:9)`): its message is over.
_NODE_FRAME = r"^[ \t]+at \S"
# An error's first line as util.inspect prints it: `Error: boom`, `TypeError
# [ERR_INVALID_ARG_TYPE]: ...`, a subclass's `Oops [Error]: bad`, and after the message of
# `console.error('Server error:', err)`.
_NODE_ERROR = r"(?:[A-Za-z_$][\w$]*)?(?:Error|Exception)(?: \[[\w$]+\])?"
_NODE_OPENS = (
    rf"^{_NODE_ERROR}(?::|$)"
    rf"|^[A-Za-z_$][\w$]* \[{_NODE_ERROR}\](?::|$)"
    rf"|^[^{{\[\s].{{0,80}}? {_NODE_ERROR}: "
)
# A line no message goes on with: where an uncaught exception was thrown, JSON (pino,
# winston, bunyan), a bracket (`[Nest] 1  - ...`, `[Error: boom]`, pino-pretty's time), a
# log record's time or level.
_NODE_STOP = (
    r"^(?:node:[\w/.-]+|\S*\.(?:[cm]?[jt]s|[jt]sx)):\d+$"
    r"|^[{\[]"
    r"|^\d{4}-\d\d-\d\d[T ]\d\d:\d\d"
    r"|^(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\b"
)
_NODE_CARET = r"^[ \t]*\^+[ \t]*$"
# A log line at WARN, ERROR or FATAL that the error printed under it belongs to; never
# a JSON line (its logger put the stack in a field, and a JSON line stays one).
_NODE_LEAD = r"^(?:[^{\s].{0,80}?)?\b(?:WARN|WARNING|ERROR|FATAL)\b"

_BUILTIN_RULES: dict[str, Callable[[], Rule]] = {
    "java": lambda: Rule(
        Pattern(_JAVA),
        start=Pattern(_JAVA_START),
        lead=Pattern(_JAVA_LEAD),
        head=Pattern(_JUL_HEAD),
        second=Pattern(_JUL_SECOND),
        trim=True,
    ),
    "python": lambda: Rule(
        Pattern(_PYTHON),
        tail=Pattern(_PYTHON_TAIL),
        start=Pattern(_PYTHON_START),
        lead=Pattern(_PYTHON_LEAD),
        trim=True,
    ),
    "go": lambda: Rule(Pattern(_GO), trim=True),
    "node": lambda: Rule(
        Pattern(_NODE),
        start=Pattern(_NODE_START),
        lead=Pattern(_NODE_LEAD),
        head=Pattern(_NODE_PLACE),
        second=Pattern(_ANY),
        trim=True,
        look=Lookahead(
            Pattern(_NODE_FRAME), Pattern(_NODE_OPENS), Pattern(_NODE_STOP), Pattern(_NODE_CARET)
        ),
    ),
}
# Other names users give a built-in rule.
ALIASES = {"nodejs": "node"}


@functools.cache
def _builtin(name: str) -> Rule:
    """The built-in rule `name`, compiled once (KeyError: there is none)."""
    return _BUILTIN_RULES[name]()


class _Builtins(Mapping[str, Rule]):
    """The built-in rules by name, each compiled when a container first asks for it."""

    def __getitem__(self, name: str) -> Rule:
        return _builtin(name)

    def __iter__(self) -> Iterator[str]:
        return iter(_BUILTIN_RULES)

    def __len__(self) -> int:
        return len(_BUILTIN_RULES)


BUILTINS: Mapping[str, Rule] = _Builtins()


@dataclass(frozen=True, slots=True)
class Shaping:
    """A container's hints for its lines: how to join them, which events to keep."""

    multiline: Rule | None = None
    include: Pattern | None = None
    exclude: Pattern | None = None

    def keeps(self, record: LogRecord) -> bool:
        """Whether the event passes include_lines / exclude_lines."""
        if self.include is None and self.exclude is None:
            return True
        text = _text(record)
        if self.include is not None and not self.include.search(text):
            return False
        return self.exclude is None or not self.exclude.search(text)


def _text(record: LogRecord) -> str:
    return record.data.decode("utf-8", "replace")


def shaping_from(labels: dict[str, str]) -> tuple[Shaping | None, list[str]]:
    """The shaping the labels ask for (None: lines pass as they are), and warnings."""
    warnings: list[str] = []
    rule = _rule(labels, warnings)
    include = _regex(labels, "logpipe.include_lines", warnings)
    exclude = _regex(labels, "logpipe.exclude_lines", warnings)
    if rule is None and include is None and exclude is None:
        return None, warnings
    return Shaping(rule, include, exclude), warnings


def _given(labels: dict[str, str], key: str, warnings: list[str]) -> str | None:
    """The label's value; None when it is absent or empty (an empty one is reported)."""
    value = labels.get(key)
    if value == "":
        warnings.append(f"label {key}={value!r} is empty: ignored, as if it were not set")
        return None
    return value


def _regex(labels: dict[str, str], key: str, warnings: list[str]) -> Pattern | None:
    value = _given(labels, key, warnings)
    if value is None:
        return None
    from collector.rules.regex import RegexRefused

    try:
        return Pattern(value)
    except RegexRefused as exc:
        warnings.append(
            f"label {key}={value!r} is not a regular expression RE2 accepts (no look-around, "
            f"no back-references): {exc.reason}"
        )
        return None


def _rule(labels: dict[str, str], warnings: list[str]) -> Rule | None:
    name = (_given(labels, PREFIX, warnings) or "").strip().lower()
    base: Rule | None = None
    if _given(labels, f"{PREFIX}.pattern", warnings) is not None:
        pattern = _regex(labels, f"{PREFIX}.pattern", warnings)
        if pattern is None:
            return None
        if name:
            warnings.append(f"label {PREFIX}={name!r} ignored: {PREFIX}.pattern is set")
        base = Rule(pattern, _negate(labels, warnings), _match(labels, warnings))
    elif name:
        base = BUILTINS.get(ALIASES.get(name, name))
        if base is None:
            names = sorted([*BUILTINS, *ALIASES])
            warnings.append(f"label {PREFIX}={name!r} is not one of {names}")
    if base is None:
        return None
    return dataclasses.replace(
        base,
        timeout=_number(labels, "timeout", base.timeout, warnings),
        max_lines=int(_number(labels, "max_lines", base.max_lines, warnings)),
        max_bytes=int(_number(labels, "max_bytes", base.max_bytes, warnings)),
    )


def _negate(labels: dict[str, str], warnings: list[str]) -> bool:
    value = labels.get(f"{PREFIX}.negate", "false").strip().lower()
    if value not in ("true", "false"):
        warnings.append(f"label {PREFIX}.negate={value!r} is not true or false; using false")
    return value == "true"


def _match(labels: dict[str, str], warnings: list[str]) -> Match:
    value = labels.get(f"{PREFIX}.match", "after").strip().lower()
    if value == "before":
        return "before"
    if value != "after":
        warnings.append(f"label {PREFIX}.match={value!r} is not after or before; using after")
    return "after"


def _number(labels: dict[str, str], key: str, default: float, warnings: list[str]) -> float:
    """The label's number: the default when it is none the shipper can use, at most BOUNDS."""
    raw = labels.get(f"{PREFIX}.{key}")
    if raw is None:
        return default
    number = _parse_number(key, raw)
    if not number > 0:  # not a number (NaN too), or not positive
        what = "number of seconds (5, 5s, 500ms)" if key == "timeout" else "whole number"
        warnings.append(f"label {PREFIX}.{key}={raw!r} is not a positive {what}; using {default}")
        return default
    bound = BOUNDS[key]
    if number > bound:  # `inf` and `1e400` too
        warnings.append(
            f"label {PREFIX}.{key}={raw!r} is over the most allowed, {_BOUNDS_SHOWN[key]}; "
            f"using {int(bound)}"
        )
        return bound
    if key != "timeout" and number != int(number):
        warnings.append(
            f"label {PREFIX}.{key}={raw!r} is not a positive whole number; using {default}"
        )
        return default
    return number


def _parse_number(key: str, raw: str) -> float:
    """The label's value as a number (a timeout in seconds); NaN when it is none."""
    value = raw.strip().lower()
    scale = 1.0
    if key == "timeout" and value.endswith("ms"):
        value, scale = value[:-2], 0.001
    elif key == "timeout" and value.endswith("s"):
        value = value[:-1]
    try:
        return float(value) * scale
    except ValueError:
        return float("nan")


# A physical line with what it is to the rule: its text and traits.
_Line = tuple[LogRecord, str, int]


@dataclass(slots=True)
class Joiner:
    """One stream's event being assembled; feed it lines in order.

    With a rule's :class:`Lookahead`, the lines after an error's first line that would
    start events of their own are held back (``_ahead``) until they are known to be its
    message (a frame comes: they join it) or not (they go on as they would have without
    the lookahead). Events come out in the order of their lines, each line in one event.
    """

    rule: Rule
    _held: list[LogRecord] = field(default_factory=list)
    _size: int = 0
    _previous: int | None = None  # traits of the event's last non-blank line
    _in_trace: bool = False
    _deadline: float = 0.0
    _ahead: list[_Line] = field(default_factory=list)  # held back after the event
    _ahead_size: int = 0
    _awaiting: bool = False  # the event is an error whose first frame has not come yet
    _opened: int = 0  # the timestamp of that error's first line

    def push(self, record: LogRecord, now: float) -> list[LogRecord]:
        """Add a physical line; return the events it completes (none, one or more)."""
        text = _text(record)
        line = self.rule.traits(text)
        if not self._ahead:  # most lines: nothing held back
            return self._add(record, text, line, now, True)
        return self._push((record, text, line), now)

    def due(self, now: float) -> bool:
        """An event is held and its next line is overdue."""
        return bool(self._held) and now >= self._deadline

    @property
    def deadline(self) -> float | None:
        """When the held event is sent as it is if no line comes (None: nothing held)."""
        return self._deadline if self._held else None

    def flush(self) -> list[LogRecord]:
        """Every line held, as events (timeout, container stopped, shutdown).

        Lines held back after an error go as they would have gone without the lookahead.
        """
        out = self._let_go(self._deadline, look=False)
        return out + ([self._take()] if self._held else [])

    @property
    def holding(self) -> int:
        """Physical lines held."""
        return len(self._held) + len(self._ahead)

    def _push(self, item: _Line, now: float) -> list[LogRecord]:
        out: list[LogRecord] = []
        while self._ahead:
            verdict = self._judge(item)
            if verdict == "hold":
                self._hold(item, now)
                return out
            if verdict == "join":
                self._join_ahead()
                break
            # Released: a lookahead begun by the lines released judges this line in turn.
            out += self._let_go(now, look=True)
        return out + self._add(*item, now, True)

    def _add(
        self, record: LogRecord, text: str, line: int, now: float, look: bool
    ) -> list[LogRecord]:
        """The line into the event, or starting the next (without a lookahead begun by it
        unless `look`)."""
        rule, previous = self.rule, self._previous
        counts = rule.counts(line, previous, self._in_trace)
        out: list[LogRecord] = []
        full = self._held and (
            len(self._held) >= rule.max_lines or self._size + 1 + len(record.data) > rule.max_bytes
        )
        starts_new = rule.match == "after" and not counts
        if starts_new and self._awaiting and look and not full and self._may_hold(record, line):
            self._hold((record, text, line), now)
            return out
        if self._held and (full or starts_new):
            out.append(self._take())
        if not self._held:
            self._in_trace = bool(line & START)
        self._held.append(record)
        self._size += len(record.data) + (1 if len(self._held) > 1 else 0)
        if text.strip():  # a blank line inside a trace tells nothing about the next line
            self._previous = line
            if rule.look is not None and (
                self._awaiting or line & OPENS or (previous is not None and previous & CARET)
            ):
                self._await(record, line, previous)
        self._deadline = now + rule.timeout
        if rule.match == "before" and not counts:
            out.append(self._take())
        return out

    def _await(self, record: LogRecord, line: int, previous: int | None) -> None:
        """Whether the event, with this non-blank line last, is an error before its frames."""
        if line & FRAME:
            self._awaiting = False
        elif line & OPENS or (len(self._held) > 1 and previous is not None and previous & CARET):
            self._awaiting, self._opened = True, record.ts
        elif len(self._held) > 1 and not line & INDENTED:
            self._awaiting = False  # `}`, `Node.js v20.10.0`: past the error's message

    def _may_hold(self, record: LogRecord, line: int) -> bool:
        """Whether a line that would start an event may be the message of the error held."""
        look = self.rule.look
        return (
            look is not None
            and self._awaiting
            and not line & (OPENS | STOP)
            and record.ts - self._opened <= look.window
        )

    def _judge(self, item: _Line) -> str:
        """What a line does to the lines held back: hold it too, join them, or let them go."""
        record, _, line = item
        look, rule = self.rule.look, self.rule
        assert look is not None
        lines = len(self._held) + len(self._ahead) + 1
        size = self._size + self._ahead_size + 1 + len(record.data)
        if line & (OPENS | STOP) or record.ts - self._opened > look.window:
            return "release"
        if lines > rule.max_lines or size > rule.max_bytes:
            return "release"
        if line & FRAME:
            return "join"
        return "hold" if len(self._ahead) < look.lines else "release"

    def _hold(self, item: _Line, now: float) -> None:
        self._ahead.append(item)
        self._ahead_size += 1 + len(item[0].data)
        self._deadline = now + self.rule.timeout

    def _join_ahead(self) -> None:
        """The lines held back are the error's message: into its event."""
        for record, text, line in self._ahead:
            self._held.append(record)
            if text.strip():
                self._previous = line
        self._size += self._ahead_size
        self._ahead, self._ahead_size = [], 0

    def _let_go(self, now: float, look: bool) -> list[LogRecord]:
        """The lines held back, as they would have gone without the lookahead: the first
        starts an event; the others may begin a lookahead again if `look`."""
        ahead, self._ahead, self._ahead_size = self._ahead, [], 0
        out: list[LogRecord] = []
        for i, item in enumerate(ahead):
            out += self._push(item, now) if look and i else self._add(*item, now, False)
        return out

    def _take(self) -> LogRecord:
        held, self._held, self._size = self._held, [], 0
        self._previous = None
        self._awaiting = False
        return join(held, self.rule.trim)


def join(records: list[LogRecord], trim: bool = False) -> LogRecord:
    """One record for consecutive lines of one stream: the first's identity, the last's end.

    `trim` leaves the blank lines that end the event out of its data (they still count
    in `lines`, and `until` is still past them).
    """
    first = records[0]
    if len(records) == 1:
        return first
    last = records[-1]
    shown = len(records)
    while trim and shown > 1 and not records[shown - 1].data.strip():
        shown -= 1
    return LogRecord(
        meta=last.meta,
        stream=first.stream,
        ts=first.ts,
        seq=first.seq,
        data=b"\n".join(r.data for r in records[:shown]),
        truncated=any(r.truncated for r in records),
        lines=sum(r.lines for r in records),
        until=last.end(),
    )
