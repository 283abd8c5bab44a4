"""HTTP to the collector's read API, over the standard library's blocking client.

The one module that meets http.client, socket and ssl exceptions: each becomes
`Unreachable`, and each answer but 200 the CollectorError its status means (errors.py),
with the collector's own message (`{"error": "..."}`).
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import quote, urlencode, urlsplit

import orjson

from logpipe.errors import (
    AuthError,
    BadQuery,
    CollectorError,
    Refused,
    Unavailable,
    Unreachable,
)

ERROR_BODY_BYTES = 64 * 1024
PATH_SAFE = "/%:@!$&'()*+,;=-._~"
# Foreign exceptions of a request or of reading its answer: all mean "no (whole) answer".
NETWORK_ERRORS = (OSError, http.client.HTTPException, ssl.SSLError)


def installed_version() -> str:
    """The installed logpipe's version, or a marker when run from a source tree."""
    try:
        return version("logpipe")
    except PackageNotFoundError:
        return "unknown (not installed)"


@dataclass(frozen=True)
class Endpoint:
    """Where the collector is, what to tell the user about it and its token, and how long
    to wait."""

    url: str
    token: str
    source: str = "--url"
    timeout: float = 60.0
    token_source: str = ""  # where the token came from (LOGPIPE_READ_TOKEN, ...), if known

    def where(self) -> str:
        """The URL and where it was set, for messages."""
        return f"{self.url} ({self.source})"


class Answer:
    """A 200 answer being read: its headers, and its body line by line."""

    def __init__(self, endpoint: Endpoint, conn: http.client.HTTPConnection,
                 resp: http.client.HTTPResponse) -> None:  # fmt: skip
        self.endpoint, self.conn, self.resp = endpoint, conn, resp

    def header(self, name: str) -> str | None:
        """A response header's value."""
        return self.resp.getheader(name)

    def lines(self) -> Iterator[str]:
        """The body's lines without their line endings, until the collector ends it."""
        while True:
            try:
                raw = self.resp.readline()
            except NETWORK_ERRORS as exc:
                raise Unreachable(
                    f"connection to the collector at {self.endpoint.url} lost: {reason(exc)}"
                ) from exc
            if not raw.endswith(b"\n") and self.resp.length:  # Content-Length not reached
                raise Unreachable(
                    f"connection to the collector at {self.endpoint.url} lost: the answer "
                    f"ended {self.resp.length} bytes before its end"
                )
            if not raw:
                return
            yield raw.decode("utf-8", errors="replace").rstrip("\r\n")

    def close(self) -> None:
        """Drop the connection."""
        self.conn.close()


def get(endpoint: Endpoint, path: str, params: list[tuple[str, str]],
        headers: dict[str, str] | None = None, accept: str = "") -> Answer:  # fmt: skip
    """GET `path` with `params`; the 200 answer, or the error its status means."""
    parts = urlsplit(endpoint.url)
    conn = connection(endpoint)
    # A proxy's path may hold any character; http.client sends ASCII only.
    target = f"{quote(parts.path, safe=PATH_SAFE)}{path}?{urlencode(params)}"
    sent: dict[str, str | bytes] = {
        # As UTF-8 (http.client would send latin-1, or fail): the collector compares bytes.
        "Authorization": f"Bearer {endpoint.token}".encode(),
        "Accept": accept,
        "User-Agent": f"logpipe/{installed_version()}",
        **(headers or {}),
    }
    try:
        conn.request("GET", target, headers=sent)
    except NETWORK_ERRORS as exc:
        conn.close()
        raise Unreachable(
            f"cannot reach the collector at {endpoint.where()}: {reason(exc)}"
        ) from exc
    try:
        resp = conn.getresponse()
    except TimeoutError as exc:  # connected and sent: it is the answer that never came
        conn.close()
        raise Unreachable(
            f"the collector at {endpoint.where()} took the request but did not answer "
            f"within {endpoint.timeout:g} s"
        ) from exc
    except NETWORK_ERRORS as exc:
        conn.close()
        raise Unreachable(
            f"cannot reach the collector at {endpoint.where()}: {reason(exc)}"
        ) from exc
    if resp.getheader("X-Elastic-Product"):  # Elasticsearch says so on every answer
        conn.close()
        raise Refused(
            f"{endpoint.where()} is Elasticsearch, not a logpipe collector: give the "
            "collector's URL",
            resp.status,
        )
    if resp.status != 200:
        body = read_error(resp)
        conn.close()
        if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
            body = f"it points to {resp.getheader('Location')}: give that URL"
        raise error_for(endpoint, resp.status, body, resp.getheader("Retry-After"))
    check_type(endpoint, resp, accept)
    return Answer(endpoint, conn, resp)


