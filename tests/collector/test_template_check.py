"""Which installed index templates a collector takes logs with, and what it says of the
others: a newer logpipe's that still takes its documents keeps it working through a
rolling upgrade."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from collector.app import SINK_KEY, STATE_KEY, _check_winner, refresh_template_status
from collector.errors import SetupError, TemplateUnchecked
from collector.reach import Reach
from collector.sink import Sink, TemplateCheck
from collector.templates import (
    COLLECTORS_FROM,
    CUSTOM_TEMPLATE,
    INDEX_PATTERNS,
    TEMPLATE_VERSION,
    index_template,
)
from tests.collector.fake_es import fake_es
from tests.collector.test_app import running
from tests.collector.wirelines import body, log, source
from tests.conftest import extra, free_port

NEWER = TEMPLATE_VERSION + 1


def test_this_versions_template_says_which_collectors_it_takes() -> None:
    """setup writes `_meta.collectors_from`; a newer collector reads it from there."""
    meta = index_template()["_meta"]
    assert meta["collectors_from"] == COLLECTORS_FROM <= TEMPLATE_VERSION


@pytest.mark.parametrize(
    ("version", "meta"),
    [
        (TEMPLATE_VERSION, {"managed_by": "logpipe", "collectors_from": COLLECTORS_FROM}),
        (TEMPLATE_VERSION, {"managed_by": "logpipe"}),  # this version's earlier setups
        (NEWER, {"managed_by": "logpipe", "collectors_from": TEMPLATE_VERSION}),
        (NEWER, {"managed_by": "logpipe", "collectors_from": 1}),
    ],
)
async def test_this_versions_template_and_a_newer_one_that_takes_its_documents_are_taken(
    version: int, meta: dict[str, Any]
) -> None:
    async with fake_es() as fake, Sink(fake.client()) as sink:
        fake.template_version, fake.template_meta = version, meta
        found = await sink.check_template()
    assert (found.version, found.composes_custom) == (version, True)


@pytest.mark.parametrize(
    "meta",
    [
        {"managed_by": "logpipe", "collectors_from": NEWER},
        {"managed_by": "logpipe"},
        {"managed_by": "logpipe", "collectors_from": "1"},
        None,
    ],
)
async def test_a_newer_template_that_does_not_take_its_documents_says_upgrade_this_collector(
    meta: dict[str, Any] | None,
) -> None:
    """Not "run setup": this collector's setup refuses to replace a newer template."""
    async with fake_es() as fake, Sink(fake.client()) as sink:
        fake.template_version, fake.template_meta = NEWER, meta  # type: ignore[assignment]
        with pytest.raises(SetupError) as caught:
            await sink.check_template()
    message = str(caught.value)
    assert f"is version {NEWER}, installed by a newer logpipe" in message
    assert f"(version {TEMPLATE_VERSION}): upgrade this collector" in message
    assert "run `logpipe-collector setup`" not in message


@pytest.mark.parametrize(
    ("version", "patterns", "said"),
    [
        (TEMPLATE_VERSION - 1, INDEX_PATTERNS, f"is version {TEMPLATE_VERSION - 1}, this "),
        # The first templates matched every logs-*-* stream, other tools' too: the message
        # names that, whatever their version, as the docs on shared clusters say.
        (1, ["logs-*-*"], "matches logs-*-*, this "),
    ],
)
async def test_an_older_template_says_what_is_wrong_and_run_setup(
    version: int, patterns: list[str], said: str
) -> None:
    async with fake_es() as fake, Sink(fake.client()) as sink:
        fake.template_version, fake.template_patterns = version, patterns
        with pytest.raises(SetupError) as caught:
            await sink.check_template()
    need = TEMPLATE_VERSION if "version" in said else " ".join(INDEX_PATTERNS)
    assert str(caught.value) == (
        f"index template 'logpipe' {said}collector needs {need}: run `logpipe-collector setup`"
    )


async def test_a_template_without_the_custom_component_is_taken_and_said() -> None:
    """An older setup of the same version wrote no `composed_of`: logs are taken, and the
    collector warns once that the operator's `logpipe@custom` is not applied."""
    async with fake_es() as fake, Sink(fake.client()) as sink:
        fake.template_composed_of = []
        found = await sink.check_template()
    assert not found.composes_custom


