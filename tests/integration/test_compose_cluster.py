"""docker-compose.cluster.yml: compose accepts it, its nodes form one cluster, and its
collectors sit behind the nginx config .ci/cluster runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.config import load_config
from tests.integration.test_image import compose_command

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "docker-compose.cluster.yml"
NGINX = ROOT / "docs/cluster/nginx"
REQUIRED = {"LOGPIPE_TOKEN": "test-token", "LOGPIPE_TLS_DIR": "/etc/logpipe-test-tls"}


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Compose on the cluster file with .env.example, from a clean environment."""
    cmd = [*compose_command(), "--env-file", str(ROOT / ".env.example"), "-f", str(FILE)]
    return subprocess.run(
        [*cmd, *args],
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    """The services as compose resolves them, with the required variables set."""
    result = compose("config", env=REQUIRED)
    assert result.returncode == 0, result.stderr
    assert compose("config", "-q", env=REQUIRED).returncode == 0
    return dict(yaml.safe_load(result.stdout)["services"])


def test_cluster_compose_has_three_nodes_three_collectors_and_lb(services: dict[str, Any]) -> None:
    """`compose config` accepts the file; it has es1..3, setup, collector-1..3, lb, shipper."""
    assert set(services) == {
        "es1",
        "es2",
        "es3",
        "setup",
        "collector-1",
        "collector-2",
        "collector-3",
        "lb",
        "shipper",
    }


def test_cluster_compose_refuses_to_start_without_certificates() -> None:
    """Without LOGPIPE_TLS_DIR compose fails and names the variable: the cluster is TLS only."""
    result = compose("config", "-q", env={"LOGPIPE_TOKEN": "test-token"})
    assert result.returncode != 0
    assert "LOGPIPE_TLS_DIR" in result.stderr


def test_cluster_compose_nodes_seed_each_other(services: dict[str, Any]) -> None:
    """Each node seeds the other two, all name the same initial masters and cluster."""
    nodes = {"es1", "es2", "es3"}
    for name in nodes:
        env = services[name]["environment"]
        assert env["node.name"] == name
        assert set(env["discovery.seed_hosts"].split(",")) == nodes - {name}
        assert env["cluster.initial_master_nodes"] == "es1,es2,es3"
        assert env["cluster.name"] == "logpipe"
        assert "ports" not in services[name], "a node would be reachable without security"


def test_cluster_compose_collectors_know_every_node_and_lb_knows_every_collector(
    services: dict[str, Any],
) -> None:
    """Collectors get all three node URLs; nginx's upstream lists each collector service."""
    for n in (1, 2, 3):
        env = services[f"collector-{n}"]["environment"]
        assert env["LOGPIPE_ES_URL"] == "http://es1:9200,http://es2:9200,http://es3:9200"
    upstreams = re.findall(
        r"server (collector-\d):8080 max_fails=\d+ fail_timeout=\d+s;",
        (NGINX / "nginx.conf").read_text(),
    )
    assert upstreams == ["collector-1", "collector-2", "collector-3"]
    shipper = services["shipper"]["environment"]
    assert shipper["LOGPIPE_COLLECTOR_URL"] == "https://lb:8443"
    assert shipper["LOGPIPE_CA_FILE"] == "/etc/logpipe/tls/ca.crt"


def test_cluster_proxy_retries_only_what_is_safe_and_matches_the_collector() -> None:
    """The proxy retries POSTs on errors/timeouts/502-504; its limits fit the collector's."""
    proxy = (NGINX / "logpipe-proxy.conf").read_text()
    assert re.search(
        r"proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;", proxy
    )
    config = load_config(ROOT / "docs/cluster/collector.yml")
    limit = re.search(r"client_max_body_size (\d+)m;", proxy)
    assert limit is not None
    assert int(limit.group(1)) * 1024 * 1024 == config.max_body_bytes
    read = re.search(r"proxy_read_timeout (\d+)s;", proxy)
    assert read is not None
    assert config.es_retry_seconds < int(read.group(1)), "nginx would give up before the collector"
    body = re.search(r"client_body_timeout (\d+)s;", proxy)
    assert body is not None
    assert int(body.group(1)) <= config.body_timeout
    for conf in ((NGINX / "nginx.conf").read_text(), (ROOT / ".ci/cluster").read_text()):
        idle = re.search(r"keepalive_timeout (\d+)s;", conf)
        assert idle is not None, "the upstream's idle connections need a bound"
        assert int(idle.group(1)) < config.keepalive_timeout


def test_cluster_collector_config_has_one_replica() -> None:
    """The collectors' config in the cluster asks for one replica of every shard."""
    assert load_config(ROOT / "docs/cluster/collector.yml").index.replicas == 1


def test_env_example_documents_every_variable_the_cluster_file_uses() -> None:
    """Each ${VAR} of docker-compose.cluster.yml has a line (maybe commented) in .env.example."""
    used = set(re.findall(r"\$\{(\w+)", FILE.read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(\w+)=", example, re.MULTILINE))
    assert used - documented == set()
