"""The collector's HTTP API (aiohttp): ingest, health, readiness and metrics.

This module, body.py and badhttp.py are the only ones that deal with aiohttp's
request/response types; it turns collector errors into JSON answers a person can act on.
A request aiohttp cannot parse as HTTP never reaches this application: badhttp.py
answers it in the same JSON shape.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from collector import batch, metrics, steps
from collector.attributes import AttributeFilter
from collector.body import BodyBudget, read_body
from collector.bulk import Outcome
from collector.config import CollectorConfig
from collector.enrich import Context, Doc
from collector.errors import (
    BadRequest,
    BodyTimeout,
    Busy,
    ReadUnavailable,
    RetryableSinkError,
    SenderGone,
    SetupError,
    SinkError,
    TemplateUnchecked,
    UnsupportedMedia,
)
from collector.labels import LabelFilter
from collector.reach import RETRY_AFTER
from collector.read import http as read_http
from collector.read.access import Access
from collector.refusals import KINDS, RefusalLog
from collector.retention.rules import RulesHolder
from collector.routing import Route
from collector.rules.engine import ParsingRules, engine_of
from collector.sink import Sink
from collector.templates import (
    CUSTOM_TEMPLATE,
    DEADLETTER_STREAM,
    TEMPLATE_NAME,
    TEMPLATE_PRIORITY,
    TEMPLATE_VERSION,
    unmapped,
)
from collector.wire import (
    BODY_LIMIT,
    NDJSON,
    PATH_LOGS,
    SENT_AGAIN,
    UNWRITTEN,
    ErrorBody,
    IngestResult,
    LineError,
)

log = logging.getLogger("logpipe.collector.app")

NOT_CHECKED = "index template not checked yet"


SINK_KEY: web.AppKey[Sink] = web.AppKey("sink", Sink)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class State:
    """What the handlers share: config, the in-flight bound, template status."""

    def __init__(
        self,
        config: CollectorConfig,
        retention: RulesHolder | None = None,
        parsing: ParsingRules | None = None,
    ) -> None:
        self.config = config
        self.access = Access(config.read_tokens_accepted(), config.accepted_tokens())
        self.unmapped: list[str] = []
        self.in_flight = 0
        self.bodies = BodyBudget(config.body_buffer_bytes)
        self.refusals = RefusalLog(log)
        self.template_ok = False
        self.template_problem = NOT_CHECKED
        self.composes_custom = True  # said once when the template stops composing it
        self.template_unchecked = False  # the last check got no answer (said once)
        # Streams an index template above ours would make (said once per change).
        self.other_templates: dict[str, tuple[str, int]] = {}
        self.context = Context(
            dataset=config.routing.dataset,
            namespace=config.routing.namespace,
            environment=config.environment,
            labels=LabelFilter(config.document_labels),
            attributes=AttributeFilter(config.indexed_attributes),
            retention=retention or RulesHolder(config.retention),
            parsing=parsing or ParsingRules(engine_of(config)),
            max_line_bytes=config.max_line_bytes,
        )


STATE_KEY: web.AppKey[State] = web.AppKey("state", State)


def error_response(
    status: int, message: str, retry_after: float = 1.0, **extra: object
) -> web.Response:
    """A JSON error body with a message a person can act on (429/503 say when to retry,
    401 which scheme to authenticate with, as HTTP requires)."""
    body = ErrorBody.model_validate({"error": message, **extra})
    headers = {}
    if status in (429, 503):
        headers["Retry-After"] = str(max(1, round(retry_after)))
    elif status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="logpipe"'
    return web.json_response(body.model_dump(exclude_defaults=True), status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer the collector's errors, aiohttp's own 404/405/413, and a bug as JSON."""
    try:
        return await handler(request)
    except (BadRequest, ReadUnavailable) as exc:
        return error_response(exc.status, str(exc), retry_after=5)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = {
            404: f"no such endpoint: {request.method} {request.path} (ingest is POST {PATH_LOGS})",
            405: f"method {request.method} not allowed on {request.path} "
            f"(allowed: {exc.headers.get('Allow', 'none')})",
        }.get(exc.status, exc.reason)
        response = error_response(exc.status, text)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        # A bug must not cost the connection nor a silent 500: the shipper retries later.
        log.exception("internal error", extra={"path": request.path})
        return error_response(500, "internal error in the collector (logged); retry later")


