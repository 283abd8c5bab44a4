"""Join one stream's physical lines into events (stack traces), and filter events. Pure.

Per container, from its labels, with Filebeat's multiline semantics:

- ``logpipe.multiline.pattern``: a regular expression (Python syntax, searched);
- ``logpipe.multiline.negate``: ``true`` inverts it, so *not* matching is what counts;
- ``logpipe.multiline.match``: ``after`` (default): a counting line is appended to the
  event before it, any other line starts a new event; ``before``: a counting line is
  prepended to the next line, and the first line that does not count ends the event;
- ``logpipe.multiline.timeout``: an event waiting this long for its next line is sent
  as it is (default 2 s; ``5``, ``5s`` and ``500ms`` are understood);
- ``logpipe.multiline.max_lines`` / ``.max_bytes``: bounds of one event; a line that
  would cross a bound starts a new event (nothing is dropped);
- ``logpipe.multiline`` = ``java`` | ``python`` | ``go``: built-in rules for stack traces
  (below);
- ``logpipe.include_lines`` / ``logpipe.exclude_lines``: regular expressions applied to
  whole events after joining (as Filebeat does): an event is kept when it matches the
  include expression (if any) and not the exclude expression.

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
  starts an event; indented lines (``\tat ...``, ``\t... 5 more``, ``Suppressed:``) and
  ``Caused by:`` continue it.
- ``go``: ``panic:`` (and any line the rule does not know) starts an event; goroutine
  headers, function and file lines, ``created by``, ``[signal ...]``, blank lines and
  ``exit status 2`` continue it.

A joined record keeps the timestamp and sequence number of its first physical line (so
its document id does not change when it is read again) and carries in ``until`` the
position just past its last physical line, where the cursor may move.

Each container's lines go through these rules on their way to the queue, in its
follower (:mod:`shipper.shaping` keeps what a container holds back, and when).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from shipper.record import LogRecord

Match = Literal["after", "before"]

DEFAULT_TIMEOUT = 2.0
DEFAULT_MAX_LINES = 500
DEFAULT_MAX_BYTES = 1024 * 1024
PREFIX = "logpipe.multiline"


@dataclass(frozen=True, slots=True)
class Rule:
    """How to tell a line that continues an event from one that starts a new event."""

    pattern: re.Pattern[str]
    negate: bool = False
    match: Match = "after"
    # Built-ins only: a line matching `tail` also continues when the line before it was
    # indented (a Python traceback's last line, ``ValueError: bad``, after its frames).
    tail: re.Pattern[str] | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_lines: int = DEFAULT_MAX_LINES
    max_bytes: int = DEFAULT_MAX_BYTES
    # Built-ins only: a line matching `start` (a trace's first line) starts a new event
    # even where the pattern would join it, unless the line before it matches `lead`
    # (a chained traceback's "During handling...", a logger's ERROR line).
    start: re.Pattern[str] | None = None
    lead: re.Pattern[str] | None = None

    def counts(self, text: str, previous: str | None, in_trace: bool = False) -> bool:
        """Whether the line is one that `match` joins.

        `previous` is the event's last non-blank line; `in_trace` says the event began
        with a `start` line (only a trace has an exception line as its `tail`).
        """
        if self.opens(text):
            return (
                previous is not None and self.lead is not None and bool(self.lead.search(previous))
            )
        if (self.pattern.search(text) is not None) != self.negate:
            return True
        return (
            in_trace
            and self.tail is not None
            and previous is not None
            and previous[:1] in (" ", "\t")
            and self.tail.search(text) is not None
            # an exception group's closing box ends the traceback: a log line follows
            and _BOX_END.match(previous) is None
        )

    def opens(self, text: str) -> bool:
        """Whether the line is a trace's first line (built-ins only)."""
        return self.start is not None and self.start.search(text) is not None


_BOX_END = re.compile(r"[ \t]*\+-+$")

_EXCEPTION_LINE = r"(?:[a-zA-Z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)(?::|$)"
_JAVA = (
    r"^(?:[ \t]+\S"  # frames ("\tat ...") and any indented detail line
    r"|[ \t]*(?:Caused by|Suppressed): "
    r"|[ \t]*\.\.\. \d+ (?:more|common frames omitted))"
)
_JAVA_START = rf"^{_EXCEPTION_LINE}"
# A logger's message line that the exception printed under it belongs to.
_JAVA_LEAD = r"^\S.{0,80}?\b(?:WARN|WARNING|ERROR|SEVERE|FATAL)\b"
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

BUILTINS: dict[str, Rule] = {
    "java": Rule(re.compile(_JAVA), start=re.compile(_JAVA_START), lead=re.compile(_JAVA_LEAD)),
    "python": Rule(
        re.compile(_PYTHON),
        tail=re.compile(_PYTHON_TAIL),
        start=re.compile(_PYTHON_START),
        lead=re.compile(_PYTHON_LEAD),
    ),
    "go": Rule(re.compile(_GO)),
}


