"""One stream's physical lines joined into events by a rule, in order, each line once."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipper.multiline.rules import (
    CARET,
    FRAME,
    INDENTED,
    LEAD,
    NAMED,
    OPENS,
    START,
    STOP,
    Rule,
    text_of,
)
from shipper.record import LogRecord

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
    _named: bool = False  # ... or may be: its first line is only `named` (`Timeout: x`)
    _opened: int = 0  # the timestamp of that error's first line

    def push(self, record: LogRecord, now: float) -> list[LogRecord]:
        """Add a physical line; return the events it completes (none, one or more)."""
        text = text_of(record)
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
        if (
            starts_new
            and look
            and not full
            and (
                (self._awaiting and self._may_hold(record, line))
                or (previous is not None and previous & LEAD and self._under_lead(record, line))
            )
        ):
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
                self._awaiting
                or line & (OPENS | NAMED)
                or (previous is not None and previous & CARET)
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
            self._awaiting, self._named, self._opened = True, False, record.ts
        elif line & NAMED and len(self._held) == 1:
            self._awaiting, self._named, self._opened = True, True, record.ts
        elif len(self._held) > 1 and not line & INDENTED:
            self._awaiting = False  # `}`, `Node.js v20.10.0`: past the error's message

    def _may_hold(self, record: LogRecord, line: int) -> bool:
        """Whether a line that would start an event may be the message of the error held."""
        look = self.rule.look
        return (
            look is not None
            and self._awaiting
            and not line & self._stops()
            and record.ts - self._opened <= look.window
        )

    def _under_lead(self, record: LogRecord, line: int) -> bool:
        """Whether a line that would start an event under a `lead` line may be the first
        line of the error that log line was written with (`Timeout: took too long` under
        `ERROR [ExceptionsHandler] took too long`); if so, it is held, and the lines under
        it as its message's, until a frame shows it is (as `TypeError: ...` always is)."""
        if self.rule.look is None or self._awaiting:
            return False
        if not line & NAMED or line & (OPENS | STOP):
            return False
        self._awaiting, self._named, self._opened = True, True, record.ts
        return True

    def _stops(self) -> int:
        """The traits of a line that lets the lines held back under the error go."""
        return OPENS | STOP | NAMED if self._named else OPENS | STOP

    def _judge(self, item: _Line) -> str:
        """What a line does to the lines held back: hold it too, join them, or let them go."""
        record, _, line = item
        look, rule = self.rule.look, self.rule
        assert look is not None
        lines = len(self._held) + len(self._ahead) + 1
        size = self._size + self._ahead_size + 1 + len(record.data)
        if line & self._stops() or record.ts - self._opened > look.window:
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
        written=last.written,
    )
