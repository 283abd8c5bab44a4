"""`logpipe-collector`: serve the ingest API, set up Elasticsearch, manage retention."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from collector import envnames, jsonlog, native, settings_table
from collector.app import make_app
from collector.attributes import UNINDEXED
from collector.badhttp import Runner
from collector.config import (
    CollectorConfig,
    check_environment,
    check_url,
    config_path,
    file_settings,
    load_config,
)
from collector.custom import (
    custom_additions,
    missing_pipeline,
    pipelines,
    refusal,
    unflattenable,
)
from collector.errors import CollectorError, ConfigError, KibanaError, SetupError
from collector.es_client import elasticsearch_client, sink_settings
from collector.reload import ConfigFile, RestartNeeded, watch
from collector.retention.cli import add_commands as add_retention_commands
from collector.retention.lifecycle import RetentionState, lifecycle_loop
from collector.rules.cli import add_commands as add_rules_commands
from collector.rules.engine import ParsingRules, engine_of, warn_of_rules
from collector.runtime import (
    EXIT_CONFIG,
    EXIT_RUNTIME,
    command_line,
    installed_version,
    listen_problem,
    os_reason,
    problems_of,
    tune_gc,
    tune_malloc,
)
from collector.sink import Sink
from collector.templates import (
    INDEX_PATTERNS,
    TEMPLATE_NAME,
    TEMPLATE_VERSION,
    UNINDEXED_MAPPING,
    index_template,
)

log = logging.getLogger("logpipe.collector")

DESCRIPTION = """\
logpipe collector: receives log batches from logpipe shippers, parses and enriches
them, and indexes them into Elasticsearch data streams
(logs-<dataset>.keep_<retention rule>-<namespace>).

Settings come from a YAML file (--config or LOGPIPE_CONFIG) and LOGPIPE_* environment
variables or a .env file (which win), e.g. LOGPIPE_ES_URL, LOGPIPE_LISTEN, LOGPIPE_TOKENS,
LOGPIPE_AUTH. See README.md.

examples:
  logpipe-collector setup --config collector.yaml   install the index template
  LOGPIPE_TOKENS=secret logpipe-collector serve      take batches from shippers
  logpipe-collector retention plan --ahead 7d        what a week from now holds"""

EPILOG = """\
`logpipe-collector config` prints every setting: variable, value in effect, source, meaning;
then what `serve` would refuse in them (exit 2), to check a configuration before deploying it.

exit status:
  0 done (serve: stopped by SIGTERM/SIGINT)
  1 a runtime failure (Elasticsearch did not answer, has no data stream --streams names,
    or refused a rollover)
  2 bad configuration or command line (the message names the setting to change)"""

SETUP = """\
Install (or update) the index template of logpipe's data streams, with the typed fields of
the config's parsing rules mapped, and with a Kibana URL import the dashboards. It waits
for Elasticsearch (--wait) and can be run again at any time: after an upgrade, or before
rules that add typed fields are deployed. Data streams take a new template at their next
rollover. A template a newer logpipe installed is left as it is (exit 1). Settings and
mappings of your own (an ingest pipeline, allocation, field limits) go in the component
template logpipe@custom, which the template uses where it exists and setup never changes;
setup says what it adds, and exits 1 before changing anything where it holds what cannot
work (objects Elasticsearch cannot flatten, an ingest pipeline that does not exist).

examples:
  logpipe-collector setup
  logpipe-collector setup --config collector.yaml --kibana-url http://kibana:5601"""


