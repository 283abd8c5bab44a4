"""The shipper's one configuration model, from ``LOGPIPE_*`` environment variables (and .env)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from collector import envnames, invalid
from collector.commas import split_commas
from collector.runtime import EventLoop
from collector.wire import HOST_CHARS, PATH_LOGS, check_max_line_bytes
from shipper.errors import ConfigError

GlobList = Annotated[list[str], NoDecode]
DOCKER_HOST_NAMES = ("DOCKER_HOST", "LOGPIPE_DOCKER_HOST")


class ShipperConfig(BaseSettings):
    """Everything the shipper process needs, resolved and validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="LOGPIPE_",
        env_file=".env",
        # .env may be shared with compose and the collector: its other LOGPIPE_* names are
        # checked by envnames, not refused as unknown fields.
        dotenv_filtering="only_existing",
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,  # a timeout or an age of inf or nan is never what was meant
        populate_by_name=True,
    )

    collector_url: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:8080"],
        description="Collector base URL(s), comma-separated; batches are spread over them.",
    )
    token: str | None = Field(None, description="Bearer token for the collector.")
    token_file: Path | None = Field(None, description="File holding the bearer token.")
    ca_file: Path | None = Field(None, description="CA bundle to verify https collectors.")
    client_cert: Path | None = Field(None, description="Client certificate for mutual TLS.")
    client_key: Path | None = Field(None, description="Private key of client_cert.")
    state_dir: Path = Field(
        Path("/var/lib/logpipe/shipper"), description="Cursors and buffers live here."
    )
    buffer_max_bytes: int = Field(
        1024**3,
        ge=64 * 1024,
        description="Bound of the disk buffer (gzip batches not yet acknowledged); near it the "
        "busiest containers' reading pauses, at it all reading pauses (Docker keeps the rest).",
    )
    docker_host: str = Field(
        "unix:///var/run/docker.sock",
        # DOCKER_HOST first: the name documented; load_config lets LOGPIPE_DOCKER_HOST win.
        validation_alias=AliasChoices(*DOCKER_HOST_NAMES, "docker_host"),
        description="Docker Engine API address (DOCKER_HOST, or LOGPIPE_DOCKER_HOST, which wins).",
    )
    host_name: str | None = Field(None, description="host.name on documents (default: dockerd's).")
    http_listen: str = Field(
        "0.0.0.0:8081", description="Where /healthz, /status, /metrics (and /logs) are."
    )
    tail_token: str | None = Field(
        None,
        description="Bearer token that turns on GET /logs on the HTTP listener: this host's "
        "lines, live, before any collector sees them. Unset: /logs answers 404.",
    )
    tail_max_clients: int = Field(
        4, ge=1, le=1000, description="Most GET /logs clients at once; more are answered 429."
    )
    tail_buffer_lines: int = Field(
        5000,
        ge=10,
        description="Lines queued for one GET /logs client that reads slower than they come; "
        "past it the client misses lines and is told how many (shipping never waits).",
    )
    start_at: Literal["beginning", "end"] = Field(
        "beginning",
        description="For containers never seen before, among them those already there at the "
        "first start with this state_dir, running or exited (not removed): ship their whole "
        "log, or only lines logged from then on (end). A log read to its end is not read "
        "again.",
    )
    batch_max_lines: int = Field(5000, ge=1, description="Most lines in one batch.")
    batch_max_bytes: int = Field(
        4 * 1024 * 1024, ge=64 * 1024, description="Most message bytes in one batch."
    )
    batch_max_age: float = Field(
        0.5, gt=0, description="Seconds a line waits for its batch to fill before it is sent."
    )
    # Three, not two: with two, Elasticsearch had one request left while a collector
    # decoded the next batch after each answer, and drains ran at 0.93x the lines/s of
    # three. The third batch holds about 15 MB more in the collector (BENCHMARKS).
    max_in_flight: int = Field(3, ge=1, le=64, description="Batches awaiting an answer at once.")
    max_line_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Longer lines are cut here and tagged truncated. At most 4 MiB "
        "(4194304), so that a default Elasticsearch node can always index the line's "
        "document.",
    )
    queue_lines: int = Field(
        5000, ge=100, description="Lines read ahead of the sender before reading pauses."
    )
    read_pace: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Seconds a container's log stream is left unread after a small read "
        "that came within this long of the previous one, so that what comes meanwhile is "
        "one read (less CPU per line); 0 reads at once. "
        "Never applied to --rm containers.",
    )
    follow_files: bool = Field(
        True,
        description="Follow running containers' json-file and local logs from their files when "
        "dockerd's containers folder is readable here, instead of asking dockerd to serve "
        "every line again (it costs dockerd more CPU per line than the shipper's own work); "
        "false: dockerd serves every log.",
    )
    request_timeout: float = Field(
        60,
        gt=0,
        description="Seconds a batch has to reach a collector and be answered, its body's "
        "time on the wire included; one with no answer 10 s after the body was sent that "
        "lets two probes of /healthz in a row time out (5 s each) is taken for hung sooner, "
        "and the batch goes to the next collector listed (a body that stops moving while "
        "being sent, none of it taken for 10 s, starts the same probes); a batch whose body "
        "is still being sent when this runs out is sent again in halves.",
    )
    shutdown_timeout: float = Field(
        10, ge=0, description="On SIGTERM, seconds to flush what was read before exiting."
    )
    include_names: GlobList = Field(default_factory=list, description="Only these names (globs).")
    exclude_names: GlobList = Field(default_factory=list, description="Never these names (globs).")
    include_images: GlobList = Field(default_factory=list, description="Only these images.")
    exclude_images: GlobList = Field(default_factory=list, description="Never these images.")
    include_labels: GlobList = Field(
        default_factory=list, description="Only containers with one of these key=value globs."
    )
    exclude_labels: GlobList = Field(
        default_factory=list, description="Never containers with one of these key=value globs."
    )
    self_container_id: str | None = Field(
        None, description="Our own container id, never followed (detected when unset)."
    )
    metrics_per_container: bool = Field(
        False, description="Also count lines and bytes per container name on /metrics."
    )
    metrics_max_containers: int = Field(
        100, ge=1, description="With metrics_per_container, containers beyond this are summed."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least level of the JSON log lines on stdout."
    )
    event_loop: EventLoop = Field(
        "auto",
        description="uvloop (about 10% less CPU per line), asyncio, or auto: uvloop when "
        "installed.",
    )

    _split = field_validator(
        "collector_url",
        "include_names",
        "exclude_names",
        "include_images",
        "exclude_images",
        "include_labels",
        "exclude_labels",
        mode="before",
    )(split_commas)

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, level: object) -> object:
        """DEBUG or Info as well as debug: an operator writes a level in either case."""
        return level.lower() if isinstance(level, str) else level

    @field_validator("collector_url")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise ValueError("at least one collector URL is needed")
        for url in urls:
            problem = _url_problem(url)
            if problem:
                raise ValueError(f"'{url}' {problem}")
        return [url.rstrip("/") for url in urls]

    @field_validator("max_line_bytes")
    @classmethod
    def _max_line(cls, size: int) -> int:
        return check_max_line_bytes(size)

    @field_validator("host_name")
    @classmethod
    def _host_name(cls, name: str | None) -> str | None:
        """Empty: dockerd's name. Otherwise what a collector takes as host.name: every
        batch would be refused (and dead-lettered) for it, so it is refused here."""
        if not name:
            return None
        if not name.strip():
            raise ValueError("only spaces: give the host's name, or leave it empty for dockerd's")
        if len(name) > HOST_CHARS:
            raise ValueError(f"{len(name)} characters: at most {HOST_CHARS}")
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValueError("holds a control character")
        return name

    @field_validator("tail_token")
    @classmethod
    def _tail_token(cls, token: str | None) -> str | None:
        return token.strip() or None if token is not None else None

    def bearer_token(self) -> str | None:
        """The token from the setting or the token file (read now: it may be rotated)."""
        if self.token:
            return self.token
        if self.token_file is not None:
            try:
                return self.token_file.read_text(encoding="utf-8-sig").strip() or None
            except OSError as exc:
                reason = exc.strerror.lower() if exc.strerror else str(exc)
                raise ConfigError(
                    f"LOGPIPE_TOKEN_FILE: cannot read {self.token_file}: {reason}"
                ) from exc
        return None


