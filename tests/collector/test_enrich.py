"""Documents carry the ECS fields of docs/architecture.md and a deterministic _id."""

from __future__ import annotations

import base64
import gc

from collector.enrich import Context, event_document, format_ns, gap_document, log_document
from collector.ids import log_id, ordered_id
from collector.parse import parse
from collector.wire import MAX_NS, Event, Gap, Log, Source

NOW = "2024-05-01T00:00:00.000Z"


def make_source(name: str = "web-1", **labels: str) -> Source:
    """A source as the shipper describes a container."""
    return Source(
        kind="source",
        src=0,
        host="h1",
        container_id="c" * 64,
        container_name=name,
        image="nginx:1.25",
        labels=labels,
    )


def make_log(message: str, ts: int = 1_714_521_600_000_000_001, **extra: object) -> Log:
    """A stdout log line."""
    return Log.model_validate(
        {"kind": "log", "src": 0, "stream": "stdout", "ts": ts, "message": message, **extra}
    )


def test_log_document_has_ecs_fields() -> None:
    """A log line becomes a document with ECS container, host, service, event and log fields."""
    source = make_source(**{"com.docker.compose.service": "frontend", "team": "core"})
    line = make_log('{"level":"ERROR","msg":"boom","user":"ann"}')
    ctx = Context(dataset="app", namespace="prod", environment="staging")
    doc = log_document(source, line, parse(line.message), ctx, NOW)
    body = doc.body
    assert body["@timestamp"] == "2024-05-01T00:00:00.000000001Z"
    assert body["message"] == "boom"
    assert body["log"]["level"] == "error"
    assert body["stream"] == "stdout"
    assert body["container"] == {
        "id": "c" * 64,
        "name": "web-1",
        "image": {"name": "nginx:1.25"},
        "labels": {"com.docker.compose.service": "frontend", "team": "core"},
    }
    assert body["host"] == {"name": "h1"}
    assert body["service"] == {"name": "frontend", "environment": "staging"}
    assert body["event"]["dataset"] == "app"
    assert body["event"]["ingested"] == NOW
    assert body["data_stream"]["namespace"] == "prod"
    assert body["data_stream"]["dataset"].startswith("app")
    assert doc.stream == f"logs-{body['data_stream']['dataset']}-prod"
    assert body["attributes"] == {"user": "ann"}
    assert doc.original == line.message


def test_service_name_falls_back_to_container_name() -> None:
    """Without a compose service label, service.name is the container name."""
    doc = log_document(make_source("db-7"), make_log("x"), parse("x"), Context(), NOW)
    assert doc.body["service"] == {"name": "db-7"}


def test_each_source_keeps_its_own_fields() -> None:
    """Sources built one after another never share container fields, even after GC."""
    names = []
    for i in range(5):
        source = make_source(f"c{i}")
        names.append(log_document(source, make_log("x"), parse("x"), Context(), NOW))
        del source
        gc.collect()
    assert [d.body["container"]["name"] for d in names] == [f"c{i}" for i in range(5)]


def test_truncated_and_multiline_lines_are_tagged() -> None:
    """A cut line and a joined multiline record say so in tags."""
    line = make_log("x", truncated=True, lines=3)
    doc = log_document(make_source(), line, parse("x"), Context(), NOW)
    assert doc.body["tags"] == ["truncated", "multiline"]
    assert doc.body["logpipe"]["lines"] == 3


def test_ids_are_deterministic_per_host_container_stream_time_and_sequence() -> None:
    """The same line gets the same _id; a different sequence number gets another."""
    a = log_document(make_source(), make_log("x", seq=0), parse("x"), Context(), NOW)
    b = log_document(make_source(), make_log("y", seq=0), parse("y"), Context(), NOW)
    c = log_document(make_source(), make_log("x", seq=1), parse("x"), Context(), NOW)
    assert a.id == b.id != c.id
    t = 1_714_521_600_000_000_001
    assert (a.id, c.id) == (
        log_id("h1", "c" * 64, "stdout", t, 0),
        log_id("h1", "c" * 64, "stdout", t, 1),
    )
    assert log_id("h", "c", "stdout", 5, 1) == ordered_id(5, "h", "c", "stdout", 1)


