"""`logpipe-collector` as a user runs it: start-up mistakes are one line and an exit code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collector import __main__ as main_module
from collector import runtime
from collector.config import CollectorConfig
from collector.errors import ConfigError
from collector.templates import TEMPLATE_VERSION
from collector.wire import NDJSON, PATH_LOGS
from tests.collector.fake_es import fake_es, ok
from tests.collector.wirelines import body, log, source
from tests.conftest import free_port
from tests.programs import clean_env, config_rows, one_line_error, run, value_and_source


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
    assert "set LOGPIPE_ES_URL to where it runs" in proc.stderr.splitlines()[-1]


def test_misspelling_in_dotenv_is_a_config_error(tmp_path: Path) -> None:
    """A misspelled name in .env is reported like one in the environment, naming the file."""
    (tmp_path / ".env").write_text("LOGPIPE_BULK_MAXDOCS=10\n")
    proc = run("collector", "serve", cwd=tmp_path, LOGPIPE_TOKENS="t")
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "LOGPIPE_BULK_MAXDOCS in .env" in line
    assert "did you mean LOGPIPE_BULK_MAX_DOCS?" in line


@pytest.mark.parametrize("command", [["serve"], ["setup", "--wait", "1"], ["retention", "plan"]])
def test_url_without_scheme_is_a_config_error(tmp_path: Path, command: list[str]) -> None:
    """LOGPIPE_ES_URL without http:// is refused at load, naming the variable, exit 2."""
    proc = run("collector", *command, cwd=tmp_path, LOGPIPE_ES_URL="localhost:9200")
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "LOGPIPE_ES_URL: 'localhost:9200' is not an http:// or https:// URL" in line


def test_refresh_interval_elasticsearch_would_refuse_is_a_config_error(tmp_path: Path) -> None:
    """An index refresh interval without a unit is refused before setup sends it to
    Elasticsearch, naming the variable and what it takes; YAML's `default` or an empty
    value leave Elasticsearch's own."""
    proc = run(
        "collector", "setup", "--wait", "1", cwd=tmp_path, LOGPIPE_INDEX__REFRESH_INTERVAL="5"
    )
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "LOGPIPE_INDEX__REFRESH_INTERVAL: '5' is not a refresh interval" in line
    assert "(500ms, 1s, 30s, 1m)" in line
    from collector.config import IndexSettings

    assert IndexSettings(refresh_interval="default").refresh_interval is None
    assert IndexSettings(refresh_interval=" 30s ").refresh_interval == "30s"
    assert IndexSettings().refresh_interval is None


def test_an_unknown_codec_is_a_config_error(tmp_path: Path) -> None:
    """The backing indices' codec is one Elasticsearch takes, else setup stops before it
    sends anything, naming the variable and the two choices."""
    proc = run("collector", "setup", "--wait", "1", cwd=tmp_path, LOGPIPE_INDEX__CODEC="lz4")
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "LOGPIPE_INDEX__CODEC: Input should be 'best_compression' or 'default'" in line
    from collector.config import IndexSettings

    assert IndexSettings().codec == "best_compression"


