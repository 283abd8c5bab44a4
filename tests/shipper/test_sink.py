"""How the shipper judges a collector's answer: done, send again later, or refused."""

from __future__ import annotations

import pytest

from shipper.errors import RejectedDelivery, RetryableDelivery
from shipper.sink import _judge

URL = "http://collector:8080"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_transient_answers_are_retried_later(status: int) -> None:
    """A slow body (408), an overloaded or unavailable collector: retryable, with Retry-After."""
    with pytest.raises(RetryableDelivery, match=f"answered {status}") as caught:
        _judge(URL, status, b'{"error": "later"}', 5.0)
    assert caught.value.retry_after == 5.0


@pytest.mark.parametrize("status", [401, 403, 413, 415])
def test_refusals_say_so(status: int) -> None:
    """A refusal a person must fix is not a transient failure."""
    with pytest.raises(RejectedDelivery, match=f"answered {status}"):
        _judge(URL, status, b'{"error": "no"}', None)


def test_success_and_partial_success_are_done() -> None:
    """200, and a 400 whose good lines were indexed, end the batch."""
    _judge(URL, 200, b"{}", None)
    _judge(URL, 400, b'{"error": "1 of 2 lines rejected", "result": {}}', None)
