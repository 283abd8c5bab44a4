"""Read tokens read, ingest tokens ingest; the other kind is a 403, anything else 401,
and without read tokens the read API is a 404 saying how to switch it on."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.errors import BadRequest, Forbidden, NotFound, Unauthorized
from collector.read.access import Access
from tests.programs import one_line_error, run

ACCESS = Access(frozenset({"r1", "r2"}), frozenset({"i1"}))


@pytest.mark.parametrize(
    ("header", "wanted", "error"),
    [
        ("Bearer r1", "read", None),
        ("bearer r2", "read", None),
        ("Bearer i1", "ingest", None),
        ("Bearer i1", "read", Forbidden),
        ("Bearer r1", "ingest", Forbidden),
        ("Bearer nope", "read", Unauthorized),
        ("Bearer nope", "ingest", Unauthorized),
        ("", "read", Unauthorized),
        ("Basic r1", "read", Unauthorized),
        ("Bearer ", "read", Unauthorized),
        # Not UTF-8 (aiohttp keeps the bytes as surrogates): a wrong token, not a 500.
        ("Bearer r\udce9ad", "read", Unauthorized),
        ("Bearer r\udce9ad", "ingest", Unauthorized),
        ("Bearer r\ud800", "read", Unauthorized),
        ("Bearer réad", "read", Unauthorized),
    ],
)
def test_the_matrix(header: str, wanted: str, error: type[BadRequest] | None) -> None:
    """Each token kind on each endpoint kind gets its answer."""
    if error is None:
        ACCESS.check(header, wanted)  # type: ignore[arg-type]
        return
    with pytest.raises(error):
        ACCESS.check(header, wanted)  # type: ignore[arg-type]


def test_no_read_tokens_means_404_with_the_way_on() -> None:
    """Without read tokens every read is a 404 naming LOGPIPE_READ_TOKENS, whatever token."""
    off = Access(frozenset(), frozenset({"i1"}))
    with pytest.raises(NotFound, match="LOGPIPE_READ_TOKENS"):
        off.check("Bearer i1", "read")
    off.check("Bearer i1", "ingest")


def test_unreadable_read_tokens_file_stops_the_start(tmp_path: Path) -> None:
    """A read tokens file that cannot be read is one line naming the variable, exit 2."""
    proc = run(
        "collector",
        "serve",
        cwd=tmp_path,
        LOGPIPE_TOKENS="ingest",
        LOGPIPE_READ_TOKENS_FILE=str(tmp_path / "missing"),
        LOGPIPE_LISTEN="127.0.0.1:0",
    )
    assert proc.returncode == 2
    assert "LOGPIPE_READ_TOKENS_FILE: cannot read" in one_line_error(proc)


def test_a_token_that_is_not_utf8_matches_its_own_bytes() -> None:
    """A token set with bytes that are not UTF-8 is compared byte for byte."""
    access = Access(frozenset({"r\udce9ad"}), frozenset())
    access.check("Bearer r\udce9ad", "read")
