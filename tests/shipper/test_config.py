"""Settings checked at start: a collector URL that cannot work, a line bound Elasticsearch
cannot take, which Docker host wins."""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest

from tests.programs import config_rows, one_line_error, run, value_and_source


@pytest.mark.parametrize("url", ["http://", "http://127.0.0.1:notaport", "http://c:99999"])
def test_a_malformed_collector_url_is_a_config_error(tmp_path: Path, url: str) -> None:
    """A collector URL without a host or with a bad port stops the shipper at start, exit 2,
    instead of being retried forever."""
    proc = run("shipper", cwd=tmp_path, LOGPIPE_COLLECTOR_URL=f"http://ok:8080,{url}")
    assert proc.returncode == 2
    assert one_line_error(proc).startswith(
        f"logpipe-shipper: invalid configuration: LOGPIPE_COLLECTOR_URL: '{url}' "
    )


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("LOGPIPE_BATCH_MAX_BYTES", "4MiB", "'4MiB' is not a whole number: write digits only"),
        ("LOGPIPE_READ_PACE", "200ms", "'200ms' is not a number: write digits only"),
        ("LOGPIPE_FOLLOW_FILES", "maybe", "'maybe' is not a boolean: write true or false"),
    ],
)
def test_text_where_a_number_is_taken_is_quoted_with_how_to_write_it(
    tmp_path: Path, variable: str, value: str, error: str
) -> None:
    """A size or time written with its unit, as the README's defaults read (4 MiB, 0.2 s),
    is named back with what to write, not only pydantic's 'a valid integer'."""
    proc = run("shipper", "config", cwd=tmp_path, environ={variable: value})
    assert proc.returncode == 2
    assert one_line_error(proc).startswith(
        f"logpipe-shipper: invalid configuration: {variable}: {error}"
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [("http://c:8080/v1/logs", "base URL"), ("http://c:8080?x=1", "no ?query")],
)
def test_a_collector_url_is_a_base_url(tmp_path: Path, url: str, problem: str) -> None:
    """/v1/logs is added to the URL: a URL holding it, or a query, would never work."""
    proc = run("shipper", "config", cwd=tmp_path, LOGPIPE_COLLECTOR_URL=url)
    assert proc.returncode == 2
    assert problem in one_line_error(proc)


def test_logpipe_docker_host_wins_over_docker_host(tmp_path: Path) -> None:
    """LOGPIPE_DOCKER_HOST is meant for the shipper; DOCKER_HOST may be for other tools."""
    (tmp_path / ".env").write_text("LOGPIPE_DOCKER_HOST=unix:///from/dotenv.sock\n")
    both = {"DOCKER_HOST": "unix:///var/run/docker.sock"}
    proc = run("shipper", "config", "--json", cwd=tmp_path, environ=both)
    assert proc.returncode == 0, proc.stderr
    got = value_and_source(config_rows(proc))  # the environment wins over .env
    assert got["DOCKER_HOST"] == ("unix:///var/run/docker.sock", "environment")
    both["LOGPIPE_DOCKER_HOST"] = "tcp://10.0.0.1:2375"
    proc = run("shipper", "config", "--json", cwd=tmp_path, environ=both)
    assert proc.returncode == 0, proc.stderr
    assert value_and_source(config_rows(proc))["DOCKER_HOST"][0] == "tcp://10.0.0.1:2375"
    (tmp_path / ".env").write_text(
        "DOCKER_HOST=unix:///a.sock\nLOGPIPE_DOCKER_HOST=unix:///b.sock\n"
    )
    proc = run("shipper", "config", "--json", cwd=tmp_path)
    assert value_and_source(config_rows(proc))["DOCKER_HOST"] == ("unix:///b.sock", ".env")


