"""How the shipper judges a collector's answer: done, send again later, or refused."""

from __future__ import annotations

import pytest

from shipper.errors import RejectedDelivery, RetryableDelivery, TooSlow
from shipper.sink import NOT_A_COLLECTOR, _from_elasticsearch, _judge, _retry_after

URL = "http://collector:8080"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_transient_answers_are_retried_later(status: int) -> None:
    """A slow body (408), an overloaded or unavailable collector: retryable, with Retry-After."""
    with pytest.raises(RetryableDelivery, match=f"answered {status}") as caught:
        _judge(URL, status, b'{"error": "later"}', 5.0)
    assert caught.value.retry_after == 5.0
    # Only a 408 says the body was the problem (it crossed the link too slowly).
    assert isinstance(caught.value, TooSlow) is (status == 408)


@pytest.mark.parametrize("status", [401, 403, 413, 415])
def test_refusals_say_so(status: int) -> None:
    """A refusal a person must fix is not a transient failure."""
    with pytest.raises(RejectedDelivery, match=f"answered {status}"):
        _judge(URL, status, b'{"error": "no"}', None)


ES_SECURITY = (
    b'{"error":{"root_cause":[{"type":"security_exception","reason":"missing authentication '
    b'credentials for REST request [/v1/logs]"}],"type":"security_exception","reason":"missing '
    b'authentication credentials for REST request [/v1/logs]"},"status":401}'
)


@pytest.mark.parametrize(
    ("status", "answer", "product", "reason"),
    [
        (
            400,
            b'{"error":"no handler found for uri [/v1/logs] and method [POST]"}',
            None,
            "no handler found for uri [/v1/logs] and method [POST]",
        ),
        (401, ES_SECURITY, None, "missing authentication credentials for REST request [/v1/logs]"),
        (
            405,
            b'{"error":"Incorrect HTTP method for uri [/x/v1/logs] and method [POST], allowed: '
            b'[GET]","status":405}',
            None,
            "Incorrect HTTP method for uri [/x/v1/logs] and method [POST], allowed: [GET]",
        ),
        (404, b"not found", "Elasticsearch", "not found"),
    ],
)
def test_a_refusal_elasticsearch_gave_says_it_is_no_collector(
    status: int, answer: bytes, product: str | None, reason: str
) -> None:
    """LOGPIPE_COLLECTOR_URL set to Elasticsearch's URL: its error shape or its
    X-Elastic-Product header names it, where a bare 400/401/404/405 explained nothing
    (and a 401 would have sent the operator to the tokens)."""
    assert _from_elasticsearch(product, answer)
    with pytest.raises(RejectedDelivery) as caught:
        _judge(URL, status, answer, None, 1, None, _from_elasticsearch(product, answer))
    assert str(caught.value) == f"{URL} answered {status}: {reason}; {NOT_A_COLLECTOR}"


@pytest.mark.parametrize(
    "answer",
    [b'{"error": "bearer token not accepted"}', b'{"error": "x", "detail": []}', b"", b"[1]"],
)
def test_a_collectors_own_refusal_is_not_taken_for_elasticsearch(answer: bytes) -> None:
    """The collector's errors are {"error": "..."} (with detail or result): no hint."""
    assert not _from_elasticsearch(None, answer)


ANSWER = b'{"received": 3, "indexed": 1, "duplicates": 1, "dead_lettered": 0, "dropped": 0}'


def test_success_and_partial_success_are_done() -> None:
    """A collector's 200, and a 400 whose good lines were indexed, end the batch."""
    _judge(URL, 200, ANSWER, None, 2)
    _judge(URL, 200, b'{"received": 2, "indexed": 2, "duplicates": 0, "dead_lettered": 0}', None, 2)
    _judge(URL, 400, b'{"error": "1 of 2 lines rejected", "result": {}}', None)


@pytest.mark.parametrize(
    "answer",
    [
        b"<html><body>Welcome to nginx!</body></html>",
        b"",
        b"{}",
        b'{"result": "ok"}',
        b"[3]",
        b'{"received": 3, "indexed": "1", "duplicates": 1, "dead_lettered": 0}',
        b'{"received": 1, "indexed": 1, "duplicates": 0, "dead_lettered": 0}',  # 1 of 2 lines
    ],
)
def test_a_200_that_is_no_collectors_answer_keeps_the_batch(answer: bytes) -> None:
    """A web server or another program at LOGPIPE_COLLECTOR_URL answering 200 has not
    indexed the batch: it is refused (kept and sent again), never taken as delivered."""
    with pytest.raises(RejectedDelivery, match="no logpipe collector's answer"):
        _judge(URL, 200, answer, None, 2)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_a_refusal_naming_where_it_points(status: int) -> None:
    """A batch does not follow a redirect: the message says where it went."""
    with pytest.raises(RejectedDelivery, match=f"answered {status}, a redirect to https://x/"):
        _judge(URL, status, b"moved", None, 2, "https://x/")


def test_retry_after_is_taken_up_to_five_minutes() -> None:
    """A proxy's Retry-After: 86400 would stop shipping for a day; nonsense is ignored."""
    assert _retry_after("5") == 5.0
    assert _retry_after("86400") == 300.0
    assert _retry_after("inf") == 300.0
    for value in (None, "", "soon", "nan", "-3"):
        assert _retry_after(value) is None
