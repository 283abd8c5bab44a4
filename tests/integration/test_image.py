"""The Docker image and docker-compose.yml: the compose file validates, and the image's
collector and shipper, run as containers against the host's Elasticsearch, ship a test
container's lines.

The image is built by `.ci/image` (tag LOGPIPE_IMAGE, default logpipe:dev); without it,
the tests that run it are skipped and say so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from docker.models.containers import Container
from elasticsearch import Elasticsearch

from collector.config import load_config
from collector.kibana import read_saved_objects
from collector.shape import nested
from shipper.config import ShipperConfig
from tests.conftest import ES_URL, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("LOGPIPE_IMAGE", "logpipe:dev")
DOCKER_SOCK = "/var/run/docker.sock"
CONTAINERS = "/var/lib/docker/containers"
REQUIRED = {"LOGPIPE_TOKEN": "test-token"}


# ---- docker-compose.yml ---------------------------------------------------------------
def compose_command() -> list[str]:
    """`docker compose` (v2) if present, else Debian's `docker-compose`; skip if neither."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed (apt: docker-compose)")


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run compose on our file with .env.example as the env file, from a clean environment."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("LOGPIPE_", "DOCKER_DATA_ROOT"))
    }
    cmd = [*compose_command(), "--env-file", str(ROOT / ".env.example")]
    cmd += ["-f", str(ROOT / "docker-compose.yml"), *args]
    return subprocess.run(
        cmd, cwd=ROOT, env=base | env, capture_output=True, text=True, check=False, timeout=60
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The compose file as compose resolves it, with the required variables set."""
    result = compose("config", env=REQUIRED)
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


def test_compose_file_validates_and_has_the_services_the_stack_needs(
    resolved: dict[str, Any],
) -> None:
    """`compose config` accepts the file; it has ES, Kibana, setup, dashboards, collector,
    lb, shipper."""
    assert set(resolved["services"]) == {
        "elasticsearch",
        "kibana",
        "setup",
        "dashboards",
        "collector",
        "lb",
        "shipper",
    }
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "version" not in raw, "the obsolete `version:` key"


def test_compose_refuses_to_start_without_a_token() -> None:
    """Without LOGPIPE_TOKEN, compose fails and says which variable to set."""
    result = compose("config", "-q", env={})
    assert result.returncode != 0
    assert "LOGPIPE_TOKEN" in result.stderr


def test_compose_services_are_wired_as_the_issue_asks(resolved: dict[str, Any]) -> None:
    """Pinned official images, scalable collectors behind lb, a read-only socket for the shipper."""
    svc = resolved["services"]
    for name, repo in (("elasticsearch", "elasticsearch"), ("kibana", "kibana")):
        image = svc[name]["image"]
        assert re.fullmatch(rf"docker\.elastic\.co/{repo}/{repo}:9\.\d+\.\d+", image), image
        assert "healthcheck" in svc[name]
    assert "ES_JAVA_OPTS" in svc["elasticsearch"]["environment"]
    assert any(v.startswith("es-data:") for v in _volumes(svc["elasticsearch"]))
    collector = svc["collector"]
    assert "ports" not in collector, "a published port would stop --scale collector=N"
    assert "container_name" not in collector
    assert "/readyz" in " ".join(collector["healthcheck"]["test"])
    assert collector["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert collector["environment"]["LOGPIPE_TOKENS"] == REQUIRED["LOGPIPE_TOKEN"]
    shipper = svc["shipper"]
    assert f"{DOCKER_SOCK}:{DOCKER_SOCK}:ro" in _volumes(shipper)
    assert any(v.startswith("shipper-state:") for v in _volumes(shipper))
    assert shipper["restart"] == "unless-stopped"
    assert shipper["environment"]["LOGPIPE_COLLECTOR_URL"] == "http://lb:8080"
    # Root, to open each --rm container's log file as dockerd creates it.
    assert shipper["user"] == "0:0"
    assert f"{CONTAINERS}:{CONTAINERS}:ro" in _volumes(shipper)
    published = {
        name: [p["target"] if isinstance(p, dict) else p for p in s.get("ports", [])]
        for name, s in svc.items()
    }
    assert {name for name, ports in published.items() if ports} == {"kibana", "lb"}


def test_compose_collectors_serve_the_read_api_to_the_env_files_read_token() -> None:
    """LOGPIPE_READ_TOKEN of .env turns on every collector's read API; unset, it stays off."""
    on = compose("config", env=REQUIRED | {"LOGPIPE_READ_TOKEN": "read-secret"})
    assert on.returncode == 0, on.stderr
    collector = yaml.safe_load(on.stdout)["services"]["collector"]
    assert collector["environment"]["LOGPIPE_READ_TOKENS"] == "read-secret"
    off = compose("config", env=REQUIRED)
    assert off.returncode == 0, off.stderr
    assert yaml.safe_load(off.stdout)["services"]["collector"]["environment"].get(
        "LOGPIPE_READ_TOKENS"
    ) in ("", None)


def test_compose_collectors_never_wait_for_kibana(resolved: dict[str, Any]) -> None:
    """The template's setup, which the collectors wait for, waits for no Kibana: a Kibana
    slow to start or failing delays only the dashboards' import, never the logs."""
    svc = resolved["services"]

    def waits_for(name: str) -> set[str]:
        found, todo = set(), [name]
        while todo:
            for dep in svc[todo.pop()].get("depends_on", {}):
                if dep not in found:
                    found.add(dep)
                    todo.append(dep)
        return found

    for name in ("collector", "lb", "shipper"):
        assert "kibana" not in waits_for(name), name
    setup = svc["setup"]
    assert "--kibana-url" not in setup["command"]
    assert "LOGPIPE_KIBANA_URL" not in setup["environment"]
    dashboards = svc["dashboards"]
    assert dashboards["command"] == [
        "logpipe-collector",
        "setup",
        "--kibana-url",
        "http://kibana:5601",
    ]
    assert "kibana" in dashboards["depends_on"]
    assert dashboards["restart"] == "no"


def _volumes(service: dict[str, Any]) -> list[str]:
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):  # compose v2 prints the long syntax
            ro = ":ro" if v.get("read_only") else ""
            out.append(f"{v['source']}:{v['target']}{ro}")
        else:
            out.append(str(v))
    return out


