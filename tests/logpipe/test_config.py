"""Where the URL, the read token and the colour come from, and the errors of each place."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpipe.config import DEFAULT_URL, Flags, resolve
from logpipe.errors import UsageError


def write_config(tmp_path: Path, text: str) -> dict[str, str]:
    """A config file at the XDG place under `tmp_path`; the environment that finds it."""
    folder = tmp_path / "logpipe"
    folder.mkdir(exist_ok=True)
    (folder / "config.toml").write_text(text)
    return {"XDG_CONFIG_HOME": str(tmp_path)}


def test_flags_win_over_the_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    """Each setting comes from the first place that has it: flag, environment, file."""
    env = write_config(tmp_path, 'url = "http://file:1"\ntoken = "file-t"\ncolor = "never"\n')
    from_file = resolve(Flags(), env)
    assert (from_file.url, from_file.token, from_file.color) == ("http://file:1", "file-t", "never")
    assert from_file.url_source.startswith("url in ")
    env |= {"LOGPIPE_URL": "http://env:2/", "LOGPIPE_READ_TOKEN": "env-t"}
    from_env = resolve(Flags(), env)
    assert (from_env.url, from_env.token, from_env.url_source) == (
        "http://env:2",
        "env-t",
        "LOGPIPE_URL",
    )
    flags = Flags(url="https://flag:3/logpipe", token="flag-t", color="always")
    from_flags = resolve(flags, env)
    assert (from_flags.url, from_flags.token, from_flags.color) == (
        "https://flag:3/logpipe",
        "flag-t",
        "always",
    )


def test_without_any_url_the_default_is_used_and_said(tmp_path: Path) -> None:
    """No URL anywhere: localhost:8080, and messages will say it is the default."""
    got = resolve(Flags(token="t"), {"XDG_CONFIG_HOME": str(tmp_path)})
    assert got.url == DEFAULT_URL
    assert "the default" in got.url_source
    assert got.color == "auto"


def test_token_files_are_read_and_relative_ones_in_the_config_file_are_beside_it(
    tmp_path: Path,
) -> None:
    """A token file's text (whitespace dropped) is the token; the file's `token_file` is
    relative to the config file's folder."""
    env = write_config(tmp_path, 'token_file = "read-token"\n')
    (tmp_path / "logpipe" / "read-token").write_text("  secret\n")
    assert resolve(Flags(), env).token == "secret"
    other = tmp_path / "other"
    other.write_text("from-env\n")
    assert resolve(Flags(), env | {"LOGPIPE_READ_TOKEN_FILE": str(other)}).token == "from-env"
    other.write_bytes(b"\xef\xbb\xbfwith-bom\r\n")  # an editor's byte order mark
    assert resolve(Flags(), env | {"LOGPIPE_READ_TOKEN_FILE": str(other)}).token == "with-bom"


def test_a_token_and_a_token_file_in_one_place_is_an_error(tmp_path: Path) -> None:
    """Both in the environment: an error naming both variables."""
    env = {"XDG_CONFIG_HOME": str(tmp_path), "LOGPIPE_READ_TOKEN": "a"}
    env["LOGPIPE_READ_TOKEN_FILE"] = "/x"
    with pytest.raises(UsageError, match="LOGPIPE_READ_TOKEN and LOGPIPE_READ_TOKEN_FILE"):
        resolve(Flags(), env)


def test_no_token_anywhere_says_every_place_to_put_one(tmp_path: Path) -> None:
    """The error names the variable, the flags and the config file."""
    with pytest.raises(UsageError) as caught:
        resolve(Flags(), {"XDG_CONFIG_HOME": str(tmp_path)})
    message = str(caught.value)
    for place in ("LOGPIPE_READ_TOKEN", "--token", "--token-file", str(tmp_path / "logpipe")):
        assert place in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'tokn = "x"\n',
            r"tokn: no such setting \(the settings are url, token, token_file, color\)",
        ),
        ('color = "sometimes"\n', "color: Input should be 'auto', 'always' or 'never'"),
        ("url = \n", "not valid TOML"),
    ],
)
def test_a_bad_config_file_is_an_error_naming_the_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Unknown keys, bad values and broken TOML are usage errors naming the file."""
    env = write_config(tmp_path, text)
    with pytest.raises(UsageError, match=f"config file {tmp_path}/logpipe/config.toml: {expected}"):
        resolve(Flags(token="t"), env)


@pytest.mark.parametrize(
    "url", ["collector:8080", "ftp://x", "http://", "http://h:port", "http://h/a b"]
)
def test_a_url_that_is_not_http_is_an_error_naming_where_it_came_from(
    tmp_path: Path, url: str
) -> None:
    """A URL without http(s)://host, or with a bad port, is refused naming its source."""
    env = {"XDG_CONFIG_HOME": str(tmp_path), "LOGPIPE_URL": url}
    with pytest.raises(UsageError, match=f"^LOGPIPE_URL: '{url}'"):
        resolve(Flags(token="t"), env)


