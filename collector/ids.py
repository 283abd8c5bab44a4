"""The ``_id`` of each document: deterministic, and for records ordered by time. Pure.

Deterministic because delivery is exactly-once by ``_id``: a replayed line gets the id it
had, so the ``create`` Elasticsearch refuses as a conflict neither overwrites nor
duplicates. Time-ordered because Elasticsearch stores a base64url ``_id`` as its bytes:
ids that start with the record's timestamp keep the terms of the ``_id`` field in few,
ordered blocks, and checking that an id is new costs less than with random ids
(docs/documents.md).
"""

from __future__ import annotations

import binascii
import hashlib

_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(digest: bytes) -> str:
    # base64url of 16 bytes without its "==" padding, as urlsafe_b64encode().rstrip() gives.
    return binascii.b2a_base64(digest, newline=False).translate(_URLSAFE)[:22].decode("ascii")


def _digest(raw: str) -> str:
    return _b64(hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=16).digest())


def doc_id(*parts: str | int) -> str:
    """A short, stable id from the parts that make a record unique (no time order)."""
    return _digest("\x1f".join(str(p) for p in parts))


def _suffix(*parts: str | int) -> bytes:
    raw = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=8).digest()


def ordered_id(ts: int, *parts: str | int) -> str:
    """A stable id that sorts by time: `ts` (ns) as 8 big-endian bytes, then 8 bytes of
    blake2b of the other parts that make the record unique, in base64url (22 characters).
    """
    return _b64(ts.to_bytes(8, "big") + _suffix(*parts))


def log_id(host: str, container_id: str, stream: str, ts: int, seq: int) -> str:
    """The `_id` of a log line: ``ordered_id(ts, host, container_id, stream, seq)``."""
    return ordered_id(ts, host, container_id, stream, seq)


class LogIds:
    """:func:`log_id` for the lines of one container; the hash of a stream's lines of
    sequence number 0 (nearly all) is made once."""

    __slots__ = ("container_id", "host", "suffixes")

    def __init__(self, host: str, container_id: str) -> None:
        self.host = host
        self.container_id = container_id
        self.suffixes: dict[str, bytes] = {}

    def log_id(self, stream: str, ts: int, seq: int) -> str:
        """``log_id(host, container_id, stream, ts, seq)`` of this container."""
        if seq:
            return _b64(ts.to_bytes(8, "big") + _suffix(self.host, self.container_id, stream, seq))
        suffix = self.suffixes.get(stream)
        if suffix is None:
            suffix = self.suffixes[stream] = _suffix(self.host, self.container_id, stream, 0)
        return _b64(ts.to_bytes(8, "big") + suffix)
