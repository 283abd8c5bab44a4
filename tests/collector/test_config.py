"""Reading the collector's settings: user errors are one line naming what to change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collector import __main__ as main_module
from collector import native
from collector.config import CollectorConfig, check_environment, load_config
from collector.errors import ConfigError
from collector.reload import ConfigFile
from tests.programs import config_rows, one_line_error, run, value_and_source


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LOGPIPE_* of the test's own environment, and a working directory of its own."""
    for name in list(os.environ):
        if name.upper().startswith("LOGPIPE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("LOGPIPE_RULES", "garbage", "LOGPIPE_RULES: 'garbage' is not JSON: .* JSON list"),
        ("LOGPIPE_RETENTION__RULES", "x", "LOGPIPE_RETENTION__RULES: 'x' is not JSON"),
        ("LOGPIPE_RETENTION", "30d", "LOGPIPE_RETENTION: '30d' is not JSON: .*__<KEY>"),
        ("LOGPIPE_REDACT__BUILTINS", '["email"', "LOGPIPE_REDACT__BUILTINS: .* a,b or JSON"),
    ],
)
def test_a_variable_that_needs_json_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, error: str
) -> None:
    """A list or section variable without JSON is one line naming it, not a traceback."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=error):
        load_config()


def test_a_variable_in_dotenv_that_needs_json_names_the_file(tmp_path: Path) -> None:
    """The same mistake in .env names the variable and the file."""
    (tmp_path / ".env").write_text("LOGPIPE_RULES=garbage\n")
    with pytest.raises(ConfigError, match=r"LOGPIPE_RULES in \.env: 'garbage' is not JSON"):
        load_config()


@pytest.mark.parametrize("dotenv", [False, True])
def test_a_list_of_names_is_read_comma_separated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dotenv: bool
) -> None:
    """Like LOGPIPE_TOKENS, a nested list of names takes `a,b` as well as JSON."""
    if dotenv:
        (tmp_path / ".env").write_text("LOGPIPE_REDACT__BUILTINS=bearer, email\n")
    else:
        monkeypatch.setenv("LOGPIPE_REDACT__BUILTINS", "bearer, email")
    assert load_config().redact.builtins == ["bearer", "email"]
    monkeypatch.setenv("LOGPIPE_REDACT__BUILTINS", '["card"]')
    assert load_config().redact.builtins == ["card"]


def test_dotenv_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    """A .env in another encoding is named, not a UnicodeDecodeError."""
    (tmp_path / ".env").write_bytes(b"\xff\xfeLOGPIPE_X=1\n")
    with pytest.raises(ConfigError, match=r"\.env: not UTF-8 text"):
        check_environment(main_module.shipper_names())


@pytest.mark.parametrize("listen", ["127.0.0.1:99999", "[::1]:65536"])
def test_listen_port_out_of_range(listen: str) -> None:
    """A port above 65535 is named as such, not an OverflowError."""
    config = CollectorConfig(_env_file=None, listen=listen)
    with pytest.raises(ConfigError, match=r"LOGPIPE_LISTEN: port .* is out of range"):
        main_module._listen(config)


def test_elasticsearch_port_out_of_range(monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL whose port is out of range says so (it has one)."""
    monkeypatch.setenv("LOGPIPE_ES_URL", "http://a:99999")
    with pytest.raises(ConfigError, match="LOGPIPE_ES_URL: 'http://a:99999' has a port out of"):
        load_config()


def test_config_file_named_in_dotenv_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """LOGPIPE_CONFIG in .env names the file, as every other setting there does; the
    environment's wins."""
    (tmp_path / "a.yaml").write_text("bulk_max_docs: 7\n")
    (tmp_path / "b.yaml").write_text("bulk_max_docs: 8\n")
    (tmp_path / ".env").write_text("LOGPIPE_CONFIG=a.yaml\n")
    check_environment(main_module.shipper_names())
    assert load_config().bulk_max_docs == 7
    assert ConfigFile().path == Path("a.yaml")
    monkeypatch.setenv("LOGPIPE_CONFIG", "b.yaml")
    assert load_config().bulk_max_docs == 8
    assert ConfigFile().path == Path("b.yaml")


