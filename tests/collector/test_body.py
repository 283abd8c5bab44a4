"""Receiving request bodies: a slow body holds no batch place, the shared byte budget and
the body timeout refuse what goes past them, and the settings are checked at load.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator

import pytest

from collector import app as app_module
from collector.body import BodyBudget, Inflater
from collector.config import load_config
from collector.errors import BadRequest, Busy, ConfigError, PayloadTooLarge
from tests.collector.fake_es import fake_es, ok
from tests.collector.test_app import LIMIT, gzip_bomb, running, ts0, wait_ready
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


def inflate(encoding: str, data: bytes, limit: int = 1 << 20, step: int = 7) -> bytes:
    """`data` inflated by an Inflater, fed `step` bytes at a time as a slow body arrives."""
    inflater = Inflater(encoding, limit)
    out = [p for i in range(0, len(data), step) for p in inflater.feed(data[i : i + step])]
    inflater.end()
    return b"".join(out)


def test_gzip_and_both_kinds_of_deflate_are_inflated() -> None:
    """gzip, zlib-wrapped deflate and raw deflate (which some clients send) all inflate."""
    text = b"line\n" * 1000
    raw = zlib.compressobj(wbits=-15)
    assert inflate("gzip", gzip.compress(text)) == text
    assert inflate("deflate", zlib.compress(text)) == text
    assert inflate("deflate", raw.compress(text) + raw.flush()) == text


def test_gzip_members_one_after_another_are_all_inflated() -> None:
    """Concatenated gzip members (`cat a.gz b.gz`) are one body: every member's lines count."""
    assert inflate("gzip", gzip.compress(b"a\n") + gzip.compress(b"b\n"), step=5) == b"a\nb\n"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_stream_cut_short_is_refused(encoding: str) -> None:
    """A compressed body that ends before its stream does is a 400, not the lines it got."""
    packed = gzip.compress(b"x" * 5000) if encoding == "gzip" else zlib.compress(b"x" * 5000)
    with pytest.raises(BadRequest, match=f"not valid {encoding}: it ends before"):
        inflate(encoding, packed[:-6])


def test_bytes_after_the_stream_that_start_no_member_are_refused() -> None:
    """Junk after a gzip member is a 400 naming gzip's complaint."""
    with pytest.raises(BadRequest, match="not valid gzip: Error -3"):
        inflate("gzip", gzip.compress(b"a\n") + b"junk")


def test_a_bomb_stops_at_the_limit_without_inflating_it_whole() -> None:
    """Each step inflates no more than what is left of the limit, plus one byte."""
    inflater = Inflater("gzip", 1 << 20)
    bomb = gzip_bomb(64 << 20)
    inflated = []

    def feed_all() -> None:
        for i in range(0, len(bomb), 4096):
            inflated.append(sum(map(len, inflater.feed(bomb[i : i + 4096]))))

    with pytest.raises(PayloadTooLarge, match="over the 1048576 byte limit"):
        feed_all()
    assert sum(inflated) <= 1 << 20


def test_a_chunk_is_inflated_a_step_at_a_time() -> None:
    """A small chunk that inflates to 32 MiB comes out in pieces of at most 1 MiB, so the
    budget shared by every body is checked as it grows, not after."""
    inflater = Inflater("gzip", 32 << 20)
    pieces = [len(piece) for piece in inflater.feed(gzip_bomb(32 << 20))]
    inflater.end()
    assert sum(pieces) == 32 << 20
    assert max(pieces) <= 1 << 20


async def test_bodies_the_collector_cannot_read_whole_are_refused_with_json() -> None:
    """A gzip body cut short, `br`, or gzip without its header: JSON 4xx, nothing indexed."""
    packed = gzip.compress(body(source(), *(log(f"l{i}", i + 1) for i in range(500))))
    async with fake_es(ok) as fake, running(es_url=fake.url) as api:
        await wait_ready(api)
        cut = await api.post(packed[: len(packed) // 2], **{"Content-Encoding": "gzip"})
        brotli = await api.post(packed, **{"Content-Encoding": "br"})
        bare = await api.post(packed)
        whole = await api.post(
            packed + gzip.compress(log("l", 999) + b"\n"), **{"Content-Encoding": "gzip"}
        )
    assert (cut[0], brotli[0], bare[0]) == (400, 415, 400)
    assert "it ends before its compressed stream does" in cut[1]["error"]
    assert "Content-Encoding 'br' not supported" in brotli[1]["error"]
    assert "no 'Content-Encoding: gzip' header" in bare[1]["error"]
    assert (whole[0], whole[1]["indexed"]) == (200, 501)
    assert len(fake.ids()) == 501, "only the whole body may be indexed"