def connection(endpoint: Endpoint) -> http.client.HTTPConnection:
    """An unopened connection to the collector (HTTPS with the system's CAs)."""
    parts = urlsplit(endpoint.url)
    host, port = parts.hostname or "", parts.port
    if parts.scheme == "https":
        ctx = ssl.create_default_context()
        return http.client.HTTPSConnection(host, port, timeout=endpoint.timeout, context=ctx)
    return http.client.HTTPConnection(host, port, timeout=endpoint.timeout)


def check_type(endpoint: Endpoint, resp: http.client.HTTPResponse, accept: str) -> None:
    """A Refused error when a 200 answer is not what the read API sends (a wrong URL)."""
    got = (resp.getheader("Content-Type") or "").split(";")[0].strip()
    if accept and got != accept:
        resp.close()
        raise Refused(
            f"{endpoint.where()} answered with {got or 'no Content-Type'}, not {accept}: "
            "is this the URL of a logpipe collector?",
            200,
        )


def read_error(resp: http.client.HTTPResponse) -> str:
    """The collector's message from an error answer (its `error` key), or the text itself."""
    try:
        raw = resp.read(ERROR_BODY_BYTES)
    except NETWORK_ERRORS:
        return ""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace").strip()[:300]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return raw.decode("utf-8", errors="replace").strip()[:300]


def error_for(endpoint: Endpoint, status: int, message: str,
              retry_after: str | None) -> CollectorError:  # fmt: skip
    """The error an answer's status means, with the collector's message and advice."""
    said = f": {message}" if message else ""
    wait = seconds(retry_after)
    if status == 400:
        return BadQuery(f"the collector refused the query{said}", status)
    token = f"the read token from {endpoint.token_source}" if endpoint.token_source else ""
    if status == 401:
        return AuthError(
            f"the collector did not accept {token or 'the read token'} (401){said}", status
        )
    if status == 403:
        # The collector's message says what kind of token it was, and what reading needs.
        advice = said or (
            ": use a token listed in the collector's LOGPIPE_READ_TOKENS, not an ingest token"
        )
        return AuthError(f"{token or 'the token'} may not read (403){advice}", status)
    if status == 404:
        # A collector whose read API is off says so; any other 404 is a URL that is wrong.
        hint = "" if "read API is off" in message else ": check the URL (and its path, if any)"
        return Refused(f"{endpoint.where()} answered 404 (not found){said}{hint}", status)
    if status == 429:
        return Refused(f"the collector is at a limit (429){said}", status, wait)
    if status >= 500:
        return Unavailable(f"the collector cannot answer now ({status}){said}", status, wait)
    return Refused(f"unexpected answer from the collector ({status}){said}", status)


def seconds(retry_after: str | None) -> float | None:
    """A Retry-After header's delay in seconds (its HTTP-date form is not used here)."""
    try:
        return max(0.0, float(retry_after)) if retry_after else None
    except ValueError:
        return None


def reason(exc: BaseException) -> str:
    """A short, readable cause of a network error."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the collector running?)"
    if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER":
        # What a plain HTTP answer to a TLS hello reads as.
        return (
            "it does not speak TLS there (WRONG_VERSION_NUMBER): "
            "write http:// if it serves plain HTTP"
        )
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the collector closed the connection"
    if isinstance(exc, http.client.IncompleteRead):
        return "the answer was cut off"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__