def test_a_password_in_the_elasticsearch_url_is_never_printed(tmp_path: Path) -> None:
    """The client takes credentials from LOGPIPE_ES_URL too; `config` (both forms), a
    refused URL and `setup`'s wait show the URL with its password masked."""
    url = "http://elastic:s3cret@127.0.0.1:1"
    for args in (("config",), ("config", "--json"), ("setup", "--wait", "0")):
        proc = run("collector", *args, cwd=tmp_path, LOGPIPE_ES_URL=url)
        assert "s3cret" not in proc.stdout + proc.stderr
        assert "http://elastic:***@127.0.0.1:1" in proc.stdout + proc.stderr
    proc = run("collector", "config", cwd=tmp_path, LOGPIPE_ES_URL="http://u:p@ss@h/x")
    assert proc.returncode == 2
    assert one_line_error(proc).endswith(
        "'http://u:***@h/x' has no port: write e.g. http://localhost:9200"
    )


def test_native_switch_is_read_from_dotenv_too(tmp_path: Path) -> None:
    """A .env's LOGPIPE_NATIVE counts as every other setting there does: it switches the
    compiled path off, a value that is no boolean is exit 2, the environment wins."""
    (tmp_path / ".env").write_text("LOGPIPE_NATIVE=0\n")
    row = config_rows(run("collector", "config", "--json", cwd=tmp_path))["LOGPIPE_NATIVE"]
    assert (row["value"], row["source"]) == ("0", ".env")
    assert "In effect: Python (LOGPIPE_NATIVE=0)" in row["description"]
    proc = run("collector", "config", "--json", cwd=tmp_path, LOGPIPE_NATIVE="1")
    row = config_rows(proc)["LOGPIPE_NATIVE"]
    assert (row["value"], row["source"]) == ("1", "environment")
    assert "Python (LOGPIPE_NATIVE" not in row["description"]
    (tmp_path / ".env").write_text("LOGPIPE_NATIVE=maybe\n")
    proc = run("collector", "config", cwd=tmp_path)
    assert proc.returncode == 2
    assert "LOGPIPE_NATIVE: 'maybe' is not a boolean" in one_line_error(proc)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "rules:\n  - name: a\nbulk_max_docs: 3\nrules: []\n",
            r"config file c\.yaml: line 4, column 1: key 'rules' is given twice \(also on line 1\)",
        ),
        (
            "index:\n  shards: 1\n  shards: 2\n",
            r"config file c\.yaml: line 3, column 3: key 'shards' is given twice",
        ),
        ("", r"^config file c\.yaml holds no settings \(it is empty or only comments\)"),
        ("# all defaults\n", r"^config file c\.yaml holds no settings"),
        (
            "a: [1, 2\nb: 3\n",
            r"^config file c\.yaml is not valid YAML: line 2, column 2: expected ',' or ']'",
        ),
    ],
)
def test_config_file_mistakes_are_one_line_with_file_and_line(
    tmp_path: Path, text: str, error: str
) -> None:
    """A key given twice (YAML would keep the last silently), bad YAML or a file of no
    settings is one line naming the file (and the line and column of a YAML mistake)."""
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=error) as caught:
        load_config(Path("c.yaml"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "off"),
    [("0", True), ("false", True), ("No", True), ("off", True), ("1", False), ("true", False)],
)
def test_native_switch_reads_the_usual_booleans(
    monkeypatch: pytest.MonkeyPatch, value: str, off: bool
) -> None:
    """LOGPIPE_NATIVE=false turns the compiled path off as 0 does."""
    monkeypatch.setenv(native.ENV, value)
    native.check_setting()
    assert native.switched_off() is off


