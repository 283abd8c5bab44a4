"""A scripted stand-in for Elasticsearch's HTTP API, for edge cases a real node won't show.

Per-item 429s need a tiny write queue (a node setting the shared node must not get),
and exact sequences of 5xx, dropped connections and timeouts are not reproducible on
a real node. The official client talks real HTTP to this server; each ``_bulk`` request
is answered by the next entry of ``script`` (the last one repeats).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from elasticsearch import AsyncElasticsearch

from collector.shape import nested
from collector.templates import (
    COLLECTORS_FROM,
    CUSTOM_TEMPLATE,
    INDEX_PATTERNS,
    TEMPLATE_VERSION,
)

HEADERS = {"X-Elastic-Product": "Elasticsearch"}

# One scripted answer: given the (action, source) pairs of a request, a response.
Answer = Callable[[list[tuple[dict[str, Any], dict[str, Any]]]], web.StreamResponse]


def _awake() -> asyncio.Event:
    awake = asyncio.Event()
    awake.set()
    return awake


@dataclass
class FakeElasticsearch:
    """What the fake received, and what it will answer next."""

    script: list[Answer | str] = field(default_factory=list)
    requests: list[list[tuple[dict[str, Any], dict[str, Any]]]] = field(default_factory=list)
    template_status: int = 200
    template_patterns: list[str] = field(default_factory=lambda: list(INDEX_PATTERNS))
    template_version: int = TEMPLATE_VERSION
    # Its `_meta` and `composed_of`, as this version's setup writes them.
    template_meta: dict[str, object] = field(
        default_factory=lambda: {"managed_by": "logpipe", "collectors_from": COLLECTORS_FROM}
    )
    template_composed_of: list[str] = field(default_factory=lambda: [CUSTOM_TEMPLATE])
    # What `POST _index_template/_simulate` answers: 200 where the mapping types it uses
    # exist, 400 (mapper_parsing_exception) where one does not.
    simulate_status: int = 200
    # The body of each `PUT _index_template/<name>`, by name.
    installed: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What `PUT <indices>/_mapping` answers, and each one's (indices, body) when it is 200.
    mapping_status: int = 200
    mapped: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""
    # Whether /_cluster/health answers as a cluster without an elected master does.
    masterless: bool = False
    # The headers of each _bulk request, in order.
    bulk_headers: list[dict[str, str]] = field(default_factory=list)
    # How many times `HEAD /` was asked (the sink's probe of a node slow to answer).
    probes: int = 0
    # Set while it answers. Cleared, every request waits unanswered, as on a node that
    # hung; one its client gave up on meanwhile is dropped once set again, unrecorded.
    awake: asyncio.Event = field(default_factory=_awake)
    # Index templates besides ours that `GET _index_template` lists: (name, body).
    others: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # What `GET _resolve/index/...` lists under `indices` (closed ones carry "closed" in
    # their attributes), and the path and query of each such request.
    resolved: list[dict[str, Any]] = field(default_factory=list)
    resolve_status: int = 200
    resolves: list[str] = field(default_factory=list)
    # The `index.creation_date` (ms, a string as Elasticsearch writes it) of each index
    # `GET <names>/_settings/index.creation_date` answers, what it answers, and the path
    # and query of each such request.
    creation_dates: dict[str, str] = field(default_factory=dict)
    settings_status: int = 200
    settings: list[str] = field(default_factory=list)
    # The data streams it lists under `data_streams` when named (name and
    # backing_indices, the write index last).
    resolved_streams: list[dict[str, Any]] = field(default_factory=list)
    # What `POST <indices>/_refresh` answers (a 200 with this many shards failed), and
    # the indices of each such request.
    refresh_status: int = 200
    refresh_failed: int = 0
    refreshed: list[str] = field(default_factory=list)
    # The ids every `_msearch` finds (each search answers those of its ids it holds), and
    # the index of each search, in order.
    stored: set[str] = field(default_factory=set)
    searched: list[str] = field(default_factory=list)
    # What each `<indices>/_search` answers, in order (status, body); once used up, no
    # hits. How many were asked.
    search_answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    searches: int = 0
    # The operator's `logpipe@custom` as `GET _component_template/logpipe@custom` answers
    # its `component_template` (None: there is none, 404).
    component: dict[str, Any] | None = None
    # The ingest pipelines that exist, and what `GET _ingest/pipeline/<id>` answers when
    # not 200 or 404 (403: a user without the privilege to read pipelines).
    pipelines: set[str] = field(default_factory=set)
    pipeline_status: int = 200

    def client(self, **options: Any) -> AsyncElasticsearch:
        """An official async client of this fake, without the client's own retries."""
        return AsyncElasticsearch(self.url, max_retries=0, retry_on_timeout=False, **options)

    def ids(self, stream: str | None = None) -> list[str]:
        """The `_id` of every document received, in order, optionally for one stream."""
        return [
            action["create"]["_id"]
            for request in self.requests
            for action, _ in request
            if stream is None or action["create"]["_index"] == stream
        ]

    def sources(self, stream: str) -> list[dict[str, Any]]:
        """Every document received for `stream`, nested (they come flat: shape.py)."""
        return [
            nested(source)
            for request in self.requests
            for action, source in request
            if action["create"]["_index"] == stream
        ]

    async def _sleep(self, request: web.Request) -> bool:
        """Wait until awake; whether the request's client is still there."""
        await self.awake.wait()
        return request.transport is not None and not request.transport.is_closing()

    async def _bulk(self, request: web.Request) -> web.StreamResponse:
        if not await self._sleep(request):
            return web.Response()
        self.bulk_headers.append(dict(request.headers))
        lines = (await request.read()).splitlines()
        pairs = [
            (orjson.loads(a), orjson.loads(s)) for a, s in zip(lines[::2], lines[1::2], strict=True)
        ]
        self.requests.append(pairs)
        step = self.script[min(len(self.requests), len(self.script)) - 1] if self.script else ok
        if step == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if step == "hang":  # longer than the tests' request timeout, short enough to close
            await asyncio.sleep(2)
        if step == "slow":  # a busy node: answered, after 2 s
            await asyncio.sleep(2)
            step = ok
        assert callable(step)
        return step(pairs)

    async def _template(self, request: web.Request) -> web.Response:
        if self.template_status != 200:
            body = {"error": {"type": "resource_not_found_exception"}, "status": 404}
            return web.json_response(body, status=self.template_status, headers=HEADERS)
        installed = {
            "version": self.template_version,
            "index_patterns": self.template_patterns,
            "_meta": self.template_meta,
            "composed_of": self.template_composed_of,
        }
        template = {"name": "logpipe", "index_template": installed}
        return web.json_response({"index_templates": [template]}, headers=HEADERS)

    async def _templates(self, request: web.Request) -> web.Response:
        ours = {"index_patterns": self.template_patterns, "priority": 550}
        listed = [("logpipe", ours), *self.others]
        body = {"index_templates": [{"name": n, "index_template": t} for n, t in listed]}
        return web.json_response(body, headers=HEADERS)

    async def _simulate(self, request: web.Request) -> web.Response:
        if self.simulate_status != 200:
            error = {"type": "mapper_parsing_exception", "reason": "No handler for type"}
            body = {"error": error, "status": self.simulate_status}
            return web.json_response(body, status=self.simulate_status, headers=HEADERS)
        template = (await request.json())["template"]
        return web.json_response({"template": template, "overlapping": []}, headers=HEADERS)

    async def _put_template(self, request: web.Request) -> web.Response:
        self.installed[request.match_info["name"]] = await request.json()
        return web.json_response({"acknowledged": True}, headers=HEADERS)

    async def _put_mapping(self, request: web.Request) -> web.Response:
        if self.mapping_status != 200:
            body = {
                "error": {"type": "security_exception", "reason": "action unauthorized"},
                "status": self.mapping_status,
            }
            return web.json_response(body, status=self.mapping_status, headers=HEADERS)
        self.mapped.append((request.match_info["indices"], await request.json()))
        return web.json_response({"acknowledged": True}, headers=HEADERS)

    async def _resolve(self, request: web.Request) -> web.Response:
        self.resolves.append(request.path_qs)
        if self.resolve_status != 200:
            body = {"error": {"type": "scripted", "reason": "scripted"}, "status": 503}
            return web.json_response(body, status=self.resolve_status, headers=HEADERS)
        names = request.match_info["names"].split(",")
        streams = [s for s in self.resolved_streams if s["name"] in names]
        body = {"indices": self.resolved, "aliases": [], "data_streams": streams}
        return web.json_response(body, headers=HEADERS)

    async def _settings(self, request: web.Request) -> web.Response:
        self.settings.append(request.path_qs)
        if self.settings_status != 200:
            body = {"error": {"type": "scripted", "reason": "scripted"}, "status": 503}
            return web.json_response(body, status=self.settings_status, headers=HEADERS)
        body = {
            name: {"settings": {"index": {"creation_date": when}}}
            for name, when in self.creation_dates.items()
        }
        return web.json_response(body, headers=HEADERS)

    async def _refresh(self, request: web.Request) -> web.Response:
        self.refreshed.append(request.match_info["indices"])
        if self.refresh_status != 200:
            error = {"type": "security_exception", "reason": "action [indices:admin/refresh]"}
            body = {"error": error, "status": self.refresh_status}
            return web.json_response(body, status=self.refresh_status, headers=HEADERS)
        failed = self.refresh_failed
        shards = {"total": 1 + failed, "successful": 1, "failed": failed}
        return web.json_response({"_shards": shards}, headers=HEADERS)

    async def _search(self, request: web.Request) -> web.Response:
        self.searches += 1
        if self.search_answers:
            status, body = self.search_answers.pop(0)
        else:
            status, body = 200, {"_shards": {"total": 1, "failed": 0}, "hits": {"hits": []}}
        return web.json_response(body, status=status, headers=HEADERS)

    async def _msearch(self, request: web.Request) -> web.Response:
        lines = [orjson.loads(line) for line in (await request.read()).splitlines() if line]
        responses = []
        for header, body in zip(lines[::2], lines[1::2], strict=True):
            self.searched.append(header["index"])
            ids = body["query"]["ids"]["values"]
            hits = [{"_id": i} for i in ids if i in self.stored]
            responses.append({"hits": {"hits": hits}})
        return web.json_response({"responses": responses}, headers=HEADERS)

    async def _component(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.component is None or name != CUSTOM_TEMPLATE:
            error = {"type": "resource_not_found_exception", "reason": f"{name} missing"}
            return web.json_response({"error": error, "status": 404}, status=404, headers=HEADERS)
        found = [{"name": name, "component_template": {"template": {}, **self.component}}]
        return web.json_response({"component_templates": found}, headers=HEADERS)

    async def _pipeline(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.pipeline_status != 200:
            error = {
                "type": "security_exception",
                "reason": "action [cluster:admin/ingest/pipeline/get] is unauthorized",
            }
            body = {"error": error, "status": self.pipeline_status}
            return web.json_response(body, status=self.pipeline_status, headers=HEADERS)
        if name not in self.pipelines:
            return web.json_response({}, status=404, headers=HEADERS)
        return web.json_response({name: {}}, headers=HEADERS)

    async def _root(self, request: web.Request) -> web.Response:
        if not await self._sleep(request):
            return web.Response()
        self.probes += 1
        return web.Response(headers=HEADERS)

    async def _health(self, request: web.Request) -> web.Response:
        if self.masterless:  # what a node answers when too few master-eligible ones are up
            error = {
                "root_cause": [{"type": "master_not_discovered_exception", "reason": None}],
                "type": "master_not_discovered_exception",
                "reason": None,
            }
            body = {"error": error, "status": 503}
            return web.json_response(body, status=503, headers=HEADERS)
        return web.json_response({"status": "green"}, headers=HEADERS)


def items(statuses: list[int]) -> dict[str, Any]:
    """A bulk answer with one item per status."""
    out = []
    for status in statuses:
        item: dict[str, Any] = {"status": status}
        if status >= 300:
            kind = "es_rejected_execution_exception" if status == 429 else "mapper_exception"
            item["error"] = {"type": kind, "reason": f"scripted {status}"}
        out.append({"create": item})
    return {"errors": any(s >= 300 for s in statuses), "items": out}


def ok(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> web.Response:
    """Every item created."""
    return web.json_response(items([201] * len(pairs)), headers=HEADERS)


def each(status_of: Callable[[dict[str, Any], dict[str, Any]], int]) -> Answer:
    """An answer giving each item the status `status_of(action, source)` says."""

    def answer(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> web.Response:
        return web.json_response(items([status_of(a, s) for a, s in pairs]), headers=HEADERS)

    return answer


def whole(status: int) -> Answer:
    """The whole request answered with `status` and an error body."""

    def answer(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> web.Response:
        body = {"error": {"type": "scripted", "reason": f"scripted {status}"}, "status": status}
        return web.json_response(body, status=status, headers=HEADERS)

    return answer


@asynccontextmanager
async def fake_es(*script: Answer | str) -> AsyncIterator[FakeElasticsearch]:
    """Serve a FakeElasticsearch on a free port for the block."""
    fake = FakeElasticsearch(script=list(script))
    app = web.Application(client_max_size=100 * 1024 * 1024)  # as http.max_content_length
    app.router.add_route("*", "/_bulk", fake._bulk)
    app.router.add_post("/_index_template/_simulate", fake._simulate)
    app.router.add_get("/_index_template/{name}", fake._template)
    app.router.add_get("/_index_template", fake._templates)
    app.router.add_put("/_index_template/{name}", fake._put_template)
    app.router.add_get("/_cluster/health", fake._health)
    app.router.add_get("/_component_template/{name}", fake._component)
    app.router.add_get("/_ingest/pipeline/{name}", fake._pipeline)
    app.router.add_route("HEAD", "/", fake._root)
    app.router.add_put("/{indices}/_mapping", fake._put_mapping)
    app.router.add_get("/_resolve/index/{names}", fake._resolve)
    app.router.add_post("/{indices}/_refresh", fake._refresh)
    app.router.add_get("/{indices}/_settings/{names}", fake._settings)
    app.router.add_post("/_msearch", fake._msearch)
    app.router.add_post("/{indices}/_search", fake._search)
    server = TestServer(app)
    await server.start_server()
    fake.url = str(server.make_url("/"))
    try:
        yield fake
    finally:
        await server.close()
