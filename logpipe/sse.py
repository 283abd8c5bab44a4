"""Server-Sent Events (`text/event-stream`) read line by line into events. Pure: no I/O.

The parts of the format the collector's tail uses: `event:`, `data:` (several data lines
join with newlines), `id:`, comment lines (`: keepalive`) and a blank line that ends an
event. An `id` is kept only once its event is complete, so a connection lost in the
middle of an event leaves the last complete event's id to resume from. An event of an
id alone is given too (with no data), as EventSource keeps such an id.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Event:
    """One complete event: its type (`message` when unnamed), data and id."""

    kind: str
    data: str
    id: str | None


@dataclass
class EventReader:
    """Collects the fields of the event being read; `feed` gives it when complete."""

    kind: str = ""
    data: list[str] = field(default_factory=list)
    id: str | None = None

    def feed(self, line: str) -> Event | None:
        """Read one line (without its line ending); the event it completes, if any."""
        if not line:
            return self.dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self.kind = value
        elif name == "data":
            self.data.append(value)
        elif name == "id" and "\0" not in value:
            self.id = value
        return None

    def dispatch(self) -> Event | None:
        """The event the blank line ends, if it had data or an id; the fields start afresh."""
        event = None
        if self.data or self.id is not None:
            event = Event(self.kind or "message", "\n".join(self.data), self.id)
        self.kind, self.data, self.id = "", [], None
        return event