async def test_the_collector_says_when_it_takes_logs_again_and_what_the_template_lacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The error when it stops taking logs had no counterpart: an operator reading the log
    saw only the error. Now the way back is one info line, and a template that stopped
    composing `logpipe@custom` one warning (not one a minute)."""
    caplog.set_level(logging.INFO, logger="logpipe.collector.app")
    async with fake_es() as fake, running(es_url=fake.url) as api:
        app = api.client.app
        fake.template_version = TEMPLATE_VERSION - 1
        await refresh_template_status(app)
        status, answer, _ = await api.post(body(source(), log("x", 1)))
        assert (status, "run `logpipe-collector setup`" in answer["error"]) == (503, True)
        fake.template_version, fake.template_composed_of = TEMPLATE_VERSION, []
        for _ in range(3):
            await refresh_template_status(app)
        assert (await api.client.get("/readyz")).status == 200
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    back = [m for m in messages if m[1].startswith("accepting logs:")]
    assert [level for level, _ in back] == ["INFO"]
    lacking = [m for m in messages if f"does not compose '{CUSTOM_TEMPLATE}'" in m[1]]
    assert [level for level, _ in lacking] == ["WARNING"]


@pytest.mark.parametrize(
    ("version", "who", "hint"),
    [
        (
            TEMPLATE_VERSION,
            "a setup of an older logpipe",
            "run `logpipe-collector setup` of this version, with this config",
        ),
        (
            NEWER,
            "a newer logpipe's setup",
            f"run `logpipe-collector setup` of the newer logpipe that installed template "
            f"version {NEWER}, with this config (this one's refuses to replace it)",
        ),
    ],
)
async def test_what_the_template_lacks_names_the_setup_that_can_put_it_right(
    caplog: pytest.LogCaptureFixture, version: int, who: str, hint: str
) -> None:
    """Under a newer logpipe's template that takes its documents, this collector's setup
    refuses to replace the template: a warning that told the operator to run it sent them
    to a command that cannot help. It names the newer logpipe's setup instead."""
    caplog.set_level(logging.WARNING, logger="logpipe.collector.app")
    async with fake_es() as fake, running(es_url=fake.url) as api:
        fake.template_version, fake.template_composed_of = version, []
        fake.template_meta = {"managed_by": "logpipe", "collectors_from": TEMPLATE_VERSION}
        await refresh_template_status(api.client.app)
    [said] = [r.getMessage() for r in caplog.records if "does not compose" in r.getMessage()]
    assert said.endswith(f"mappings there; {hint}")
    assert f"'{CUSTOM_TEMPLATE}' ({who} installed it)" in said


