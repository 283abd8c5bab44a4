"""Elasticsearch's failures: classified once, and turned into the collector's errors."""

from __future__ import annotations

import pytest
from elastic_transport import (
    ApiResponseMeta,
    ConnectionError,
    ConnectionTimeout,
    HttpHeaders,
    NodeConfig,
)
from elasticsearch import ApiError, TransportError

from collector.errors import RetentionError, RetryableSinkError, SetupError, SinkError
from collector.es_failures import (
    answer,
    answer_unless,
    bulk_failure,
    failure,
    template_not_installed,
    template_unreadable,
)


def api_error(status: int, kind: str = "some_exception", reason: str = "why") -> ApiError:
    """An error status as the client raises it."""
    meta = ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=NodeConfig("http", "localhost", 9200),
    )
    body = {"error": {"type": kind, "reason": reason, "root_cause": [{"reason": reason}]}}
    return ApiError(message=kind, meta=meta, body=body)


@pytest.mark.parametrize(
    ("exc", "status", "why"),
    [
        (api_error(429, "es_rejected_execution_exception"), 429, "HTTP 429: es_rejected"),
        (api_error(503, "unavailable"), 503, "HTTP 503: unavailable"),
        (api_error(413, "too_large"), 413, "HTTP 413: too_large"),
        (ConnectionError("refused"), None, "cannot reach Elasticsearch: "),
        (ConnectionTimeout("slow"), None, "cannot reach Elasticsearch: "),
    ],
)
def test_a_bulk_request_that_may_succeed_later_is_returned(
    exc: ApiError | TransportError, status: int | None, why: str
) -> None:
    """429, 5xx, 413 and no answer come back as a failure to retry (or split), not an error."""
    failed = bulk_failure(exc)
    assert failed.status == status
    assert failed.why.startswith(why)
    assert failed.retryable == (status != 413)


def test_a_bulk_request_refused_as_a_whole_is_a_sink_error() -> None:
    """Another 4xx to the whole request is a SinkError (not retryable) naming the refusal."""
    exc = api_error(400, "illegal_argument_exception", "bad payload")
    with pytest.raises(
        SinkError, match=r"Elasticsearch refused the bulk request: .*bad payload"
    ) as c:
        bulk_failure(exc)
    assert not isinstance(c.value, RetryableSinkError)
    assert c.value.__cause__ is exc


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (api_error(404, "resource_not_found_exception"), "index template 'logpipe' is missing"),
        (api_error(500, "boom"), "cannot read the index template: ApiError(500"),
        (ConnectionError("refused"), "cannot reach Elasticsearch to check the template"),
    ],
)
def test_an_unreadable_template_is_a_setup_error_saying_why(
    exc: ApiError | TransportError, words: str
) -> None:
    """A template that cannot be read is a SetupError: missing, refused or unreachable."""
    with pytest.raises(SetupError) as caught:
        template_unreadable(exc)
    assert str(caught.value).startswith(words)


def test_a_template_that_cannot_narrow_says_what_to_do() -> None:
    """Streams an older, wider template made keep the new one from narrowing: say how to fix."""
    exc = api_error(
        400, "illegal_argument_exception", "would cause to no longer match a data stream template"
    )
    with pytest.raises(SetupError, match=r"cannot narrow the index template.*run setup again"):
        template_not_installed(exc)
    with pytest.raises(SetupError, match="cannot install the index template: Connection"):
        template_not_installed(ConnectionError("refused"))


async def _raise(exc: Exception) -> str:
    raise exc


async def test_answer_turns_a_failure_into_the_callers_error_in_its_words() -> None:
    """A failed call becomes the caller's error, in the words it finds for the failure."""
    assert await answer(_value("ok"), RetentionError, str) == "ok"
    exc = api_error(500, "boom")
    with pytest.raises(RetentionError, match="listing: 500") as caught:
        await answer(_raise(exc), RetentionError, lambda f: f"listing: {f.status}")
    assert caught.value.__cause__ is exc


async def test_answer_unless_settles_what_the_caller_accepts() -> None:
    """A failure the caller accepts (a 404: already gone) is None; any other is its error."""
    gone = await answer_unless(
        _raise(api_error(404)), lambda f: f.status == 404, RetentionError, str
    )
    assert gone is None
    with pytest.raises(RetentionError, match="deleting x: cannot"):
        await answer_unless(
            _raise(ConnectionError("refused")),
            lambda f: f.status == 404,
            RetentionError,
            lambda f: f"deleting x: {f.why}",
        )


def test_failure_keeps_elasticsearchs_error_type() -> None:
    """An error status keeps Elasticsearch's error type, which callers match on."""
    failed = failure(api_error(400, "resource_already_exists_exception"))
    assert (failed.status, failed.reason) == (400, "resource_already_exists_exception")


async def _value(text: str) -> str:
    return text
