"""Long free text from a sender that cuts nothing, on a real collector and node.

An event's detail, a gap's reason and a source line's container name, image and labels
longer than the wire's bounds are indexed cut at them and tagged truncated, never
dead-lettered: before, such a source line was refused and every line of its container in
the body went to the dead letters with it. A source line refused for what cutting cannot
repair (a container id past its bound) still takes its container's lines to the dead
letters, while the lines of the other containers next to them are indexed.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from collector.wire import (
    CONTAINER_NAME_CHARS,
    DETAIL_CHARS,
    IMAGE_CHARS,
    LABEL_KEY_CHARS,
    LABEL_VALUE_CHARS,
)
from tests.conftest import ES_URL, Process
from tests.integration.readers import post_batch
from tests.integration.test_collector_big_lines import found
from tests.integration.test_collector_outages import collector

pytestmark = pytest.mark.integration
__all__ = ["collector"]  # the fixture, shared with the outage tests


def ndjson(lines: list[dict[str, Any]]) -> bytes:
    """The wire lines as one body, as another sender would write them."""
    return "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode()


def start(collector: Callable[..., tuple[Process, str]]) -> tuple[str, str, str]:
    """A collector of its own: its URL, token, and a host name no other test sends."""
    token = uuid.uuid4().hex
    run = uuid.uuid4().hex[:8]
    _, url = collector(
        ES_URL, token, ready=True, es_retry_seconds="20", routing__dataset=f"longfield.{run}"
    )
    return url, token, f"longfield-{run}"


def source(src: int, host: str, **fields: str) -> dict[str, Any]:
    """A source line of a new container named `fields` may override."""
    line = {"kind": "source", "src": src, "host": host, "container_id": uuid.uuid4().hex * 2,
            "container_name": f"c{src}", "image": "busybox"}  # fmt: skip
    return line | fields


def log(src: int, ts: int, message: str) -> dict[str, Any]:
    """A log line of stdout."""
    return {"kind": "log", "src": src, "stream": "stdout", "ts": ts, "message": message}


def matching(es: Elasticsearch, host: str, field: str, value: str) -> int:
    """How many of `host`'s documents a term query on `field` finds (it is searchable)."""
    terms = [{"term": {"host.name": host}}, {"term": {field: value}}]
    hits = es.search(index="logs-*", query={"bool": {"filter": terms}})
    return int(hits["hits"]["total"]["value"])


def test_long_details_reasons_and_images_are_indexed_cut_with_the_lines_next_to_them(
    es: Elasticsearch, collector: Callable[..., tuple[Process, str]], template: None
) -> None:
    """Every line is indexed (none dead-lettered): the cut ones tagged truncated, holding
    the first characters up to each bound (multi-byte ones whole), the others untouched;
    a label key too long for Elasticsearch is cut, and its container's line indexed."""
    url, token, host = start(collector)
    ts = time.time_ns()
    lines = [
        source(0, host),
        source(1, host, container_name="n" * 300, image="registry.example/" + "€" * 1100),
        log(0, ts, "before"),
        log(1, ts + 1, "a line of the container whose image is too long"),
        {
            "kind": "event",
            "src": 0,
            "ts": ts + 2,
            "action": "die",
            "exit_code": 1,
            "detail": "é" * 5000,
        },
        {
            "kind": "gap",
            "src": 0,
            "stream": "stdout",
            "from_ts": ts,
            "to_ts": ts + 3,
            "reason": "😀" * 300,
        },
        # A key past Lucene's longest term: whole, Elasticsearch refused every document
        # of the container (a dead letter each).
        source(2, host) | {"labels": {"k" * 40000: "v", "note": "x" * 50000}},
        log(2, ts + 4, "a line of the container whose labels are too long"),
        log(0, ts + 5, "after"),
    ]
    status, answer = post_batch(url, token, ndjson(lines))
    assert status == 200, answer
    assert answer == {"received": 9, "indexed": 6, "duplicates": 0, "dead_lettered": 0}
    before, long_image, event, gap, long_labels, after = found(es, host, 6)
    assert [(d["message"], d.get("tags")) for d in (before, after)] == [
        ("before", None),
        ("after", None),
    ]
    assert long_image["tags"] == ["truncated"]
    assert long_image["container"]["name"] == "n" * CONTAINER_NAME_CHARS
    assert (
        long_image["container"]["image"]["name"] == ("registry.example/" + "€" * 1100)[:IMAGE_CHARS]
    )
    assert (event["event"]["reason"], event["tags"]) == ("é" * DETAIL_CHARS, ["truncated"])
    assert (gap["event"]["reason"], gap["tags"]) == ("😀" * 256, ["gap", "truncated"])
    assert long_labels["tags"] == ["truncated"]
    assert long_labels["container"]["labels"] == {
        "k" * LABEL_KEY_CHARS: "v",
        "note": "x" * LABEL_VALUE_CHARS,
    }
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    for kind, count in (("source", 2), ("event", 1), ("gap", 1)):
        assert f'logpipe_collector_texts_truncated_total{{kind="{kind}"}} {count}.0' in metrics
    # The cut image is searchable: it is within the keyword's 1024 characters.
    assert matching(es, host, "container.image.name", long_image["container"]["image"]["name"]) == 1


