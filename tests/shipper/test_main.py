"""`logpipe-shipper` as a user runs it: start-up mistakes are one line and an exit code."""

from __future__ import annotations

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
