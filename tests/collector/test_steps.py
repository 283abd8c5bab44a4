"""Work in steps: a job yields between parts of its list, and its result is the same
whatever the steps."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Generator

import pytest

from collector import steps


class Item:
    """Something a list alone keeps alive (weakly referable, to see it freed)."""


def count_steps(job: Generator[None, None, object]) -> tuple[object, int]:
    """The job's result and how many times it yielded."""
    taken = 0
    while True:
        try:
            next(job)
        except StopIteration as done:
            return done.value, taken
        taken += 1


def test_releasing_frees_a_part_of_the_list_in_each_step() -> None:
    """A list emptied in steps frees no more than PART of its items between two yields,
    and all of them by the end."""
    items = [Item() for _ in range(5 * steps.PART + 1)]
    alive = [weakref.ref(item) for item in items]
    job = steps.releasing(items, seconds=0)
    gc.disable()  # what is freed here is freed by reference counting alone
    try:
        next(job)  # a step of no time is over before it began
        assert sum(ref() is None for ref in alive) == 0
        next(job)
        assert sum(ref() is None for ref in alive) == steps.PART
        next(job)
        assert sum(ref() is None for ref in alive) == 2 * steps.PART
        _, rest = count_steps(job)
    finally:
        gc.enable()
    assert rest == 3
    assert (items, [ref() for ref in alive]) == ([], [None] * len(alive))


def test_without_seconds_a_job_is_one_step() -> None:
    """seconds=None: the whole list in one step, however long it is."""
    items = [Item() for _ in range(3 * steps.PART)]
    assert count_steps(steps.releasing(items, seconds=None)) == (None, 0)
    assert items == []


def test_a_clock_is_due_only_once_its_seconds_passed() -> None:
    """A step of an hour is not due; one of no time is, and again after a restart."""
    assert not steps.Clock(3600).due()
    assert not steps.Clock(None).due()
    clock = steps.Clock(0)
    assert clock.due()
    clock.restart()
    assert clock.due()


@pytest.mark.parametrize(("step_seconds", "after"), [(3600, 0), (0, 1)])
async def test_finish_lets_the_event_loop_run_between_two_steps(
    step_seconds: float, after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another task runs between every two steps of a job finished on the loop, and once
    after its last one when that one took half a step or more (here: steps of no time),
    so that the next job begins a step of its own."""
    monkeypatch.setattr(steps, "STEP_SECONDS", step_seconds)
    ran: list[str] = []

    def job(count: int) -> Generator[None, None, str]:
        for n in range(count):
            ran.append(f"step {n}")
            yield
        return "done"

    async def other() -> None:
        for _ in range(6):
            ran.append("other")
            await asyncio.sleep(0)

    other_task = asyncio.create_task(other())
    assert await steps.finish(job(3)) == "done"
    steps_run = ["step 0", "other", "step 1", "other", "step 2", "other"]
    assert ran == steps_run + ["other"] * after
    await other_task


@pytest.mark.parametrize("seconds", [None, 0, 3600])
def test_at_once_gives_the_jobs_result(seconds: float | None) -> None:
    """at_once runs a job to its end, whatever its steps."""
    items = list(range(2 * steps.PART))
    assert steps.at_once(steps.releasing(items, seconds)) is None
    assert items == []
