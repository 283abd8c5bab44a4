"""`logpipe-shipper` as a user runs it: start-up mistakes are one line and an exit code."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.programs import one_line_error, run


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
