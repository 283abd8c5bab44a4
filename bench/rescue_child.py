"""The process bench/rescue.py starts for one commit: its `--rm` rescue timed.

Run by path (``python bench/rescue_child.py DRIVER LINES TRIES``) with ``PYTHONPATH``
naming that commit's exported code first, so `shipper` is the commit's, then this
checkout (for tests/shipper/summaries.py). Prints one JSON object: the wall seconds of
each run, the lines queued, the reading path.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only: at run time `shipper` is the commit timed
    from shipper.containers import ContainerSummary

CID = "f" * 64


def _child(driver: str, count: int, tries: int) -> dict[str, Any]:
    """In the process of one commit: the follower's run, timed `tries` times."""
    from bench import corpus, fileread
    from shipper import metrics, native
    from shipper.cursor import Position
    from shipper.errors import ContainerGone
    from shipper.follow import Follower
    from shipper.inbox import Inbox
    from shipper.logfiles.watch import LogFiles
    from shipper.record import LogRecord, Meta
    from tests.shipper.summaries import container

    class Gone:
        """dockerd once the container is removed: no log, no inspection, no wait."""

        async def logs(self, cid: str, *args: object, **kw: object) -> AsyncGenerator[bytes, None]:
            raise ContainerGone("removed")
            yield b""  # an async generator, as the client's

        async def inspect(self, cid: str) -> ContainerSummary:
            raise ContainerGone("removed")

        async def wait_stopped(self, cid: str) -> None:
            raise ContainerGone("removed")

    with tempfile.TemporaryDirectory(prefix="logpipe-bench-rescue-") as tmp:
        root = Path(tmp)
        lines = corpus.lines(count)
        summary_ = container(cid=CID, auto_remove=True, log_driver=driver)
        if driver == "local":
            path = root / "containers" / CID / "local-logs" / "container.log"
            data = fileread.local_log(lines)
        else:
            path = root / "containers" / CID / f"{CID}-json.log"
            data = fileread.json_log(lines)
            summary_["log_path"] = str(path)
        path.parent.mkdir(parents=True)
        path.write_bytes(data)

        async def once() -> tuple[float, int]:
            inbox = Inbox(count + 100, metrics.PerContainer(False, 10))
            meta = Meta(CID, "app", "busybox")
            positions = {"stdout": Position(0, 0), "stderr": Position(0, 0)}
            follower = Follower(
                Gone(),  # dockerd's stand-in: the container is gone
                meta,
                positions,
                inbox,
                1 << 20,
                files=LogFiles(str(root)),
            )
            follower.learn(summary_, meta, skip=False)
            start = time.perf_counter()
            await follower.run()
            took = time.perf_counter() - start
            records = [inbox.get_nowait() for _ in range(inbox.qsize())]
            return took, sum(isinstance(r, LogRecord) for r in records)

        runs = [asyncio.run(once()) for _ in range(tries)]
        return {"seconds": [s for s, _ in runs], "lines": runs[0][1], "path": native.describe()}


if __name__ == "__main__":
    # Run by path, this file's folder comes first on sys.path: `bench` must be the package.
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # (bench/profile.py would shadow the standard library's)
    driver, count, tries = sys.argv[1:]
    print(json.dumps(_child(driver, int(count), int(tries))))