def _raw(doc_id: str) -> bytes:
    return base64.urlsafe_b64decode(doc_id + "==")


def test_ids_start_with_the_timestamp_so_they_sort_by_time() -> None:
    """An _id is the line's ns as 8 big-endian bytes, then a hash: later lines sort after."""
    stamps = [5, 1_714_521_600_000_000_001, 1_714_521_600_000_000_002, MAX_NS]
    ids = [
        log_document(make_source(), make_log("x", ts=t), parse("x"), Context(), NOW).id
        for t in stamps
    ]
    assert [int.from_bytes(_raw(i)[:8], "big") for i in ids] == stamps
    assert sorted(_raw(i) for i in ids) == [_raw(i) for i in ids]
    assert {len(i) for i in ids} == {22}


def test_ids_of_the_same_instant_differ_by_source_stream_and_sequence() -> None:
    """Lines of one ns from other containers, streams or sequence numbers get other ids."""
    t = 1_714_521_600_000_000_001
    same = [
        log_id("h1", "c" * 64, "stdout", t, 0),
        log_id("h2", "c" * 64, "stdout", t, 0),
        log_id("h1", "d" * 64, "stdout", t, 0),
        log_id("h1", "c" * 64, "stderr", t, 0),
        log_id("h1", "c" * 64, "stdout", t, 1),
    ]
    assert len(set(same)) == len(same)
    assert {_raw(i)[:8] for i in same} == {t.to_bytes(8, "big")}


def test_event_and_gap_ids_start_with_their_timestamp() -> None:
    """Lifecycle events and gaps get stable ids that sort by their @timestamp too."""
    event = Event(kind="event", src=0, ts=7, action="die", exit_code=0)
    gap = Gap(kind="gap", src=0, stream="stderr", from_ts=3, to_ts=9, reason="rotated")
    first = event_document(make_source(), event, Context(), NOW)
    again = event_document(make_source(), event, Context(), NOW)
    lost = gap_document(make_source(), gap, Context(), NOW)
    assert first.id == again.id == ordered_id(7, "h1", "c" * 64, "event", "die")
    assert lost.id == ordered_id(9, "h1", "c" * 64, "stderr", "gap", 3)
    assert int.from_bytes(_raw(lost.id)[:8], "big") == 9


def test_event_document_says_what_happened() -> None:
    """A die event carries its action and exit code."""
    event = Event(kind="event", src=0, ts=1, action="die", exit_code=137)
    doc = event_document(make_source(), event, Context(), NOW)
    assert doc.body["event"]["action"] == "die"
    assert doc.body["process"] == {"exit_code": 137}
    assert doc.body["message"] == "container web-1 die (exit code 137)"


def test_format_ns_keeps_nanoseconds_to_the_end_of_date_nanos() -> None:
    """Timestamps keep nine fractional digits, up to the last instant date_nanos holds."""
    assert format_ns(0) == "1970-01-01T00:00:00.000000000Z"
    assert format_ns(1_714_521_600_123_456_789) == "2024-05-01T00:00:00.123456789Z"
    assert format_ns(MAX_NS) == "2262-04-11T23:47:16.854775807Z"


def test_compose_bookkeeping_labels_stay_out_of_documents() -> None:
    """Compose's own labels (config hash, working dir, ...) are left out; the rest stay."""
    labels = {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        "com.docker.compose.config-hash": "9c1f0e6b",
        "com.docker.compose.container-number": "1",
        "com.docker.compose.project.working_dir": "/srv/shop",
        "com.docker.compose.version": "2.24.6",
        "team": "core",
    }
    doc = log_document(make_source(**labels), make_log("x"), parse("x"), Context(), NOW)
    assert doc.body["container"]["labels"] == {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        "team": "core",
    }


def test_a_container_without_labels_gets_no_empty_labels_object() -> None:
    """No labels left means no `container.labels` at all."""
    source = make_source(**{"com.docker.compose.oneoff": "False"})
    doc = log_document(source, make_log("x"), parse("x"), Context(), NOW)
    assert "labels" not in doc.body["container"]