async def test_a_check_no_node_answers_keeps_the_last_verdict(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One hung node made every collector refuse every batch: its template check timed
    out, and a template check without an answer counted as a template that is wrong.
    It is no verdict: logs are taken as the last check allowed, and it is said once."""
    caplog.set_level(logging.INFO, logger="logpipe.collector.app")
    async with fake_es() as fake, running(es_url=fake.url) as api:
        app = api.client.app
        await refresh_template_status(app)
        assert app[STATE_KEY].template_ok
        sink = app[SINK_KEY]
        checked = sink.check_template

        async def no_answer() -> TemplateCheck:
            raise TemplateUnchecked("cannot reach Elasticsearch to check the template: timed out")

        monkeypatch.setattr(sink, "check_template", no_answer)
        for _ in range(3):
            await refresh_template_status(app)
        status, answer, _ = await api.post(body(source(), log("x", 1)))
        assert (status, answer.get("indexed")) == (200, 1)
        monkeypatch.setattr(sink, "check_template", checked)
        await refresh_template_status(app)
        assert not app[STATE_KEY].template_unchecked
    said = [r for r in caplog.records if r.getMessage().startswith("cannot check the index")]
    assert [r.levelname for r in said] == ["WARNING"]
    assert not [r for r in caplog.records if r.getMessage() == "cannot accept logs yet"]


async def test_before_any_verdict_a_check_no_node_answers_refuses_logs() -> None:
    """At start, with no node answering, nothing says the template is there: 503."""
    client = AsyncElasticsearch(f"http://127.0.0.1:{free_port()}", max_retries=0)
    async with Sink(client) as sink:
        with pytest.raises(TemplateUnchecked, match="cannot reach Elasticsearch to check"):
            await sink.check_template()


async def test_a_probe_that_times_out_on_a_hung_node_is_answered_by_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node that accepts connections and never answers (a long GC pause, a frozen VM)
    timed the template check out: it reads only, so it goes to the next node listed."""
    monkeypatch.setattr("collector.sink._PROBE_TIMEOUT", 0.5)

    held: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # reads nothing, answers nothing

    hung = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = hung.sockets[0].getsockname()[1]
    try:
        async with fake_es() as fake:
            # Two nodes: whichever the pool starts with, one of two checks meets the hung one.
            client = AsyncElasticsearch(
                [f"http://127.0.0.1:{port}", fake.url], max_retries=1, retry_on_timeout=False
            )
            async with Sink(client) as sink:
                for _ in range(2):
                    assert (await sink.check_template()).version == TEMPLATE_VERSION
                assert await sink.ping()
    finally:
        hung.close()
        for writer in held:
            writer.close()
        await hung.wait_closed()


async def test_a_cluster_without_a_master_is_named_not_called_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With two of three nodes down, the one left answers its health 503
    master_not_discovered (and holds writes); the collector said "no node answers" and
    named a dead node's connection error. Its log, its batches' refusal and /readyz now
    say what the node answers."""
    caplog.set_level(logging.ERROR, logger="logpipe.collector.sink")
    dead = f"http://127.0.0.1:{free_port()}"
    async with fake_es() as fake:
        fake.masterless = True
        client = AsyncElasticsearch([dead, fake.url], max_retries=1, retry_on_status=())
        async with Sink(client) as sink:
            # As _bulk requests find it: the dead node refuses, the masterless one holds
            # each request until it times out.
            for node in client.transport.node_pool.all():
                sink.reach.no_answer(node)
            assert await sink._lost(f"cannot connect to {dead}")
            refusal = sink.reach.refusal()
        async with running(es_url=fake.url) as api:
            ready = await api.client.get("/readyz")
            readyz = (ready.status, (await ready.json())["error"])
    assert refusal.startswith("Elasticsearch cannot take logs (http://127.0.0.1:")
    assert "answers HTTP 503 to /_cluster/health (master_not_discovered_exception)" in refusal
    assert "no elected master" in refusal
    assert "no node answers" not in refusal
    [said] = [r for r in caplog.records if r.getMessage().startswith("Elasticsearch cannot")]
    assert said.getMessage() == (
        "Elasticsearch cannot take logs: batches are answered 503 until it can"
    )
    assert readyz[0] == 503
    assert "no elected master" in readyz[1]


@pytest.mark.parametrize(("status", "verdict"), [(503, False), (429, False), (404, True)])
async def test_a_busy_or_failing_answer_to_the_check_is_no_verdict(
    status: int, verdict: bool
) -> None:
    """A 429 or 5xx (a node busy or failing now, a proxy's 502) says nothing of the
    template: like no answer, logs go on being taken as the last check allowed. A 404
    says it is missing."""
    async with fake_es() as fake, Sink(fake.client()) as sink:
        fake.template_status = status
        with pytest.raises(SetupError) as caught:
            await sink.check_template()
    assert isinstance(caught.value, TemplateUnchecked) is not verdict


def test_a_lost_elasticsearch_that_answers_later_without_a_master_says_so_then(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Lost with no node answering (a whole cluster restarting), then a node answers with
    no master: batches were told "no node answers" while /readyz named the master."""
    caplog.set_level(logging.ERROR, logger="logpipe.collector.sink")
    reach = Reach()
    reach.lose("cannot connect to http://es1:9200")
    reach.lose("http://es3:9200 answers HTTP 503 ...: no elected master", answering=True)
    reach.lose("http://es3:9200 answers HTTP 503 ...: no elected master", answering=True)
    assert reach.refusal().startswith("Elasticsearch cannot take logs (http://es3:9200")
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "Elasticsearch cannot be reached",
        "Elasticsearch cannot take logs",
    ]
    reach.answered()
    assert not reach.lost


async def test_a_template_above_ours_for_the_collector_s_streams_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An operator's `logs-*-*` template of priority 600 made every new backing index with
    its mappings instead of logpipe's (parsed keys mapped one by one, lines refused),
    without a word. The collector names it, once, and again only when it changes; one
    below ours, or matching other streams only, is not said."""
    caplog.set_level(logging.WARNING, logger="logpipe.collector.app")
    async with fake_es() as fake, running(es_url=fake.url) as api:
        app = api.client.app
        fake.others = [
            ("ops-logs", {"index_patterns": ["logs-*-*"], "priority": 600}),
            ("ops-low", {"index_patterns": ["logs-*"], "priority": 100}),
            ("ops-other", {"index_patterns": ["logs-nginx.*"], "priority": 900}),
        ]
        for _ in range(2):
            await _check_winner(app[STATE_KEY], app[SINK_KEY])
        said = [r for r in caplog.records if "is above 'logpipe'" in r.getMessage()]
        assert {extra(r, "stream") for r in said} == {
            f"logs-{api.dataset}.keep_14d-default",
            "logs-logpipe.deadletter-default",
        }
        assert {extra(r, "template") for r in said} == {"ops-logs"}
        assert "index template 'ops-logs' (priority 600) is above 'logpipe' (550)" in (
            said[0].getMessage()
        )
        fake.others = []
        await _check_winner(app[STATE_KEY], app[SINK_KEY])
        assert app[STATE_KEY].other_templates == {}
        assert app[STATE_KEY].template_ok, "a warning, not a refusal: the lines are indexed"
