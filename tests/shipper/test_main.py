"""`logpipe-shipper` as a user runs it: start-up mistakes are one line and an exit code."""

from __future__ import annotations

import contextlib
import fcntl
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.programs import clean_env, config_rows, one_line_error, run, value_and_source


def test_unknown_setting_in_the_environment_is_a_config_error(tmp_path: Path) -> None:
    """A misspelled LOGPIPE_* variable stops the shipper with exit 2 and the name meant."""
    proc = run("shipper", cwd=tmp_path, LOGPIPE_BATCH_MAX_LINE="10")
    assert proc.returncode == 2
    assert "did you mean LOGPIPE_BATCH_MAX_LINES?" in one_line_error(proc)


def test_misspelling_in_dotenv_is_a_config_error(tmp_path: Path) -> None:
    """A misspelled name in .env is reported, naming the file, and compose's names pass."""
    (tmp_path / ".env").write_text("LOGPIPE_IMAGE=logpipe:local\nLOGPIPE_COLECTOR_URL=http://c:1\n")
    proc = run("shipper", cwd=tmp_path)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "LOGPIPE_COLECTOR_URL in .env" in line
    assert "did you mean LOGPIPE_COLLECTOR_URL?" in line


def test_docker_socket_missing_is_a_config_error(tmp_path: Path) -> None:
    """DOCKER_HOST naming a socket that does not exist stops the shipper at once, exit 2."""
    sock = tmp_path / "docker.sock"
    proc = run(
        "shipper",
        cwd=tmp_path,
        DOCKER_HOST=f"unix://{sock}",
        LOGPIPE_STATE_DIR=str(tmp_path / "state"),
        LOGPIPE_TOKEN="t",
    )
    assert proc.returncode == 2
    assert f"DOCKER_HOST: no Docker socket at {sock}" in one_line_error(proc)


def test_state_dir_not_writable_is_a_config_error(tmp_path: Path) -> None:
    """A state directory that cannot be made stops the shipper, naming LOGPIPE_STATE_DIR."""
    (tmp_path / "file").write_text("")
    proc = run("shipper", cwd=tmp_path, LOGPIPE_STATE_DIR=str(tmp_path / "file" / "state"))
    assert proc.returncode == 2
    assert "LOGPIPE_STATE_DIR: cannot write in" in one_line_error(proc)