def test_native_switch_that_is_no_boolean_is_refused(tmp_path: Path) -> None:
    """Any other value is a mistake named at start, exit 2; `config` lists the setting."""
    proc = run("collector", "config", cwd=tmp_path, LOGPIPE_NATIVE="foo")
    assert proc.returncode == 2
    assert one_line_error(proc).endswith(
        "LOGPIPE_NATIVE: 'foo' is not a boolean: "
        + (
            "0/false/no/off keeps the Python path, 1/true/yes/on (or unset) uses the compiled "
            "one when installed"
        )
    )
    proc = run("collector", "config", "--json", cwd=tmp_path, LOGPIPE_NATIVE="off")
    assert value_and_source(config_rows(proc))["LOGPIPE_NATIVE"] == ("off", "environment")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "rules:\n  - name: r\n    match: {service: 3}\n    dissect: '%{a}'\n",
            "'rules.0.match.service' (rule 'r') in c.yaml: "
            "Input should be a valid string or a valid list",
        ),
        (
            "rules:\n  - name: r\n    match: {level: [warn, 3]}\n",
            "'rules.0.match.level.1' (rule 'r') in c.yaml: Input should be a valid string",
        ),
        (
            "rules:\n  - name: r\n    match: {image: 'ng[inx'}\n    dissect: '%{a}'\n",
            "'rules.0.match.image' (rule 'r') in c.yaml: 'ng[inx': the '[' at character 3 "
            "opens a class that no ']' closes (write '[[]' to match a '[' itself)",
        ),
        (
            "retention:\n  rules:\n    - {match: {service: [1]}, keep: 1d}\n",
            "'retention' in c.yaml: rule 1 (1d): 'match.service.0': Input should be a valid string",
        ),
        (
            "rules:\n  - name: r\n    regex: x\n    fields:\n",
            "'rules.0.fields' (rule 'r') in c.yaml: Input should be a mapping (key: value, ...)",
        ),
        (
            "rules:\n  - name: r\n    regex: '(?P<x>a)'\n"
            "    fields: {x: {type: long, format: '%Y'}}\n",
            "'rules.0.fields.x' (rule 'r') in c.yaml: "
            "'format' is for dates, and this field's type is long",
        ),
        (
            "rules:\n  - name: r\n    regex: '(?P<x>a)'\n"
            "    fields: {x: {type: ip, format: '%Y'}}\n",
            "'rules.0.fields.x' (rule 'r') in c.yaml: "
            "'format' is for dates, and this field's type is ip",
        ),
        (
            "retention: 30d\n",
            "'retention' in c.yaml: Input should be a mapping (key: value, ...)",
        ),
        (
            "index:\n  replica: 1\n",
            "'index.replica' in c.yaml: no such key; did you mean 'replicas'?",
        ),
        (
            "retention:\n  default: 0d\n",
            "'retention.default' in c.yaml: '0d': a duration must be more than zero, e.g. 1d",
        ),
    ],
)
def test_file_errors_name_the_key_as_written(tmp_path: Path, text: str, error: str) -> None:
    """Keys as the file writes them, with the parsing rule's name: no pydantic union
    members or model names, and one line for a list of globs with a wrong item (not the
    glob member's error as well)."""
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(Path("c.yaml"))
    assert str(caught.value) == error


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        (
            "LOGPIPE_RETENTION__INTERVAL",
            "0s",
            "LOGPIPE_RETENTION__INTERVAL: '0s': a duration must be more than zero, e.g. 1s",
        ),
        (
            "LOGPIPE_RETENTION__ROLLOVER__MAX_AGE",
            "1x",
            "LOGPIPE_RETENTION__ROLLOVER__MAX_AGE: '1x' is not a duration: write a whole "
            "number and one of s m h d w",
        ),
        (
            "LOGPIPE_INDEX__REPLICA",
            "1",
            "LOGPIPE_INDEX__REPLICA: no such setting; did you mean LOGPIPE_INDEX__REPLICAS?",
        ),
        (
            "LOGPIPE_RULES",
            '[{"name": "a", "match": {"servce": "x"}, "regex": "x"}]',
            "LOGPIPE_RULES: no such key 'rules.0.match.servce'; did you mean 'service'?",
        ),
    ],
)
def test_nested_variable_errors_name_the_variable_set(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, error: str
) -> None:
    """A nested variable's mistake names that variable, not its section; a key inside
    a variable's JSON list (which no variable of its own can set) is named as a key."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert str(caught.value) == error


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (
            "30000000",
            "LOGPIPE_MAX_LINE_BYTES: 30000000 is over 4194304 (4 MiB): Elasticsearch counts a "
            "document several times its size against its indexing-pressure limit (10% of the "
            "heap), so a longer line may never be indexed",
        ),
        ("1000", "LOGPIPE_MAX_LINE_BYTES: Input should be greater than or equal to 1024"),
        ("1MiB", "LOGPIPE_MAX_LINE_BYTES: '1MiB' is not a whole number: write digits only"),
    ],
)
def test_a_line_limit_the_collector_cannot_keep_is_a_config_error(
    tmp_path: Path, value: str, error: str
) -> None:
    """LOGPIPE_MAX_LINE_BYTES past 4 MiB, under 1024 or no number stops `serve` at start,
    exit 2, in one line saying why (the shipper's bounds and words)."""
    proc = run("collector", "config", cwd=tmp_path, LOGPIPE_MAX_LINE_BYTES=value)
    assert proc.returncode == 2
    assert one_line_error(proc).startswith(f"logpipe-collector: invalid configuration: {error}")


def test_the_line_limit_defaults_to_the_most_a_shipper_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unset, a collector cuts no line a shipper may send (at most 4 MiB); set, it takes
    the value, the shipper's variable name."""
    assert load_config().max_line_bytes == 4 * 1024 * 1024
    monkeypatch.setenv("LOGPIPE_MAX_LINE_BYTES", "1048576")
    assert load_config().max_line_bytes == 1024 * 1024


def test_a_token_file_saved_with_a_bom_gives_its_first_token(tmp_path: Path) -> None:
    """An editor's UTF-8 byte order mark was taken as part of the first token, which no
    shipper sends; each program reads its token files without it."""
    from shipper.config import ShipperConfig

    tokens = tmp_path / "tokens"
    tokens.write_bytes(b"\xef\xbb\xbffirst\r\nsecond\n")
    config = CollectorConfig(tokens_file=tokens, read_tokens_file=tokens)
    assert config.accepted_tokens() == frozenset({"first", "second"})
    assert config.read_tokens_accepted() == frozenset({"first", "second"})
    one = tmp_path / "token"
    one.write_bytes(b"\xef\xbb\xbfsecret\n")
    shipper = ShipperConfig(_env_file=None, token_file=one)
    assert shipper.bearer_token() == "secret"


def test_a_bad_retention_rule_in_the_file_is_not_blamed_on_a_retention_variable(
    tmp_path: Path,
) -> None:
    """With LOGPIPE_RETENTION__INTERVAL set, a mistake in the file's retention section was
    said to be that variable's; the file's key is named, and a bad value of the variable
    still names the variable."""
    config = tmp_path / "collector.yaml"
    config.write_text("retention:\n  rules: [{match: {level: loud}, keep: 2d}]\n")
    proc = run(
        "collector", "--config", str(config), "config", cwd=tmp_path,
        LOGPIPE_RETENTION__INTERVAL="1000w",
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"'retention' in {config}: rule 1 (2d): 'match.level': 'loud'" in one_line_error(proc)
    proc = run("collector", "config", cwd=tmp_path, LOGPIPE_RETENTION__INTERVAL="3x")
    assert proc.returncode == 2
    assert "LOGPIPE_RETENTION__INTERVAL: '3x' is not a duration" in one_line_error(proc)


@pytest.mark.parametrize("level", ["DEBUG", "Warning", "error"])
def test_the_log_level_is_read_in_any_case(tmp_path: Path, level: str) -> None:
    """LOGPIPE_LOG_LEVEL=DEBUG is what an operator writes as often as debug, and the
    config file's `log_level: INFO` the same."""
    proc = run(
        "collector", "config", "--json", cwd=tmp_path, LOGPIPE_LOG_LEVEL=level, LOGPIPE_AUTH="none"
    )
    assert proc.returncode == 0, proc.stderr
    got = value_and_source(config_rows(proc))["LOGPIPE_LOG_LEVEL"]
    assert got == (level.lower(), "environment")
    (tmp_path / "c.yaml").write_text(f"log_level: {level}\n")
    assert load_config(tmp_path / "c.yaml").log_level == level.lower()
