"""The collector's exceptions, one tree::

    CollectorError
    ├── ConfigError            bad config file or environment: names the key
    │   └── RulesError         a parsing rule that cannot work (pattern, type, format)
    ├── BadRequest             a request the collector cannot accept as a whole (4xx)
    │   ├── Unauthorized       missing or wrong bearer token (401)
    │   ├── Forbidden          a token of the other kind: ingest on read, read on ingest (403)
    │   ├── NotFound           the read API is off (no read tokens) (404)
    │   ├── PayloadTooLarge    body or its decompressed size over the limit (413)
    │   ├── UnsupportedMedia   Content-Type or Content-Encoding we do not read (415)
    │   ├── BodyTimeout        the body did not arrive within body_timeout (408)
    │   ├── SenderGone         the sender closed its connection before the body ended
    │   └── TooMany            too many tails at once, or Elasticsearch refused a read (429)
    ├── Busy                   no room for another batch or body now (503 + Retry-After)
    │   └── ShuttingDown       a body still arriving when serve stops (503 + Retry-After)
    ├── SinkError              Elasticsearch could not take the batch now
    │   └── RetryableSinkError 429, 5xx, connection errors, timeouts: try again later
    ├── ReadUnavailable        Elasticsearch cannot answer a read now (503)
    ├── SetupError             index template missing or out of date (run `setup`), or
    │                          logpipe@custom holds what cannot work (setup refuses it)
    │   └── KibanaError        Kibana unreachable, or it refused a saved object (names it)
    └── RetentionError         Elasticsearch failed a rollover, listing or deletion

Only the edge modules convert foreign exceptions into these, with ``raise ... from exc``:
app.py, badhttp.py, body.py and kibana.py those of aiohttp, es_failures.py those of
elasticsearch (for sink.py, the read API and the retention lifecycle alike), rules/regex.py
and rules/redact.py (whose RedactError is a ConfigError too) those of re2.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error the collector raises on purpose."""


class ConfigError(CollectorError):
    """The configuration is invalid; the message names the key."""


class RulesError(ConfigError, ValueError):
    """A parsing rule cannot work as written; a ValueError too, so the config model's
    validators report it against the rule's key."""


class BadRequest(CollectorError):
    """The request as a whole cannot be accepted."""

    status = 400


class Unauthorized(BadRequest):
    """Missing or wrong bearer token."""

    status = 401


class Forbidden(BadRequest):
    """A valid token of the wrong kind for this endpoint."""

    status = 403


class NotFound(BadRequest):
    """An endpoint that is switched off."""

    status = 404


class TooMany(BadRequest):
    """A limit on reading was reached: retry later (429 + Retry-After)."""

    status = 429


class PayloadTooLarge(BadRequest):
    """Body over the configured limit, compressed or not."""

    status = 413


class UnsupportedMedia(BadRequest):
    """A Content-Type or Content-Encoding the collector does not read."""

    status = 415


class BodyTimeout(BadRequest):
    """The sender stalled: the body did not arrive within the time allowed."""

    status = 408


class SenderGone(BadRequest):
    """The sender closed its connection mid-body, or before its batch was indexed; nobody
    is left to answer."""


class Busy(CollectorError):
    """The collector holds as much work as it may: the sender should retry shortly."""


class ShuttingDown(Busy):
    """The collector stops: a body still arriving will not be read to its end."""


class SinkError(CollectorError):
    """Elasticsearch did not accept the batch."""


class RetryableSinkError(SinkError):
    """Elasticsearch is down, overloaded or slow: the same request may succeed later."""

    def __init__(self, message: str, retry_after: float = 1.0, status: int = 503) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # 429 when Elasticsearch said it is overloaded, 503 when it is down or slow.
        self.status = status


class ReadUnavailable(CollectorError):
    """Elasticsearch does not answer a read now: retry later (503 + Retry-After)."""

    status = 503


class SetupError(CollectorError):
    """Our index template is missing or outdated, or `logpipe@custom` cannot work with it."""


class TemplateUnchecked(SetupError):
    """No node answered the index template's check, or one answered that it cannot now
    (429, 5xx): no verdict on the template."""


class KibanaError(SetupError):
    """Kibana did not become ready, or refused saved objects; the message names them."""


class RetentionError(CollectorError):
    """Elasticsearch failed a step of the retention lifecycle; the next run retries it."""
