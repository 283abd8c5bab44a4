"""`logpipe tail`: the last lines, then every new one, across collector restarts.

Each line event carries an id, and so does the event that ends the starting lines; the
last id received is sent back as `Last-Event-ID` on every reconnect, alone with the
filters (no `since`: a resume goes on by arrival, and a late line with an old
@timestamp is new too), and the collector goes on exactly after it: no line printed
twice, none left out. A collector that sends no id before the first line leaves none
to resume from; a reconnect then asks for the lines since the tail first connected
(less a margin for lines still on their way into Elasticsearch). Lost connections,
timeouts (the collector sends a keepalive every 15 s), 5xx and 429 answers are retried
with backoff.py's delays, with a notice on stderr; other errors (401/403, 400, 404) end
the tail, and so does any error before the first connection (nothing was shown yet:
better say so at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import orjson

from logpipe.backoff import Backoff
from logpipe.client import Answer, Endpoint, get
from logpipe.closed import Closed, from_event, reason_of_event, unchecked_warning
from logpipe.document import Document, parse_document
from logpipe.errors import CollectorError, LogpipeError, Refused, Unavailable, Unreachable
from logpipe.query import Filters
from logpipe.sse import Event, EventReader
from logpipe.timespec import nanos

EVENT_STREAM = "text/event-stream"
MAX_LINES = 10_000  # the collector's largest `lines`
IN_FLIGHT_MARGIN = timedelta(seconds=10)
READ_TIMEOUT = 45.0  # three missed keepalives


@dataclass(frozen=True)
class TailRequest:
    """What to follow, and how many earlier lines to start with."""

    filters: Filters
    lines: int = 10


@dataclass
class Position:
    """How far the tail got: the id of the last line printed, when it first connected."""

    last_id: str | None = None
    connected_at: datetime | None = None

    def params(self, request: TailRequest) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """The query parameters and headers of the next connection."""
        if self.last_id is not None:
            resume = replace(request.filters, since=None)
            return resume.params(), {"Last-Event-ID": self.last_id}
        if self.connected_at is None:
            return [*request.filters.params(), ("lines", str(request.lines))], {}
        since = nanos(self.connected_at - IN_FLIGHT_MARGIN)
        if request.filters.since is not None:
            since = max(since, request.filters.since)
        filters = replace(request.filters, since=since)
        return [*filters.params(), ("lines", str(MAX_LINES))], {}


def retryable(exc: LogpipeError) -> bool:
    """Whether waiting may fix it: no connection, 5xx, or a limit (429)."""
    if isinstance(exc, Unreachable | Unavailable):
        return True
    return isinstance(exc, Refused) and exc.status == 429


@dataclass
class Tail:
    """One `logpipe tail`: prints lines through `emit`, notices through `notice`."""

    endpoint: Endpoint
    request: TailRequest
    emit: Callable[[Document], None]
    notice: Callable[[str], None]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    position: Position = field(default_factory=Position)
    backoff: Backoff = field(default_factory=Backoff)
    lost_since: float | None = None
    shown: bool = False
    closed: Closed | None = None  # the closed indices last told of
    unchecked: str | None = None  # why they could not be checked, last told of

    def run(self) -> None:
        """Follow until interrupted; raises the first error waiting cannot fix."""
        while True:
            try:
                self.follow_once()
            except LogpipeError as exc:
                if self.position.connected_at is None or not retryable(exc):
                    raise
                self.wait(exc)

    def follow_once(self) -> None:
        """One connection: open it, print its events until it ends."""
        params, headers = self.position.params(self.request)
        answer = get(self.endpoint, "/v1/tail", params, headers, accept=EVENT_STREAM)
        try:
            if self.position.connected_at is None:
                self.position.connected_at = self.clock()
            if self.lost_since is not None:
                self.reconnected()
            self.read(answer)
        finally:
            answer.close()
        raise Unreachable(f"connection to the collector at {self.endpoint.url} ended")

    def read(self, answer: Answer) -> None:
        """Print each event of the stream as it completes."""
        reader = EventReader()
        for line in answer.lines():
            self.backoff.reset()
            event = reader.feed(line)
            if event is not None:
                self.handle(event)

    def handle(self, event: Event) -> None:
        """A line is printed; a `missed` event is told on stderr, and a `closed` or
        `closed_unchecked` one unless it tells what was told already (each connection
        sends it again); any id is kept
        (the one without data too: where the tail stands after its starting lines)."""
        if event.kind == "line":
            try:
                doc = parse_document(event.data)
            except CollectorError as exc:
                self.notice(f"skipped an event the collector sent: {exc}")
            else:
                self.emit(doc)
                self.shown = True
        elif event.kind == "missed":
            self.notice(missed_text(event.data))
        elif event.kind == "closed":
            closed = from_event(event.data)
            if closed is not None and closed != self.closed:
                self.closed = closed
                self.notice(closed.warning())
        elif event.kind == "closed_unchecked":
            reason = reason_of_event(event.data)
            if reason is not None and reason != self.unchecked:
                self.unchecked = reason
                self.notice(unchecked_warning("the tail", reason))
        if event.id:
            self.position.last_id = event.id

    def wait(self, exc: LogpipeError) -> None:
        """Tell of the first failure of an outage, then wait before the next attempt."""
        if self.lost_since is None:
            self.lost_since = time.monotonic()
            self.notice(f"{exc}; reconnecting (Ctrl-C to stop)")
        retry_after = exc.retry_after if isinstance(exc, CollectorError) else None
        self.sleep(self.backoff.next(retry_after))

    def reconnected(self) -> None:
        """Tell that the stream is back (as it answers, not at its first event: a keepalive
        may take 15 s), and from where it goes on."""
        lost = time.monotonic() - (self.lost_since or 0.0)
        self.lost_since = None
        if self.position.last_id is None:
            where = "with the lines since it first connected"
        else:
            where = "after the last line shown" if self.shown else "where it left off"
        self.notice(f"reconnected after {lost:.0f}s; going on {where}")


def missed_text(data: str) -> str:
    """The notice for a `missed` event."""
    try:
        count = orjson.loads(data).get("missed")
    except (orjson.JSONDecodeError, AttributeError):
        count = None
    lines = f"{count} lines" if isinstance(count, int) else "some lines"
    return (
        f"missed {lines}: this tail read more slowly than they came and the collector "
        "skipped them (narrow the filters, or use `logpipe search` for the whole range)"
    )
