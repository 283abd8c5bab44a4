"""What flows from the followers to the sender: lines, events and gaps of containers."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipper.cursor import Position


@dataclass(slots=True)
class Meta:
    """A container as documents describe it; replaced (not mutated) when it changes."""

    id: str
    name: str
    image: str
    labels: dict[str, str] = field(default_factory=dict)
    parser: str = "auto"
    dataset: str | None = None
    namespace: str | None = None


@dataclass(slots=True)
class LogRecord:
    """One line (or several joined), numbered by its first line among equal timestamps.

    A joined record keeps the (ts, seq) of its first physical line, so its document id
    is the same when it is read again; `until` is the position just past its last
    physical line, where the cursor may move once the record is safe (or the start of
    a window of its stream not audited yet, shipper/logfiles/audit.py). A record whose
    `until` is held back at such a window keeps in `written` how far the lines read had
    come: the saved cursor notes it, and the lines up to there, read again from Docker
    at the next start, go marked as sent again (shipper/cursor.py).
    """

    meta: Meta
    stream: str
    ts: int
    seq: int
    data: bytes
    truncated: bool = False
    lines: int = 1
    until: Position | None = None
    written: Position | None = None  # past the lines read, where `until` is held back

    def end(self) -> Position:
        """The stream position just past this record's last physical line."""
        return self.until if self.until is not None else Position(self.ts, self.seq + 1)


@dataclass(slots=True)
class EventRecord:
    """A container lifecycle event."""

    meta: Meta
    ts: int
    action: str
    exit_code: int | None = None
    detail: str | None = None


@dataclass(slots=True)
class GapRecord:
    """Lines lost before they could be read."""

    meta: Meta
    stream: str
    from_ts: int
    to_ts: int
    reason: str
    estimated_lines: int | None = None


@dataclass(slots=True)
class MarkRecord:
    """Lines read and deliberately not shipped (excluded by a label): moves the cursor only."""

    meta: Meta
    stream: str
    until: Position
    written: Position | None = None  # as LogRecord's


@dataclass(slots=True)
class DoneRecord:
    """The container's log was read to its end; once all before it is on disk, it is done
    (unless a later follow of it began: `follow` is the number CursorStore.begin gave)."""

    meta: Meta
    follow: int = 0


Record = LogRecord | EventRecord | GapRecord | MarkRecord | DoneRecord
