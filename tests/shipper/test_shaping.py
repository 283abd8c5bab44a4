"""Unit tests of one container's shaping: joined events, marks, timeouts and label changes."""

from __future__ import annotations

from shipper.cursor import Position
from shipper.record import GapRecord, LogRecord, MarkRecord, Meta, Record
from shipper.shaping import MARK_AFTER, Shaper

JAVA = Meta("c-java", "java-app", "busybox", labels={"logpipe.multiline": "java"})
PLAIN = Meta("c-plain", "plain-app", "busybox")
TRACE = ["ERROR boom", "\tat a.B.c(B.java:1)", "\tat a.B.d(B.java:2)"]


def _line(meta: Meta, ts: int, text: str, stream: str = "stdout") -> LogRecord:
    return LogRecord(meta, stream, ts, 0, text.encode())


def _texts(records: list[Record]) -> list[bytes]:
    return [r.data for r in records if isinstance(r, LogRecord)]


def test_a_labelled_trace_becomes_one_record_and_other_lines_pass_as_they_are() -> None:
    """A java-labelled container's trace is one record ending past its last line; an
    unlabelled container's read comes out as it went in."""
    shaper = Shaper()
    out: list[Record] = []
    for i, text in enumerate([*TRACE, "next"]):
        out += shaper.shape([_line(JAVA, i, text)], now=0.0)
    [joined] = out
    assert isinstance(joined, LogRecord)
    assert (joined.data, joined.lines, joined.end()) == (
        b"\n".join(t.encode() for t in TRACE),
        3,
        Position(2, 1),
    )
    assert _texts(shaper.flush()) == [b"next"]
    plain = Shaper()
    read: list[LogRecord | GapRecord] = [GapRecord(PLAIN, "stdout", 0, 1, "rotated")]
    read += [_line(PLAIN, i, text) for i, text in enumerate(TRACE)]
    assert list(plain.shape(read, now=0.0)) == read
    assert plain.next_due() is None


def test_a_held_event_is_given_up_once_its_timeout_passed() -> None:
    """The trace waits for its next line until its timeout, then due() gives it whole."""
    meta = Meta(
        "c-t",
        "t",
        "busybox",
        labels={"logpipe.multiline": "java", "logpipe.multiline.timeout": "2s"},
    )
    shaper = Shaper()
    assert shaper.shape([_line(meta, 1, TRACE[0]), _line(meta, 2, TRACE[1])], now=10.0) == []
    assert shaper.next_due() == 12.0
    assert shaper.due(11.9) == []
    assert [(r.data, r.lines) for r in shaper.due(12.0) if isinstance(r, LogRecord)] == [
        (b"ERROR boom\n\tat a.B.c(B.java:1)", 2)
    ]
    assert shaper.next_due() is None


def test_excluded_events_leave_one_mark_per_stream_unless_a_kept_event_covers_it() -> None:
    """Excluded lines are dropped; the latest mark of each stream is given up a moment later."""
    meta = Meta("c-x", "x", "busybox", labels={"logpipe.exclude_lines": "^DEBUG"})
    shaper = Shaper()
    out = shaper.shape([_line(meta, 1, "DEBUG a"), _line(meta, 2, "INFO b")], now=5.0)
    assert _texts(list(out)) == [b"INFO b"]
    assert shaper.next_due() is None  # "INFO b" covers the mark of "DEBUG a"
    assert shaper.shape([_line(meta, 3, "DEBUG c"), _line(meta, 4, "DEBUG d")], now=6.0) == []
    assert shaper.next_due() == 6.0 + MARK_AFTER
    assert shaper.due(6.0) == []
    assert shaper.due(6.0 + MARK_AFTER) == [MarkRecord(meta, "stdout", Position(4, 1))]
    assert shaper.flush() == []


def test_changed_labels_give_up_what_the_old_ones_held_then_shape_anew() -> None:
    """A held trace goes out first when the labels change; later lines follow the new ones."""
    shaper = Shaper()
    assert shaper.shape([_line(JAVA, 1, TRACE[0]), _line(JAVA, 2, TRACE[1])], now=0.0) == []
    relabelled = Meta(JAVA.id, JAVA.name, JAVA.image, labels={"logpipe.exclude_lines": "^DEBUG"})
    out = shaper.shape(
        [_line(relabelled, 3, "\tat a.B.d(B.java:2)"), _line(relabelled, 4, "DEBUG x")], 0.0
    )
    assert _texts(list(out)) == [b"ERROR boom\n\tat a.B.c(B.java:1)", b"\tat a.B.d(B.java:2)"]
    assert shaper.flush() == [MarkRecord(relabelled, "stdout", Position(4, 1))]
    unlabelled = Meta(JAVA.id, JAVA.name, JAVA.image)
    read = [_line(unlabelled, 5, TRACE[0])]
    assert shaper.passes(unlabelled) is False
    assert list(shaper.shape(read, 0.0)) == read
    assert shaper.passes(unlabelled)


