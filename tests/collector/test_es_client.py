"""The client every collector command uses: its nodes, retries and TLS, from the config."""

from __future__ import annotations

from typing import Any

from collector.config import CollectorConfig
from collector.es_client import elasticsearch_client
from tests.collector.fake_es import fake_es
from tests.conftest import free_port


def _config(**settings: Any) -> CollectorConfig:
    return CollectorConfig(_env_file=None, **settings)  # type: ignore[call-arg]


async def test_a_node_that_refuses_connections_is_skipped_for_the_next() -> None:
    """With a node down among several, every request is answered by another one."""
    down = f"http://127.0.0.1:{free_port()}"
    async with fake_es() as fake:
        for urls in ([down, fake.url], [fake.url, down]):
            async with elasticsearch_client(_config(es_url=urls)) as es:
                for _ in range(4):  # the pool takes each node in turn
                    assert (await es.cluster.health()).body["status"]