def authenticate(request: web.Request, state: State) -> None:
    """Raise Unauthorized unless an ingest token is presented (Forbidden for a read token)."""
    if state.config.auth == "none":
        return
    state.access.check(request.headers.get("Authorization", ""), "ingest")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def ingest(request: web.Request) -> web.Response:
    """POST /v1/logs: index a batch, answer only once Elasticsearch has it all."""
    state = request.app[STATE_KEY]
    try:
        response = await _ingest(request, state)
    except Busy as exc:
        response = error_response(503, str(exc))
    except (BodyTimeout, SenderGone) as exc:
        metrics.REQUESTS_ABORTED.labels(_ABORT_REASONS[type(exc)]).inc()
        log.info("request body not received", extra={"reason": str(exc)})
        response = error_response(exc.status, str(exc))
    except BadRequest as exc:
        response = error_response(exc.status, str(exc))
    except RetryableSinkError as exc:
        log.warning("batch not indexed, shipper will retry", extra={"reason": str(exc)})
        response = error_response(exc.status, str(exc), retry_after=exc.retry_after)
    except SinkError as exc:
        log.error("batch not indexed", extra={"reason": str(exc)})
        response = error_response(502, str(exc))
    if not request.content.at_eof():
        # The rest of the body was not read: the connection cannot carry another request.
        response.force_close()
    if response.status != 200 and not request.get(_WRITING, False):
        response.headers[UNWRITTEN] = "1"  # the shipper's next try needs no lookup
    # On every answer, not a 413's only: a shipper learns the limit from its first batch,
    # and a limit raised (the collector restarted with a larger one) from the next.
    response.headers[BODY_LIMIT] = f"{state.config.max_body_bytes} inflated"
    metrics.REQUESTS.labels(str(response.status)).inc()
    if response.status in KINDS:
        # A misconfigured sender is refused for ever: said at most once a minute.
        # Its error is read from the body only when a warning is written.
        state.refusals.refused(
            response.status, _address(request) or "unknown", functools.partial(_said, response)
        )
    return response


def _said(response: web.Response) -> str:
    """The `error` of one of our JSON answers ("" for any other body: the warning must
    never fail the answer it is about)."""
    body = response.body
    if not isinstance(body, bytes):
        return ""
    try:
        said = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace")
    return str(said.get("error", "")) if isinstance(said, dict) else ""


# Set on a request once its batch goes to Elasticsearch.
_WRITING = web.RequestKey("logpipe_writing", bool)


_ABORT_REASONS = {BodyTimeout: "body_timeout", SenderGone: "disconnected"}


def _address(request: web.Request) -> str | None:
    """The IP address the request came from (an IPv6 one without its zone), if any."""
    try:
        return str(ipaddress.ip_address((request.remote or "").partition("%")[0]))
    except ValueError:  # a unix socket's peer, say
        return None


def _admit(request: web.Request, state: State) -> web.Response | None:
    """Refuse a batch before reading it: bad credentials or media, busy, not set up."""
    authenticate(request, state)
    media, *params = request.headers.get("Content-Type", NDJSON).split(";")
    content_type = media.strip().lower()
    if content_type not in (NDJSON, "application/json", "text/plain", "application/octet-stream"):
        raise UnsupportedMedia(f"Content-Type '{content_type}' not supported (send {NDJSON})")
    for param in params:  # a body in another charset would be read as UTF-8 and mangled
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8", "us-ascii"):
            raise UnsupportedMedia(
                f"Content-Type charset '{charset}' not supported: send the body as UTF-8"
            )
    _check_room(state)
    reach = request.app[SINK_KEY].reach
    if reach.lost:  # at once, rather than after es_retry_seconds of trying
        return error_response(503, reach.refusal(), retry_after=RETRY_AFTER)
    if not state.template_ok:
        return error_response(503, state.template_problem, retry_after=5)
    return None


