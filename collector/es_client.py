"""The Elasticsearch client every collector command talks through, built from the config."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from elasticsearch import AsyncElasticsearch, OrjsonSerializer

from collector.config import CollectorConfig
from collector.errors import ConfigError
from collector.sink import SinkSettings


def elasticsearch_client(config: CollectorConfig) -> AsyncElasticsearch:
    """The official async client, configured from the collector's settings; settings it
    cannot use are a ConfigError."""
    auth: dict[str, object] = {}
    if config.es_api_key:
        auth["api_key"] = config.es_api_key
    elif config.es_username:
        auth["basic_auth"] = (config.es_username, config.es_password or "")
    if config.es_password and not config.es_username:
        raise ConfigError(
            "LOGPIPE_ES_PASSWORD is set but LOGPIPE_ES_USERNAME is not: set both for basic "
            "auth, or LOGPIPE_ES_API_KEY instead"
        )
    if config.es_ca_file:
        check_ca_file(config.es_ca_file, config.es_url)
        auth["ca_certs"] = str(config.es_ca_file)
    return AsyncElasticsearch(
        config.es_url,
        request_timeout=60,
        # A node that cannot be connected to is skipped for the next one listed (each
        # gets one try); a request that timed out or was answered is not sent again: it
        # may have been done. The sink's `_bulk` has its own retries (sink.py).
        max_retries=len(config.es_url) - 1,
        retry_on_timeout=False,
        retry_on_status=(),
        # orjson reads the answers of setup and retention faster than stdlib json (the
        # sink reads its `_bulk` answers itself).
        serializer=OrjsonSerializer(),
        # Room beside the `_bulk` requests (at most bulk_concurrency to a node) for the
        # probe of a node slow to answer one, setup, retention and the read API: a probe
        # that waited for a connection would take a busy node for a hung one.
        connections_per_node=2 * config.bulk_concurrency + 10,
        **auth,  # type: ignore[arg-type]
    )


def check_ca_file(path: Path, urls: list[str]) -> None:
    """Refuse a CA file the client could not use, naming it (the client's own errors
    are a traceback): one it cannot read or that holds no PEM certificate, or one
    given for http:// URLs."""
    plain = [url for url in urls if urlsplit(url).scheme != "https"]
    if plain:
        raise ConfigError(
            f"LOGPIPE_ES_CA_FILE is set but LOGPIPE_ES_URL has {', '.join(plain)}: a CA "
            "verifies https:// only; write https:// URLs or unset LOGPIPE_ES_CA_FILE"
        )
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise ConfigError(
            f"LOGPIPE_ES_CA_FILE: {path} holds no PEM certificate ({exc.reason or exc})"
        ) from exc
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ConfigError(f"LOGPIPE_ES_CA_FILE: cannot read {path}: {reason}") from exc


def sink_settings(config: CollectorConfig) -> SinkSettings:
    """Bulk bounds from the config."""
    return SinkSettings(
        max_bytes=config.bulk_max_bytes,
        max_docs=config.bulk_max_docs,
        concurrency=config.bulk_concurrency,
        merge_below=config.bulk_merge_below,
        merge_wait=config.bulk_merge_wait,
        retry_deadline=config.es_retry_seconds,
        request_timeout=config.es_request_timeout,
        compress=config.es_compression == "gzip",
    )
