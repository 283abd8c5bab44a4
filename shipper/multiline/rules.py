"""A multiline rule: what a line is to it, and whether it continues the event before it."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

from shipper.multiline.patterns import Pattern, Traits
from shipper.record import LogRecord

Match = Literal["after", "before"]

DEFAULT_TIMEOUT = 2.0
DEFAULT_MAX_LINES = 500
DEFAULT_MAX_BYTES = 1024 * 1024


# What a line is to a rule, one bit each: it matches the rule's pattern, start, tail,
# lead, or an exception group's closing box; it is indented; it matches the rule's head
# or second (a record's two first lines); it is a stack frame, an error's first line, a
# line no error's message goes on with, a caret, or what may be an error's first line (a
# rule's lookahead: :class:`Lookahead`).
PATTERN, START, TAIL, LEAD, BOX_END, INDENTED, HEAD, SECOND = 1, 2, 4, 8, 16, 32, 64, 128
FRAME, OPENS, STOP, CARET, NAMED = 256, 512, 1024, 2048, 4096

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
    A line that may be an error's first line or a log line (`named`: ``Timeout: took too
    long``, ``Status: ok``) holds the lines under it back too, but then a line of its
    shape lets them go as well.
    """

    frame: Pattern
    opens: Pattern
    stop: Pattern
    caret: Pattern
    named: Pattern
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
    _traits: Traits | None = field(default=None, init=False, repr=False, compare=False)

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
            patterns += [(CARET, look.caret), (NAMED, look.named)]
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


_TRAITS: dict[tuple[tuple[int, Pattern], ...], Traits] = {}


def _traits(patterns: tuple[tuple[int, Pattern], ...]) -> Traits:
    """The set of a built-in's patterns, compiled once (rules are rebuilt per container)."""
    traits = _TRAITS.get(patterns)
    if traits is None:
        traits = _TRAITS[patterns] = Traits(list(patterns))
    return traits


@functools.cache
def _box_end() -> Pattern:
    """An exception group's closing box, compiled once, when a built-in rule first needs it."""
    return Pattern(r"^[ \t]*\+-+$")


def text_of(record: LogRecord) -> str:
    """The line's text, as the rules search it."""
    return record.data.decode("utf-8", "replace")
