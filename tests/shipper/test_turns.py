"""Unit tests of the turns stopped containers' log reads wait for."""

from __future__ import annotations

import asyncio

from shipper.follow.turns import Turns


async def _hold(turns: Turns, started: asyncio.Event, done: asyncio.Event, got: list[bool]) -> None:
    async with turns.turn(started) as turn:
        got.append(turn)
        await done.wait()


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_at_most_size_hold_a_turn_and_the_next_gets_a_freed_one() -> None:
    """Three wait for two turns: the third gets the turn the first gives back."""
    turns = Turns(2)
    started = [asyncio.Event() for _ in range(3)]
    done = [asyncio.Event() for _ in range(3)]
    got: list[list[bool]] = [[], [], []]
    tasks = [asyncio.create_task(_hold(turns, started[i], done[i], got[i])) for i in range(3)]
    await _settle()
    assert got == [[True], [True], []]
    done[0].set()
    await _settle()
    assert got == [[True], [True], [True]]
    for event in done:
        event.set()
    await asyncio.gather(*tasks)


async def test_a_container_that_starts_does_not_wait_and_gives_its_turn_back() -> None:
    """A waiter that starts goes on without a turn; a holder that starts frees its turn."""
    turns = Turns(1)
    started = [asyncio.Event() for _ in range(3)]
    done = [asyncio.Event() for _ in range(3)]
    got: list[list[bool]] = [[], [], []]
    tasks = [asyncio.create_task(_hold(turns, started[i], done[i], got[i])) for i in range(3)]
    await _settle()
    assert got == [[True], [], []]
    started[1].set()  # waiting: goes on at once, without a turn
    await _settle()
    assert got == [[True], [False], []]
    started[0].set()  # holding: its turn goes to the next one though it still reads
    await _settle()
    assert got == [[True], [False], [True]]
    for event in done:
        event.set()
    await asyncio.gather(*tasks)
    assert not turns._free.locked()


async def test_cancelled_waiters_and_holders_leak_no_turn() -> None:
    """Cancelling a holder and a waiter leaves every turn free."""
    turns = Turns(1)
    done = asyncio.Event()
    holder = asyncio.create_task(_hold(turns, asyncio.Event(), done, []))
    waiter = asyncio.create_task(_hold(turns, asyncio.Event(), done, []))
    await _settle()
    waiter.cancel()
    holder.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    got: list[bool] = []
    done.set()
    await _hold(turns, asyncio.Event(), done, got)
    assert got == [True]
    assert not turns._free.locked()