@dataclass(frozen=True, slots=True)
class Shaping:
    """A container's hints for its lines: how to join them, which events to keep."""

    multiline: Rule | None = None
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None

    def keeps(self, record: LogRecord) -> bool:
        """Whether the event passes include_lines / exclude_lines."""
        if self.include is None and self.exclude is None:
            return True
        text = _text(record)
        if self.include is not None and self.include.search(text) is None:
            return False
        return self.exclude is None or self.exclude.search(text) is None


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


def _regex(labels: dict[str, str], key: str, warnings: list[str]) -> re.Pattern[str] | None:
    value = labels.get(key)
    if value is None:
        return None
    try:
        return re.compile(value)
    except re.error as exc:
        warnings.append(f"label {key}={value!r} is not a valid regular expression: {exc}")
        return None


def _rule(labels: dict[str, str], warnings: list[str]) -> Rule | None:
    name = labels.get(PREFIX, "").strip().lower()
    base: Rule | None = None
    if f"{PREFIX}.pattern" in labels:
        pattern = _regex(labels, f"{PREFIX}.pattern", warnings)
        if pattern is None:
            return None
        if name:
            warnings.append(f"label {PREFIX}={name!r} ignored: {PREFIX}.pattern is set")
        base = Rule(pattern, _negate(labels, warnings), _match(labels, warnings))
    elif name:
        base = BUILTINS.get(name)
        if base is None:
            warnings.append(f"label {PREFIX}={name!r} is not one of {sorted(BUILTINS)}")
    if base is None:
        return None
    return Rule(
        base.pattern,
        base.negate,
        base.match,
        base.tail,
        _number(labels, "timeout", base.timeout, warnings),
        int(_number(labels, "max_lines", base.max_lines, warnings)),
        int(_number(labels, "max_bytes", base.max_bytes, warnings)),
        base.start,
        base.lead,
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
    raw = labels.get(f"{PREFIX}.{key}")
    if raw is None:
        return default
    value = raw.strip().lower()
    scale = 1.0
    if key == "timeout" and value.endswith("ms"):
        value, scale = value[:-2], 0.001
    elif key == "timeout" and value.endswith("s"):
        value = value[:-1]
    try:
        number = float(value) * scale
    except ValueError:
        number = -1.0
    if not number > 0 or (key != "timeout" and number != int(number)):
        warnings.append(f"label {PREFIX}.{key}={raw!r} is not a positive number; using {default}")
        return default
    return number


@dataclass(slots=True)
class Joiner:
    """One stream's event being assembled; feed it lines in order."""

    rule: Rule
    _held: list[LogRecord] = field(default_factory=list)
    _size: int = 0
    _previous: str | None = None
    _in_trace: bool = False
    _deadline: float = 0.0

    def push(self, record: LogRecord, now: float) -> list[LogRecord]:
        """Add a physical line; return the events it completes (zero, one or two)."""
        text = _text(record)
        counts = self.rule.counts(text, self._previous, self._in_trace)
        out: list[LogRecord] = []
        full = self._held and (
            len(self._held) >= self.rule.max_lines
            or self._size + 1 + len(record.data) > self.rule.max_bytes
        )
        starts_new = self.rule.match == "after" and not counts
        if self._held and (full or starts_new):
            out.append(self._take())
        if not self._held:
            self._in_trace = self.rule.opens(text)
        self._held.append(record)
        self._size += len(record.data) + (1 if len(self._held) > 1 else 0)
        if text.strip():  # a blank line inside a trace tells nothing about the next line
            self._previous = text
        self._deadline = now + self.rule.timeout
        if self.rule.match == "before" and not counts:
            out.append(self._take())
        return out

    def due(self, now: float) -> bool:
        """An event is held and its next line is overdue."""
        return bool(self._held) and now >= self._deadline

    @property
    def deadline(self) -> float | None:
        """When the held event is sent as it is if no line comes (None: nothing held)."""
        return self._deadline if self._held else None

    def flush(self) -> list[LogRecord]:
        """The held event, if any, as it is (timeout, container stopped, shutdown)."""
        return [self._take()] if self._held else []

    @property
    def holding(self) -> int:
        """Physical lines held."""
        return len(self._held)

    def _take(self) -> LogRecord:
        held, self._held, self._size = self._held, [], 0
        self._previous = None
        return join(held)


def join(records: list[LogRecord]) -> LogRecord:
    """One record for consecutive lines of one stream: the first's identity, the last's end."""
    first = records[0]
    if len(records) == 1:
        return first
    last = records[-1]
    return LogRecord(
        meta=last.meta,
        stream=first.stream,
        ts=first.ts,
        seq=first.seq,
        data=b"\n".join(r.data for r in records),
        truncated=any(r.truncated for r in records),
        lines=sum(r.lines for r in records),
        until=last.end(),
    )