def test_env_example_documents_every_variable_the_compose_file_uses() -> None:
    """Each ${VAR} of docker-compose.yml has a line (maybe commented) in .env.example."""
    used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?(\w+)=", example, re.MULTILINE))
    assert used - documented == set()
    assert documented - used == set(), "documented but unused"


def test_compose_load_balancer_limits_fit_the_collectors() -> None:
    """The compose lb's limits fit its collectors' settings: every body they take gets
    through, a stalled sender is dropped no later than a collector would, the shipper
    hears the answer before its own timeout, and busy or timed-out collectors are retried."""
    nginx = ROOT / "docs/compose/nginx"
    conf = (nginx / "nginx.conf").read_text() + (nginx / "collector-proxy.conf").read_text()
    collector = load_config(ROOT / "docs/compose/collector.yml")
    shipper = ShipperConfig(_env_file=None)

    def value(directive: str) -> int:
        """The directive's number: seconds, or bytes for a size in m."""
        found = re.search(rf"\b{directive} (\d+)([sm]?);", conf)
        assert found is not None, f"{directive} is not set"
        return int(found.group(1)) * (1024 * 1024 if found.group(2) == "m" else 1)

    assert value("client_max_body_size") == collector.max_body_bytes
    assert value("client_body_timeout") <= collector.body_timeout
    assert collector.es_retry_seconds < value("proxy_read_timeout")
    assert value("proxy_read_timeout") < shipper.request_timeout
    assert value("keepalive_timeout") < collector.keepalive_timeout
    assert "http_503 http_504 non_idempotent" in conf


def test_compose_collector_config_is_valid_for_the_collector() -> None:
    """The YAML config compose mounts into setup and collectors loads without error."""
    config = load_config(ROOT / "docs/compose/collector.yml")
    assert config.retention.rules, "the example shows a retention rule"
    assert config.document_labels == ["*"], "the example keeps the default labels"
    assert config.indexed_attributes == ["*"], "the example indexes every parsed key"


# ---- the image -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def image(docker_client: docker.DockerClient) -> Any:
    """The built logpipe image, or a skip that says how to build it."""
    try:
        return docker_client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"image {IMAGE} not built: run `bash .ci/image` (LOGPIPE_IMAGE names it)")