def _url_problem(url: str) -> str | None:
    """What makes `url` no collector base URL (batches are POSTed to it + /v1/logs), if
    anything: found at start, it is not retried forever."""
    if not url.startswith(("http://", "https://")):
        return "must start with http:// or https://"
    parsed = urlsplit(url)
    try:
        port = parsed.port
    except ValueError:
        port = 0
    if port == 0:
        return "has a port that is not a number from 1 to 65535"
    if not parsed.hostname or any(c.isspace() for c in url):
        return "needs a host name or address, e.g. http://collector:8080"
    if parsed.query or parsed.fragment or "?" in url or "#" in url:
        return "must have no ?query or #fragment"
    if parsed.path.rstrip("/").endswith(PATH_LOGS):
        return f"must be the collector's base URL, without {PATH_LOGS} (added to it)"
    return None


def names() -> envnames.Names:
    """The environment names of the shipper's settings."""
    # LOGPIPE_NATIVE=0 (false, no, off): the Python reading path even with the compiled one,
    # read by shipper/native.py at import, before any configuration.
    return envnames.settings_names("logpipe-shipper", ShipperConfig, extra=["LOGPIPE_NATIVE"])


def env_name(field: str) -> str:
    """The variable that sets `field`, as documented."""
    return envnames.field_names(ShipperConfig).get(field, [field.upper()])[0]


