"""Run `logpipe-collector` or `logpipe-shipper` on uvloop's event loop: the uvloop
experiment, without touching their code. Usage: python -m bench.uvloop_run collector serve
"""

from __future__ import annotations

import asyncio
import importlib
import sys

import uvloop

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    entry = importlib.import_module(f"{sys.argv[1]}.__main__")
    sys.exit(entry.main(sys.argv[2:]))
