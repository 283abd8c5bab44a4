"""The collector's one configuration model: YAML file (``LOGPIPE_CONFIG``) + ``LOGPIPE_*`` env."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from collector import envnames
from collector.commas import split_commas
from collector.errors import ConfigError
from collector.invalid import message, readable
from collector.keys import check_patterns
from collector.retention.rules import Duration, RetentionConfig
from collector.rules.config import RuleList
from collector.rules.masking import RedactConfig
from collector.settings_table import masked_url
from collector.wire import MAX_LINE_BYTES, NAME_PART_PATTERN, check_max_line_bytes


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# An Elasticsearch time value as index settings take it (number, unit), or -1.
TIME_VALUE = re.compile(r"-1|(\d+(?:\.\d+)?)(nanos|micros|ms|s|m|h|d)")


class IndexSettings(_Section):
    """Settings of the data streams' backing indices, applied by `setup`."""

    shards: int = Field(1, ge=1, le=64, description="Primary shards per backing index.")
    replicas: int = Field(0, ge=0, le=8, description="Replicas per shard.")
    refresh_interval: str | None = Field(
        None,
        description="How often new lines are made searchable. Unset (the default): "
        "Elasticsearch's own, every second while the stream is searched and not at all "
        "while nobody searches it (a search then waits for the lines first). A time such "
        "as 1s or 30s refreshes that often, searched or not; -1 never.",
    )

    codec: Literal["best_compression", "default"] = Field(
        "best_compression",
        description="How backing indices compress what they store of each line: "
        "best_compression (the default: zstd on Elasticsearch 8.14 and later, deflate "
        "before) stores a line in about 0.6x the disk of default (LZ4), at no "
        "measurable indexing CPU, but reading stored lines back costs the node more (a "
        "page of 500: about 4x); default where reads matter more than disk.",
    )

    @field_validator("refresh_interval", mode="before")
    @classmethod
    def _refresh_interval(cls, value: object) -> object:
        text = value.strip() if isinstance(value, str) else value
        if text in (None, "", "default"):
            return None
        if isinstance(text, str) and TIME_VALUE.fullmatch(text):
            return text
        raise ValueError(
            f"{value!r} is not a refresh interval: a number with a unit (500ms, 1s, 30s, 1m), "
            "-1 for none, or leave it unset (or 'default') for Elasticsearch's default"
        )


class Routing(_Section):
    """Where records go when no hint says otherwise."""

    dataset: str = Field("docker", pattern=NAME_PART_PATTERN, description="Default dataset.")
    namespace: str = Field("default", pattern=NAME_PART_PATTERN, description="Default namespace.")


class NotJson(ValueError):
    """A variable of a list or section setting that holds no JSON; names the variable."""


