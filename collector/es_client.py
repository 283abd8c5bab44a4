"""The Elasticsearch client every collector command talks through, built from the config."""

from __future__ import annotations

from elasticsearch import AsyncElasticsearch, OrjsonSerializer

from collector.config import CollectorConfig
from collector.sink import SinkSettings


def elasticsearch_client(config: CollectorConfig) -> AsyncElasticsearch:
    """The official async client, configured from the collector's settings."""
    auth: dict[str, object] = {}
    if config.es_api_key:
        auth["api_key"] = config.es_api_key
    elif config.es_username:
        auth["basic_auth"] = (config.es_username, config.es_password or "")
    if config.es_ca_file:
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
        **auth,  # type: ignore[arg-type]
    )


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
    )