def server_ssl(config: CollectorConfig) -> ssl.SSLContext | None:
    """The HTTPS context, or None for plain HTTP; unreadable files are a ConfigError."""
    if config.tls_cert is None:
        # A key or client CA alone would otherwise serve plain HTTP without a word.
        half = [
            name
            for name, value in (
                ("LOGPIPE_TLS_KEY", config.tls_key),
                ("LOGPIPE_TLS_CLIENT_CA", config.tls_client_ca),
            )
            if value is not None
        ]
        if half:
            raise ConfigError(
                f"{' and '.join(half)} set but LOGPIPE_TLS_CERT is not: set LOGPIPE_TLS_CERT "
                "and LOGPIPE_TLS_KEY to serve HTTPS, or unset them all for plain HTTP"
            )
        return None
    if config.tls_key is None:
        raise ConfigError(
            "LOGPIPE_TLS_CERT is set but LOGPIPE_TLS_KEY is not: both are needed to serve HTTPS"
        )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"LOGPIPE_TLS_CERT/LOGPIPE_TLS_KEY: cannot load {config.tls_cert} with "
            f"{config.tls_key}: {os_reason(exc)}"
        ) from exc
    if config.tls_client_ca is not None:
        try:
            ctx.load_verify_locations(config.tls_client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"LOGPIPE_TLS_CLIENT_CA: cannot load {config.tls_client_ca}: {os_reason(exc)}"
            ) from exc
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _listen(config: CollectorConfig) -> tuple[str, int]:
    host, sep, port = config.listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"LOGPIPE_LISTEN: '{config.listen}' is not host:port")
    if int(port) > 65535:
        raise ConfigError(f"LOGPIPE_LISTEN: port {port} is out of range: write 0 to 65535")
    return host.strip("[]") or "0.0.0.0", int(port)


def check_auth(config: CollectorConfig, warn: bool = True) -> None:
    """Refuse to serve without tokens unless auth is explicitly off; a token file that
    cannot be read is a ConfigError before anything starts. `warn`: say that auth is off."""
    read = config.read_tokens_accepted()
    if config.auth == "none":
        if not warn:
            return
        log.warning(
            "AUTHENTICATION IS OFF (LOGPIPE_AUTH=none): anyone who can reach this port can "
            "write logs; set LOGPIPE_TOKENS and drop LOGPIPE_AUTH=none in production"
        )
        return
    ingest = config.accepted_tokens()
    if not ingest:
        raise ConfigError(
            "no accepted tokens: set LOGPIPE_TOKENS (comma-separated) or LOGPIPE_TOKENS_FILE "
            "(one token a line), or LOGPIPE_AUTH=none to accept unauthenticated batches"
        )
    if read & ingest:
        # Accepted, such a token would both ship and read: a shipper's (on every Docker
        # host) would read everyone's logs, which the two kinds exist to prevent.
        raise ConfigError(
            f"LOGPIPE_READ_TOKENS: {len(read & ingest)} read token(s) also in LOGPIPE_TOKENS "
            "(or their files): a token that ships logs may not read them; give readers "
            "tokens of their own"
        )


def serve_problems(config: CollectorConfig) -> list[str]:
    """Every problem of the settings that `serve` refuses before it starts (it stops at
    the first), for `config` to list them all. What only starting can tell (the port
    being free) is left out."""
    checks: list[Callable[[CollectorConfig], object]] = [
        lambda c: check_auth(c, warn=False),
        _listen,
        server_ssl,
    ]
    return problems_of(config, checks, ConfigError)


