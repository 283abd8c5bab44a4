"""Where the command line finds its collector and read token, resolved once at start.

Each setting is taken from the first of these that has it:

1. the command line: `--url`, `--token` or `--token-file`, `--color`;
2. the environment: `LOGPIPE_URL`, `LOGPIPE_READ_TOKEN` or `LOGPIPE_READ_TOKEN_FILE`;
3. the config file: `--config PATH`, else `$XDG_CONFIG_HOME/logpipe/config.toml`
   (`~/.config/logpipe/config.toml`), keys `url`, `token` or `token_file`, `color`;
4. the default: `http://localhost:8080`, no token, `color = "auto"`.

A token and a token file in the same place is an error, as is an unknown key in the file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from logpipe.errors import UsageError
from logpipe.style import ColorMode

DEFAULT_URL = "http://localhost:8080"
CONTROL = re.compile(r"[\x00-\x20\x7f]")
# The collector's endpoints, which the commands add to its URL themselves.
ENDPOINT = re.compile(r"/v1/(search|tail|logs)/?$")


class FileSettings(BaseModel):
    """The config file's keys (TOML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(None, description="the collector's URL, e.g. https://logs.example")
    token: str | None = Field(None, description="a read token (LOGPIPE_READ_TOKENS)")
    token_file: Path | None = Field(None, description="a file holding the read token")
    color: ColorMode | None = Field(None, description="auto, always or never")


@dataclass(frozen=True)
class Flags:
    """The options of the command line that settings come from (None: not given)."""

    url: str | None = None
    token: str | None = None
    token_file: str | None = None
    color: ColorMode | None = None
    config: str | None = None


@dataclass(frozen=True)
class Settings:
    """The settings in effect: where to connect, with which token, and how to colour."""

    url: str
    url_source: str
    token: str
    color: ColorMode
    token_source: str = "--token"  # where the token came from, for messages


def default_config_path(env: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/logpipe/config.toml`, XDG's default being `~/.config`."""
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "logpipe" / "config.toml"


def load_file(path: Path, required: bool) -> FileSettings:
    """The config file's settings; none when the default file does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise UsageError(f"--config {path}: no such file") from None
        return FileSettings()
    except OSError as exc:
        raise UsageError(f"config file {path}: cannot read it: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8", errors="replace"))
        return FileSettings.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        raise UsageError(f"config file {path}: {first_problem(exc)}") from exc


def first_problem(exc: ValidationError) -> str:
    """One validation error as `key: what is wrong`."""
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"])
    if err["type"] == "extra_forbidden":
        known = ", ".join(FileSettings.model_fields)
        return f"{key}: no such setting (the settings are {known})"
    return f"{key}: {err['msg']}"


def resolve(flags: Flags, env: Mapping[str, str]) -> Settings:
    """The settings in effect, from flags, environment, config file and defaults."""
    path = Path(flags.config) if flags.config else default_config_path(env)
    file = load_file(path, required=flags.config is not None)
    url, url_source = pick_url(flags, env, file, path)
    token, token_source = pick_token(flags, env, file, path)
    return Settings(
        url=check_url(url, url_source),
        url_source=url_source,
        token=token,
        color=flags.color or file.color or "auto",
        token_source=token_source,
    )


def pick_url(
    flags: Flags, env: Mapping[str, str], file: FileSettings, path: Path
) -> tuple[str, str]:
    """The collector URL and where it came from."""
    if flags.url is not None:  # --url '' is a mistake to name, not "no --url"
        return flags.url, "--url"
    if env.get("LOGPIPE_URL"):
        return env["LOGPIPE_URL"], "LOGPIPE_URL"
    if file.url:
        return file.url, f"url in {path}"
    return DEFAULT_URL, "the default; set LOGPIPE_URL or --url"


def check_url(url: str, source: str) -> str:
    """The URL without a trailing slash; a UsageError unless it is http(s)://host[:port]
    (and a path, where a proxy serves the collector under one), not an endpoint's URL."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed `[` of an IPv6 address
        raise UsageError(
            f"{source}: {url!r} is not a URL ({str(exc).lower()}): write e.g. "
            "http://collector:8080 or http://[::1]:8080"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"{source}: {url!r} is not an http:// or https:// URL: write e.g. http://collector:8080"
        )
    try:
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError as exc:
        what = "out of range (1-65535)" if "out of range" in str(exc) else "not a number"
        raise UsageError(f"{source}: {url!r} has a port that is {what}") from None
    if parts.port == 0:
        raise UsageError(f"{source}: {url!r} has a port that is out of range (1-65535)")
    if CONTROL.search(url):
        raise UsageError(f"{source}: {url!r} holds a control character or a space")
    endpoint = ENDPOINT.search(parts.path)
    if endpoint:
        base = url[: url.rindex(endpoint.group(0))] or url
        raise UsageError(
            f"{source}: {url!r} is the URL of the endpoint /v1/{endpoint.group(1)}: give the "
            f"collector's URL without it ({base})"
        )
    return url.rstrip("/")


def check_token(name: str, token: str) -> str:
    """The token, unless it holds what no HTTP header can (a line break, a control
    character); a token not in ASCII is sent as UTF-8, as the collector compares it."""
    if "\n" in token:
        raise UsageError(
            f"{name}: holds several lines, and a read token is one: if it is the collector's "
            "LOGPIPE_READ_TOKENS_FILE (one token a line), give a file with just one of them"
        )
    if CONTROL.search(token.replace(" ", "")):
        raise UsageError(f"{name}: holds a control character, which no token has")
    return token


def pick_token(
    flags: Flags, env: Mapping[str, str], file: FileSettings, path: Path
) -> tuple[str, str]:
    """The read token from the first place that has one, and that place (a file's name
    with it); a UsageError when none has."""
    if flags.token is not None and not flags.token.strip():
        raise UsageError("--token: is empty: give the read token, or leave --token out")
    places = (
        ("--token", flags.token, "--token-file", flags.token_file, None),
        ("LOGPIPE_READ_TOKEN", env.get("LOGPIPE_READ_TOKEN"),
         "LOGPIPE_READ_TOKEN_FILE", env.get("LOGPIPE_READ_TOKEN_FILE"), None),
        (f"token in {path}", file.token,
         f"token_file in {path}", str(file.token_file) if file.token_file else None, path.parent),
    )  # fmt: skip
    for token_name, token, file_name, token_file, base in places:
        if token and token_file:
            raise UsageError(f"{token_name} and {file_name} are both set: keep one of them")
        if token:
            return check_token(token_name, token.strip()), token_name
        if token_file:
            full = token_path(Path(token_file), base)
            return read_token_file(file_name, full), f"{file_name} {full}"
    raise UsageError(
        "no read token: set LOGPIPE_READ_TOKEN (or LOGPIPE_READ_TOKEN_FILE), give --token or "
        f'--token-file, or write token = "..." in {path}; the collector\'s '
        "LOGPIPE_READ_TOKENS lists the tokens it accepts"
    )


def token_path(path: Path, base: Path | None) -> Path:
    """A token file's path, relative to `base` if given (the config file's folder)."""
    return base / path if base is not None and not path.is_absolute() else path


def read_token_file(name: str, full: Path) -> str:
    """The token a file holds (surrounding whitespace dropped)."""
    try:
        token = full.read_text(encoding="utf-8-sig").strip()  # a BOM is no part of it
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"{name}: cannot read {full}: {reason}") from exc
    if not token:
        raise UsageError(f"{name}: {full} is empty")
    return check_token(f"{name} {full}", token)