def _collector_names() -> envnames.Names:
    """The collector's settings names, for a name that is not the shipper's (one ``.env``
    may serve both). Imported only then: the collector's settings bring its parsers and
    rules, ~4 MB and ~0.07 CPU-s of the shipper's start."""
    from collector.config import names

    return names()


def _logpipe_docker_host() -> str | None:
    """LOGPIPE_DOCKER_HOST when set: it wins over DOCKER_HOST, which may be meant for
    other programs (the environment still wins over .env, as for every setting)."""
    for variables in (os.environ, envnames.read_dotenv(Path(".env"))):
        found = {k.upper(): v for k, v in variables.items() if k.upper() in DOCKER_HOST_NAMES}
        if "LOGPIPE_DOCKER_HOST" in found:
            return found["LOGPIPE_DOCKER_HOST"]
        if found:
            return None
    return None


def load_config(**overrides: object) -> ShipperConfig:
    """Build the config from the environment; errors name the variable."""
    problems = envnames.check_names(names(), _collector_names, dotenv=Path(".env"))
    native = envnames.native_problem(envnames.native_setting()[0])
    if native is not None:  # read by shipper/native.py at import
        problems.append(native)
    if problems:
        raise ConfigError("\n".join(problems))
    own = _logpipe_docker_host()
    if own is not None:
        overrides.setdefault("docker_host", own)
    try:
        config = ShipperConfig(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = invalid.message(err).removeprefix("Value error, ")
            lines.append(f"{env_name(key)}: {msg}")
        raise ConfigError("\n".join(lines)) from exc
    if config.token and config.token_file is not None:
        # The token would win, and a file that cannot be read would go unnoticed.
        raise ConfigError("LOGPIPE_TOKEN and LOGPIPE_TOKEN_FILE are both set: keep one of them")
    _check_tls(config)
    return config


def _check_tls(config: ShipperConfig) -> None:
    """TLS files that would be ignored: set, they were never read, and the batches and the
    token went out in clear text to http:// collectors as if nothing were wrong."""
    if config.client_key is not None and config.client_cert is None:
        raise ConfigError(
            "LOGPIPE_CLIENT_KEY without LOGPIPE_CLIENT_CERT: set the certificate it belongs "
            "to (mutual TLS), or unset it"
        )
    if any(url.startswith("https://") for url in config.collector_url):
        return
    files = [
        env_name(name)
        for name in ("ca_file", "client_cert", "client_key")
        if getattr(config, name) is not None
    ]
    if files:
        raise ConfigError(
            f"{' and '.join(files)} set, but no LOGPIPE_COLLECTOR_URL is https://: TLS "
            "would not be used; give the collectors' https:// URLs, or unset "
            f"{'them' if len(files) > 1 else 'it'}"
        )
