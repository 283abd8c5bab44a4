"""`setup` installs its template over a missing or older one, never over a newer one."""

from __future__ import annotations

import argparse

import pytest

from collector.__main__ import setup
from collector.config import CollectorConfig
from collector.errors import CollectorError
from collector.templates import TEMPLATE_NAME, TEMPLATE_VERSION
from tests.collector.fake_es import fake_es

ARGS = argparse.Namespace(wait=1.0, kibana_url=None, kibana_wait=1.0, dashboards=None)


@pytest.mark.parametrize(("status", "version"), [(404, 0), (200, 1), (200, TEMPLATE_VERSION)])
async def test_setup_installs_over_a_missing_older_or_equal_template(
    status: int, version: int
) -> None:
    """No template, an older logpipe's or this one's: setup installs this version."""
    async with fake_es() as fake:
        fake.template_status, fake.template_version = status, version
        await setup(CollectorConfig(es_url=[fake.url], tokens=["t" * 32]), ARGS)
    assert fake.installed[TEMPLATE_NAME]["version"] == TEMPLATE_VERSION


async def test_setup_leaves_a_newer_logpipes_template_and_says_why() -> None:
    """A template a newer logpipe installed is not downgraded: the error names both versions."""
    async with fake_es() as fake:
        fake.template_version = TEMPLATE_VERSION + 1
        with pytest.raises(CollectorError) as caught:
            await setup(CollectorConfig(es_url=[fake.url], tokens=["t" * 32]), ARGS)
    assert fake.installed == {}
    message = str(caught.value)
    assert f"is version {TEMPLATE_VERSION + 1}, installed by a newer logpipe" in message
    assert f"installs version {TEMPLATE_VERSION}" in message