def test_a_parsed_key_too_long_to_index_is_kept_unindexed_and_its_line_indexed(
    es: Elasticsearch, collector: Callable[..., tuple[Process, str]], template: None
) -> None:
    """A JSON or logfmt key of 40,000 characters: `attributes` would hold a term past
    Lucene's longest and Elasticsearch refused the document (a dead letter each). The key
    is kept in attributes_unindexed, the line's other keys stay searchable."""
    url, token, host = start(collector)
    ts = time.time_ns()
    key = "k" * 40000
    lines = [
        source(0, host),
        log(0, ts, "before"),
        log(0, ts + 1, json.dumps({"msg": "json", "user": "ann", key: 1})),
        log(0, ts + 2, f"msg=logfmt user=bob {key}=2"),
        log(0, ts + 3, "after"),
    ]
    status, answer = post_batch(url, token, ndjson(lines))
    assert status == 200, answer
    assert answer == {"received": 5, "indexed": 4, "duplicates": 0, "dead_lettered": 0}
    before, as_json, as_logfmt, after = found(es, host, 4)
    assert (before["message"], after["message"]) == ("before", "after")
    for doc, user, value in ((as_json, "ann", 1), (as_logfmt, "bob", "2")):
        assert doc["attributes"] == {"user": user}
        assert doc["attributes_unindexed"] == {key: value}
        assert "tags" not in doc
        assert matching(es, host, "attributes.user", user) == 1


def test_a_parsed_key_that_holds_nul_is_kept_unindexed_and_its_line_indexed(
    es: Elasticsearch, collector: Callable[..., tuple[Process, str]], template: None
) -> None:
    """A binary line that still reads as logfmt (or a JSON key with \\u0000): a
    `flattened` field keeps NUL for itself, and Elasticsearch refused the document whose
    `attributes` had such a key (a dead letter each). The key is kept in
    attributes_unindexed, the line's other keys stay searchable."""
    url, token, host = start(collector)
    ts = time.time_ns()
    lines = [
        source(0, host),
        log(0, ts, "before"),
        log(0, ts + 1, "level=info user=ann a\x00b=1 msg=logfmt"),
        log(0, ts + 2, json.dumps({"msg": "json", "user": "bob", "ctx": {"k\x00": 2}})),
        log(0, ts + 3, "after"),
    ]
    status, answer = post_batch(url, token, ndjson(lines))
    assert status == 200, answer
    assert answer == {"received": 5, "indexed": 4, "duplicates": 0, "dead_lettered": 0}
    before, as_logfmt, as_json, after = found(es, host, 4)
    assert (before["message"], after["message"]) == ("before", "after")
    for doc, user, unindexed in (
        (as_logfmt, "ann", {"a\x00b": "1"}),
        (as_json, "bob", {"ctx": {"k\x00": 2}}),
    ):
        assert doc["attributes"] == {"user": user}
        assert doc["attributes_unindexed"] == unindexed
        assert "tags" not in doc
        assert matching(es, host, "attributes.user", user) == 1


def test_a_label_key_that_holds_nul_costs_its_container_no_line(
    es: Elasticsearch, collector: Callable[..., tuple[Process, str]], template: None
) -> None:
    """A container label whose key holds NUL (Docker's API takes one) made Elasticsearch
    refuse every document of the container (`container.labels` is `flattened`): the NUL
    is written as U+FFFD and the lines are indexed, searchable by the label."""
    url, token, host = start(collector)
    ts = time.time_ns()
    labels = {"team\x00x": "core", "tier": "web"}
    lines = [source(0, host, labels=labels), log(0, ts, "first"), log(0, ts + 1, "second")]  # type: ignore[arg-type]
    status, answer = post_batch(url, token, ndjson(lines))
    assert status == 200, answer
    assert answer == {"received": 3, "indexed": 2, "duplicates": 0, "dead_lettered": 0}
    first, second = found(es, host, 2)
    for doc in (first, second):
        assert doc["container"]["labels"] == {"team\ufffdx": "core", "tier": "web"}
    assert matching(es, host, "container.labels.tier", "web") == 2


def test_a_source_line_refused_for_its_id_costs_only_its_own_container_s_lines(
    es: Elasticsearch, collector: Callable[..., tuple[Process, str]], template: None
) -> None:
    """A container id past its bound cannot be cut (it would merge containers): the source
    line and its container's line are dead-lettered, named in the 400, and the lines of
    the other container before and after them are indexed."""
    url, token, host = start(collector)
    ts = time.time_ns()
    lines = [
        source(0, host),
        source(1, host, container_id="x" * 200),
        log(0, ts, "before"),
        log(1, ts + 1, "of the refused container"),
        log(0, ts + 2, "after"),
    ]
    status, answer = post_batch(url, token, ndjson(lines))
    assert status == 400, answer
    assert [d["line"] for d in answer["detail"]] == [2, 4]
    assert "container_id" in answer["detail"][0]["error"]
    assert answer["detail"][1]["error"] == "src 1: its 'source' line (line 2) was rejected"
    assert answer["result"] == {"received": 5, "indexed": 2, "duplicates": 0, "dead_lettered": 2}
    docs = found(es, host, 4)
    indexed = [d["message"] for d in docs if "dead_letter" not in d.get("tags", [])]
    assert indexed == ["before", "after"]
    letters = [d["event"]["original"] for d in docs if "dead_letter" in d.get("tags", [])]
    assert sorted(json.loads(letter)["kind"] for letter in letters) == ["log", "source"]