@pytest.mark.integration
def test_image_runs_as_non_root_without_build_tools(
    image: Any, docker_client: docker.DockerClient
) -> None:
    """The final stage has labels, a health check, a non-root user and no pip or compiler."""
    config = image.attrs["Config"]
    assert config["User"] == "logpipe"
    assert config["Cmd"] == ["logpipe-collector", "serve"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["Labels"]["org.opencontainers.image.title"] == "logpipe"
    probe = "id -u; for t in pip pip3 gcc cc make; do command -v $t | sed 's/^/found: /'; done"
    probe += "; python3 -m pip -V"
    out = docker_client.containers.run(
        IMAGE, ["sh", "-c", f"{probe} 2>&1; true"], network_mode="none", remove=True
    ).decode()
    lines = out.splitlines()
    assert lines[0] == "10001"
    assert "No module named pip" in out, out
    assert not [line for line in lines if line.startswith("found: ")], out


@pytest.mark.integration
def test_image_has_the_logpipe_command_line(image: Any, docker_client: docker.DockerClient) -> None:
    """`logpipe` runs in the image, for `docker run --rm -it <image> logpipe tail`."""
    out = docker_client.containers.run(
        IMAGE, ["logpipe", "--version"], network_mode="none", remove=True
    ).decode()
    assert out.startswith("logpipe ")
    assert "not installed" not in out


# Run inside the image: the saved objects `setup --kibana-url` would import, and the license.
IMAGE_PROBE = """
import json, pathlib
from importlib import metadata
from collector import kibana
objects = kibana.read_saved_objects(kibana.find_dashboards_dir())
license = [f for f in metadata.files("logpipe") if f.name == "LICENSE"]
print(json.dumps({
    "files": [f.name for f in objects.files],
    "ids": objects.ids,
    "license": pathlib.Path(license[0].locate()).read_text() if license else "",
}))
"""


@pytest.mark.integration
def test_image_carries_the_dashboards_and_the_license(
    image: Any, docker_client: docker.DockerClient
) -> None:
    """The image's collector finds every dashboards/*.ndjson object, and LICENSE is installed."""
    out = docker_client.containers.run(
        IMAGE, ["python3", "-c", IMAGE_PROBE], network_mode="none", remove=True
    )
    found = json.loads(out)
    repo = read_saved_objects(ROOT / "dashboards")
    assert found["files"] == [f.name for f in repo.files]
    assert [tuple(i) for i in found["ids"]] == list(repo.ids)
    assert found["license"] == (ROOT / "LICENSE").read_text()


class Stack:
    """A collector and a shipper container from the image, on the host network."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.run = "t" + uuid.uuid4().hex[:10]
        self.host = f"host-{self.run}"
        self.port, self.status_port = free_port(), free_port()
        self.containers: list[Container] = []

    def start(self) -> None:
        """Start the collector, then the shipper pointed at it."""
        token = uuid.uuid4().hex
        common = {
            "network_mode": "host",
            "labels": {"logpipe.image-test": self.run},
        }
        self.collector = self._run(
            "collector",
            None,
            {
                "LOGPIPE_ES_URL": ES_URL,
                "LOGPIPE_LISTEN": f"127.0.0.1:{self.port}",
                "LOGPIPE_TOKENS": token,
                "LOGPIPE_ROUTING__DATASET": f"img.{self.run}",
            },
            common,
        )
        self.shipper = self._run(
            "shipper",
            ["logpipe-shipper"],
            {
                "LOGPIPE_COLLECTOR_URL": f"http://127.0.0.1:{self.port}",
                "LOGPIPE_TOKEN": token,
                "LOGPIPE_HOST_NAME": self.host,
                "LOGPIPE_HTTP_LISTEN": f"127.0.0.1:{self.status_port}",
                "LOGPIPE_INCLUDE_LABELS": f"logpipe.test={self.run}",
                "LOGPIPE_BATCH_MAX_AGE": "0.2",
            },
            common
            | {
                "volumes": {
                    DOCKER_SOCK: {"bind": DOCKER_SOCK, "mode": "ro"},
                    CONTAINERS: {"bind": CONTAINERS, "mode": "ro"},
                },
                "user": "0:0",  # as docker-compose.yml runs it
            },
        )

    def _run(
        self, name: str, command: list[str] | None, env: dict[str, str], kw: dict[str, Any]
    ) -> Container:
        c = self.client.containers.run(
            IMAGE, command, detach=True, name=f"logpipe-{name}-{self.run}", environment=env, **kw
        )
        self.containers.append(c)
        return c

    def logs(self) -> str:
        """Both containers' output, for failure messages."""
        return "\n".join(
            f"--- {c.name}\n{c.logs().decode(errors='replace')}" for c in self.containers
        )

    def answers(self, port: int, path: str) -> dict[str, Any] | None:
        """The JSON a process serves on 127.0.0.1:port/path, or None while it cannot."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                return dict(json.loads(resp.read() or b"{}"))
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        """Remove every container this stack started, test containers included."""
        for c in self.containers:
            c.remove(force=True)
        for c in self.client.containers.list(
            all=True, filters={"label": f"logpipe.test={self.run}"}
        ):
            c.remove(force=True)


@pytest.fixture
def stack(image: Any, docker_client: docker.DockerClient, template: None) -> Iterator[Stack]:
    """The image's collector and shipper running, removed after the test."""
    s = Stack(docker_client)
    try:
        s.start()
        yield s
    finally:
        s.remove()


@pytest.mark.integration
def test_collector_and_shipper_containers_ship_a_test_containers_lines(
    stack: Stack, es: Elasticsearch, docker_client: docker.DockerClient
) -> None:
    """Lines of a labelled busybox container reach Elasticsearch via the two containers."""
    ready = wait_until(lambda: stack.answers(stack.port, "/readyz"), 60)
    assert ready, stack.logs()
    health = wait_until(lambda: (h := stack.answers(stack.status_port, "/healthz")) and h, 60)
    assert health.get("docker_connected") is not False, stack.logs()

    n = 50
    script = f'i=1; while [ $i -le {n} ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done'
    docker_client.containers.run(
        "busybox:latest",
        ["sh", "-c", script + "; sleep 1"],
        detach=True,
        network_mode="none",
        labels={"logpipe.test": stack.run},
        name=f"logpipe-app-{stack.run}",
    )
    query = {
        "bool": {"filter": [{"term": {"host.name": stack.host}}, {"exists": {"field": "stream"}}]}
    }

    def shipped() -> int:
        es.indices.refresh(index="logs-*")
        return int(es.count(index="logs-*", query=query)["count"])

    try:
        wait_until(lambda: shipped() >= 2 * n, 60, 0.5)
    except pytest.fail.Exception:
        pytest.fail(f"lines did not arrive ({shipped()} of {2 * n})\n{stack.logs()}")
    hits = [
        nested(h["_source"])
        for h in es.search(index="logs-*", query=query, size=500)["hits"]["hits"]
    ]
    lines = sorted((h["stream"], h["message"]) for h in hits)
    expected = sorted(
        [("stdout", f"out {i}") for i in range(1, n + 1)]
        + [("stderr", f"err {i}") for i in range(1, n + 1)]
    )
    assert lines == expected
    assert {h["container"]["name"] for h in hits} == {f"logpipe-app-{stack.run}"}
    # It can hold a --rm container's log file: nothing said it cannot.
    shipper_log = stack.shipper.logs().decode(errors="replace")
    assert "log files" not in shipper_log, shipper_log
    if os.environ.get("LOGPIPE_REQUIRE_NATIVE") == "1":  # .ci/image built them in
        assert "compiled (logpipe_shipper_native)" in shipper_log, shipper_log
        collector_log = stack.collector.logs().decode(errors="replace")
        assert "compiled (logpipe_collector_native)" in collector_log, collector_log


@pytest.mark.integration
def test_image_health_check_probes_the_process_the_container_runs(stack: Stack) -> None:
    """The image's HEALTHCHECK command passes in both containers, each on its own port."""
    wait_until(lambda: stack.answers(stack.port, "/readyz"), 60)
    wait_until(lambda: stack.answers(stack.status_port, "/healthz"), 60)
    image = stack.collector.image
    assert image is not None
    test = image.attrs["Config"]["Healthcheck"]["Test"]
    for container in (stack.collector, stack.shipper):
        code, out = container.exec_run(test[1:])
        assert isinstance(out, bytes)  # not streamed
        assert code == 0, f"{container.name}: {out.decode()}"
    stack.collector.stop(timeout=10)
    code, out = stack.shipper.exec_run(test[1:])
    assert code == 0, "the shipper's probe must not depend on the collector"
