"""Dead-letter stand-ins keep the reason and the original line, and never grow unbounded."""

from __future__ import annotations

import orjson

from collector.deadletter import (
    MESSAGE_CHARS,
    ORIGINAL_CHARS,
    Sender,
    bare,
    refused,
    same_id,
    unreadable_line,
)
from collector.enrich import Doc
from collector.templates import DEADLETTER_STREAM

NOW = "2024-05-01T00:00:00.000Z"


def test_unreadable_line_keeps_raw_text_and_reason() -> None:
    """A line that could not be read is stored with its text, its number and why."""
    doc = unreadable_line(b"not \xff json", 7, "not valid JSON", NOW)
    assert doc.stream == DEADLETTER_STREAM
    assert doc.body["event"]["original"] == "not \ufffd json"
    assert doc.body["error"] == {"type": "invalid_wire_line", "message": "line 7: not valid JSON"}
    assert doc.body["tags"] == ["dead_letter"]
    assert doc.id == unreadable_line(b"not \xff json", 9, "other", NOW).id, "replays collapse"


def test_the_same_bad_line_of_two_senders_is_two_dead_letters() -> None:
    """The id holds the host and container that sent the line, not the address or number."""
    web = {"id": "c1", "name": "web-1", "image": {"name": "busybox"}}
    one = unreadable_line(b"{", 1, "not valid JSON", NOW, Sender("a", web, {"name": "web"}))
    assert one.body["host"] == {"name": "a"}
    assert one.body["container"] == web
    assert one.body["service"] == {"name": "web"}
    again = unreadable_line(b"{", 2, "not valid JSON", NOW, Sender("a", web, address="::1"))
    assert again.id == one.id, "replays collapse"
    assert again.body["source"] == {"ip": "::1"}
    ids = {one.id, unreadable_line(b"{", 1, "x", NOW, Sender("b", web)).id}
    ids.add(unreadable_line(b"{", 1, "x", NOW, Sender("a", {"id": "c2"})).id)
    ids.add(unreadable_line(b"{", 1, "x", NOW).id)
    assert len(ids) == 4


def test_huge_unreadable_line_is_cut_and_tagged() -> None:
    """A multi-megabyte bad line is kept up to a bound and tagged truncated, never refused."""
    doc = unreadable_line(b"x" * (3 * ORIGINAL_CHARS), 1, "not valid JSON", NOW)
    assert len(doc.body["message"]) == MESSAGE_CHARS
    assert len(doc.body["event"]["original"]) == ORIGINAL_CHARS
    assert doc.body["tags"] == ["dead_letter", "truncated"]


def test_refused_copy_keeps_identity_fields_line_and_document() -> None:
    """The stand-in of a refused document names the stream, the reason, the line and the doc."""
    original = Doc(
        "id1",
        "logs-app-default",
        {
            "@timestamp": "2024-05-01T00:00:00.000000001Z",
            "message": "m",
            "container": {"id": "c"},
            "host": {"name": "h"},
            "attributes": {"deep": {"x": 1}},
            "event": {"ingested": NOW},
        },
        '{"msg":"m","deep":{"x":1}}',
    )
    dead = refused(original, "document_parsing_exception: too deep")
    assert (dead.id, dead.stream) == ("id1", DEADLETTER_STREAM)
    assert dead.body["container"] == {"id": "c"}
    assert dead.body["host"] == {"name": "h"}
    assert "attributes" not in dead.body
    assert dead.body["event"]["original"] == '{"msg":"m","deep":{"x":1}}'
    assert dead.body["event"]["reason"] == "refused by logs-app-default"
    assert orjson.loads(dead.body["logpipe"]["refused"]["document"]) == original.body
    fallback = bare(original, "again")
    assert "container" not in fallback.body
    assert fallback.body["@timestamp"] == NOW


def test_unserializable_document_is_written_leniently() -> None:
    """An integer orjson cannot write is kept as JSON text in the stand-in."""
    original = Doc("i", "logs-a-default", {"n": 2**70, "event": {"ingested": NOW}})
    dead = refused(original, "cannot serialize")
    assert str(2**70) in dead.body["logpipe"]["refused"]["document"]
    assert dead.body["event"]["original"] == dead.body["logpipe"]["refused"]["document"]
    orjson.dumps(dead.body)  # the stand-in itself can be sent


def test_lines_sharing_an_id_are_dead_letters_of_their_own() -> None:
    """Two lines that share a third's _id with other texts are two dead letters."""
    body = {"message": "m", "event": {"ingested": NOW}, "host": {"name": "h"}}
    one, two = (Doc("same", "logs-app-default", body, text) for text in ("b", "c"))
    letters = [same_id(one), same_id(two)]
    assert len({letter.id for letter in letters} | {"same"}) == 3
    assert letters[0].body["error"]["type"] == "duplicate_id"
    assert letters[0].body["host"] == {"name": "h"}
    assert letters[1].body["event"]["original"] == "c"
