"""Unit tests of lines as a /logs client reads them: plain, NDJSON, and the missed notice."""

from __future__ import annotations

import orjson

from shipper.record import LogRecord, Meta
from shipper.tail.render import ndjson, plain

API = Meta("c" * 64, "api", "registry.local/api:2")
TS = 1_764_000_000_123_456_789  # 2025-11-24T16:00:00.123456789Z


def _line(data: bytes, stream: str = "stdout", truncated: bool = False) -> LogRecord:
    return LogRecord(API, stream, TS, 0, data, truncated)


def test_timestamps_keep_nanoseconds() -> None:
    """Docker's nanosecond timestamps are RFC 3339 UTC with nine digits, across seconds."""
    lines = [LogRecord(API, "stdout", ts, 0, b"x") for ts in (1_000_000_000, TS, TS + 1)]
    times = [orjson.loads(line)["time"] for line in ndjson(lines, 0).splitlines()]
    assert times == [
        "1970-01-01T00:00:01.000000000Z",
        "2025-11-24T16:00:00.123456789Z",
        "2025-11-24T16:00:00.123456790Z",
    ]


def test_plain_is_name_bar_line_with_the_bytes_as_written() -> None:
    """Plain text is `name | line` a line, the container's bytes unchanged (invalid UTF-8 too)."""
    body = plain([_line(b"hello"), _line(b"bad \xff byte", "stderr")], 0)
    assert body == b"api | hello\napi | bad \xff byte\n"


def test_plain_says_how_many_lines_were_missed_after_the_lines() -> None:
    """The missed notice comes after the lines taken with it."""
    assert plain([_line(b"a")], 7) == b"api | a\nlogpipe: 7 lines missed\n"
    assert plain([], 3) == b"logpipe: 3 lines missed\n"


def test_ndjson_of_several_containers_names_each_line_its_own() -> None:
    """Lines of two containers in one write each carry their own container's fields."""
    web = Meta("w" * 64, "web", "nginx:1")
    body = ndjson([_line(b"a"), LogRecord(web, "stdout", TS, 0, b"b"), _line(b"c")], 0)
    docs = [orjson.loads(line) for line in body.splitlines()]
    assert [(d["name"], d["image"], d["line"]) for d in docs] == [
        ("api", "registry.local/api:2", "a"),
        ("web", "nginx:1", "b"),
        ("api", "registry.local/api:2", "c"),
    ]


def test_ndjson_objects_carry_the_container_and_the_line() -> None:
    """Each NDJSON line holds time, id, name, image, stream, line (invalid UTF-8 replaced)."""
    body = ndjson([_line(b'say "hi" \xff', "stderr", truncated=True)], 0)
    assert body.endswith(b"\n")
    assert body.count(b"\n") == 1
    assert orjson.loads(body) == {
        "time": "2025-11-24T16:00:00.123456789Z",
        "id": "c" * 64,
        "name": "api",
        "image": "registry.local/api:2",
        "stream": "stderr",
        "line": 'say "hi" \ufffd',
        "truncated": True,
    }


def test_ndjson_missed_notice_is_an_object_of_its_own() -> None:
    """`{"missed": N}` follows the lines; nothing at all is written for nothing."""
    body = ndjson([_line(b"a")], 4)
    first, second = body.splitlines()
    assert orjson.loads(first)["line"] == "a"
    assert orjson.loads(second) == {"missed": 4}
    assert ndjson([], 0) == b""
