"""The shipper's tasks are supervised: one that fails stops the process, visibly."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from shipper.__main__ import ship_until_stopped, shut_down
from shipper.config import load_config
from shipper.errors import TaskFailed
from shipper.tail.tap import Tap


class Forever:
    """A task that runs until cancelled, and a shutdown where everything went well."""

    def __init__(self) -> None:
        self.write_error: str | None = None
        self.spool = SimpleNamespace(pending_batches=0, used=0)
        self.hurry = asyncio.Event()

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def stop(self) -> None:
        pass

    async def finish(self, wait_seconds: float, hurry: asyncio.Event | None = None) -> bool:
        return True

    async def drain(self, wait_seconds: float) -> bool:
        return True


class Failing(Forever):
    async def run(self) -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("unexpected")


@pytest.mark.parametrize("which", ["supervisor", "inbox", "batcher", "sender"])
async def test_a_task_that_fails_stops_the_shipper_with_its_traceback(
    tmp_path: Path, which: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Any of the long-running tasks failing ends the run with TaskFailed (exit 1), the
    traceback logged, instead of a process that answers /healthz and ships nothing."""
    config = load_config(state_dir=tmp_path, collector_url="http://x")
    parts = {name: Forever() for name in ("supervisor", "inbox", "batcher", "sender")}
    parts[which] = Failing()
    with pytest.raises(TaskFailed, match=f"task {which} failed: RuntimeError: unexpected"):
        await asyncio.wait_for(
            ship_until_stopped(config, asyncio.Event(), Tap(), **parts),  # type: ignore[arg-type]
            5,
        )
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None
    assert "RuntimeError: unexpected" in caplog.text


async def test_sigterm_still_stops_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With every task healthy, a stop is an orderly shutdown, not a failure."""
    caplog.set_level(logging.INFO)
    config = load_config(state_dir=tmp_path, collector_url="http://x")
    stop = asyncio.Event()
    stop.set()
    parts = {name: Forever() for name in ("supervisor", "inbox", "batcher", "sender")}
    await ship_until_stopped(config, stop, Tap(), **parts)  # type: ignore[arg-type]
    assert "stopped: everything read was delivered" in caplog.messages


async def test_shutdown_with_an_unwritable_disk_buffer_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Lines that could not be written at exit are not reported as delivered, nor as
    waiting for a full buffer."""
    caplog.set_level(logging.INFO)
    config = load_config(state_dir=tmp_path, collector_url="http://x", shutdown_timeout=0)
    batcher = Forever()
    batcher.write_error = "/state/spool: ENOSPC: No space left on device"

    async def stuck(wait_seconds: float, hurry: asyncio.Event | None = None) -> bool:
        return False

    batcher.finish = stuck  # type: ignore[method-assign]
    reading = asyncio.create_task(asyncio.sleep(10))
    await shut_down(config, reading, Forever(), batcher, Forever())  # type: ignore[arg-type]
    assert "disk buffer not writable at exit" in caplog.text
    assert "did not reach the disk buffer" not in caplog.text
    assert "everything read was delivered" not in caplog.text