def _check_room(state: State) -> None:
    """Bounded work in progress: memory stays flat, the shipper keeps the batch."""
    if state.in_flight >= state.config.max_in_flight:
        raise Busy("collector busy: too many batches in flight, retry shortly")


async def _ingest(request: web.Request, state: State) -> web.Response:
    refusal = _admit(request, state)
    if refusal is not None:
        return refusal
    # The body is read before the batch takes a place: a stalled sender holds none.
    config = state.config
    body = await read_body(request, config.max_body_bytes, state.bodies, config.body_timeout)
    _check_room(state)
    state.in_flight += 1
    metrics.IN_FLIGHT.inc()
    try:
        decoded = await steps.finish(
            batch.decoding(
                body,
                state.context,
                _now(),
                state.config.keep_original,
                _address(request),
                seconds=steps.STEP_SECONDS,
            )
        )
        await steps.finish(batch.setting_apart(decoded, seconds=steps.STEP_SECONDS))
        metrics.RECORDS_RECEIVED.inc(decoded.received)
        if decoded.truncated:
            metrics.LINES_TRUNCATED.inc(decoded.truncated)
        for kind, count in decoded.texts_truncated.items():
            metrics.TEXTS_TRUNCATED.labels(kind).inc(count)
        metrics.count_rules(decoded.rules.dropped, decoded.rules.failures, decoded.rules.redactions)
        if request.transport is None or request.transport.is_closing():
            # Its sender gave up waiting (this collector was paused, say) and sends the
            # batch again, elsewhere: indexed now, after a rollover it would be twice.
            await _free([], decoded)
            raise SenderGone("the sender closed the connection before the batch was indexed")
        again = request.headers.get(SENT_AGAIN) == "1"
        request[_WRITING] = True
        outcome = await _write(request.app[SINK_KEY], decoded, again)
    finally:
        state.in_flight -= 1
        metrics.IN_FLIGHT.dec()
    result = IngestResult(
        received=decoded.received,
        indexed=outcome.indexed,
        duplicates=outcome.duplicates,
        dead_lettered=outcome.dead_lettered,
        dropped=sum(decoded.rules.dropped.values()),
    )
    if decoded.errors:
        return _partial(decoded.errors, result)
    # `dropped` appears only when a drop rule dropped lines: other answers stay as they were.
    return web.json_response(result.model_dump(exclude=None if result.dropped else {"dropped"}))


async def _write(sink: Sink, decoded: batch.Decoded, again: bool = False) -> Outcome:
    """Index the batch's documents and dead letters, then free them in steps, whatever the
    outcome: 200,000 documents took 50-90 ms to free at once. (Every step of a batch lets
    the event loop run: decoding, setting apart, encoding, sending, freeing; steps.py.)
    A batch sent `again` first loses the documents its streams already hold."""
    docs = decoded.docs + decoded.dead_letters
    try:
        known: set[str] = set()
        if again:
            metrics.BATCHES_LOOKED_UP.inc()
            known = await sink.known(docs)
        if known:
            docs = [doc for doc in docs if doc.id not in known]
        outcome = await sink.write(docs)
        outcome.duplicates += len(known)
        if known:
            metrics.RECORDS_DUPLICATE.inc(len(known))
    except Exception:  # answered 503 or 502: a big batch is freed in steps all the same
        await _free(docs, decoded)
        raise
    await _free(docs, decoded)
    return outcome