def test_flush_gives_every_held_event_and_mark_in_stream_order() -> None:
    """Each stream's held event and mark come out at once, events before marks."""
    meta = Meta(
        "c-f",
        "f",
        "busybox",
        labels={"logpipe.multiline": "java", "logpipe.exclude_lines": "^DEBUG"},
    )
    shaper = Shaper()
    read = [
        _line(meta, 1, "DEBUG out", "stderr"),
        _line(meta, 2, TRACE[0]),
        _line(meta, 3, TRACE[1]),
    ]
    assert shaper.shape(read, now=0.0) == []
    flushed = shaper.flush()
    assert _texts(flushed) == [b"ERROR boom\n\tat a.B.c(B.java:1)"]
    assert flushed[-1] == MarkRecord(meta, "stderr", Position(1, 1))
    assert shaper.flush() == []


NODE = Meta("c-node", "node-app", "busybox", labels={"logpipe.multiline": "node"})
# Node v20.20.2's console.error(new Error('connect failed\n  host: db\nretrying disabled')).
NODE_ERROR = [
    "Error: connect failed",
    "  host: db",
    "retrying disabled",
    "    at Object.<anonymous> (/app/console_multi.js:1:15)",
    "    at Module._compile (node:internal/modules/cjs/loader:1521:14)",
]


def test_an_error_s_message_read_apart_from_its_frames_is_still_one_record() -> None:
    """The lines held back under a Node error wait across reads for its frames, and the
    record ends past its last line; before they come, nothing passes them."""
    shaper = Shaper()
    assert shaper.shape([_line(NODE, i, t) for i, t in enumerate(NODE_ERROR[:3])], 0.0) == []
    assert shaper.next_due() == 2.0  # the default timeout, as for any held event
    assert shaper.shape([_line(NODE, 3, NODE_ERROR[3])], 0.5) == []
    out = shaper.shape([_line(NODE, 4, NODE_ERROR[4]), _line(NODE, 5, "after")], 0.6)
    [record] = out
    assert isinstance(record, LogRecord)
    assert (record.data, record.lines, record.end()) == (
        "\n".join(NODE_ERROR).encode(),
        5,
        Position(4, 1),
    )
    assert _texts(shaper.flush()) == [b"after"]


def test_lines_held_back_under_an_error_go_as_lines_when_the_container_ends() -> None:
    """Flushed before a frame came (the container stopped), the lines held back under
    `Error: x` are records of their own, in order, each ending past its own line."""
    shaper = Shaper()
    texts = ["Error: x", "retrying in 5s", "still waiting"]
    assert shaper.shape([_line(NODE, i, t) for i, t in enumerate(texts)], 0.0) == []
    out = shaper.flush()
    assert _texts(out) == [t.encode() for t in texts]
    assert [r.end() for r in out if isinstance(r, LogRecord)] == [Position(i, 1) for i in range(3)]
    assert shaper.next_due() is None


def _held(meta: Meta, ts: int, text: str, start: int) -> LogRecord:
    """A line whose position is held at a window's start (shipper/follow/numbering.py)."""
    return LogRecord(
        meta, "stdout", ts, 0, text.encode(), until=Position(start, 0), written=Position(ts, 1)
    )


def test_joined_events_and_marks_of_held_lines_say_how_far_the_lines_went() -> None:
    """An event joined from lines held at a window, and the mark excluded ones leave,
    carry how far their last line went, as the line itself did."""
    shaper = Shaper()
    out: list[Record] = []
    for i, text in enumerate([*TRACE, "next"]):
        out += shaper.shape([_held(JAVA, 10 + i, text, start=5)], now=0.0)
    [joined] = out
    assert isinstance(joined, LogRecord)
    assert (joined.until, joined.written) == (Position(5, 0), Position(12, 1))
    meta = Meta("c-x", "x", "busybox", labels={"logpipe.exclude_lines": "^DEBUG"})
    excluding = Shaper()  # one per container
    assert excluding.shape([_held(meta, 20, "DEBUG a", start=5)], now=1.0) == []
    assert excluding.flush() == [MarkRecord(meta, "stdout", Position(5, 0), Position(20, 1))]