def test_a_state_dir_in_use_is_a_config_error(tmp_path: Path) -> None:
    """A second shipper on a state directory in use stops at start, exit 2, naming the first."""
    state = tmp_path / "state"
    state.mkdir()
    with (state / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write("4242 host-a\n")
        lock.flush()
        proc = run("shipper", cwd=tmp_path, LOGPIPE_STATE_DIR=str(state), LOGPIPE_TOKEN="t")
    assert proc.returncode == 2
    assert one_line_error(proc) == (
        "logpipe-shipper: invalid configuration: LOGPIPE_STATE_DIR: another shipper "
        f"(pid 4242 on host-a) uses {state}; stop it, or give each shipper its own state directory"
    )


@pytest.mark.parametrize(
    ("make", "says"),
    [
        ("cursors.json", "cannot read the cursors in {state}/cursors.json (not JSON: "),
        ("cursors.json/", "cannot read the cursors in {state}/cursors.json (is a directory)"),
        ("spool", "cannot use the disk buffer {state}/spool (not a directory)"),
    ],
)
def test_unusable_state_files_are_a_config_error(tmp_path: Path, make: str, says: str) -> None:
    """A damaged cursor file or a spool that is no folder: one line naming it, exit 2."""
    state = tmp_path / "state"
    state.mkdir()
    if make.endswith("/"):
        (state / make).mkdir()
    else:
        (state / make).write_text("{not json")
    proc = run("shipper", cwd=tmp_path, LOGPIPE_STATE_DIR=str(state), LOGPIPE_TOKEN="t")
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert line.startswith("logpipe-shipper: invalid configuration: LOGPIPE_STATE_DIR: ")
    assert says.format(state=state) in line


def test_unreadable_token_file_is_a_config_error(tmp_path: Path) -> None:
    """A token file that cannot be read at start stops the shipper, naming the variable."""
    proc = run(
        "shipper",
        cwd=tmp_path,
        LOGPIPE_TOKEN_FILE=str(tmp_path / "missing"),
        LOGPIPE_STATE_DIR=str(tmp_path / "state"),
    )
    assert proc.returncode == 2
    assert "LOGPIPE_TOKEN_FILE: cannot read" in one_line_error(proc)


def test_http_listen_port_taken_is_a_config_error(tmp_path: Path) -> None:
    """A taken LOGPIPE_HTTP_LISTEN port stops the shipper in one line, exit 2."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run(
            "shipper",
            cwd=tmp_path,
            LOGPIPE_HTTP_LISTEN=f"127.0.0.1:{port}",
            LOGPIPE_HOST_NAME="startup-test",
            LOGPIPE_STATE_DIR=str(tmp_path / "state"),
            LOGPIPE_TOKEN="t",
            LOGPIPE_INCLUDE_NAMES="none-such-container",
        )
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert f"LOGPIPE_HTTP_LISTEN: cannot listen on 127.0.0.1:{port}: address already in use" in line


@pytest.mark.parametrize("args", [["--version"], ["config", "--version"]])
def test_version_is_the_installed_distribution(tmp_path: Path, args: list[str]) -> None:
    """`--version` prints the installed logpipe version."""
    proc = run("shipper", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"logpipe-shipper {version('logpipe')}\n"


def test_config_prints_each_setting_with_its_source(tmp_path: Path) -> None:
    """`config --json` gives every setting's variable, value and source, secrets hidden."""
    (tmp_path / ".env").write_text("LOGPIPE_BATCH_MAX_LINES=77\nLOGPIPE_IMAGE=logpipe:local\n")
    proc = run(
        "shipper",
        "config",
        "--json",
        cwd=tmp_path,
        LOGPIPE_TOKEN="s3cret-token",
        DOCKER_HOST="tcp://127.0.0.1:2375",
    )
    assert proc.returncode == 0, proc.stderr
    assert "s3cret-token" not in proc.stdout
    rows = config_rows(proc)
    got = value_and_source(rows)
    assert got["LOGPIPE_TOKEN"] == ("(set, hidden)", "environment")
    assert got["DOCKER_HOST"] == ("tcp://127.0.0.1:2375", "environment")
    assert got["LOGPIPE_BATCH_MAX_LINES"] == ("77", ".env")
    assert got["LOGPIPE_MAX_IN_FLIGHT"] == ("3", "default")
    assert rows["LOGPIPE_MAX_IN_FLIGHT"]["description"] == "Batches awaiting an answer at once."


def test_help_points_to_the_settings_and_exit_codes(tmp_path: Path) -> None:
    """--help names the config command and the exit statuses."""
    proc = run("shipper", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "logpipe-shipper config" in proc.stdout
    assert "2 bad configuration" in proc.stdout


def test_config_help_keeps_the_exit_statuses_one_a_line(tmp_path: Path) -> None:
    """`config --help` prints the exit statuses as --help does, one a line, not run together
    into one paragraph, and its description with an example."""
    proc = run("shipper", "config", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\n  2 bad configuration" in proc.stdout
    assert "example:\n  logpipe-shipper config --json" in proc.stdout


def test_unreadable_client_certificate_is_a_config_error(tmp_path: Path) -> None:
    """A client certificate that is not there stops the shipper at start, naming it, exit 2."""
    proc = run(
        "shipper",
        cwd=tmp_path,
        LOGPIPE_COLLECTOR_URL="https://127.0.0.1:1",
        LOGPIPE_CLIENT_CERT=str(tmp_path / "missing.crt"),
        LOGPIPE_TOKEN="t",
        DOCKER_HOST="unix:///var/run/docker.sock",
    )
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "LOGPIPE_CLIENT_CERT/LOGPIPE_CLIENT_KEY: cannot load" in line
    assert "no such file or directory" in line


def _stopped_once_healthy(
    args: list[str],
    tmp_path: Path,
    settle: float = 0.0,
    stop_within: float = 5,
    after_stop: Callable[[subprocess.Popen[str]], None] | None = None,
    **settings: str,
) -> tuple[subprocess.CompletedProcess[str], tuple[int, object] | None]:
    """Run the shipper (`args` after python), SIGTERM it `settle` seconds after /healthz
    answers, call `after_stop` with the process if given, wait `stop_within` seconds for
    it to end; what it did, and /healthz's status and JSON."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = clean_env(
        LOGPIPE_STATE_DIR=str(tmp_path / "state"),
        LOGPIPE_TOKEN="t",
        LOGPIPE_HTTP_LISTEN=f"127.0.0.1:{port}",
        **settings,
    )
    command = [sys.executable, *args]
    proc = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        health = None
        for _ in range(200):
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = (r.status, json.loads(r.read()))
                break
            time.sleep(0.05)
        time.sleep(settle)
        proc.send_signal(signal.SIGTERM)
        if after_stop is not None:
            after_stop(proc)
        out, err = proc.communicate(timeout=stop_within)
    finally:
        if proc.poll() is None:
            proc.kill()
            out, err = proc.communicate()
    return subprocess.CompletedProcess(command, proc.returncode, out, err), health


@pytest.mark.parametrize("docker_host", ["unix-stale", "tcp://127.0.0.1:1"])
def test_waiting_for_dockerd_answers_healthz_and_stops_on_sigterm(
    tmp_path: Path, docker_host: str
) -> None:
    """While dockerd does not answer at start, /healthz says so and SIGTERM ends the wait:
    exit 0, at once."""
    if docker_host == "unix-stale":  # a socket file nobody listens on
        stale = tmp_path / "stale.sock"
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(stale))
        docker_host = f"unix://{stale}"
    proc, health = _stopped_once_healthy(["-m", "shipper"], tmp_path, DOCKER_HOST=docker_host)
    assert health == (200, {"status": "waiting for dockerd", "docker_connected": False})
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err
    assert "waiting for dockerd" in out
    assert "stopped while waiting for dockerd" in out


def test_a_dotenv_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    """A .env saved in another encoding stops the start with exit 2, not a traceback."""
    (tmp_path / ".env").write_bytes(b"\xff\xfeLOGPIPE_BATCH_MAX_LINES=10\n")
    proc = run("shipper", "config", cwd=tmp_path)
    assert proc.returncode == 2
    assert ".env: not UTF-8 text (byte 0)" in one_line_error(proc)


@pytest.mark.parametrize(
    ("value", "path"), [("false", "Python"), ("off", "Python"), ("", "compiled")]
)
def test_native_takes_the_collectors_booleans_and_config_lists_it(
    tmp_path: Path, value: str, path: str
) -> None:
    """LOGPIPE_NATIVE reads 0/false/no/off as the collector does, and `config` shows it."""
    proc = run("shipper", "config", "--json", cwd=tmp_path, LOGPIPE_NATIVE=value)
    assert proc.returncode == 0, proc.stderr
    row = config_rows(proc)["LOGPIPE_NATIVE"]
    assert row["source"] == "environment"
    assert f"In effect: {path}" in row["description"]


def test_native_that_is_no_boolean_is_refused(tmp_path: Path) -> None:
    """LOGPIPE_NATIVE=foo would have kept the compiled path unnoticed: exit 2 instead."""
    proc = run("shipper", "config", cwd=tmp_path, LOGPIPE_NATIVE="foo")
    assert proc.returncode == 2
    assert "LOGPIPE_NATIVE: 'foo' is not a boolean" in one_line_error(proc)


def test_native_is_read_from_dotenv_too(tmp_path: Path) -> None:
    """A .env's LOGPIPE_NATIVE switches the compiled path off as the environment's does
    (the environment wins); one that is no boolean is exit 2 there too."""
    (tmp_path / ".env").write_text("LOGPIPE_NATIVE=off\n")
    row = config_rows(run("shipper", "config", "--json", cwd=tmp_path))["LOGPIPE_NATIVE"]
    assert (row["value"], row["source"]) == ("off", ".env")
    assert "In effect: Python (LOGPIPE_NATIVE=off)" in row["description"]
    proc = run("shipper", "config", "--json", cwd=tmp_path, LOGPIPE_NATIVE="")
    row = config_rows(proc)["LOGPIPE_NATIVE"]
    assert row["source"] == "environment"
    assert "Python (LOGPIPE_NATIVE" not in row["description"]
    (tmp_path / ".env").write_text("LOGPIPE_NATIVE=maybe\n")
    proc = run("shipper", "config", cwd=tmp_path)
    assert proc.returncode == 2
    assert "LOGPIPE_NATIVE: 'maybe' is not a boolean" in one_line_error(proc)


# Fills the disk (or makes it read-only) once SIGTERM's shutdown has begun.
_FAILING_AT_EXIT = """
import errno, sys
import shipper.__main__ as main, shipper.cursor as cursor
shut_down = main.shut_down

def refused(path, data):
    raise OSError(errno.{code}, "{reason}", str(path) + ".1.2.tmp")

async def failing_shut_down(*args):
    cursor.write_durably = refused
    await shut_down(*args)

main.shut_down = failing_shut_down
sys.exit(main.main())
"""


@pytest.mark.parametrize(
    ("code", "reason"),
    [("ENOSPC", "No space left on device"), ("EROFS", "Read-only file system")],
)
def test_cursors_that_cannot_be_saved_at_exit_are_one_line_and_exit_1(
    tmp_path: Path, code: str, reason: str
) -> None:
    """A last cursor save refused by the disk is one error line naming the file, the errno
    and what the next start does, then exit 1: no traceback."""
    with socket.socket(socket.AF_UNIX) as s:  # a dockerd that never answers
        s.bind(str(tmp_path / "docker.sock"))
    proc, _ = _stopped_once_healthy(
        ["-c", _FAILING_AT_EXIT.format(code=code, reason=reason)],
        tmp_path,
        settle=0.3,  # past "shipper started"
        stop_within=30,
        DOCKER_HOST=f"unix://{tmp_path / 'docker.sock'}",
        LOGPIPE_HOST_NAME="h",
    )
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 1, err
    assert "Traceback" not in out + err
    assert err == ""
    entries = [json.loads(line) for line in out.splitlines()]
    [error] = [e for e in entries if e["log.level"] == "error"]
    assert error["message"].startswith(
        "cannot save the cursors at exit: the next start resumes from the cursors saved last"
    )
    assert "Elasticsearch keeps one copy of each line by its _id" in error["message"]
    assert error["path"] == str(tmp_path / "state" / "cursors.json")
    assert error["errno"] == code
    assert error["reason"] == reason
    assert error["exit_status"] == 1
    assert "cursors saved, exiting" not in out


def test_a_second_stop_signal_ends_the_wait_for_the_collectors(tmp_path: Path) -> None:
    """With a batch no collector takes and a long LOGPIPE_SHUTDOWN_TIMEOUT, a second
    SIGTERM ends the shutdown's wait: exit 0 at once, the batch kept in the disk buffer."""
    import asyncio

    from shipper.batch import encode
    from shipper.record import LogRecord, Meta
    from shipper.spool import Spool

    spool = Spool(tmp_path / "state" / "spool", 10**6)
    spool.open()
    asyncio.run(
        spool.write(encode([LogRecord(Meta("c1", "app", "img"), "stdout", 5, 0, b"x")], "h"))
    )
    with socket.socket(socket.AF_UNIX) as s:  # a dockerd that never answers
        s.bind(str(tmp_path / "docker.sock"))

    def stop_again(proc: subprocess.Popen[str]) -> None:
        time.sleep(1)
        assert proc.poll() is None  # waiting for a collector, up to 600 s
        proc.send_signal(signal.SIGTERM)

    proc, _ = _stopped_once_healthy(
        ["-m", "shipper"],
        tmp_path,
        stop_within=60,  # not 600 s
        after_stop=stop_again,
        LOGPIPE_COLLECTOR_URL="http://127.0.0.1:1",  # refused: the batch is never taken
        LOGPIPE_SHUTDOWN_TIMEOUT="600",
        LOGPIPE_HOST_NAME="h",
        DOCKER_HOST=f"unix://{tmp_path / 'docker.sock'}",
    )
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err
    assert "second stop signal: not waiting for the collectors any more" in out
    assert "stopped before a collector took everything" in out
    assert [p.name for p in (tmp_path / "state" / "spool").glob("*.seg")] != []


def test_config_prints_the_settings_then_every_problem_starting_refuses(tmp_path: Path) -> None:
    """`config` is how an operator checks settings before deploying them: it printed
    them and exited 0 where the shipper does not start (exit 2). Now it lists what
    starting refuses, exit 2."""
    missing = tmp_path / "token"
    bad = {
        "LOGPIPE_HTTP_LISTEN": "nope",
        "DOCKER_HOST": "ssh://me@docker-host",
        "LOGPIPE_TOKEN_FILE": str(missing),
    }
    proc = run("shipper", "config", "--json", cwd=tmp_path, environ=bad)
    assert proc.returncode == 2
    assert config_rows(proc)["LOGPIPE_HTTP_LISTEN"]["value"] == "nope"  # the table all the same
    problems = [
        "logpipe-shipper: invalid configuration: LOGPIPE_HTTP_LISTEN: 'nope' is not host:port",
        "logpipe-shipper: invalid configuration: DOCKER_HOST: 'ssh://me@docker-host' is none of "
        "unix://, tcp:// or http:// (e.g. unix:///var/run/docker.sock or tcp://10.0.0.1:2375)",
        f"logpipe-shipper: invalid configuration: LOGPIPE_TOKEN_FILE: cannot read {missing}: "
        "no such file or directory",
    ]
    assert proc.stderr.splitlines() == problems
    start = run("shipper", cwd=tmp_path, environ=bad)
    assert (start.returncode, one_line_error(start)) == (2, problems[0])
    missing.write_text("a-token\n")
    proc = run(
        "shipper", "config", cwd=tmp_path, environ={**bad, "LOGPIPE_HTTP_LISTEN": "127.0.0.1:0"}
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == problems[1:2]
    good = {"LOGPIPE_TOKEN_FILE": str(missing), "DOCKER_HOST": "tcp://127.0.0.1:2375"}
    proc = run("shipper", "config", cwd=tmp_path, environ=good)
    assert (proc.returncode, proc.stderr) == (0, "")