def test_max_line_bytes_past_what_elasticsearch_can_index_is_a_config_error(
    tmp_path: Path,
) -> None:
    """LOGPIPE_MAX_LINE_BYTES over 4 MiB stops the shipper at start, exit 2, saying why:
    a line that long may be too large for the node ever to index."""
    proc = run("shipper", "config", cwd=tmp_path, LOGPIPE_MAX_LINE_BYTES="30000000")
    assert proc.returncode == 2
    assert one_line_error(proc) == (
        "logpipe-shipper: invalid configuration: LOGPIPE_MAX_LINE_BYTES: 30000000 is over "
        "4194304 (4 MiB): Elasticsearch counts a document several times its size against "
        "its indexing-pressure limit (10% of the heap), so a longer line may never be indexed"
    )
    proc = run("shipper", "config", cwd=tmp_path, LOGPIPE_MAX_LINE_BYTES=str(4 * 1024 * 1024))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("   ", "only spaces"),
        ("h" * 256, "256 characters: at most 255"),
        ("a\tb", "holds a control character"),
    ],
)
def test_a_host_name_no_collector_takes_is_refused_at_start(
    tmp_path: Path, value: str, problem: str
) -> None:
    """A LOGPIPE_HOST_NAME the wire refuses sent every line to the dead letters, counted
    as done; it is exit 2 now. Empty means dockerd's name."""
    proc = run("shipper", "config", cwd=tmp_path, LOGPIPE_HOST_NAME=value)
    assert proc.returncode == 2
    assert f"LOGPIPE_HOST_NAME: {problem}" in one_line_error(proc)
    proc = run("shipper", "config", "--json", cwd=tmp_path, LOGPIPE_HOST_NAME="")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_seconds_that_are_no_finite_number_are_refused(tmp_path: Path, value: str) -> None:
    """LOGPIPE_BATCH_MAX_AGE=inf never sent a line; no float setting takes inf or nan."""
    for name in ("LOGPIPE_BATCH_MAX_AGE", "LOGPIPE_SHUTDOWN_TIMEOUT"):
        proc = run("shipper", "config", cwd=tmp_path, environ={name: value})
        assert proc.returncode == 2
        assert one_line_error(proc).endswith(f"{name}: Input should be a finite number")
    proc = run("collector", "config", cwd=tmp_path, LOGPIPE_ES_RETRY_SECONDS=value)
    assert proc.returncode == 2
    assert "LOGPIPE_ES_RETRY_SECONDS: Input should be a finite number" in one_line_error(proc)


def test_a_token_and_a_token_file_together_are_refused(tmp_path: Path) -> None:
    """The token won and an unreadable file went unnoticed; one of them must go."""
    proc = run(
        "shipper", "config", cwd=tmp_path, LOGPIPE_TOKEN="s", LOGPIPE_TOKEN_FILE="/nonexistent"
    )
    assert proc.returncode == 2
    assert one_line_error(proc).endswith(
        "LOGPIPE_TOKEN and LOGPIPE_TOKEN_FILE are both set: keep one of them"
    )


def test_tls_files_without_an_https_collector_are_refused(tmp_path: Path) -> None:
    """They were ignored: the batches and the token went out in clear text."""
    proc = run(
        "shipper",
        "config",
        cwd=tmp_path,
        LOGPIPE_COLLECTOR_URL="http://collector:8080",
        LOGPIPE_CA_FILE="/etc/logpipe/ca.crt",
    )
    assert proc.returncode == 2
    assert one_line_error(proc).endswith(
        "LOGPIPE_CA_FILE set, but no LOGPIPE_COLLECTOR_URL is https://: TLS would not be "
        "used; give the collectors' https:// URLs, or unset it"
    )


def test_a_client_key_without_its_certificate_is_refused(tmp_path: Path) -> None:
    proc = run(
        "shipper",
        "config",
        cwd=tmp_path,
        LOGPIPE_COLLECTOR_URL="https://collector:8443",
        LOGPIPE_CLIENT_KEY="/etc/logpipe/client.key",
    )
    assert proc.returncode == 2
    assert one_line_error(proc).endswith(
        "LOGPIPE_CLIENT_KEY without LOGPIPE_CLIENT_CERT: set the certificate it belongs to "
        "(mutual TLS), or unset it"
    )


def test_tls_files_with_one_https_collector_among_others_are_taken(tmp_path: Path) -> None:
    proc = run(
        "shipper",
        "config",
        cwd=tmp_path,
        LOGPIPE_COLLECTOR_URL="http://a:8080,https://b:8443",
        LOGPIPE_CA_FILE=certifi.where(),  # a CA file that loads: `config` loads it
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("level", ["DEBUG", "Warning", "error"])
def test_the_log_level_is_read_in_any_case(tmp_path: Path, level: str) -> None:
    """LOGPIPE_LOG_LEVEL=DEBUG is what an operator writes as often as debug."""
    proc = run("shipper", "config", "--json", cwd=tmp_path, LOGPIPE_LOG_LEVEL=level)
    assert proc.returncode == 0, proc.stderr
    got = value_and_source(config_rows(proc))["LOGPIPE_LOG_LEVEL"]
    assert got == (level.lower(), "environment")
