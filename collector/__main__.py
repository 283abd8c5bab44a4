"""`logpipe-collector`: serve the ingest API, set up Elasticsearch, manage retention."""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
from pathlib import Path

from aiohttp import web
from elasticsearch import AsyncElasticsearch, OrjsonSerializer

from collector import jsonlog
from collector.app import make_app
from collector.config import CollectorConfig, load_config
from collector.errors import CollectorError, ConfigError
from collector.kibana import KibanaSettings, import_saved_objects
from collector.retention import RetentionState, lifecycle_loop
from collector.retention_cli import add_commands as add_retention_commands
from collector.runtime import tune_gc, tune_malloc
from collector.sink import Sink, SinkSettings
from collector.templates import INDEX_PATTERNS, index_template

log = logging.getLogger("logpipe.collector")

DESCRIPTION = """\
logpipe collector: receives log batches from logpipe shippers, parses and enriches
them, and indexes them into Elasticsearch data streams (logs-<dataset>-<namespace>).

Settings come from a YAML file (--config or LOGPIPE_CONFIG) and LOGPIPE_* environment
variables (which win), e.g. LOGPIPE_ES_URL, LOGPIPE_LISTEN, LOGPIPE_TOKENS, LOGPIPE_AUTH.
See README.md for every setting."""


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
        retry_on_timeout=False,
        max_retries=0,
        # orjson reads the `_bulk` answers (a status per document) faster than stdlib json.
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


def _server_ssl(config: CollectorConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None:
        return None
    if config.tls_key is None:
        raise ConfigError("tls_cert is set but tls_key is not: both are needed to serve HTTPS")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_client_ca is not None:
        ctx.load_verify_locations(config.tls_client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _listen(config: CollectorConfig) -> tuple[str, int]:
    host, sep, port = config.listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"listen: '{config.listen}' is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def check_auth(config: CollectorConfig) -> None:
    """Refuse to serve without tokens unless auth is explicitly off."""
    if config.auth == "none":
        log.warning(
            "AUTHENTICATION IS OFF (LOGPIPE_AUTH=none): anyone who can reach this port can "
            "write logs; set LOGPIPE_TOKENS and drop LOGPIPE_AUTH=none in production"
        )
        return
    if not config.accepted_tokens():
        raise ConfigError(
            "no accepted tokens: set LOGPIPE_TOKENS (comma-separated) or tokens_file, "
            "or LOGPIPE_AUTH=none to accept unauthenticated batches"
        )


async def serve(config: CollectorConfig, config_path: Path | None) -> None:
    """Run the HTTP API and the retention loop until SIGTERM/SIGINT, then drain."""
    check_auth(config)
    host, port = _listen(config)
    retention = RetentionState(config.retention, config_path)
    lifecycle_es = elasticsearch_client(config)
    lifecycle = asyncio.create_task(lifecycle_loop(retention, lifecycle_es), name="retention")
    async with Sink(elasticsearch_client(config), sink_settings(config)) as sink:
        app = make_app(config, sink, retention)
        runner = web.AppRunner(app, handle_signals=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=_server_ssl(config))
        await site.start()
        log.info("collector listening", extra={"listen": f"{host}:{port}"})
        tune_gc()
        tune_malloc()
        try:
            await asyncio.Event().wait()
        finally:
            log.info("shutting down: finishing batches in flight")
            await runner.cleanup()
            lifecycle.cancel()
            await asyncio.gather(lifecycle, return_exceptions=True)
            await lifecycle_es.close()


async def wait_for_elasticsearch(sink: Sink, wait_seconds: float) -> None:
    """Wait until Elasticsearch answers, saying so every few seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while not await sink.ping():
        if loop.time() > deadline:
            raise CollectorError(f"Elasticsearch did not answer within {wait_seconds:.0f}s")
        print("waiting for Elasticsearch...", file=sys.stderr)
        await asyncio.sleep(2)


async def setup(config: CollectorConfig, args: argparse.Namespace) -> None:
    """Install (or update) the index template; idempotent."""
    async with Sink(elasticsearch_client(config)) as sink:
        await wait_for_elasticsearch(sink, args.wait)
        body = index_template(
            shards=config.index.shards,
            replicas=config.index.replicas,
            refresh_interval=config.index.refresh_interval,
        )
        await sink.install_template(body)
        print("index template 'logpipe' installed for " + " ".join(INDEX_PATTERNS), file=sys.stderr)
    url = args.kibana_url or config.kibana_url
    if url:
        kibana = KibanaSettings(
            url=url,
            username=config.kibana_username,
            password=config.kibana_password,
            api_key=config.kibana_api_key,
            wait_seconds=args.kibana_wait,
        )
        result = await import_saved_objects(
            kibana, args.dashboards, lambda m: print(m, file=sys.stderr)
        )
        print(
            f"{result.imported} saved objects imported into Kibana {result.kibana_version}",
            file=sys.stderr,
        )


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="logpipe-collector",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="YAML config file (default: $LOGPIPE_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("serve", help="run the ingest API (POST /v1/logs, /healthz, /readyz, /metrics)")
    s = sub.add_parser(
        "setup", help="install the index template and, with a Kibana URL, the dashboards"
    )
    s.add_argument(
        "--wait", type=float, default=120, help="seconds to wait for Elasticsearch (default 120)"
    )
    s.add_argument(
        "--kibana-url", help="import the dashboards into this Kibana (default: $LOGPIPE_KIBANA_URL)"
    )
    s.add_argument(
        "--kibana-wait", type=float, default=300, help="seconds to wait for Kibana (default 300)"
    )
    s.add_argument(
        "--dashboards",
        type=Path,
        help="folder of *.ndjson saved objects (default: the shipped ones)",
    )
    add_retention_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `logpipe-collector` and `python -m collector`."""
    args = parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"logpipe-collector: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    jsonlog.configure(config.log_level)
    try:
        if args.command == "serve":
            asyncio.run(serve(config, args.config))
        elif args.command == "setup":
            asyncio.run(setup(config, args))
        elif args.command == "retention":
            return int(args.handler(args))
    except ConfigError as exc:
        print(f"logpipe-collector: {exc}", file=sys.stderr)
        return 2
    except CollectorError as exc:
        print(f"logpipe-collector: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
