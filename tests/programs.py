"""Run `python -m collector` / `python -m shipper` as a user would, and read what they say."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any LOGPIPE_* or DOCKER_HOST, plus `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("LOGPIPE_") and k.upper() != "DOCKER_HOST"
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(settings)
    return env


def run(
    program: str,
    *args: str,
    cwd: Path,
    timeout: float = 60,
    environ: Mapping[str, str] | None = None,
    **settings: str,
) -> subprocess.CompletedProcess[str]:
    """Run `program` (collector or shipper) in `cwd` with `settings` as its environment,
    after `environ` (settings whose names are chosen at run time: spread as keywords, one
    could land on `cwd` or `timeout`)."""
    settings = {**(environ or {}), **settings}
    if program == "shipper":  # never the machine's /var/lib/logpipe
        settings.setdefault("LOGPIPE_STATE_DIR", str(cwd / "state"))
    return subprocess.run(
        [sys.executable, "-m", program, *args],
        env=clean_env(**settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed start; fails when it is a traceback or noise."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Unclosed" not in proc.stderr + proc.stdout
    assert "Task was destroyed" not in proc.stderr + proc.stdout
    return lines[0]


def config_rows(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    """The rows `config --json` printed, by variable name."""
    return {row["variable"]: row for row in json.loads(proc.stdout)}


def value_and_source(rows: dict[str, dict[str, str]]) -> dict[str, tuple[str, str]]:
    """Each variable's effective value and where it came from."""
    return {name: (row["value"], row["source"]) for name, row in rows.items()}


def default_sigint() -> None:
    """A child's preexec_fn: SIGINT as a terminal gives it. A shell without job control
    starts background jobs (a test run among them) with SIGINT ignored, and a program
    keeps that, as it should; a test of Ctrl-C must not inherit it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
