"""Elasticsearch's failures, classified, and the collector's errors made of them.

The client raises ``ApiError`` when Elasticsearch answered an error status and
``TransportError`` when it did not answer (connection refused or reset, timeout, TLS).
Each becomes a :class:`Failure`, retryable (429, 5xx, no answer) or not, and this module
is the one place that turns them into the collector's errors (``raise ... from exc``):
:class:`~collector.errors.SinkError` for a bulk request refused as a whole (the retryable
ones are sent again until the deadline, then a RetryableSinkError), SetupError for the
index template, RetentionError for a step of the retention lifecycle, and what a failed
read is for the read API (:func:`read_refused`, :func:`closed_unlisted` for the list of
closed indices).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from elasticsearch import ApiError, TransportError

from collector.bulk import retryable
from collector.errors import (
    BadRequest,
    CollectorError,
    ReadUnavailable,
    SetupError,
    SinkError,
    TemplateUnchecked,
    TooMany,
)
from collector.templates import CUSTOM_TEMPLATE, TEMPLATE_NAME

# What the client raises when a request fails.
ES_ERRORS = (ApiError, TransportError)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed request: the status Elasticsearch answered (None: no answer) and why."""

    status: int | None
    # Elasticsearch's error type, e.g. resource_already_exists_exception (no answer: text).
    reason: str
    text: str  # the client's account of it, status and causes included

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later: a 429, a 5xx, or no answer."""
        return self.status is None or retryable(self.status)

    @property
    def why(self) -> str:
        """The failure in a few words, for logs and retry messages."""
        if self.status is None:
            return f"cannot reach Elasticsearch: {self.text}"
        return f"HTTP {self.status}: {self.reason}"


# The words a caller finds for a failure of its request.
Words = Callable[[Failure], str]


def failure(exc: ApiError | TransportError) -> Failure:
    """What the client's exception says: the status answered, if any, and why."""
    if isinstance(exc, ApiError):
        return Failure(exc.meta.status, exc.message, str(exc))
    return Failure(None, str(exc), str(exc))


def raise_as(
    error: Callable[[str], CollectorError], exc: ApiError | TransportError, words: Words
) -> NoReturn:
    """Raise the collector's `error`, in the `words` found for the client's `exc`."""
    raise error(words(failure(exc))) from exc


async def answer(call: Awaitable[T], error: Callable[[str], CollectorError], words: Words) -> T:
    """Await `call`; its failure is raised as the collector's `error`, in `words`."""
    try:
        return await call
    except ES_ERRORS as exc:
        raise_as(error, exc, words)


async def answer_unless(
    call: Awaitable[T],
    settled: Callable[[Failure], bool],
    error: Callable[[str], CollectorError],
    words: Words,
) -> T | None:
    """Like :func:`answer`, but None for a failure `settled` accepts (say, already done)."""
    try:
        return await call
    except ES_ERRORS as exc:
        if settled(failure(exc)):
            return None
        raise_as(error, exc, words)


def bulk_failure(exc: ApiError | TransportError) -> Failure:
    """A `_bulk` request's failure to retry (or, a 413, to split); a refusal raises SinkError."""
    failed = failure(exc)
    if failed.status is not None and failed.status != 413 and not failed.retryable:
        raise_as(SinkError, exc, lambda f: f"Elasticsearch refused the bulk request: {f.text}")
    return failed


def bulk_refusal(status: int, reason: str) -> Failure:
    """A `_bulk` answer with an error status (the request went to a node as raw bytes, so
    no exception came): to retry (or, a 413, to split); a refusal raises SinkError."""
    failed = Failure(status, reason, f"HTTP {status}: {reason}")
    if status != 413 and not failed.retryable:
        raise SinkError(f"Elasticsearch refused the bulk request (HTTP {status}): {reason}")
    return failed


def closed_unlisted(exc: ApiError | TransportError) -> NoReturn:
    """Raise ReadUnavailable for a failed listing of the closed indices, in words short
    enough for a reader's warning: a refusal of the collector's user, or the failure."""
    raise_as(ReadUnavailable, exc, _unlisted)


def _unlisted(failed: Failure) -> str:
    if failed.status in (401, 403):
        return (
            f"Elasticsearch refused to list them (HTTP {failed.status}): the collector's "
            "Elasticsearch user lacks the view_index_metadata privilege on logpipe's streams"
        )
    if failed.status is None:
        return "Elasticsearch did not answer the collector"
    return f"Elasticsearch failed to list them (HTTP {failed.status}: {failed.reason})"


def template_unreadable(exc: ApiError | TransportError) -> NoReturn:
    """Raise the SetupError for an index template that could not be read: missing, or why."""
    raise_as(SetupError, exc, _unreadable)


def template_unchecked(exc: ApiError | TransportError) -> NoReturn:
    """Raise TemplateUnchecked: no node answered the template's check, or one answered
    that it cannot now (429, 5xx)."""
    raise_as(TemplateUnchecked, exc, _unreadable)


def _unreadable(failed: Failure) -> str:
    if failed.status == 404:
        return (
            f"index template '{TEMPLATE_NAME}' is missing: run `logpipe-collector setup` "
            "against this Elasticsearch (until then batches are answered 503)"
        )
    if failed.status is None:
        return f"cannot reach Elasticsearch to check the template: {failed.text}"
    return f"cannot read the index template: {failed.text}"


def template_not_installed(exc: ApiError | TransportError) -> NoReturn:
    """Raise the SetupError for an index template that could not be installed, saying why."""
    cause = deepest_cause(exc)
    raise_as(SetupError, exc, lambda failed: _not_installed(failed, cause))


def deepest_cause(exc: ApiError | TransportError) -> str:
    """The last of the causes an error answer gives, where Elasticsearch says what it
    refused (the client's text names the first two only); "" when there is none."""
    body = exc.body if isinstance(exc, ApiError) else None
    error = body.get("error") if isinstance(body, dict) else None
    last = None
    while isinstance(error, dict) and isinstance(error.get("caused_by"), dict):
        last = error = error["caused_by"]
    return str(last.get("reason", "")) if last is not None else ""


def _not_installed(failed: Failure, cause: str) -> str:
    if failed.status is not None and "to no longer match a data stream template" in failed.text:
        # Streams another tool made while an older logpipe template matched logs-*-*.
        return (
            f"cannot narrow the index template to logpipe's own streams: {failed.text}. Give "
            "those data streams an index template of their own (Elasticsearch's "
            "built-in `logs` template, or the other tool's), then run setup again"
        )
    text = f"cannot install the index template: {failed.text}"
    if cause and cause not in text:
        text += f": {cause}"
    if f"component templates [{CUSTOM_TEMPLATE}]" in failed.text:
        text += (
            f". Elasticsearch cannot compose {CUSTOM_TEMPLATE} into it: change "
            f"{CUSTOM_TEMPLATE} (docs/shared-cluster.md), then run setup again"
        )
    return text


def read_refused(exc: ApiError | TransportError) -> NoReturn:
    """Raise what a failed read is for its reader: 503 (no answer, 5xx), 429 (Elasticsearch
    overloaded or the query over its limits), 400 (a query it refused: names why)."""
    failed = failure(exc)
    if failed.status is None or failed.status >= 500:
        raise_as(ReadUnavailable, exc, lambda f: f"Elasticsearch cannot answer now: {f.why}")
    if failed.status == 429:
        raise_as(TooMany, exc, lambda f: f"Elasticsearch refused the read as too costly: {f.text}")
    raise_as(BadRequest, exc, lambda f: f"Elasticsearch refused the query: {f.text}")