def test_a_url_that_cannot_be_split_is_a_usage_error_not_a_crash(tmp_path: Path) -> None:
    """An IPv6 address without its closing bracket: one line naming the setting."""
    env = {"XDG_CONFIG_HOME": str(tmp_path), "LOGPIPE_URL": "http://[::1:8080"}
    with pytest.raises(UsageError) as refused:
        resolve(Flags(token="t"), env)
    assert str(refused.value) == (
        "LOGPIPE_URL: 'http://[::1:8080' is not a URL (invalid ipv6 url): write e.g. "
        "http://collector:8080 or http://[::1]:8080"
    )


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://c:8080/v1/search", "http://c:8080"),
        ("https://ops.example/logpipe/v1/tail/", "https://ops.example/logpipe"),
        ("http://c:8080/v1/logs", "http://c:8080"),
    ],
)
def test_an_endpoints_url_is_refused_naming_the_collectors(
    tmp_path: Path, url: str, base: str
) -> None:
    """A URL copied from a curl command (`.../v1/search`) would be answered 404 with the
    endpoint twice in the path: the message gives the URL to use instead."""
    with pytest.raises(UsageError) as refused:
        resolve(Flags(url=url, token="t"), {"XDG_CONFIG_HOME": str(tmp_path)})
    endpoint = url.rstrip("/").rsplit("/", 1)[1]
    assert str(refused.value) == (
        f"--url: {url!r} is the URL of the endpoint /v1/{endpoint}: give the collector's URL "
        f"without it ({base})"
    )
    got = resolve(Flags(url="https://ops.example/v1/searches/", token="t"), {})
    assert got.url == "https://ops.example/v1/searches"


def test_where_the_token_came_from_is_kept_for_messages(tmp_path: Path) -> None:
    """A refused token is named by where it was set: flag, variable, or file (with its
    path, relative ones in the config file from its folder)."""
    env = write_config(tmp_path, 'token_file = "read-token"\n')
    (tmp_path / "logpipe" / "read-token").write_text("file-t\n")
    from_file = resolve(Flags(), env)
    folder = tmp_path / "logpipe"
    assert (from_file.token, from_file.token_source) == (
        "file-t",
        f"token_file in {folder / 'config.toml'} {folder / 'read-token'}",
    )
    from_env = resolve(Flags(), env | {"LOGPIPE_READ_TOKEN": "env-t"})
    assert from_env.token_source == "LOGPIPE_READ_TOKEN"
    assert resolve(Flags(token="flag-t"), env).token_source == "--token"


def test_missing_or_unreadable_files_are_errors(tmp_path: Path) -> None:
    """--config naming no file, and a token file that cannot be read, are usage errors."""
    with pytest.raises(UsageError, match=r"--config .*: no such file"):
        resolve(Flags(token="t", config=str(tmp_path / "nope.toml")), {})
    with pytest.raises(UsageError, match=r"--token-file: cannot read .*gone"):
        resolve(Flags(token_file=str(tmp_path / "gone")), {"XDG_CONFIG_HOME": str(tmp_path)})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UsageError, match=r"--token-file: .*empty is empty"):
        resolve(Flags(token_file=str(tmp_path / "empty")), {"XDG_CONFIG_HOME": str(tmp_path)})


def test_a_port_out_of_range_is_said_so(tmp_path: Path) -> None:
    """99999 is a number, just not a port."""
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    with pytest.raises(UsageError, match=r"a port that is out of range \(1-65535\)$"):
        resolve(Flags(url="http://127.0.0.1:99999", token="t"), env)


def test_a_token_that_no_header_can_hold_is_a_usage_error(tmp_path: Path) -> None:
    """A token file of several lines (the collector's LOGPIPE_READ_TOKENS_FILE, say) or a
    token with a control character is refused up front; one beyond ASCII is kept."""
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    (tmp_path / "tokens").write_text("a\nb\n")
    with pytest.raises(UsageError, match=r"^--token-file .*tokens: holds several lines.*"
                       "LOGPIPE_READ_TOKENS_FILE"):  # fmt: skip
        resolve(Flags(token_file=str(tmp_path / "tokens")), env)
    with pytest.raises(UsageError, match=r"^LOGPIPE_READ_TOKEN: holds a control character"):
        resolve(Flags(), {**env, "LOGPIPE_READ_TOKEN": "a\x1bb"})
    assert resolve(Flags(token="tok€"), env).token == "tok€"
