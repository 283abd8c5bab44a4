"""Refused batches in the collector's log: each kind to each sender once a minute."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from collector import refusals as refusals_module
from collector.app import _said
from collector.refusals import INTERVAL, RefusalLog

log = logging.getLogger("test.refusals")


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def said(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, object]]]:
    """Each warning logged, with its fields, and forget them."""
    out = [
        (
            r.getMessage(),
            {
                k: getattr(r, k)
                for k in ("http.response.status_code", "source.address", "not_logged")
            },
        )
        for r in caplog.records
        if r.levelno == logging.WARNING
    ]
    caplog.clear()
    return out


def test_a_refusal_is_said_once_per_kind_and_sender_a_minute_with_the_count_not_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sender that retries for ever gets one warning a minute per kind, the next one
    counting those not said; another kind or another sender is said at once."""
    clock = Clock()
    refusals = RefusalLog(log, clock=clock)
    with caplog.at_level(logging.WARNING, logger=log.name):
        refusals.refused(401, "10.0.0.5", "bearer token not accepted")
        assert said(caplog) == [
            (
                "batch refused 401 (no or wrong token) from 10.0.0.5: bearer token not accepted",
                {"http.response.status_code": 401, "source.address": "10.0.0.5", "not_logged": 0},
            )
        ]
        for _ in range(5):
            clock.now += 10
            refusals.refused(401, "10.0.0.5", "bearer token not accepted")
        assert said(caplog) == []
        refusals.refused(415, "10.0.0.5", "Content-Type 'application/xml' not supported")
        refusals.refused(401, "10.0.0.6", "missing bearer token")
        assert [fields["source.address"] for _, fields in said(caplog)] == ["10.0.0.5", "10.0.0.6"]
        clock.now += INTERVAL - 50  # a minute after the first 401 of 10.0.0.5
        refusals.refused(401, "10.0.0.5", "bearer token not accepted")
        assert said(caplog) == [
            (
                "batch refused 401 (no or wrong token) from 10.0.0.5: bearer token not accepted"
                " (5 more of these from it not logged since the last)",
                {"http.response.status_code": 401, "source.address": "10.0.0.5", "not_logged": 5},
            )
        ]
        clock.now += INTERVAL - 1
        refusals.refused(401, "10.0.0.5", "bearer token not accepted")
        assert said(caplog) == []
        clock.now += 1
        refusals.refused(401, "10.0.0.5", "bearer token not accepted")
        assert [fields["not_logged"] for _, fields in said(caplog)] == [1]


def test_senders_beyond_the_bound_forget_those_not_said_to_for_a_minute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Refusals from ever new addresses (a scan) keep at most MAX_REMEMBERED senders:
    those said to an interval ago or more are forgotten, their counts with them."""
    monkeypatch.setattr(refusals_module, "MAX_REMEMBERED", 2)
    clock = Clock()
    refusals = RefusalLog(log, clock=clock)
    with caplog.at_level(logging.WARNING, logger=log.name):
        for sender in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):
            refusals.refused(400, sender, "bad")
        clock.now += 1
        refusals.refused(400, "10.0.0.3", "bad")  # nobody to forget yet: three kept
        clock.now += INTERVAL
        refusals.refused(400, "10.0.0.4", "bad")
        assert refusals.remembered() == 1
        refusals.refused(400, "10.0.0.1", "bad")
    assert [fields["not_logged"] for _, fields in said(caplog)] == [0, 0, 0, 0, 0]


def test_a_refusal_whose_body_is_not_ours_is_said_as_it_is() -> None:
    """The warning reads the `error` of the collector's own JSON answers; any other body
    (a text page, JSON of another shape) must never fail the answer it is about."""
    assert _said(web.Response(status=400, body=b'{"error": "bad line 3"}')) == "bad line 3"
    assert _said(web.Response(status=413, text="Request Entity Too Large")) == (
        "Request Entity Too Large"
    )
    assert _said(web.Response(status=400, body=b"[1, 2]")) == ""


def test_a_reason_given_as_a_function_is_read_only_for_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Reading a refused answer's error costs a JSON parse: a sender refused many times
    a second has it done once a minute, for the warning written."""
    clock = Clock()
    refusals = RefusalLog(log, clock=clock)
    asked: list[int] = []

    def reason() -> str:
        asked.append(1)
        return "bearer token not accepted"

    with caplog.at_level(logging.WARNING, logger=log.name):
        for _ in range(100):
            refusals.refused(401, "10.0.0.5", reason)
        clock.now += INTERVAL
        refusals.refused(401, "10.0.0.5", reason)
    assert len(asked) == 2
    assert [message for message, _ in said(caplog)] == [
        "batch refused 401 (no or wrong token) from 10.0.0.5: bearer token not accepted",
        "batch refused 401 (no or wrong token) from 10.0.0.5: bearer token not accepted"
        " (99 more of these from it not logged since the last)",
    ]