class _Decoding(EnvSettingsSource):
    """Reads list and section variables as JSON, a list of strings also as `a,b` (like
    LOGPIPE_TOKENS); any other value that is no JSON is a NotJson naming its variable."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError as exc:
            text = str(value).strip()
            if field is not None and _lists_strings(field.annotation) and text[:1] != "[":
                return split_commas(text)
            raise NotJson(self._not_json(field_name, field, text)) from exc

    def _not_json(self, field_name: str, field: FieldInfo | None, value: str) -> str:
        end = field_name.upper()
        names = [
            name.upper()
            for name, held in self.env_vars.items()
            if held is not None and held.strip() == value and name.upper().endswith(end)
        ]
        variable = names[0] if names else envnames.PREFIX + end
        annotation = field.annotation if field is not None else None
        if _lists_strings(annotation):
            shape = 'a list: a,b or JSON ["a","b"]'
        elif get_origin(annotation) is list:
            shape = "a JSON list of objects, e.g. [{...}]"
        else:
            shape = f"a JSON object, or set its parts as {variable}__<KEY>"
        where = f" in {self.env_file}" if isinstance(self, DotEnvSettingsSource) else ""
        return f"{variable}{where}: {value!r} is not JSON: this setting takes {shape}"


class _DecodingDotEnv(DotEnvSettingsSource, _Decoding):
    """The .env file, read as the environment is."""


def _lists_strings(annotation: object) -> bool:
    """Whether `annotation` is list[str], possibly optional."""
    options = get_args(annotation) if get_origin(annotation) is not list else (annotation,)
    return any(get_origin(a) is list and get_args(a) == (str,) for a in options or ())


class CollectorConfig(BaseSettings):
    """Everything the collector process needs, resolved and validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="LOGPIPE_",
        env_file=".env",
        env_file_encoding="utf-8",
        # .env may be shared with compose and the shipper: its other LOGPIPE_* names are
        # checked by envnames, not refused as unknown fields.
        dotenv_filtering="only_existing",
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,  # a timeout or an age of inf or nan is never what was meant
        env_nested_delimiter="__",
    )

    es_url: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:9200"],
        description="Elasticsearch URL(s), comma-separated.",
    )
    es_api_key: str | None = Field(None, description="Elasticsearch API key (env or file only).")
    es_username: str | None = Field(None, description="Elasticsearch user for basic auth.")
    es_password: str | None = Field(None, description="Elasticsearch password (env or file only).")
    es_ca_file: Path | None = Field(None, description="CA bundle to verify Elasticsearch's TLS.")
    listen: str = Field("0.0.0.0:8080", description="host:port the HTTP API listens on.")
    tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Accepted bearer tokens, comma-separated."
    )
    tokens_file: Path | None = Field(None, description="File with one accepted token per line.")
    auth: Literal["token", "none"] = Field(
        "token", description="'none' accepts unauthenticated batches (warns loudly)."
    )
    read_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens that may use the read API (/v1/search, /v1/tail), "
        "comma-separated; without any, the read API answers 404. Separate from `tokens`: "
        "an ingest token cannot read, a read token cannot send logs.",
    )
    read_tokens_file: Path | None = Field(
        None, description="File with one read token per line (added to read_tokens)."
    )
    read_max_query_chars: int = Field(
        1024, ge=16, le=8192, description="Longest free-text query `q` of the read API (400 above)."
    )
    read_timeout: float = Field(
        30, gt=0, le=300, description="Seconds one Elasticsearch read of the read API may take."
    )
    read_tail_max: int = Field(
        50,
        ge=1,
        le=10000,
        description="Tails (/v1/tail) open at once on this collector; more are answered 429.",
    )
    read_tail_poll_interval: float = Field(
        0.5,
        ge=0.1,
        le=60,
        description="Seconds between a tail's reads of Elasticsearch (tails with the same "
        "filters share one reader; the lines that turned up late are counted at most once "
        "a second).",
    )
    read_tail_settle: float = Field(
        1.5,
        ge=0,
        le=60,
        description="Seconds a line waits after its arrival at a collector (event.ingested) "
        "before tails send it, so lines arriving together are sent in order; lines that "
        "take longer to become searchable come after the others (read_tail_late_window). "
        "Keep it above the index refresh interval plus the time a _bulk request takes.",
    )
    read_tail_late_window: float = Field(
        30,
        ge=0,
        le=600,
        description="Seconds after its arrival within which a line that became searchable "
        "late is still sent to the tails open then (memory: the ids of this many seconds "
        "of lines, per distinct tail filter).",
    )
    read_tail_buffer: int = Field(
        1000,
        ge=10,
        le=1_000_000,
        description="Lines held for one slow tail reader; past it the reader gets a `missed` "
        "event with the count, and ingest is never slowed.",
    )
    read_tail_heartbeat: float = Field(
        15, gt=0, le=15, description="Seconds between keepalive comments on an idle tail."
    )
    tls_cert: Path | None = Field(None, description="Serve HTTPS with this certificate.")
    tls_key: Path | None = Field(None, description="Private key of tls_cert.")
    tls_client_ca: Path | None = Field(None, description="Require client certs signed by this CA.")
    max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest accepted request body, decompressed."
    )
    body_timeout: float = Field(
        20,
        gt=0,
        description="Seconds a sender has to deliver a whole request body; a sender that "
        "stalls longer is answered 408 and disconnected. Together with es_retry_seconds it "
        "stays below the shipper's request_timeout.",
    )
    body_buffer_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Bytes of request bodies still being received, over all requests at once; "
        "a body that would go past it is answered 503 + Retry-After. At least max_body_bytes.",
    )
    keepalive_timeout: float = Field(
        75,
        gt=0,
        description="Seconds an idle connection (no request yet, or between requests) stays "
        "open; a load balancer in front must close its idle upstream connections sooner.",
    )
    bulk_max_bytes: int = Field(
        8 * 1024 * 1024, ge=64 * 1024, description="Largest _bulk request sent to Elasticsearch."
    )
    bulk_max_docs: int = Field(5000, ge=1, description="Most documents per _bulk request.")
    bulk_concurrency: int = Field(4, ge=1, le=64, description="_bulk requests sent at once.")
    bulk_merge_below: int = Field(
        500,
        ge=0,
        description="A batch of fewer documents waits up to bulk_merge_wait for others to "
        "share its _bulk request (each request costs Elasticsearch a few CPU-ms of its own); "
        "0 sends every batch at once, alone.",
    )
    bulk_merge_wait: float = Field(
        0.005,
        ge=0,
        le=1,
        description="Seconds a small batch waits for others; a waiting batch holds one of the "
        "max_in_flight places, so longer waits merge more but refuse (503) sooner.",
    )
    es_retry_seconds: float = Field(
        30,
        gt=0,
        description="How long a batch is retried against Elasticsearch (429, 5xx, connection "
        "errors) before the shipper is answered 503/429 + Retry-After; keep it below the "
        "shipper's request_timeout.",
    )
    es_request_timeout: float = Field(
        30,
        gt=0,
        description="Seconds to wait for one _bulk answer before retrying it; a node that "
        "has not answered after 5 s and lets a probe (HEAD /) time out (5 s) is "
        "taken for hung sooner, and the batch goes to another node.",
    )
    es_compression: Literal["none", "gzip"] = Field(
        "none",
        description="How _bulk requests travel to Elasticsearch: none (the default), or gzip "
        "(level 1): about 10x fewer bytes on the network for about 0.6 CPU-µs more per "
        "document in the collector and about 5% more of Elasticsearch's CPU to inflate them; "
        "for collectors that reach the cluster over a network that is paid or slow.",
    )
    max_in_flight: int = Field(
        8, ge=1, description="Batches processed at once; more are answered 503 + Retry-After."
    )
    keep_original: bool = Field(
        False, description="Keep the raw line in event.original when parsing changed it."
    )
    max_line_bytes: int = Field(
        MAX_LINE_BYTES,
        ge=1024,
        description="A log line whose message is longer (bytes of UTF-8) is indexed cut "
        "here, tagged truncated, as the shipper cuts its own lines at its "
        "LOGPIPE_MAX_LINE_BYTES: for other senders, which may send any length. At most "
        "4 MiB (4194304, the default: the most a shipper keeps of a line, so its lines are "
        "not cut again), so that a default Elasticsearch node can always index the line.",
    )
    environment: str | None = Field(None, description="service.environment on every document.")
    document_labels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="The container labels documents carry in container.labels: glob "
        "patterns of label keys, comma-separated; !pattern leaves the keys it matches out; "
        "empty: none. Compose's bookkeeping labels stay out unless a pattern is their key.",
    )
    indexed_attributes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="The parsed keys attributes indexes: glob patterns of keys, "
        "comma-separated; !pattern leaves the keys it matches out; empty: none. The others "
        "are kept, not indexed, in attributes_unindexed.",
    )
    index: IndexSettings = Field(default_factory=IndexSettings)
    routing: Routing = Field(default_factory=Routing)
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig,
        description="How long logs are kept (default 14d); see docs/retention.md.",
    )
    rules: RuleList = Field(
        default_factory=list,
        description="Parsing rules: patterns, typed fields, times, drop; see docs/rules.md.",
    )
    redact: RedactConfig = Field(
        default_factory=RedactConfig,
        description="Redactions applied to every line before it is indexed: builtins "
        "(bearer, api_key, url_password, password_pair, email, card) and custom patterns.",
    )
    timestamp_max_skew: Duration = Field(
        "1d",
        description="A time a rule reads from a line that lies further than this from "
        "Docker's is ignored (the line keeps Docker's time, tagged rule_failure).",
    )
    kibana_url: str | None = Field(
        None, description="Kibana to import the dashboards into during `setup`."
    )
    kibana_username: str | None = Field(None, description="Kibana user for basic auth (setup).")
    kibana_password: str | None = Field(None, description="Kibana password (env or file only).")
    kibana_api_key: str | None = Field(None, description="Kibana API key (env or file only).")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        description="Least level of the JSON log lines on stdout (serve; the other commands "
        "log on stderr).",
    )

    _split_es_url = field_validator("es_url", mode="before")(split_commas)
    _split_tokens = field_validator("tokens", mode="before")(split_commas)
    _split_read_tokens = field_validator("read_tokens", mode="before")(split_commas)
    _split_document_labels = field_validator("document_labels", mode="before")(split_commas)
    _split_indexed_attributes = field_validator("indexed_attributes", mode="before")(split_commas)

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, level: object) -> object:
        """DEBUG or Info as well as debug: an operator writes a level in either case."""
        return level.lower() if isinstance(level, str) else level

    @field_validator("document_labels")
    @classmethod
    def _document_labels(cls, patterns: list[str]) -> list[str]:
        return check_patterns(patterns, "label")

    @field_validator("indexed_attributes")
    @classmethod
    def _indexed_attributes(cls, patterns: list[str]) -> list[str]:
        return check_patterns(patterns, "attribute")

    @field_validator("es_url")
    @classmethod
    def _es_urls(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise ValueError("at least one Elasticsearch URL is needed")
        for url in urls:
            check_url(url, "http://localhost:9200")
        return urls

    @field_validator("body_buffer_bytes")
    @classmethod
    def _body_buffer(cls, size: int, info: ValidationInfo) -> int:
        largest = info.data.get("max_body_bytes")
        if largest is not None and size < largest:
            raise ValueError(
                f"{size} is below max_body_bytes ({largest}): the largest body could never be read"
            )
        return size

    @field_validator("max_line_bytes")
    @classmethod
    def _max_line(cls, size: int) -> int:
        return check_max_line_bytes(size)

    @field_validator("kibana_url")
    @classmethod
    def _kibana_url(cls, url: str | None) -> str | None:
        if url:
            check_url(url, "http://localhost:5601")
        return url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over .env, which wins over the YAML file passed as init kwargs.
        # The sources as built (with their overrides), reading JSON as _Decoding does.
        env_settings.__class__ = _Decoding
        dotenv_settings.__class__ = _DecodingDotEnv
        return (env_settings, dotenv_settings, init_settings, file_secret_settings)

    def accepted_tokens(self) -> frozenset[str]:
        """Tokens from the setting and the tokens file together."""
        return _tokens(self.tokens, self.tokens_file, "LOGPIPE_TOKENS_FILE")

    def read_tokens_accepted(self) -> frozenset[str]:
        """Read tokens from the setting and the read tokens file together."""
        return _tokens(self.read_tokens, self.read_tokens_file, "LOGPIPE_READ_TOKENS_FILE")


def _tokens(listed: list[str], path: Path | None, variable: str) -> frozenset[str]:
    """The tokens listed and those of the file; a file that cannot be read is a ConfigError
    naming `variable`."""
    tokens = set(listed)
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()  # a BOM is no token
        except OSError as exc:
            raise ConfigError(f"{variable}: cannot read {path}: {_os_reason(exc)}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{variable}: {path} is not UTF-8 text (byte {exc.start}): write one token per line"
            ) from exc
        tokens.update(line.strip() for line in lines if line.strip())
    return frozenset(tokens)


def _os_reason(exc: OSError) -> str:
    """What went wrong, in the C library's words (no Python exception text)."""
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


def check_url(url: str, example: str) -> None:
    """Refuse a URL without http(s) scheme, host and port (https defaults to 443)."""
    parts = urlsplit(url)
    shown = masked_url(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{shown}' is not an http:// or https:// URL: write e.g. {example}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(
            f"'{shown}' has a port out of range or not a number: write 1 to 65535, e.g. {example}"
        ) from None
    if port is None and parts.scheme == "http":
        raise ValueError(f"'{shown}' has no port: write e.g. {example}")


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A key given twice in one mapping of the config file."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping: YAML keeps the last one
    silently, so a second `rules:` section would drop the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(
                    None,
                    None,
                    f"key '{key}' is given twice (also on line {seen[key]}): keep one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from exc
    except _DuplicateKey as exc:
        raise ConfigError(f"config file {path}: {_yaml_problem(exc)}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from exc
    if data is None:
        # A file cut short while being written (`>` truncates first) must not read as
        # "no rules": a reload would drop every parsing and retention rule in force.
        raise ConfigError(
            f"config file {path} holds no settings (it is empty or only comments): write "
            "them, or leave --config and LOGPIPE_CONFIG unset to run on the defaults"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The problem and where, on one line (PyYAML's text spans several, quoting the file)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "not YAML"
        return where + " ".join(problem.split())
    return " ".join(str(exc).split())


def names() -> envnames.Names:
    """The environment names of the collector's settings."""
    extra = ["LOGPIPE_CONFIG", "LOGPIPE_NATIVE"]  # the config file; collector/native.py
    return envnames.settings_names("logpipe-collector", CollectorConfig, extra)


def _env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0])
    if len(loc) > 1 and field in envnames.nested_fields(CollectorConfig):
        return envnames.PREFIX + "__".join(str(part).upper() for part in loc)
    return envnames.field_names(CollectorConfig).get(field, [field.upper()])[0]


def _where(
    loc: tuple[int | str, ...],
    path: Path | None,
    dotenv: Path,
    data: Mapping[str, object] | None = None,
    msg: str = "",
) -> str:
    """The variable or file key to change for the setting at `loc`: the variable the
    user set for it or for the section holding it, else the file's key."""
    present = envnames.upper_names(os.environ)
    dotenv_values = envnames.read_dotenv(dotenv)
    in_dotenv = envnames.upper_names(dotenv_values)
    for end in range(len(loc), 0, -1):
        names = [_env_name(loc[:end])]
        if end == 1:  # a section's message that names no key: the one part set, if one,
            below = sorted(n for n in present | in_dotenv if n.startswith(names[0] + "__"))
            # unless the file holds the section too and the message quotes not that
            # part's value (LOGPIPE_RETENTION__INTERVAL set, a bad rule in the file)
            values = {k.upper(): v for k, v in (*dotenv_values.items(), *os.environ.items())}
            in_file = data is not None and loc[0] in data
            if len(below) == 1 and (not in_file or f"'{values.get(below[0], '')}'" in msg):
                names = names + below
        for name in names:
            origin = envnames.source_of([name], present, in_dotenv)
            if origin == "environment":
                return name
            if origin is not None:
                return f"{name} in {dotenv}"
    key = ".".join(str(part) for part in loc)
    return f"'{key}' in {path}" if path is not None else _env_name(loc)


def _unknown_key(loc: tuple[int | str, ...], where: str) -> str:
    """No such key, with the nearest one of the same section (as a variable when the
    mistake is one)."""
    guess = difflib.get_close_matches(str(loc[-1]), _keys_at(loc[:-1]), n=1, cutoff=0.6)
    # A key inside a list (a rule of LOGPIPE_RULES' JSON) has no variable of its own.
    in_list = any(isinstance(part, int) for part in loc)
    if where.startswith(envnames.PREFIX) and in_list:
        key = ".".join(str(part) for part in loc)
        return f"no such key '{key}'" + (f"; did you mean '{guess[0]}'?" if guess else "")
    if not guess:
        return "no such key"
    if where.startswith(envnames.PREFIX):
        return f"no such setting; did you mean {_env_name((*loc[:-1], guess[0]))}?"
    return f"no such key; did you mean '{guess[0]}'?"


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys of the section at `loc` (list indexes skipped); none if it is no section."""
    model: type[BaseModel] | None = CollectorConfig
    for part in loc:
        if model is None:
            return []
        if isinstance(part, str):
            info = model.model_fields.get(part)
            model = _model_in(info.annotation) if info is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The model a field holds, itself or in a list or union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# A section's own validator names the key it found wrong first: "'interval': ...".
_KEY_FIRST = re.compile(r"'([a-z_][a-z0-9_.]*)': ")


def _words(msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    return re.sub(r"a valid dictionary(?: or instance of \w+)?", "a mapping (key: value, ...)", msg)


def _problems(exc: ValidationError) -> list[tuple[tuple[int | str, ...], str, str]]:
    """Each location's problem once: the members of a union that failed are merged
    into one message ("should be a valid string or a valid list")."""
    merged: dict[tuple[int | str, ...], tuple[str, list[str]]] = {}
    for loc, err in readable(exc.errors()):
        msg = _words(message(err))
        first = _KEY_FIRST.match(msg)
        if len(loc) == 1 and first is not None:
            loc, msg = (*loc, *first.group(1).split(".")), msg[first.end() :]
        msgs = merged.setdefault(loc, (err["type"], []))[1]
        if msg not in msgs:
            msgs.append(msg)
    return [
        (loc, kind, " or ".join([msgs[0], *(m.removeprefix("Input should be ") for m in msgs[1:])]))
        for loc, (kind, msgs) in merged.items()
    ]


def describe_validation_error(
    exc: ValidationError,
    path: Path | None,
    dotenv: Path = Path(".env"),
    data: Mapping[str, object] | None = None,
) -> str:
    """One line per problem, each naming the variable or file key to change (and the
    parsing rule it is in, by name: `data` is what the file gave)."""
    lines = []
    for loc, kind, msg in _problems(exc):
        where = _where(loc, path, dotenv, data, msg) if loc else str(path)
        named = _rule_name(loc, data)
        if named is not None and not msg.startswith(f"rule '{named}'"):
            where = (
                where.replace(" in ", f" (rule '{named}') in ", 1)
                if " in " in where
                else (f"{where} (rule '{named}')")
            )
        if kind == "extra_forbidden":
            lines.append(f"{where}: {_unknown_key(loc, where)}")
        else:
            lines.append(f"{where}: {msg}")
    return "\n".join(lines)


def _rule_name(loc: tuple[int | str, ...], data: Mapping[str, object] | None) -> str | None:
    """The name of the parsing rule at `loc` (``rules.3...``), as the file gave it."""
    if data is None or len(loc) < 2 or loc[0] != "rules" or not isinstance(loc[1], int):
        return None
    rules = data.get("rules")
    if not isinstance(rules, list) or loc[1] >= len(rules) or not isinstance(rules[loc[1]], dict):
        return None
    name = rules[loc[1]].get("name")
    return name if isinstance(name, str) else None


def config_path(path: Path | None, dotenv: Path = Path(".env")) -> Path | None:
    """The YAML file to read: the argument, else ``LOGPIPE_CONFIG`` of the environment,
    else that of ``.env`` (read like every other setting), else none."""
    if path is not None:
        return path
    named = os.environ.get("LOGPIPE_CONFIG")
    if not named:
        dotenv_names = {k.upper(): v for k, v in envnames.read_dotenv(dotenv).items()}
        named = dotenv_names.get("LOGPIPE_CONFIG")
    return Path(named) if named else None


def file_settings(path: Path | None) -> dict[str, object]:
    """The settings the YAML file holds (none without a file)."""
    return _read_yaml(path) if path is not None else {}


def check_environment(other: envnames.Names | Callable[[], envnames.Names]) -> None:
    """Refuse ``LOGPIPE_*`` names in the environment or ``.env`` that no setting has.

    `other` is the shipper's names (a host may run both programs from one environment),
    or a function called only for a name that is not the collector's; the caller passes
    them, so this package never imports the shipper.
    """
    problems = envnames.check_names(names(), other, dotenv=Path(".env"))
    if problems:
        raise ConfigError("\n".join(problems))


def load_config(path: Path | None = None, **overrides: Any) -> CollectorConfig:
    """Build the config from the YAML file (arg or ``LOGPIPE_CONFIG``) and the environment."""
    path = config_path(path)
    data: dict[str, Any] = {**file_settings(path), **overrides}
    try:
        return CollectorConfig(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path, data=data)) from exc
    except SettingsError as exc:
        if isinstance(exc.__cause__, NotJson):
            raise ConfigError(str(exc.__cause__)) from exc
        raise ConfigError(str(exc)) from exc
