"""Start-up checks of the shipper's settings."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipper import preflight
from shipper.config import ShipperConfig
from shipper.docker_api import parse_host
from shipper.errors import ConfigError, DockerError
from shipper.preflight import check_docker_socket, check_token, lock_state_dir
from tests.programs import ROOT


def test_no_token_is_a_warning_naming_the_setting(caplog: pytest.LogCaptureFixture) -> None:
    """Starting without LOGPIPE_TOKEN or LOGPIPE_TOKEN_FILE logs one warning saying what to set."""
    with caplog.at_level(logging.WARNING, logger="logpipe.shipper"):
        check_token(ShipperConfig(token=None, token_file=None))
    (record,) = caplog.records
    assert "set LOGPIPE_TOKEN (or LOGPIPE_TOKEN_FILE)" in record.getMessage()


def test_a_token_is_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    """With a token set, nothing is logged."""
    with caplog.at_level(logging.WARNING, logger="logpipe.shipper"):
        check_token(ShipperConfig(token="t"))
    assert caplog.records == []


@pytest.fixture
def release_locks() -> Iterator[None]:
    """Close the state directory locks a test took (the shipper holds them until exit)."""
    yield
    while preflight._held:
        os.close(preflight._held.popitem()[1])


def test_a_second_shipper_on_a_state_dir_is_refused(tmp_path: Path, release_locks: None) -> None:
    """While one shipper holds the state directory, another stops at start, naming it."""
    other = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        os.write(other, b"4242 host-a\n")
        with pytest.raises(ConfigError) as info:
            lock_state_dir(tmp_path)
    finally:
        os.close(other)
    assert str(info.value) == (
        f"LOGPIPE_STATE_DIR: another shipper (pid 4242 on host-a) uses {tmp_path}; stop it, "
        "or give each shipper its own state directory"
    )
    lock_state_dir(tmp_path)  # the other one is gone: its lock went with it
    assert (tmp_path / "lock").read_text() == f"{os.getpid()} {socket.gethostname()}\n"


def test_the_lock_of_a_killed_shipper_is_no_obstacle(tmp_path: Path, release_locks: None) -> None:
    """kill -9 leaves the lock file behind but not the lock: a restart takes the directory."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib, time; from shipper.preflight import lock_state_dir; "
            "lock_state_dir(pathlib.Path(sys.argv[1])); print('locked', flush=True); "
            "time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(ConfigError, match=f"another shipper \\(pid {holder.pid} on "):
            lock_state_dir(tmp_path)
    finally:
        holder.kill()
        holder.communicate()
    lock_state_dir(tmp_path)
    assert tmp_path / "lock" in preflight._held


def test_a_state_dir_that_is_a_file_says_so(tmp_path: Path) -> None:
    """Not mkdir's "file exists", which reads as if the directory were fine."""
    (tmp_path / "state").write_text("")
    with pytest.raises(ConfigError) as err:
        preflight.check_state_dir(tmp_path / "state")
    assert str(err.value).startswith(
        f"LOGPIPE_STATE_DIR: cannot write in {tmp_path / 'state'}: it is not a directory;"
    )


@pytest.mark.parametrize("host", ["https://10.0.0.1:2376", "ssh://me@host", "/var/run/docker.sock"])
def test_a_docker_host_of_no_form_read_names_every_form_that_is(host: str) -> None:
    """http:// is read as well as unix:// and tcp://, and the refusal says so."""
    said = re.escape(
        f"DOCKER_HOST: '{host}' is none of unix://, tcp:// or http:// "
        "(e.g. unix:///var/run/docker.sock or tcp://10.0.0.1:2375)"
    )
    with pytest.raises(ConfigError, match=f"^{said}$"):
        check_docker_socket(host)
    with pytest.raises(DockerError, match=f"^{said}$"):
        parse_host(host)
