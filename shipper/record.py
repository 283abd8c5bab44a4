"""What flows from the followers to the sender: lines, events and gaps of containers."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    """One line, numbered among its stream's lines with the same timestamp."""

    meta: Meta
    stream: str
    ts: int
    seq: int
    data: bytes
    truncated: bool = False
    lines: int = 1


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


Record = LogRecord | EventRecord | GapRecord
