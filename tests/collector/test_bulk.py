"""The bulk request body: its bytes for every kind of document, and how it is split."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from collector import steps
from collector.batch import decode
from collector.bulk import chunks, encode, encode_all, encoding, grouping, over_limit_alone
from collector.enrich import Context, Doc
from collector.shape import flat, nested
from tests.collector.test_steps import count_steps
from tests.collector.wirelines import body, log, source

CORPUS = Path(__file__).parents[1] / "corpus"


def corpus_documents() -> list[Doc]:
    """The documents of every committed corpus line (all parsers), two streams, edge cases."""
    lines = [source(0), source(1, labels={"a": 'é\u2028"x\\'}, hints={"parser": "plain"})]
    ts = 1_700_000_000_000_000_000
    for path in sorted(CORPUS.glob("*.log")):
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines()):
            lines.append(log(text, ts + n, src=n % 2))
            ts += 1_000_003
    lines.append(log("cut", ts, truncated=True, lines=3))
    lines.append(b'{"kind":"event","src":0,"ts":5,"action":"die","exit_code":1}')
    lines.append(b'{"kind":"gap","src":0,"stream":"stderr","from_ts":1,"to_ts":9,"reason":"x"}')
    lines.append(b'{"kind":"log", broken')  # a dead letter too
    decoded = decode(body(*lines), Context(environment="prod"), "2024-05-01T00:00:01.000Z")
    return decoded.docs + decoded.dead_letters


def test_bulk_lines_are_orjson_of_the_action_and_the_document() -> None:
    """Each document's bulk lines are byte for byte orjson of its create action and of its
    body flat (dotted names: shape.py)."""
    docs = corpus_documents()
    assert len(docs) > 300
    for doc in docs:
        action = orjson.dumps({"create": {"_index": doc.stream, "_id": doc.id}})
        assert encode(doc) == action + b"\n" + orjson.dumps(flat(doc.body)) + b"\n"
        if "container" in doc.body:
            assert b'"container.id":' in encode(doc)


def test_a_bulk_body_reads_back_as_the_documents() -> None:
    """The joined body of a batch decodes to each document's action and source, in order."""
    docs = corpus_documents()
    encoded, refused = encode_all(docs)
    assert not refused
    lines = b"".join(b for _, b in encoded).split(b"\n")
    assert lines.pop() == b""
    pairs = list(zip(lines[::2], lines[1::2], strict=True))
    assert [orjson.loads(a) for a, _ in pairs] == [
        {"create": {"_index": d.stream, "_id": d.id}} for d in docs
    ]
    assert [nested(orjson.loads(s)) for _, s in pairs] == [
        orjson.loads(orjson.dumps(d.body)) for d in docs
    ]


def test_a_batch_within_both_bounds_is_one_request_of_every_item() -> None:
    """Items under the byte and document bounds together go in one request, in order."""
    items = [b"x" * (i % 7 + 1) for i in range(50)]
    assert chunks(items, sum(map(len, items)), 50) == [range(50)]
    assert chunks(items, sum(map(len, items)) - 1, 50) == [range(49), range(49, 50)]
    assert chunks(items, 10_000, 49) == [range(49), range(49, 50)]
    assert chunks([], 10, 10) == []


def test_over_limit_alone_tells_a_too_large_operation_from_a_busy_node() -> None:
    """An indexing-pressure refusal is of an operation too large on its own only when the
    operation's bytes exceed the limit; a busy node's (fits, no room now) is not."""
    head = "es_rejected_execution_exception: rejected execution of "
    too_large = (
        "primary operation [coordinating_and_primary_bytes=30000602, replica_bytes=0, "
        "all_bytes=30000602, primary_operation_bytes=120000200, max_primary_bytes=107374182]"
    )
    busy = (
        "primary operation [coordinating_and_primary_bytes=107000000, replica_bytes=0, "
        "all_bytes=107000000, primary_operation_bytes=800000, max_primary_bytes=107374182]"
    )
    coordinating = (
        "coordinating operation [coordinating_and_primary_bytes=200, replica_bytes=0, "
        "all_bytes=200, coordinating_operation_bytes=200, max_coordinating_and_primary_bytes=100]"
    )
    assert over_limit_alone(head + too_large)
    assert over_limit_alone("HTTP 429: " + head + coordinating)
    assert not over_limit_alone(head + busy)
    assert not over_limit_alone("es_rejected_execution_exception: scripted 429")
    assert not over_limit_alone("")


def test_over_limit_alone_counts_the_requests_own_bytes_on_its_node() -> None:
    """A primary operation under the limit whose own request's bytes, which the node
    counts while it runs, take it over the limit is refused on an idle node too: too
    large alone. What the node has in flight beyond that request is a busy node's, and
    bytes the node does not say it holds are not taken for the request's."""
    # Elasticsearch 9.2 (1 GiB heap) on one _bulk of a 4 MiB line of control characters:
    # a request of 25165881 bytes.
    escaped = (
        "rejected execution of primary operation [coordinating_and_primary_bytes=25165983, "
        "replica_bytes=0, all_bytes=25165983, primary_operation_bytes=100663356, "
        "max_primary_bytes=107374182]"
    )
    assert over_limit_alone(escaped, 25165881)
    assert not over_limit_alone(escaped, 1000)  # others' bytes: a busy node
    elsewhere = escaped.replace("=25165983", "=1000")  # a node not coordinating it
    assert not over_limit_alone(elsewhere, 25165881)
    replica = escaped.replace("primary_operation", "replica_operation")
    assert not over_limit_alone(replica, 25165881)  # replicas run on other nodes


def test_documents_encoded_in_steps_are_those_encoded_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Encoding in steps of no time yields between every two parts of the documents and
    gives the same lines in order, and the same refusals: one orjson cannot write, in
    the middle of a part, is refused alone."""
    monkeypatch.setattr(steps, "PART", 64)
    docs = corpus_documents()
    unwritable = Doc("big", "logs-x", {"n": 2**70})
    docs = [*docs[:100], unwritable, *docs]
    whole = encode_all(docs)
    stepped, taken = count_steps(encoding(docs, seconds=0))
    assert stepped == whole
    assert taken == -(-len(docs) // 64)
    assert [doc for doc, _ in whole[1]] == [unwritable]
    assert [doc for doc, _ in whole[0]] == docs[:100] + docs[101:]


def test_requests_grouped_in_steps_are_those_grouped_at_once() -> None:
    """Grouping in steps of no time yields before every request and gives the requests
    grouped at once: in order, each within both bounds, an oversized item alone."""
    lines = [b"x" * (i % 13 + 1) for i in range(1000)] + [b"x" * 500] + [b"y"] * 30
    items = [(None, b) for b in lines]
    groups, taken = count_steps(grouping(items, 100, 20, seconds=0))
    assert groups == chunks(lines, 100, 20)
    assert isinstance(groups, list)
    assert taken == len(groups) > 50
    assert [i for g in groups for i in g] == list(range(len(lines)))
    for g in groups:
        assert len(g) <= 20
        assert len(g) == 1 or sum(len(lines[i]) for i in g) <= 100
