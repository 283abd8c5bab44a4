"""Who may read: the bearer token of a request, weighed against both kinds of token. Pure.

Read tokens and ingest tokens are separate, so a shipper's token (on every Docker host)
never reads everyone's logs and a reader's token never writes any. The comparison runs
over every token of both kinds, so its time says nothing about which one nearly matched.
"""

from __future__ import annotations

import hmac
from typing import Literal

from collector.errors import Forbidden, NotFound, Unauthorized

Kind = Literal["read", "ingest"]
OFF = "the read API is off: set LOGPIPE_READ_TOKENS (or LOGPIPE_READ_TOKENS_FILE) on the collector"


def _raw(text: str) -> bytes:
    """The bytes a header or setting held: aiohttp and os.environ keep bytes that are not
    UTF-8 as surrogates, and such a token is a wrong token (401), not a failure (500)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def bearer(header: str) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, if it has one."""
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return None
    return _raw(presented.strip())


def _matches(given: bytes, tokens: frozenset[bytes]) -> bool:
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token)
    return matched


class Access:
    """The tokens of both kinds, and the rule of who may do what."""

    def __init__(self, read: frozenset[str], ingest: frozenset[str]) -> None:
        self._read = frozenset(_raw(t) for t in read)
        self._ingest = frozenset(_raw(t) for t in ingest)

    @property
    def reading_on(self) -> bool:
        """Whether any read token is configured (else the read API answers 404)."""
        return bool(self._read)

    def check(self, header: str, wanted: Kind) -> None:
        """Raise unless the header's token is of the `wanted` kind (401, 403, or 404)."""
        if wanted == "read" and not self._read:
            raise NotFound(OFF)
        given = bearer(header)
        if given is None:
            raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
        is_read, is_ingest = _matches(given, self._read), _matches(given, self._ingest)
        if (is_read and wanted == "read") or (is_ingest and wanted == "ingest"):
            return
        if wanted == "read" and is_ingest:
            raise Forbidden(
                "this is an ingest token: reading needs a read token (LOGPIPE_READ_TOKENS)"
            )
        if wanted == "ingest" and is_read:
            raise Forbidden(
                "this is a read token: sending logs needs an ingest token (LOGPIPE_TOKENS)"
            )
        if wanted == "read":
            raise Unauthorized("bearer token not accepted: check the read token you were given")
        raise Unauthorized("bearer token not accepted: check LOGPIPE_TOKEN on the shipper")
