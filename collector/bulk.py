"""Bulk requests: documents as pre-encoded `create` lines, grouped under the size bounds,
and every item of an answer classified: stored (2xx, or 409 = already there), retry
(429, 5xx, and writes stopped on the cluster's side: a block, a closed write index, no
template, a missing ingest pipeline, see :func:`_waits`), over the node's limit on its
own (a 429 of indexing pressure for an operation larger than the whole limit: sent again
in halves, see :func:`over_limit_alone`) or refused (other 4xx, with Elasticsearch's
reason). Pure: no I/O.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from operator import itemgetter
from typing import Any

import orjson

from collector import metrics, steps
from collector.enrich import Doc
from collector.shape import flat
from collector.templates import CUSTOM_TEMPLATE, DEADLETTER_STREAM

# Per item only what classification needs; a clean bulk answers with a few bytes per item.
FILTER = (
    "errors,items.*.status,items.*.error.type,items.*.error.reason,"
    "items.*.error.caused_by.type,items.*.error.caused_by.reason"
)


@dataclass(slots=True)
class Outcome:
    """How the documents of one batch ended."""

    indexed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


@dataclass(slots=True)
class Round:
    """What one pass over the pending documents left to do."""

    retry: list[tuple[Doc, bytes]] = field(default_factory=list)
    rejected: list[tuple[Doc, str]] = field(default_factory=list)
    why: str = ""
    overloaded: bool = True

    def must_retry(self, items: list[tuple[Doc, bytes]], why: str, status: int | None) -> None:
        """Queue `items` for the next pass; remember why (429 alone means overloaded)."""
        self.retry.extend(items)
        self.why = why
        self.overloaded = self.overloaded and status == 429


# `{"create":{"_index":"<stream>","_id":` per data stream: a batch writes to a few.
_ACTION_PREFIX: dict[str, bytes] = {}
_NEWLINE = orjson.OPT_APPEND_NEWLINE


def action_prefix(stream: str) -> bytes:
    """`{"create":{"_index":"<stream>","_id":`, the action's bytes before the id."""
    prefix = _ACTION_PREFIX.get(stream)
    if prefix is None:
        if len(_ACTION_PREFIX) >= 4096:
            _ACTION_PREFIX.clear()
        # Same bytes as orjson of the whole action, without a dict per document.
        action = orjson.dumps({"create": {"_index": stream, "_id": ""}})
        prefix = _ACTION_PREFIX[stream] = action.removesuffix(b'""}}')
    return prefix


def encode(doc: Doc) -> bytes:
    """The two NDJSON lines of one `create` operation, the document flat (shape.py)."""
    if doc.encoded is not None:  # made by the compiled hot path (collector/native.py)
        return doc.encoded
    prefix = _ACTION_PREFIX.get(doc.stream) or action_prefix(doc.stream)
    # One join instead of three concatenations: each made a copy of the document so far.
    return b"".join(
        (prefix, orjson.dumps(doc.id), b"}}\n", orjson.dumps(flat(doc.body), option=_NEWLINE))
    )


def chunks(encoded: Sequence[bytes], max_bytes: int, max_docs: int) -> list[range]:
    """:func:`grouping` of bare bulk lines, at once."""
    return steps.at_once(grouping([(None, b) for b in encoded], max_bytes, max_docs, seconds=None))


def grouping(
    items: Sequence[tuple[object, bytes]], max_bytes: int, max_docs: int, *, seconds: float | None
) -> Generator[None, None, list[range]]:
    """Group items (each with its bulk lines) into bulk requests bounded in bytes and
    documents: the ranges of their indexes, in order (an item over `max_bytes` alone in
    its own). In steps of about `seconds` (steps.py), looking at the clock between two
    requests: 200,000 items took 30 ms at once."""
    count = len(items)
    groups: list[range] = []
    clock = steps.Clock(seconds)
    start = 0
    while start < count:
        yield from clock.pause()
        stop = min(count, start + max_docs)
        if sum(map(len, map(_LINES, items[start:stop]))) > max_bytes:
            ends = list(accumulate(map(len, map(_LINES, items[start:stop]))))
            stop = start + max(1, bisect_right(ends, max_bytes))
        groups.append(range(start, stop))
        start = stop
    return groups


_LINES = itemgetter(1)


def retryable(status: int) -> bool:
    """Whether an item or request status is worth sending again."""
    return status == 429 or status >= 500


