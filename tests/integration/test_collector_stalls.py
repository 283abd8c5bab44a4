"""Senders that stall or vanish mid-request, against a real collector process and node:
they are answered 408 and closed within the body timeout, and never hold the capacity
that healthy shippers need.
"""

from __future__ import annotations

import signal
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from elasticsearch import Elasticsearch

from collector.wire import NDJSON, PATH_LOGS
from tests.conftest import ES_URL, Process, wait_until
from tests.integration.test_collector_outages import batch_body, collector, http, metric

pytestmark = pytest.mark.integration
__all__ = ["collector"]  # the fixture, shared with the outage tests

STALLED = 20
BODY_TIMEOUT = 3
KEEPALIVE_TIMEOUT = 2
ABORTED = "logpipe_collector_requests_aborted_total"


def stalled_request(url: str, token: str) -> socket.socket:
    """A connection that sent the headers of a batch and one byte of its body, then nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    head = (
        f"POST {PATH_LOGS} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {NDJSON}\r\nContent-Length: 100000\r\n\r\n{{"
    )
    sock.sendall(head.encode())
    return sock


def answer_then_close(sock: socket.socket, wait: float) -> bytes:
    """Everything the collector sends on `sock` until it closes it (fails after `wait`)."""
    sock.settimeout(wait)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.fixture
def stalls() -> Iterator[Callable[[str, str, int], list[socket.socket]]]:
    """Open stalled requests; every socket is closed after the test."""
    with ExitStack() as stack:

        def open_stalled(url: str, token: str, count: int) -> list[socket.socket]:
            return [stack.enter_context(stalled_request(url, token)) for _ in range(count)]

        yield open_stalled


def _settings() -> dict[str, str]:
    return {"body_timeout": str(BODY_TIMEOUT), "keepalive_timeout": str(KEEPALIVE_TIMEOUT)}


def test_stalled_senders_leave_room_for_a_healthy_one(
    es: Elasticsearch,
    template: None,
    collector: Callable[..., tuple[Process, str]],
    stalls: Callable[[str, str, int], list[socket.socket]],
) -> None:
    """Twenty senders stalled mid-body: a healthy batch is indexed meanwhile, they get 408."""
    token, host = uuid.uuid4().hex, "stall-" + uuid.uuid4().hex[:8]
    _, url = collector(ES_URL, token, ready=True, **_settings())
    stalled = stalls(url, token, STALLED)
    wait_until(lambda: metric(url, "logpipe_collector_bodies_reading") == STALLED, 30)

    status, answer, _ = http(url + PATH_LOGS, batch_body(5, "healthy", host), token)

    assert (status, answer.get("indexed")) == (200, 5), answer
    es.indices.refresh(index="logs-*")
    assert es.count(index="logs-*", query={"term": {"host.name": host}})["count"] == 5
    for sock in stalled:
        assert answer_then_close(sock, BODY_TIMEOUT + 60).startswith(b"HTTP/1.1 408 ")
    assert metric(url, ABORTED + '{reason="body_timeout"}') == STALLED
    assert metric(url, "logpipe_collector_bodies_reading") == 0


def test_a_sender_gone_mid_body_is_counted_and_frees_its_place(
    es: Elasticsearch, template: None, collector: Callable[..., tuple[Process, str]]
) -> None:
    """A sender that closes its connection mid-body is counted as disconnected, holds nothing."""
    token = uuid.uuid4().hex
    _, url = collector(ES_URL, token, ready=True, **_settings())
    with stalled_request(url, token):
        wait_until(lambda: metric(url, "logpipe_collector_bodies_reading") == 1, 30)
    wait_until(lambda: metric(url, ABORTED + '{reason="disconnected"}') == 1, 30)
    assert metric(url, "logpipe_collector_bodies_reading") == 0
    assert metric(url, ABORTED + '{reason="body_timeout"}') == 0


def test_a_batch_whose_sender_left_while_the_collector_was_paused_is_not_indexed(
    es: Elasticsearch, template: None, collector: Callable[..., tuple[Process, str]]
) -> None:
    """A shipper gives up on a collector that hung and sends the batch elsewhere; when the
    collector resumes, the request waiting in its socket has no sender any more. Indexed
    then, after its stream rolled over, it would be there twice: it is dropped, counted."""
    token, host = uuid.uuid4().hex, "gone-" + uuid.uuid4().hex[:8]
    proc, url = collector(ES_URL, token, ready=True, **_settings())
    body = batch_body(5, "left", host)
    address, port = url.removeprefix("http://").split(":")
    proc.signal(signal.SIGSTOP)
    try:
        with socket.create_connection((address, int(port)), timeout=5) as sock:
            head = (
                f"POST {PATH_LOGS} HTTP/1.1\r\nHost: {address}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: {NDJSON}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
    finally:
        proc.signal(signal.SIGCONT)
    wait_until(lambda: metric(url, ABORTED + '{reason="disconnected"}') == 1, 30)
    status, answer, _ = http(url + PATH_LOGS, batch_body(3, "stayed", host), token)
    assert (status, answer.get("indexed")) == (200, 3), answer
    es.indices.refresh(index="logs-*")
    assert es.count(index="logs-*", query={"term": {"host.name": host}})["count"] == 3


def test_idle_connections_are_closed_after_the_keepalive_timeout(
    es: Elasticsearch, template: None, collector: Callable[..., tuple[Process, str]]
) -> None:
    """Connections with no request, half the headers of one, or idle after one, are closed."""
    token = uuid.uuid4().hex
    _, url = collector(ES_URL, token, **_settings())
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as silent:
        assert answer_then_close(silent, KEEPALIVE_TIMEOUT + 60) == b""
    with socket.create_connection((host, int(port)), timeout=5) as half:
        half.sendall(f"POST {PATH_LOGS} HTTP/1.1\r\nHost: {host}\r\nAuthor".encode())
        assert answer_then_close(half, KEEPALIVE_TIMEOUT + 60) == b""
    with socket.create_connection((host, int(port)), timeout=5) as idle:
        idle.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        answer = answer_then_close(idle, KEEPALIVE_TIMEOUT + 60)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b'{"status": "ok"}')