def test_listen_port_taken_is_one_line(tmp_path: Path) -> None:
    """A listen port already in use stops serve with exit 2, naming LOGPIPE_LISTEN."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run(
            "collector",
            "serve",
            cwd=tmp_path,
            LOGPIPE_LISTEN=f"127.0.0.1:{port}",
            LOGPIPE_TOKENS="t",
            LOGPIPE_ES_URL="http://127.0.0.1:1",
        )
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert f"LOGPIPE_LISTEN: cannot listen on 127.0.0.1:{port}: address already in use" in line


def test_unreadable_tls_certificate_is_one_line(tmp_path: Path) -> None:
    """A certificate that is not there stops serve with exit 2, naming the variables."""
    proc = run(
        "collector",
        "serve",
        cwd=tmp_path,
        LOGPIPE_TOKENS="t",
        LOGPIPE_TLS_CERT=str(tmp_path / "missing.crt"),
        LOGPIPE_TLS_KEY=str(tmp_path / "missing.key"),
        LOGPIPE_LISTEN="127.0.0.1:0",
    )
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "LOGPIPE_TLS_CERT/LOGPIPE_TLS_KEY: cannot load" in line
    assert "no such file or directory" in line


def test_unreachable_elasticsearch_is_a_runtime_error(tmp_path: Path) -> None:
    """`retention plan` against a port nobody answers on ends in one line naming the setting."""
    proc = run(
        "collector",
        "retention",
        "plan",
        "--json",
        cwd=tmp_path,
        LOGPIPE_ES_URL="http://127.0.0.1:1",
    )
    assert proc.returncode == 1
    assert proc.stdout == ""  # no log records amid the command's output
    line = one_line_error(proc)
    assert "cannot reach Elasticsearch" in line
    assert "LOGPIPE_ES_URL" in line


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["serve", "--version"],
        ["config", "--version"],
        ["retention", "plan", "--version"],
        ["rules", "test", "--version"],
    ],
)
def test_version_is_the_installed_distribution(tmp_path: Path, args: list[str]) -> None:
    """`--version`, alone or after a command, prints the installed logpipe version and
    the version of the index template it takes logs with."""
    proc = run("collector", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        f"logpipe-collector {version('logpipe')} (index template version {TEMPLATE_VERSION})\n"
    )


def test_version_outside_an_installation_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a source tree without an installed distribution, the version says so."""

    def not_installed(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(runtime, "version", not_installed)
    assert runtime.installed_version() == "unknown (not installed)"


def test_config_prints_each_setting_with_its_source(tmp_path: Path) -> None:
    """`config --json` gives every setting's value and source, secrets hidden."""
    (tmp_path / "collector.yml").write_text("bulk_max_docs: 100\nindex: {shards: 3}\n")
    (tmp_path / ".env").write_text("LOGPIPE_LISTEN=127.0.0.1:9999\n")
    proc = run(
        "collector",
        "--config",
        "collector.yml",
        "config",
        "--json",
        cwd=tmp_path,
        LOGPIPE_TOKENS="s3cret-token",
        LOGPIPE_INDEX__REPLICAS="2",
        LOGPIPE_RETENTION__ROLLOVER__MAX_AGE="2d",
    )
    assert proc.returncode == 0, proc.stderr
    assert "s3cret-token" not in proc.stdout
    rows = config_rows(proc)
    got = value_and_source(rows)
    assert got["LOGPIPE_TOKENS"] == ("(set, hidden)", "environment")
    assert got["LOGPIPE_INDEX__REPLICAS"] == ("2", "environment")
    assert got["LOGPIPE_RETENTION__ROLLOVER"][1] == "environment"  # set by a part of it
    assert got["LOGPIPE_RETENTION__DEFAULT"] == ("14d", "default")
    assert got["LOGPIPE_INDEX__SHARDS"] == ("3", "collector.yml")
    assert got["LOGPIPE_BULK_MAX_DOCS"] == ("100", "collector.yml")
    assert got["LOGPIPE_LISTEN"] == ("127.0.0.1:9999", ".env")
    assert got["LOGPIPE_ES_URL"] == ("http://localhost:9200", "default")
    assert rows["LOGPIPE_ES_URL"]["description"] == "Elasticsearch URL(s), comma-separated."


@pytest.mark.parametrize(
    "args", [["--help"], ["serve", "--help"], ["setup", "--help"], ["retention", "plan", "--help"]]
)
def test_help_points_to_the_settings_and_exit_codes(tmp_path: Path, args: list[str]) -> None:
    """Every --help names the config command and the exit statuses."""
    proc = run("collector", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "logpipe-collector config" in proc.stdout
    assert "2 bad configuration" in proc.stdout
    assert "--config" in proc.stdout
    if args == ["--help"]:  # the streams as named
        assert "logs-<dataset>.keep_<retention rule>-<namespace>" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["serve"],
        ["setup"],
        ["config"],
        ["retention", "plan"],
        ["retention", "apply"],
        ["rules", "test"],
    ],
)
def test_config_option_after_any_command(args: list[str]) -> None:
    """`--config F` after a command (as README writes it) or before it gives the same file."""
    assert main_module.parser().parse_args([*args, "--config", "f.yaml"]).config == Path("f.yaml")
    before = main_module.parser().parse_args(["--config", "f.yaml", *args])
    assert before.config == Path("f.yaml")


