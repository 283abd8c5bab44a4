"""`logpipe-collector` on uvloop's event loop: the uvloop experiment, without touching it."""

from __future__ import annotations

import asyncio
import sys

import uvloop

from collector.__main__ import main

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.exit(main(sys.argv[1:]))
