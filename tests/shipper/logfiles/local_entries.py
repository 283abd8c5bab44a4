"""Entries of a ``local`` driver log as dockerd writes them, for tests (written from the
format: a length, a protobuf LogEntry, the length again)."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """A protobuf varint (a negative int64 as its 10-byte two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    """One field: a varint for an int, length-delimited for bytes."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def message(
    source: str,
    ts: int,
    line: bytes,
    partial: bool = False,
    last: bool = False,
    ordinal: int = 0,
    extra: bytes = b"",
) -> bytes:
    """A LogEntry as dockerd fills it (an empty line and a false partial are left out)."""
    out = field(1, source.encode()) + field(2, ts)
    if line:
        out += field(3, line)
    if partial:
        meta = (field(1, 1) if last else b"") + field(2, b"id" * 32) + field(3, ordinal)
        out += field(4, 1) + field(5, meta)
    return out + extra


def framed(msg: bytes) -> bytes:
    """A message as an entry of the file: its length before and after it."""
    size = len(msg).to_bytes(4, "big")
    return size + msg + size


def entry(
    source: str,
    ts: int,
    line: bytes,
    partial: bool = False,
    last: bool = False,
    ordinal: int = 0,
    extra: bytes = b"",
) -> bytes:
    """One whole entry of the file."""
    return framed(message(source, ts, line, partial, last, ordinal, extra))
