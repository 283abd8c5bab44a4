"""The client every collector command uses: its nodes, retries and TLS, from the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from collector.config import CollectorConfig
from collector.errors import ConfigError
from collector.es_client import elasticsearch_client, sink_settings
from tests.collector.fake_es import fake_es
from tests.conftest import free_port


def _config(**settings: Any) -> CollectorConfig:
    return CollectorConfig(_env_file=None, **settings)


async def test_a_node_that_refuses_connections_is_skipped_for_the_next() -> None:
    """With a node down among several, every request is answered by another one."""
    down = f"http://127.0.0.1:{free_port()}"
    async with fake_es() as fake:
        for urls in ([down, fake.url], [fake.url, down]):
            async with elasticsearch_client(_config(es_url=urls)) as es:
                for _ in range(4):  # the pool takes each node in turn
                    assert (await es.cluster.health()).body["status"]


@pytest.mark.parametrize(
    ("content", "urls", "error"),
    [
        (None, ["https://es:9200"], "LOGPIPE_ES_CA_FILE: cannot read .*: no such file"),
        ("not a certificate\n", ["https://es:9200"], "LOGPIPE_ES_CA_FILE: .* holds no PEM"),
        ("", ["https://es:9200", "http://es2:9200"], "LOGPIPE_ES_URL has http://es2:9200"),
    ],
)
def test_an_unusable_ca_file_is_a_config_error(
    tmp_path: Path, content: str | None, urls: list[str], error: str
) -> None:
    """A CA file the client could not use is named at start, not a traceback."""
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_text(content)
    with pytest.raises(ConfigError, match=error):
        elasticsearch_client(_config(es_url=urls, es_ca_file=ca))


def test_a_password_without_a_user_is_a_config_error() -> None:
    """A password alone would be dropped without a word: it names both variables."""
    with pytest.raises(ConfigError, match="LOGPIPE_ES_PASSWORD is set but LOGPIPE_ES_USERNAME"):
        elasticsearch_client(_config(es_password="secret"))


def test_bulk_compression_is_read_from_the_config_and_checked() -> None:
    """LOGPIPE_ES_COMPRESSION gzip turns compression on; none (the default) leaves it
    off; another word is refused, naming what it takes."""
    assert sink_settings(_config()).compress is False
    assert sink_settings(_config(es_compression="gzip")).compress is True
    with pytest.raises(ValidationError, match="'none' or 'gzip'"):
        _config(es_compression="zstd")
