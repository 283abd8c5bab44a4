"""Process-wide settings: glibc's heap trimming (tune_malloc), the GC's thresholds."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from collector.runtime import listen_problem, tune_malloc
from tests.programs import clean_env

ROOT = Path(__file__).resolve().parents[2]

# Builds and frees a shipper-sized batch of encoded lines five times; prints the page
# faults those five cost (the first batch, which grows the heap, is not counted).
BATCHES = textwrap.dedent(
    """
    import resource, sys, orjson
    from collector.runtime import listen_problem, tune_malloc
    if sys.argv[1] == "tuned":
        assert tune_malloc()
    line = "x" * 190
    def batch():
        out = [orjson.dumps({"message": line, "seq": i}) for i in range(5000)]
        return len(b"\\n".join(out))
    batch()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        batch()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", BATCHES, mode],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout)


@pytest.mark.parametrize(
    "environ",
    [
        {"MALLOC_TRIM_THRESHOLD_": "131072"},
        {"MALLOC_TOP_PAD_": "0"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
    ],
)
def test_a_users_own_malloc_setting_wins(environ: dict[str, str]) -> None:
    assert tune_malloc(environ) is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc only")
def test_kept_heap_spares_the_page_faults_of_every_batch() -> None:
    untuned = _faults("default")
    tuned = _faults("tuned")
    # Measured: 26,314 faults untuned, 5 tuned.
    assert tuned * 10 < untuned, (tuned, untuned)


@pytest.mark.parametrize("package", ["shipper", "collector"])
def test_the_gc_thresholds_hold_before_the_heavy_imports(package: str) -> None:
    """A program's start imports aiohttp and pydantic with the garbage collector's
    thresholds already raised (importing the package sets them), not after."""
    probe = (
        f"import gc, sys, {package}; "
        "print(gc.get_threshold(), 'aiohttp' in sys.modules, 'pydantic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "(250000, 20, 100) False False"


@pytest.mark.parametrize("package", ["shipper", "collector"])
def test_a_start_runs_no_collection(package: str) -> None:
    """Importing a program and reading its settings runs no garbage collection (each one
    scanned the tens of thousands of objects the imports made); once it runs, tune_gc
    freezes what is alive and sets the running thresholds."""
    probe = (
        f"import gc, {package}; before = [g['collections'] for g in gc.get_stats()]; "
        f"import {package}.__main__; from {package}.config import load_config; load_config(); "
        "print([g['collections'] for g in gc.get_stats()] == before); "
        "from collector.runtime import tune_gc; tune_gc(); print(gc.get_threshold())"
    )
    env = clean_env(LOGPIPE_AUTH="none")
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.stdout.split("\n")[:2] == ["True", "(50000, 20, 100)"], out.stderr


def test_an_address_that_does_not_resolve_is_named_as_such() -> None:
    """LOGPIPE_LISTEN=nosuchhost.invalid:8080 said 'unknown error -2; choose a free
    port'; a port taken still says to choose another."""
    import errno
    import socket

    unknown = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert listen_problem(unknown) == (
        "no such address here (name or service not known): give one of this machine's, or 0.0.0.0"
    )
    taken = OSError(errno.EADDRINUSE, "Address already in use")
    assert (
        listen_problem(taken) == "address already in use; choose a free port or stop what holds it"
    )
