"""The /logs settings as a user meets them: `config` hides the token, a misspelling is named."""

from __future__ import annotations

from pathlib import Path

from tests.programs import config_rows, one_line_error, run, value_and_source


def test_config_lists_the_tail_settings_with_the_token_hidden(tmp_path: Path) -> None:
    """`config --json` shows LOGPIPE_TAIL_TOKEN as set but hidden, and the two bounds."""
    proc = run("shipper", "config", "--json", cwd=tmp_path, LOGPIPE_TAIL_TOKEN="watch-me")
    assert proc.returncode == 0, proc.stderr
    assert "watch-me" not in proc.stdout
    rows = config_rows(proc)
    got = value_and_source(rows)
    assert got["LOGPIPE_TAIL_TOKEN"] == ("(set, hidden)", "environment")
    assert got["LOGPIPE_TAIL_MAX_CLIENTS"] == ("4", "default")
    assert got["LOGPIPE_TAIL_BUFFER_LINES"] == ("5000", "default")
    assert "GET /logs" in rows["LOGPIPE_TAIL_TOKEN"]["description"]


def test_a_misspelled_tail_setting_names_the_one_meant(tmp_path: Path) -> None:
    """LOGPIPE_TAIL_TOKN stops the shipper at start with exit 2 and the right name."""
    proc = run("shipper", cwd=tmp_path, LOGPIPE_TAIL_TOKN="x")
    assert proc.returncode == 2
    assert "did you mean LOGPIPE_TAIL_TOKEN?" in one_line_error(proc)


def test_help_shows_how_to_watch_the_host(tmp_path: Path) -> None:
    """--help names LOGPIPE_TAIL_TOKEN and gives a curl command for /logs."""
    proc = run("shipper", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "LOGPIPE_TAIL_TOKEN" in proc.stdout
    assert "curl -N -H" in proc.stdout


def test_an_empty_tail_token_leaves_logs_off(tmp_path: Path) -> None:
    """LOGPIPE_TAIL_TOKEN= (as compose passes an unset one) counts as not set."""
    proc = run("shipper", "config", "--json", cwd=tmp_path, LOGPIPE_TAIL_TOKEN="  ")
    assert proc.returncode == 0, proc.stderr
    assert value_and_source(config_rows(proc))["LOGPIPE_TAIL_TOKEN"] == ("", "environment")
