"""`logpipe-collector` as a user runs it: start-up mistakes are one line and an exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.programs import one_line_error, run


@pytest.mark.parametrize("command", [["serve"], ["setup", "--wait", "1"], ["retention", "plan"]])
def test_unknown_setting_in_the_environment_is_a_config_error(
    tmp_path: Path, command: list[str]
) -> None:
    """A misspelled LOGPIPE_* variable stops every command with exit 2 and the name meant."""
    proc = run("collector", *command, cwd=tmp_path, LOGPIPE_BULK_MAXDOCS="10", LOGPIPE_TOKENS="t")
    assert proc.returncode == 2
    assert "did you mean LOGPIPE_BULK_MAX_DOCS?" in one_line_error(proc)


def test_dotenv_shared_with_compose_and_the_shipper_is_accepted(tmp_path: Path) -> None:
    """A .env holding compose's and the shipper's LOGPIPE_* names does not stop the collector."""
    (tmp_path / ".env").write_text(
        "LOGPIPE_TOKEN=x\nLOGPIPE_IMAGE=logpipe:local\nLOGPIPE_HOST_NAME=\n"
        "LOGPIPE_ES_URL=http://127.0.0.1:1\n"
    )
    proc = run("collector", "setup", "--wait", "0", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # only Elasticsearch's absence stops it
    assert "did not answer" in proc.stderr


def test_misspelling_in_dotenv_is_a_config_error(tmp_path: Path) -> None:
    """A misspelled name in .env is reported like one in the environment, naming the file."""
    (tmp_path / ".env").write_text("LOGPIPE_BULK_MAXDOCS=10\n")
    proc = run("collector", "serve", cwd=tmp_path, LOGPIPE_TOKENS="t")
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "LOGPIPE_BULK_MAXDOCS in .env" in line
    assert "did you mean LOGPIPE_BULK_MAX_DOCS?" in line
