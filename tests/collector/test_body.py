"""Receiving request bodies: a slow body holds no batch place, the shared byte budget and
the body timeout refuse what goes past them, and the settings are checked at load.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from collector import app as app_module
from collector.body import BodyBudget
from collector.config import load_config
from collector.errors import Busy, ConfigError
from tests.collector.test_app import LIMIT, running, ts0, wait_ready
from tests.collector.wirelines import body, log, source

integration = pytest.mark.integration


def slow(release: asyncio.Event, t: int, padding: int = 0) -> AsyncIterator[bytes]:
    """A batch whose first line (and `padding` bytes) arrive at once, the rest on `release`."""

    async def chunks() -> AsyncIterator[bytes]:
        yield source() + b"\n" + b" " * padding + b"\n"
        await release.wait()
        yield log("late", t) + b"\n"

    return chunks()


@integration
async def test_a_body_still_arriving_holds_no_batch_place(template: None) -> None:
    """With one place and a body half sent, another batch is indexed; both end with 200."""
    release, t = asyncio.Event(), ts0()
    async with running(max_in_flight=1) as api:
        await wait_ready(api)
        first = asyncio.create_task(api.post(slow(release, t)))
        for _ in range(100):  # until the slow body is being read
            if api.client.app[app_module.STATE_KEY].bodies.held:
                break
            await asyncio.sleep(0.02)
        status, answer, _ = await api.post(body(source(), log("x", t + 1)))
        release.set()
        assert (status, answer["indexed"]) == (200, 1)
        assert api.client.app[app_module.STATE_KEY].in_flight == 0
        assert (await first)[0] == 200


@integration
async def test_bodies_past_the_shared_budget_are_refused_with_503(template: None) -> None:
    """While one body holds most of the budget, a second that would go past it gets 503."""
    release, t = asyncio.Event(), ts0()
    async with running(body_buffer_bytes=LIMIT) as api:
        await wait_ready(api)
        first = asyncio.create_task(api.post(slow(release, t, padding=LIMIT - 4096)))
        for _ in range(100):
            if api.client.app[app_module.STATE_KEY].bodies.held >= LIMIT - 4096:
                break
            await asyncio.sleep(0.02)
        big = body(source(), *(log("y" * 100, t + 1 + i) for i in range(60)))
        status, answer, headers = await api.post(big)
        release.set()
        assert (status, headers["Retry-After"]) == (503, "1")
        assert "too many request bodies" in answer["error"]
        assert (await first)[0] == 200
        assert api.client.app[app_module.STATE_KEY].bodies.held == 0


@integration
async def test_a_stalled_body_is_answered_408(template: None) -> None:
    """A body that stops arriving is answered 408 once body_timeout has passed."""
    release, t = asyncio.Event(), ts0()
    async with running(body_timeout=0.3) as api:
        await wait_ready(api)
        status, answer, _ = await api.post(slow(release, t))
        assert status == 408
        assert "LOGPIPE_BODY_TIMEOUT" in answer["error"]
        assert api.client.app[app_module.STATE_KEY].bodies.held == 0


def test_budget_refuses_what_would_go_past_it() -> None:
    """The budget takes bytes up to its limit and refuses the chunk that would pass it."""
    budget = BodyBudget(100)
    with budget.reading() as taken:
        budget.take(60)
        taken[0] += 60
        with pytest.raises(Busy):
            budget.take(41)
        assert budget.held == 60
    assert budget.held == 0


def test_a_budget_below_the_largest_body_is_refused_at_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """body_buffer_bytes under max_body_bytes is a configuration error naming the variable."""
    monkeypatch.setenv("LOGPIPE_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("LOGPIPE_BODY_BUFFER_BYTES", "1024")
    with pytest.raises(ConfigError, match="LOGPIPE_BODY_BUFFER_BYTES: 1024 is below max_body"):
        load_config()