@pytest.mark.timeout(120)  # the warning never coming would leave serve running
def test_serve_without_elasticsearch_warns_and_stops_cleanly(tmp_path: Path) -> None:
    """serve starts while Elasticsearch is down, says so once, and stops on SIGTERM quietly.
    A parsing rule that partly never works is named as it starts, as `rules check` names
    it."""
    port = free_port()
    rule = '{match: {service: web}, dissect: "%{client} %{status}"}'
    (tmp_path / "collector.yaml").write_text(
        f"rules:\n  - {{name: a, {rule[1:]}\n  - {{name: b, {rule[1:]}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "serve"],
        env=clean_env(
            LOGPIPE_ES_URL="http://127.0.0.1:1",
            LOGPIPE_TOKENS="t",
            LOGPIPE_LISTEN=f"127.0.0.1:{port}",
            LOGPIPE_CONFIG=str(tmp_path / "collector.yaml"),
        ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        before = []
        for line in proc.stdout:  # ends when the process does
            before.append(line)
            if "Elasticsearch does not answer yet" in line:
                assert "LOGPIPE_ES_URL" in line
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "Unclosed" not in out + err
    assert "Task was destroyed" not in out + err
    assert out.count("shutting down") == 1, out
    [warning] = [line for line in before if "partly never works" in line]
    assert "rules 'a' and 'b' are identical but for their names" in warning


async def _serve(es_url: str, port: int, cwd: Path) -> asyncio.subprocess.Process:
    """`collector serve` on `port` with token `t`, its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collector",
        "serve",
        env=clean_env(
            LOGPIPE_ES_URL=es_url, LOGPIPE_TOKENS="t", LOGPIPE_LISTEN=f"127.0.0.1:{port}"
        ),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.timeout(120)
async def test_sigterm_lets_a_batch_in_flight_be_indexed_and_answered(tmp_path: Path) -> None:
    """SIGTERM while a batch waits on Elasticsearch: it is still indexed and answered 200
    (not cut off with its connection), new connections are refused, and serve exits 0."""
    async with fake_es("hang", ok) as fake:  # the first _bulk takes 2 s and fails
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = await _serve(fake.url, port, tmp_path)
        try:
            async with aiohttp.ClientSession() as session:
                await _until_ready(session, url)
                headers = {"Authorization": "Bearer t", "Content-Type": NDJSON}
                batch = body(source(), log("in flight", 1))
                post = asyncio.create_task(
                    session.post(url + PATH_LOGS, data=batch, headers=headers)
                )
                for _ in range(500):  # until the batch waits on Elasticsearch
                    if fake.requests:
                        break
                    await asyncio.sleep(0.02)
                proc.send_signal(signal.SIGTERM)
                async with await post as resp:
                    status, answer = resp.status, await resp.json()
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
    assert (status, answer["indexed"]) == (200, 1)
    assert len(fake.requests) == 2, "the batch was sent again after SIGTERM"
    assert proc.returncode == 0, err
    assert b"Traceback" not in out + err


@pytest.mark.timeout(120)
async def test_sigterm_answers_a_body_still_arriving_503_at_once(tmp_path: Path) -> None:
    """SIGTERM while a body is half sent: it is answered 503 + Retry-After at once (the
    stopping server reads no more of it), not 408 after the body timeout; exit 0."""
    async with fake_es(ok) as fake:
        port = free_port()
        proc = await _serve(fake.url, port, tmp_path)
        try:
            async with aiohttp.ClientSession() as session:
                await _until_ready(session, f"http://127.0.0.1:{port}")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            batch = body(source(), log("half", 1))
            head = f"POST {PATH_LOGS} HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer t\r\n"
            writer.write(f"{head}Content-Length: {len(batch)}\r\n\r\n".encode() + batch[:10])
            await writer.drain()
            await asyncio.sleep(0.5)  # the handler is reading the body
            proc.send_signal(signal.SIGTERM)
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            _, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert b"Retry-After: 1" in answer
    assert b"collector shutting down" in answer
    assert fake.requests == []
    assert proc.returncode == 0, err


async def _until_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(300):
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url + "/readyz") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.1)
    pytest.fail("the collector did not become ready")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"tls_key": "k.pem"}, "LOGPIPE_TLS_KEY set"),
        ({"tls_client_ca": "c.pem"}, "LOGPIPE_TLS_CLIENT_CA set"),
        ({"tls_key": "k.pem", "tls_client_ca": "c.pem"}, "LOGPIPE_TLS_KEY and"),
    ],
)
def test_tls_key_or_client_ca_without_certificate_is_refused(
    settings: dict[str, Any], named: str
) -> None:
    """Half a TLS setup is a mistake to name, not a reason to serve plain HTTP."""
    config = CollectorConfig(_env_file=None, **settings)
    with pytest.raises(ConfigError, match=f"{named}.*LOGPIPE_TLS_CERT is not"):
        main_module.server_ssl(config)


@pytest.mark.parametrize("variable", ["tokens_file", "read_tokens_file"])
@pytest.mark.parametrize(
    ("make", "error"),
    [
        (None, "cannot read .*: no such file or directory"),
        ("dir", "cannot read .*: is a directory"),
        (b"\xff\xfe\n", ".* is not UTF-8 text"),
    ],
)
def test_unreadable_token_file_is_a_config_error(
    tmp_path: Path, variable: str, make: bytes | str | None, error: str
) -> None:
    """A token file that cannot be read stops serve at once with the variable named."""
    path = tmp_path / "tokens"
    if make == "dir":
        path.mkdir()
    elif isinstance(make, bytes):
        path.write_bytes(make)
    file: dict[str, Any] = {variable: path}
    config = CollectorConfig(_env_file=None, tokens=["t"], **file)
    with pytest.raises(ConfigError, match=f"LOGPIPE_{variable.upper()}: {error}"):
        main_module.check_auth(config)


def test_no_tokens_names_the_variables_to_set() -> None:
    """Serving without tokens is refused with the variables that give some, not YAML keys."""
    config = CollectorConfig(_env_file=None)
    with pytest.raises(ConfigError) as raised:
        main_module.check_auth(config)
    assert "set LOGPIPE_TOKENS (comma-separated) or LOGPIPE_TOKENS_FILE" in str(raised.value)
    assert "LOGPIPE_AUTH=none" in str(raised.value)


def test_a_token_both_to_ship_and_to_read_is_refused(tmp_path: Path) -> None:
    """A read token that is also an ingest token (listed, or in either file) stops serve
    naming the variables and never the token: accepted, every shipper holding it could
    read all the logs. With LOGPIPE_AUTH=none no ingest token is used, and it starts."""
    tokens = tmp_path / "tokens"
    tokens.write_text("ship-1\nshared\n")
    for settings in (
        {"tokens": ["ship-1", "shared"], "read_tokens": ["read-1", "shared"]},
        {"tokens_file": tokens, "read_tokens": ["shared"]},
    ):
        config = CollectorConfig(_env_file=None, **settings)
        with pytest.raises(ConfigError) as raised:
            main_module.check_auth(config)
        message = str(raised.value)
        assert message.startswith("LOGPIPE_READ_TOKENS: 1 read token(s) also in LOGPIPE_TOKENS")
        assert "shared" not in message
    apart = CollectorConfig(_env_file=None, tokens=["ship-1"], read_tokens=["read-1"])
    main_module.check_auth(apart)
    off = CollectorConfig(_env_file=None, auth="none", tokens=["a"], read_tokens=["a"])
    main_module.check_auth(off)


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("kibana_url", "kibana:5601", "--kibana-url: 'kibana:5601' is not an http"),
        ("dashboards", Path("/nonexistent"), "--dashboards /nonexistent: no Kibana saved"),
        ("dashboards", Path("dashboards"), "--dashboards dashboards: no Kibana to import"),
    ],
)
def test_setup_checks_its_options_before_elasticsearch(
    monkeypatch: pytest.MonkeyPatch, option: str, value: object, error: str
) -> None:
    """A bad --kibana-url or --dashboards is refused at once (exit 2), not after the
    template is installed and Kibana waited for."""

    def touched(config: CollectorConfig) -> None:
        raise AssertionError("Elasticsearch touched before the options were checked")

    monkeypatch.setattr(main_module, "elasticsearch_client", touched)
    args = main_module.parser().parse_args(["setup"])
    setattr(args, option, value)
    if option == "dashboards" and value != Path("dashboards"):
        args.kibana_url = "http://kibana:5601"
    config = CollectorConfig(_env_file=None)
    with pytest.raises(ConfigError, match=error):
        asyncio.run(main_module.setup(config, args))


def test_a_start_leaves_the_kibana_client_out() -> None:
    """Importing the program does not import collector.kibana: only `setup` talks to Kibana,
    and its import cost every start of `serve` some 6 CPU-ms."""
    probe = "import sys, collector.__main__; print('collector.kibana' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=clean_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(
    ("names", "imported"),
    [
        ({"LOGPIPE_ES_URL": "http://es:9200"}, "False"),
        ({"LOGPIPE_DOCKER_HOST": "unix:///x"}, "True"),
    ],
)
def test_the_shippers_settings_are_read_only_for_a_name_not_the_collectors(
    tmp_path: Path, names: dict[str, str], imported: str
) -> None:
    """Checking an environment of the collector's own names leaves the shipper's settings
    model unimported (~7 CPU-ms of every start); a shipper's name imports it to know it."""
    probe = (
        "import sys; from collector.__main__ import check_environment, shipper_names; "
        "check_environment(shipper_names); print('shipper.config' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=clean_env(**names),
        cwd=tmp_path,  # no .env there
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == imported, out.stderr


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command of the command line with the words that name it, nested ones too."""
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += commands(sub, (*path, name))
    return found


def test_every_command_says_what_it_does_in_lines_a_terminal_shows_whole() -> None:
    """Each command's --help has a description, commands that change or print something an
    example, and no line of it is wider than a terminal (the text is printed as written)."""
    for path, command in commands(main_module.parser()):
        text = command.format_help()
        assert command.description, path
        if path in {("setup",), ("config",), ("retention", "plan"), ("retention", "apply")}:
            assert "example" in text, path
        assert [line for line in text.splitlines() if len(line) > 100] == [], path


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--wait", "-1"], "argument --wait: '-1': give 0 or more seconds"),
        (["--wait", "nan"], "argument --wait: 'nan': give 0 or more seconds"),
        (["--kibana-wait", "soon"], "argument --kibana-wait: 'soon' is not a number of seconds"),
    ],
)
def test_setup_refuses_waits_that_are_no_number_of_seconds(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A negative, NaN or non-numeric wait is a usage error (exit 2) naming the option."""
    with pytest.raises(SystemExit) as caught:
        main_module.parser().parse_args(["setup", *argv])
    assert caught.value.code == 2
    assert error in capsys.readouterr().err


def test_config_prints_the_settings_then_every_problem_serve_refuses(tmp_path: Path) -> None:
    """`config` is how an operator checks settings before deploying them: it printed
    them and exited 0 where `serve` exits 2. Now it lists what serve refuses, exit 2."""
    missing = tmp_path / "tokens.txt"
    bad = {"LOGPIPE_LISTEN": "foo", "LOGPIPE_TOKENS_FILE": str(missing)}
    proc = run("collector", "config", "--json", cwd=tmp_path, environ=bad)
    assert proc.returncode == 2
    assert config_rows(proc)["LOGPIPE_LISTEN"]["value"] == "foo"  # the table, all the same
    problems = [
        f"logpipe-collector: invalid configuration: LOGPIPE_TOKENS_FILE: cannot read {missing}: "
        "no such file or directory",
        "logpipe-collector: invalid configuration: LOGPIPE_LISTEN: 'foo' is not host:port",
    ]
    assert proc.stderr.splitlines() == problems
    serve = run("collector", "serve", cwd=tmp_path, environ=bad)
    assert (serve.returncode, one_line_error(serve)) == (2, problems[0])
    missing.write_text("a-token\n")
    proc = run("collector", "config", cwd=tmp_path, environ=bad)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == problems[1:]
    proc = run("collector", "config", cwd=tmp_path, LOGPIPE_TOKENS_FILE=str(missing))
    assert (proc.returncode, proc.stderr) == (0, "")