async def _free(docs: list[Doc], decoded: batch.Decoded) -> None:
    docs.clear()  # the documents stay referred to by `decoded` until freed below
    await steps.finish(steps.releasing(decoded.docs, steps.STEP_SECONDS))
    await steps.finish(steps.releasing(decoded.dead_letters, steps.STEP_SECONDS))


def _partial(errors: list[LineError], result: IngestResult) -> web.Response:
    """400 naming the bad lines, once the good ones are indexed and the bad dead-lettered."""
    metrics.LINES_INVALID.inc(len(errors))
    first = errors[0]
    indexed = result.indexed + result.duplicates
    others = "the other lines were indexed and " if indexed else ""
    message = (
        f"{len(errors)} of {result.received} lines rejected (first: line {first.line}: "
        f"{first.error}); {others}the rejected ones stored in the dead-letter data stream "
        f"{DEADLETTER_STREAM}"
    )
    # The answer stays small however many lines were bad; the metric counts them all.
    return error_response(400, message, detail=errors[:100], result=result)


async def healthz(request: web.Request) -> web.Response:
    """The process is up."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Elasticsearch answers and our template is installed."""
    state = request.app[STATE_KEY]
    sink = request.app[SINK_KEY]
    if sink.reach.lost or not await sink.ping():
        why = sink.impostor or sink.unhealthy or "Elasticsearch is not reachable"
        return error_response(503, why, retry_after=RETRY_AFTER)
    await refresh_template_status(request.app)
    if not state.template_ok:
        return error_response(503, state.template_problem)
    return web.json_response({"status": "ready"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    resp = web.Response(body=generate_latest())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


async def refresh_template_status(app: web.Application) -> None:
    """Check the index template and remember the answer for the ingest handler."""
    state = app[STATE_KEY]
    try:
        found = await app[SINK_KEY].check_template()
    except TemplateUnchecked as exc:
        if not state.template_ok:
            _refuse_logs(state, str(exc))
        elif not state.template_unchecked:
            # No node answered (one that hangs, say, or all of them): no verdict on the
            # template, so logs are still taken as the last check allowed; a _bulk that
            # finds no node answers 503 itself.
            log.warning(
                "cannot check the index template; logs are taken as the last check allowed",
                extra={"reason": str(exc)},
            )
        state.template_unchecked = True
        return
    except SetupError as exc:
        _refuse_logs(state, str(exc))
        return
    state.template_unchecked = False
    if not state.template_ok and state.template_problem != NOT_CHECKED:
        log.info(
            "accepting logs: the index template takes this collector's documents",
            extra={"template_version": found.version, "was": state.template_problem},
        )
    setup = _setup_hint(found.version)
    if state.composes_custom and not found.composes_custom:
        newer = found.version > TEMPLATE_VERSION
        who = "a newer logpipe's setup" if newer else "a setup of an older logpipe"
        log.warning(
            f"the index template does not compose '{CUSTOM_TEMPLATE}' ({who} installed "
            "it): new backing indices do not get your settings and mappings there; "
            f"{setup}",
        )
    state.template_ok, state.template_problem = True, ""
    state.composes_custom = found.composes_custom
    _check_fields(state, found.fields, setup)


async def _check_winner(state: State, sink: Sink) -> None:
    """Say (once per change) when an index template of higher priority than ours matches
    this collector's streams: new backing indices get its mappings, not logpipe's (an
    operator's `logs-*-*` template at 600 did it without a word)."""
    routing = state.config.routing
    # The stream of lines no retention rule matches, as routing names it.
    keep = state.context.retention.rules.config.default  # as reloaded
    default = Route(routing.dataset, routing.namespace, keep).stream
    names = [default, DEADLETTER_STREAM]
    others = await sink.other_templates(names)
    if others != state.other_templates:
        state.other_templates = others
        for stream, (name, priority) in others.items():
            log.warning(
                f"index template '{name}' (priority {priority}) is above '{TEMPLATE_NAME}' "
                f"({TEMPLATE_PRIORITY}) for {stream}: new backing indices get its settings "
                "and mappings, not logpipe's; lower its priority or narrow its "
                f"index_patterns, and put your settings in '{CUSTOM_TEMPLATE}'",
                extra={"template": name, "stream": stream},
            )


def _setup_hint(installed: int) -> str:
    """Which `setup` puts the template right: this version's, or, under a newer logpipe's
    template (which this one's setup refuses to replace), that logpipe's."""
    if installed > TEMPLATE_VERSION:
        return (
            f"run `logpipe-collector setup` of the newer logpipe that installed template "
            f"version {installed}, with this config (this one's refuses to replace it)"
        )
    return "run `logpipe-collector setup` of this version, with this config"


def _refuse_logs(state: State, problem: str) -> None:
    """Answer batches 503 for `problem`; said once per problem."""
    if state.template_ok or state.template_problem != problem:
        log.error("cannot accept logs yet", extra={"reason": problem})
    state.template_ok, state.template_problem = False, problem


def _check_fields(state: State, mapped: dict[str, str], setup: str) -> None:
    """Say (once per change) which typed fields of the rules the template does not map;
    `setup` says which setup maps them."""
    missing = unmapped(state.context.parsing.engine.fields, mapped)
    if missing and missing != state.unmapped:
        log.warning(
            f"the index template does not map typed fields the parsing rules declare: {setup} "
            "(new backing indices get them; until then numbers and text are mapped by their "
            "JSON type)",
            extra={"fields": missing},
        )
    state.unmapped = missing


async def _watch_template(app: web.Application) -> None:
    state = app[STATE_KEY]
    while True:
        engine = state.context.parsing.engine
        await refresh_template_status(app)
        if state.template_ok:  # here, not in every /readyz: it lists every template
            await _check_winner(state, app[SINK_KEY])
        # Every 60 s once ready; sooner when not, or when a reload changed the rules.
        for _ in range(1 if not state.template_ok else 12):
            await asyncio.sleep(5)
            if state.context.parsing.engine is not engine:
                break


async def _watch_reach(sink: Sink) -> None:
    """While Elasticsearch is lost, probe it: after 1 s, then less often, up to every
    Retry-After (each failed probe costs a warning line of the client)."""
    delay = 1.0
    while True:
        still_lost = sink.reach.lost and not await sink.ping()
        if still_lost and sink.unhealthy is not None:  # a node answers now, with an error
            sink.lose(sink.reach.why)
        delay = min(delay * 2, RETRY_AFTER) if still_lost else 1.0
        await asyncio.sleep(delay)


def make_app(
    config: CollectorConfig,
    sink: Sink,
    retention: RulesHolder | None = None,
    parsing: ParsingRules | None = None,
) -> web.Application:
    """The aiohttp application; the caller owns the sink's lifecycle.

    `retention` is the holder of the rules in force (reloaded by the lifecycle loop);
    routing reads it for every record. `parsing` holds the parsing rules in force, read
    once per batch. Serve it with ``auto_decompress=False``: body.py inflates request
    bodies itself (aiohttp's inflation would leave it nothing to inflate).
    """
    app = web.Application(middlewares=[json_errors], client_max_size=config.max_body_bytes)
    app[STATE_KEY] = State(config, retention, parsing)
    app[SINK_KEY] = sink
    app.router.add_post(PATH_LOGS, ingest)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    read_http.add_routes(app, config, app[STATE_KEY].access, app[STATE_KEY].context.parsing)

    async def background(app: web.Application) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(_watch_template(app)),
            asyncio.create_task(_watch_reach(app[SINK_KEY])),
        ]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.cleanup_ctx.append(background)
    app.on_shutdown.append(_stop_receiving)
    return app


async def _stop_receiving(app: web.Application) -> None:
    """Answer the bodies still arriving at once (503): serve is stopping."""
    app[STATE_KEY].bodies.interrupt()
