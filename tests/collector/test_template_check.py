"""Which installed index templates a collector takes logs with, and what it says of the
others: a newer logpipe's that still takes its documents keeps it working through a
rolling upgrade."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from collector.app import refresh_template_status
from collector.errors import SetupError
from collector.sink import Sink
from collector.templates import (
    COLLECTORS_FROM,
    CUSTOM_TEMPLATE,
    INDEX_PATTERNS,
    TEMPLATE_VERSION,
    index_template,
)
from tests.collector.fake_es import fake_es
from tests.collector.test_app import body, log, running, source

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
        app = api.client.server.app
        fake.template_version = TEMPLATE_VERSION - 1
        await refresh_template_status(app)
        status, answer, _ = await api.post(body(source(), log("x", 1)))
        assert (status, "run `logpipe-collector setup`" in answer["error"]) == (503, True)
        fake.template_version, fake.template_composed_of = TEMPLATE_VERSION, []
        for _ in range(3):
            await refresh_template_status(app)
        assert (await api.client.get("/readyz")).status == 200
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    back = [m for m in messages if m[1].startswith("accepting logs again")]
    assert [level for level, _ in back] == ["INFO"]
    lacking = [m for m in messages if f"does not compose '{CUSTOM_TEMPLATE}'" in m[1]]
    assert [level for level, _ in lacking] == ["WARNING"]
