"""Unit tests of reading a json-file log directly (a removed --rm container's tail)."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from shipper.demux import PIECE
from shipper.logfile import lines


def entry(stream: str, text: str, ts: str = "2026-11-27T22:08:07.039548676Z") -> bytes:
    return orjson.dumps({"log": text, "stream": stream, "time": ts})


def test_pieces_join_and_torn_lines_are_skipped() -> None:
    """16 KiB pieces join into one line; a line torn by a crash does not stop the reading."""
    long_text = "b" * 16383 + "\ufffd"
    data = b"\n".join(
        [
            entry("stdout", "one\n", "2026-11-27T22:08:07.1Z"),
            entry("stdout", long_text, "2026-11-27T22:08:07.2Z"),
            b'{"log":"torn li',
            entry("stderr", "err\n", "2026-11-27T22:08:07.25Z"),
            entry("stdout", "\ufffdend\n", "2026-11-27T22:08:07.2Z"),
            entry("stdout", "last without newline", "2026-11-27T22:08:07.3Z"),
        ]
    )
    got = [(ln.stream, ln.data.decode()) for ln in lines(data + b"\n", 1 << 20, tty=False)]
    assert got == [
        (1, "one"),
        (2, "err"),
        (1, long_text + "\ufffdend"),
        (1, "last without newline"),
    ]


def test_tty_line_ends_are_removed() -> None:
    """A TTY container's json-file lines lose their CRLF."""
    got = lines(entry("stdout", "hello\r\n") + b"\n", 1024, tty=True)
    assert [ln.data for ln in got] == [b"hello"]


@given(st.lists(st.text(max_size=3 * PIECE).map(lambda t: t.replace("\n", "")), max_size=5))
def test_any_line_comes_back_as_written(texts: list[str]) -> None:
    """Lines cut into 16 KiB pieces by dockerd come back whole, in order."""
    raw = []
    for i, text in enumerate(texts):
        ts = f"2026-11-27T22:08:{10 + i:02d}.5Z"
        data = (text + "\n").encode()
        pieces = [data[j : j + PIECE] for j in range(0, len(data), PIECE)]
        raw += [entry("stdout", p.decode("utf-8", "replace"), ts) for p in pieces]
    got = lines(b"\n".join(raw) + b"\n", 10 * PIECE, tty=False)
    expected = [
        "".join(
            (text + "\n").encode()[j : j + PIECE].decode("utf-8", "replace")
            for j in range(0, len((text + "\n").encode()), PIECE)
        )[:-1]
        for text in texts
    ]
    assert [ln.data.decode() for ln in got] == expected