# Elasticsearch's indexing-pressure refusal (429, es_rejected_execution_exception) names the
# bytes of the refused operation and the node's limit for it, e.g. "rejected execution of
# primary operation [..., primary_operation_bytes=120000200, max_primary_bytes=107374182]".
_PRESSURE = re.compile(
    r"\b(coordinating|primary|replica)_operation_bytes=(\d+), max_\w+_bytes=(\d+)"
)
# The bytes in flight on the node before the refused operation: on the node that
# coordinates a request, its own bytes are among them while its primary operations run.
_IN_FLIGHT = re.compile(r"\bcoordinating_and_primary_bytes=(\d+)")


def over_limit_alone(reason: str, request_bytes: int = 0) -> bool:
    """Whether an indexing-pressure refusal is of an operation larger than the limit itself,
    for a request of `request_bytes` (its documents' bulk lines).

    Such an operation is refused however idle the node is: resent as it is, it would be
    refused forever. A node that coordinates the request counts the request's bytes (the
    JSON as sent) and, on top, a primary operation's (several times its documents' size):
    a primary operation under the limit whose request's bytes take it over (a 4 MiB line
    of control characters, 24 MiB once escaped, on a 1 GiB heap) is refused on an idle
    node too. Only the bytes the node says are in flight count as the request's, so a
    node that does not coordinate it is not taken to hold them. The usual 429 (a busy
    node: the operation fits, what others have in flight does not leave room) is retried
    as it is.
    """
    found = _PRESSURE.search(reason)
    if found is None:
        return False
    operation, limit = int(found[2]), int(found[3])
    if found[1] == "primary":
        in_flight = _IN_FLIGHT.search(reason)
        operation += min(request_bytes, int(in_flight[1])) if in_flight else 0
    return operation > limit


def encode_all(docs: Sequence[Doc]) -> Encoded:
    """:func:`encoding` at once."""
    return steps.at_once(encoding(docs, seconds=None))


# Each document with its bulk lines; and those orjson cannot write, with the reason.
Encoded = tuple[list[tuple[Doc, bytes]], list[tuple[Doc, str]]]


def encoding(docs: Sequence[Doc], *, seconds: float | None) -> Generator[None, None, Encoded]:
    """Each document with its bulk lines, and those orjson cannot write with the reason,
    in steps of about `seconds` (steps.py): the compiled path's 200,000 documents took
    60-100 ms, the Python path's about a second."""
    encoded: list[tuple[Doc, bytes]] = []
    refused: list[tuple[Doc, str]] = []
    clock = steps.Clock(seconds)
    for start in range(0, len(docs), steps.PART):
        yield from clock.pause()
        part = docs[start : start + steps.PART]
        try:
            encoded += [(doc, encode(doc)) for doc in part]
            continue
        except TypeError:  # an integer beyond 64 bits, say: find which, keep the others
            pass
        for doc in part:
            try:
                encoded.append((doc, encode(doc)))
            except TypeError as exc:
                refused.append((doc, f"document cannot be serialized: {exc}"))
    return encoded, refused


def settle(
    items: list[tuple[Doc, bytes]], body: dict[str, Any], outcome: Outcome, result: Round
) -> tuple[list[tuple[Doc, bytes]], str]:
    """Count and classify the items of one answered request; return those over the node's
    limit on their own (:func:`over_limit_alone`), to be sent in smaller requests, and why."""
    if not body.get("errors"):
        count_stored(outcome, [doc for doc, _ in items], duplicate=False)
        return [], ""
    return _classify(items, body["items"], outcome, result)


def _classify(
    items: list[tuple[Doc, bytes]], answers: list[dict[str, Any]], outcome: Outcome, result: Round
) -> tuple[list[tuple[Doc, bytes]], str]:
    too_large: list[tuple[Doc, bytes]] = []
    why = ""
    request_bytes = sum(len(lines) for _, lines in items)
    for item, answer in zip(items, answers, strict=True):
        doc = item[0]
        status = int(answer["create"]["status"])
        if status < 300 or status == 409:
            count_stored(outcome, [doc], duplicate=status == 409)
        elif status == 429 and over_limit_alone(reason := _reason(answer), request_bytes):
            too_large.append(item)
            why = reason
        elif retryable(status) or _waits(answer):
            why = f"item status {status}: {_reason(answer)}{_hint(answer)}"
            result.must_retry([item], why, status)
        else:
            result.rejected.append((doc, _reason(answer)))
    return too_large, why


# Errors that say someone stopped writes to an index for a while: a block on writes
# (`index.blocks.write`, `read_only`, 403), or the index closed (400).
_STOPPED = ("cluster_block_exception", "index_closed_exception")