async def serve(config: CollectorConfig, config_path: Path | None) -> None:
    """Run the HTTP API and the retention loop until SIGTERM/SIGINT, then drain."""
    check_auth(config)
    host, port = _listen(config)
    tls = server_ssl(config)
    file = ConfigFile(config_path)
    retention = RetentionState(config.retention, file=file)
    parsing = ParsingRules(engine_of(config))
    warn_of_rules(config.rules)
    file.subscribe(parsing.take)
    file.subscribe(RestartNeeded(config, file.path))
    stop = _stop_signals()
    async with contextlib.AsyncExitStack() as stack:
        sink = await stack.enter_async_context(
            Sink(elasticsearch_client(config), sink_settings(config))
        )
        runner = Runner(
            make_app(config, sink, retention, parsing),
            access_log=None,
            keepalive_timeout=config.keepalive_timeout,
            auto_decompress=False,  # body.py inflates request bodies itself
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await bind(runner, host, port, tls)
        log.info(
            "collector listening",
            extra={
                "listen": f"{host}:{port}",
                "hot_path": native.describe(bool(parsing.engine)),
            },
        )
        if not await sink.ping():
            log.warning(
                sink.impostor
                or "Elasticsearch does not answer yet: batches are answered 503 until it does "
                "(check LOGPIPE_ES_URL if this lasts)",
                extra={"es_url": [settings_table.masked_url(url) for url in config.es_url]},
            )
        lifecycle_es = elasticsearch_client(config)
        stack.push_async_callback(lifecycle_es.close)
        lifecycle = asyncio.create_task(lifecycle_loop(retention, lifecycle_es), name="retention")
        stack.push_async_callback(_cancel, lifecycle)
        watcher = asyncio.create_task(watch(file), name="config-watch")
        stack.push_async_callback(_cancel, watcher)
        stack.callback(log.info, "shutting down: finishing batches in flight")  # runs first
        tune_gc()
        tune_malloc()
        await stop.wait()


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop_signals() -> asyncio.Event:
    """An event the first SIGTERM or SIGINT sets, so that serve unwinds in order: the
    runner's cleanup lets the requests in progress finish (and be answered) before the
    sink closes. aiohttp's own handlers raised out of the event loop, whose tasks were
    then cancelled, batches in flight too. A second signal stops the process at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def first() -> None:
        stop.set()
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, first)
    return stop


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def bind(runner: web.AppRunner, host: str, port: int, tls: ssl.SSLContext | None) -> None:
    """Listen on host:port; a port taken or not permitted is a ConfigError naming it."""
    try:
        await web.TCPSite(runner, host, port, ssl_context=tls).start()
    except OSError as exc:
        raise ConfigError(
            f"LOGPIPE_LISTEN: cannot listen on {host}:{port}: {listen_problem(exc)}"
        ) from exc


async def wait_for_elasticsearch(sink: Sink, wait_seconds: float, urls: list[str]) -> None:
    """Wait until Elasticsearch answers, saying so every few seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while not await sink.ping():
        if loop.time() > deadline and sink.impostor is not None:
            # Waited for in case it is a proxy whose Elasticsearch is not up yet.
            raise ConfigError(f"LOGPIPE_ES_URL: {sink.impostor}")
        if loop.time() > deadline:
            raise CollectorError(
                f"Elasticsearch at {','.join(map(settings_table.masked_url, urls))} did not "
                f"answer within {wait_seconds:.0f}s: "
                "start it, or set LOGPIPE_ES_URL to where it runs"
            )
        print(f"waiting for Elasticsearch... ({sink.impostor or 'no answer'})", file=sys.stderr)
        await asyncio.sleep(2)


async def setup(config: CollectorConfig, args: argparse.Namespace) -> None:
    """Install (or update) the index template; idempotent."""
    url = check_setup_args(config, args)
    async with Sink(elasticsearch_client(config)) as sink:
        await wait_for_elasticsearch(sink, args.wait, config.es_url)
        await refuse_downgrade(sink)
        constant = await sink.has_constant_keyword()
        body = index_template(
            shards=config.index.shards,
            replicas=config.index.replicas,
            refresh_interval=config.index.refresh_interval,
            fields=engine_of(config).fields,
            constant_keyword=constant,
            codec=config.index.codec,
        )
        said = await check_custom(sink, body)
        await sink.install_template(body)
        print("index template 'logpipe' installed for " + " ".join(INDEX_PATTERNS), file=sys.stderr)
        for line in said:
            print(line, file=sys.stderr)
        # Streams made before keep their backing index's mappings until they roll over;
        # without this one, unindexed keys written there would each become a field.
        why = await sink.add_mappings({UNINDEXED: UNINDEXED_MAPPING})
        if why is not None:
            print(
                f"warning: could not map {UNINDEXED} in the existing streams ({why}); it is "
                "mapped in each from its next backing index on. Until then leave "
                "LOGPIPE_INDEXED_ATTRIBUTES at its default, `*`",
                file=sys.stderr,
            )
        kind = "constant_keyword" if constant else "keyword (doc values only: no constant_keyword)"
        print(f"data_stream.* and event.dataset mapped as {kind}", file=sys.stderr)
        print(
            f"backing indices compress stored lines with the {config.index.codec} codec "
            "(from each stream's next backing index on)",
            file=sys.stderr,
        )
        refresh = config.index.refresh_interval
        print(
            f"backing indices refreshed every {refresh}, searched or not"
            if refresh
            else "backing indices refreshed as Elasticsearch's default: every second while "
            "searched, not while nobody searches",
            file=sys.stderr,
        )
    if url:
        # Imported here, by setup alone: at the top, every start of serve paid ~6 CPU-ms.
        from collector.kibana import KibanaSettings, import_saved_objects

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


async def check_custom(sink: Sink, body: dict[str, Any]) -> list[str]:
    """What setup says of the operator's `logpipe@custom` next to our template `body`;
    SetupError, before anything is changed, where it holds what cannot work there
    (custom.py): each new backing index would refuse it, or every line."""
    try:
        component = await sink.custom_template()
    except SetupError as exc:
        return [f"warning: {exc}; what it adds is not shown"]
    problems = unflattenable(component, body)
    unchecked = []
    for setting, pipeline in pipelines(component).items():
        try:
            if not await sink.has_pipeline(pipeline):
                problems.append(missing_pipeline(setting, pipeline))
        except SetupError as exc:
            unchecked.append(
                f"warning: {exc}; whether {setting} names one that exists is unchecked"
            )
    if problems:
        raise SetupError(refusal(problems))
    return [*custom_additions(component, body), *unchecked]


async def refuse_downgrade(sink: Sink) -> None:
    """A template from a newer logpipe stays: replacing it would make that logpipe's
    collectors refuse every batch (they check the version) until its setup ran again."""
    installed = await sink.installed_template_version()
    if installed is not None and installed > TEMPLATE_VERSION:
        raise CollectorError(
            f"index template '{TEMPLATE_NAME}' is version {installed}, installed by a newer "
            f"logpipe; this one ({installed_version()}) installs version {TEMPLATE_VERSION} "
            "and would undo it: run setup with the newer logpipe, or upgrade this one"
        )


def check_setup_args(config: CollectorConfig, args: argparse.Namespace) -> str | None:
    """The Kibana URL to import into, if any; a bad --kibana-url or --dashboards is a
    ConfigError before Elasticsearch is touched (not after the template and a wait)."""
    if args.kibana_url:
        try:
            check_url(args.kibana_url, "http://localhost:5601")
        except ValueError as exc:
            raise ConfigError(f"--kibana-url: {exc}") from exc
    if args.dashboards is not None:
        if not (args.kibana_url or config.kibana_url):
            raise ConfigError(
                f"--dashboards {args.dashboards}: no Kibana to import them into: "
                "give --kibana-url or set LOGPIPE_KIBANA_URL"
            )
        from collector.kibana import read_saved_objects  # setup's alone, as above

        try:
            read_saved_objects(args.dashboards)
        except (KibanaError, OSError) as exc:
            reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
            raise ConfigError(f"--dashboards {args.dashboards}: {reason}") from exc
    return args.kibana_url or config.kibana_url


def seconds(text: str) -> float:
    """A number of seconds for argparse: zero or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = command_line("logpipe-collector", DESCRIPTION, EPILOG)
    p.add_argument("--config", type=Path, help="YAML config file (default: $LOGPIPE_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "serve",
        help="run the ingest API (POST /v1/logs, /healthz, /readyz, /metrics) and, when "
        "it has read tokens (LOGPIPE_READ_TOKENS), the read API (/v1/search, /v1/tail)",
        description="Run the ingest API until SIGTERM/SIGINT, then finish the batches in flight.",
    )
    s = sub.add_parser(
        "setup",
        help="install the index template and, with a Kibana URL, the dashboards",
        description=SETUP,
    )
    s.add_argument(
        "--wait", type=seconds, default=120, help="seconds to wait for Elasticsearch (default 120)"
    )
    s.add_argument(
        "--kibana-url", help="import the dashboards into this Kibana (default: $LOGPIPE_KIBANA_URL)"
    )
    s.add_argument(
        "--kibana-wait", type=seconds, default=300, help="seconds to wait for Kibana (default 300)"
    )
    s.add_argument(
        "--dashboards",
        type=Path,
        help="folder of *.ndjson saved objects (default: the shipped ones)",
    )
    settings_table.add_command(sub, "collector", "default, the YAML file, .env or the environment")
    add_retention_commands(sub)
    add_rules_commands(sub)
    _add_common(p, sub)
    return p


def _add_common(
    top: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]
) -> None:
    """Every command, nested ones too, takes `--config` and `--version` after its name and
    ends its --help with the epilog (README shows `setup --config F`)."""
    # The template version too: collectors of one release share it, and it is what decides
    # whether a collector takes logs with the template installed (docs/deploy.md, upgrading).
    text = f"{top.prog} {installed_version()} (index template version {TEMPLATE_VERSION})"
    for action in top._actions:
        if isinstance(action, argparse._VersionAction):
            action.version = text
    for command in sub.choices.values():
        if "--config" not in command._option_string_actions:
            # SUPPRESS: given before the command, it is not reset after it.
            command.add_argument(
                "--config",
                type=Path,
                default=argparse.SUPPRESS,
                help="YAML config file (default: $LOGPIPE_CONFIG)",
            )
        command.add_argument("--version", action="version", version=text)
        command.epilog = EPILOG
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_common(top, action)


def print_config(args: argparse.Namespace) -> int:
    """`config`: the effective settings, each with its source and meaning; then, exit 2,
    whatever of them `serve` would refuse."""
    path = config_path(args.config)
    config = load_config(args.config)
    table = settings_table.rows(config, file_settings(path), path)
    table.append(settings_table.native_row(native.MODULE_NAME, native.describe()))
    settings_table.write(table, args.json)
    problems = serve_problems(config)
    if not problems:
        return 0
    sys.stdout.flush()  # the table, then what serve would refuse in it
    config_error(ConfigError("\n".join(problems)))
    return EXIT_CONFIG


def shipper_names() -> envnames.Names:
    """The shipper's settings names, for a name that is not the collector's (one .env may
    serve both). Imported only then: the shipper's settings model cost every start ~7
    CPU-ms."""
    from shipper.config import names

    return names()


def run_command(args: argparse.Namespace) -> int:
    """Load the settings and run the command named on the command line."""
    check_environment(shipper_names)
    native.check_setting()
    if args.command == "config":
        return print_config(args)
    config = load_config(args.config)
    if args.command != "serve":
        # serve's logs are its output; the other commands print theirs on stdout, and
        # say in one line what failed (not the client's warnings of each node and retry).
        jsonlog.configure(config.log_level, sys.stderr)
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    else:
        jsonlog.configure(config.log_level)
    if args.command == "serve":
        asyncio.run(serve(config, args.config))
    elif args.command == "setup":
        asyncio.run(setup(config, args))
    elif args.command in ("retention", "rules"):
        return int(args.handler(args))
    return 0


def config_error(exc: Exception) -> None:
    """Each configuration problem as one line on stderr."""
    for line in str(exc).splitlines():
        print(f"logpipe-collector: invalid configuration: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `logpipe-collector` and `python -m collector`."""
    args = parser().parse_args(argv)
    try:
        return run_command(args)
    except ConfigError as exc:
        config_error(exc)
        return EXIT_CONFIG
    except CollectorError as exc:
        print(f"logpipe-collector: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:  # a second SIGINT while serve drains: a normal stop too
        return 0


if __name__ == "__main__":
    sys.exit(main())
