"""Positions in a sorted read, and the opaque cursors that carry them. Pure.

A read is sorted by a key of one or more date fields (a search by ``@timestamp``, a tail
by ``event.ingested`` then ``@timestamp``). Elasticsearch 9 sorts on no field that tells
two documents apart (``_id`` may not be sorted on unless a cluster setting re-enables
it, and ``_shard_doc`` is valid only within one point in time), so a :class:`Position`
is the key of the last document read *plus the ids of every document read with exactly
that key*. The next read takes the documents after the key, and those at the key
whose ids are not listed: nothing read twice, nothing skipped, on any collector, with
no setting of the cluster changed. The list is nearly always one id: documents share
a key only when they share their timestamp to the nanosecond.

A cursor is that position (and, for a search, its order, frozen time window and a hash
of its filters) as base64url of JSON: opaque to clients, and checked when it comes back.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from collector.errors import BadRequest
from collector.read.query import Clause, nanos_iso

Order = Literal["asc", "desc"]
# A key field and whether Elasticsearch holds it in ns (date_nanos) or ms (date).
KeyField = tuple[str, Literal["ns", "ms"]]
SEARCH_KEY: tuple[KeyField, ...] = (("@timestamp", "ns"),)
TAIL_KEY: tuple[KeyField, ...] = (("event.ingested", "ms"), ("@timestamp", "ns"))
# Ids listed in one position at most: a tie this long is not a log (it would take as
# many lines stamped with the same nanosecond).
MAX_TIED = 1000
_MAX_CURSOR = 64 * 1024
_NANOS = "strict_date_optional_time_nanos"


@dataclass(frozen=True, slots=True)
class Position:
    """The key of the last document read, and the ids read with exactly that key."""

    key: tuple[int, ...]
    ids: tuple[str, ...] = ()

    def then(self, key: tuple[int, ...], doc_id: str) -> Position:
        """The position after also reading the document `doc_id` at `key`."""
        if key == self.key:
            return Position(key, (*self.ids, doc_id)[-MAX_TIED:])
        return Position(key, (doc_id,))


def _bounds(field: KeyField, value: int, *ops: str) -> Clause:
    """A range on the key field with `value` as each of the bounds `ops` (gt, lte, ...)."""
    name, unit = field
    if unit == "ns":
        text: object = nanos_iso(value)
        return {"range": {name: {**dict.fromkeys(ops, text), "format": _NANOS}}}
    return {"range": {name: {**dict.fromkeys(ops, value), "format": "epoch_millis"}}}


def _range(field: KeyField, op: str, value: int) -> Clause:
    return _bounds(field, value, op)


def _equal(field: KeyField, value: int) -> Clause:
    return _bounds(field, value, "gte", "lte")


def after(position: Position, key: tuple[KeyField, ...], order: Order) -> Clause:
    """Documents after `position` in `order`: a later key, or its key but not yet read."""
    op = "gt" if order == "asc" else "lt"
    ways: list[Clause] = []
    for depth, field in enumerate(key):
        same = [_equal(f, v) for f, v in zip(key[:depth], position.key, strict=False)]
        ways.append({"bool": {"filter": [*same, _range(field, op, position.key[depth])]}})
    tied = [_equal(f, v) for f, v in zip(key, position.key, strict=True)]
    ways.append({"bool": {"filter": tied, "must_not": [{"ids": {"values": list(position.ids)}}]}})
    return {"bool": {"should": ways, "minimum_should_match": 1}}


def sort(key: tuple[KeyField, ...], order: Order) -> list[dict[str, Any]]:
    """The sort of a read by `key`."""
    # Without a format, Elasticsearch gives each sort value as a number (ns or ms).
    return [{name: {"order": order}} for name, _ in key]


def encode(fields: Mapping[str, object]) -> str:
    """An opaque cursor holding `fields`."""
    return base64.urlsafe_b64encode(orjson.dumps(fields)).decode("ascii").rstrip("=")


def decode(name: str, cursor: str) -> dict[str, Any]:
    """The fields of a cursor; a cursor not made here is a BadRequest naming `name`."""
    if len(cursor) > _MAX_CURSOR:
        raise BadRequest(f"{name}: longer than any cursor this API makes")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fields = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name}: not a cursor this API made (send it back unchanged)") from None
    if not isinstance(fields, dict):
        raise BadRequest(f"{name}: not a cursor this API made (send it back unchanged)")
    return fields


def position_of(name: str, fields: dict[str, Any], width: int) -> Position:
    """The position a decoded cursor holds, checked."""
    key, ids = fields.get("k"), fields.get("i")
    if (
        not isinstance(key, list)
        or len(key) != width
        or not all(isinstance(v, int) for v in key)
        or not isinstance(ids, list)
        or not all(isinstance(i, str) for i in ids)
    ):
        raise BadRequest(f"{name}: not a cursor of this endpoint (send it back unchanged)")
    return Position(tuple(key), tuple(ids))