# What Elasticsearch answers for each document of an index whose `index.default_pipeline`
# or `index.final_pipeline` names an ingest pipeline that does not exist (400).
_NO_PIPELINE = re.compile(r"^pipeline with id \[(.*)\] does not exist$")


def _waits(answer: dict[str, Any]) -> bool:
    """Whether the item met writes stopped for a while: the line belongs in its stream
    once they are allowed again, not in the dead letters (where a closed write index sent
    every line until it was opened). The disk watermark's block comes as 429. So does a
    stream no template makes a data stream (ours is gone: `setup` brings it back), and an
    ingest pipeline the stream's settings name that is missing: every line is refused
    until the operator creates it, the dead letters too (their stream names it as well)."""
    error = answer["create"].get("error")
    if not isinstance(error, dict):
        return False
    kind = error.get("type")
    if kind == "index_not_found_exception":
        return "requires a data stream" in str(error.get("reason"))
    if kind == "illegal_argument_exception":
        return _NO_PIPELINE.match(str(error.get("reason"))) is not None
    return kind in _STOPPED


def _hint(answer: dict[str, Any]) -> str:
    """What to do about a waiting item, where Elasticsearch's reason does not say it."""
    error = answer["create"].get("error")
    found = _NO_PIPELINE.match(str(error.get("reason"))) if isinstance(error, dict) else None
    if found is None:
        return ""
    return (
        f": the ingest pipeline [{found[1]}] that index.default_pipeline or "
        f"index.final_pipeline of the stream names (from {CUSTOM_TEMPLATE}) is missing; "
        "the lines wait until it is created, or the setting is removed from "
        f"{CUSTOM_TEMPLATE} and the stream"
    )


def count_stored(outcome: Outcome, docs: list[Doc], duplicate: bool) -> None:
    """Count documents Elasticsearch has now: dead letters as such, the rest by status."""
    dead = sum(1 for doc in docs if doc.stream == DEADLETTER_STREAM)
    if dead:
        outcome.dead_lettered += dead
        metrics.RECORDS_DEAD_LETTERED.inc(dead)
    stored = len(docs) - dead
    if duplicate:
        outcome.duplicates += stored
        metrics.RECORDS_DUPLICATE.inc(stored)
    else:
        outcome.indexed += stored
        metrics.RECORDS_INDEXED.inc(stored)


def _reason(answer: dict[str, Any]) -> str:
    """Elasticsearch's reason, with its cause (where the actionable part usually is)."""
    error = answer["create"].get("error") or {}
    if not isinstance(error, dict):
        return str(error)
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        text += f" (caused by {cause.get('type', 'error')}: {cause.get('reason', '')})"
    return text


# How Elasticsearch starts the (filtered) answer to a request where every item is stored.
_CLEAN = b'{"errors":false'


def read_answer(raw: bytes, count: int) -> dict[str, Any]:
    """The answer to a _bulk request of `count` documents; ValueError (why) when it is no
    such answer: unreadable, or not one item per document. The request is then as if no
    answer came, sent again (the ids make that harmless), never taken as stored.

    Every item of a clean answer is stored, so its statuses (a few thousand) are only
    counted, not parsed; any other answer, 409s of documents already there included, is
    read whole and each of its items checked.
    """
    if raw.startswith(_CLEAN) and raw[len(_CLEAN) : len(_CLEAN) + 1] in (b",", b"}"):
        listed = raw.count(b'"status":')
        if listed != count:
            raise ValueError(f"the answer to _bulk lists {listed} items for {count} documents")
        return {"errors": False}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError(f"unreadable answer to _bulk: {raw[:200]!r}") from None
    if not isinstance(body, dict) or not isinstance(body.get("errors"), bool):
        raise ValueError(f"unreadable answer to _bulk: {raw[:200]!r}")
    items = body.get("items")
    if not isinstance(items, list) or len(items) != count:
        listed = len(items) if isinstance(items, list) else 0
        raise ValueError(f"the answer to _bulk lists {listed} items for {count} documents")
    for item in items:
        answer = item.get("create") if isinstance(item, dict) else None
        if not isinstance(answer, dict) or type(answer.get("status")) is not int:
            raise ValueError(f"the answer to _bulk holds an item that is no answer: {item!r:.200}")
    return body


def refusal(raw: bytes) -> str:
    """Elasticsearch's reason for refusing a whole request (its error type and reason)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:500].decode("utf-8", "replace") or "no reason given"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(error or body)[:500]
    return f"{error.get('type', 'error')}: {error.get('reason', '')}"
