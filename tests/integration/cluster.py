"""The topology `.ci/cluster` starts, driven from a test: start, stop, its pieces' pids,
its addresses, and reading back what one host's containers wrote."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import docker
from elasticsearch import Elasticsearch

from collector.shape import nested

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "cluster"
# The script's default ports: HTTP of the three nodes, collectors, shippers, nginx.
PORTS = [9610, 9611, 9612, 9710, 9711, 9712, 8610, 8611, 8612, 8620, 8621, 8643]


class ClusterError(Exception):
    """The topology did not start; the message names the piece and ends with its log."""


def ports_taken() -> list[int]:
    """The cluster's ports something already listens on (another cluster, say)."""
    taken = []
    for port in PORTS:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                taken.append(port)
    return taken


class Cluster:
    """One `.ci/cluster` topology, its state under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        base = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
        self.env = {**base, "LOGPIPE_CLUSTER_DIR": str(root), "PYTHONPATH": str(ROOT)}
        self.env.pop("DOCKER_HOST", None)
        self.es = Elasticsearch(
            ["http://127.0.0.1:9610", "http://127.0.0.1:9611", "http://127.0.0.1:9612"],
            request_timeout=30,
            retry_on_timeout=True,
            max_retries=5,
        )

    def script(self, *args: str, timeout: float = 400) -> float:
        """Run `.ci/cluster ARGS`; the seconds it took. Fails with the script's words."""
        began = time.monotonic()
        proc = subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if self.root.exists():  # not after `stop --wipe`
            with (self.root / "script.log").open("a") as out:
                out.write(f"$ .ci/cluster {' '.join(args)}\n{proc.stderr}{proc.stdout}")
        if proc.returncode != 0:
            raise ClusterError(f".ci/cluster {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
        return time.monotonic() - began

    def pid(self, piece: str) -> int:
        """The pid of a piece (es1, collector2, shipper1, nginx...)."""
        path = self.root / piece / ("nginx.pid" if piece == "nginx" else "pid")
        return int(path.read_text().strip())

    def signal(self, piece: str, sig: int) -> int:
        """Send `sig` to a piece; its pid."""
        pid = self.pid(piece)
        os.kill(pid, sig)
        return pid

    def kill(self, piece: str, timeout: float = 60) -> None:
        """kill -9 a piece and wait until it is gone."""
        self.wait_gone(self.signal(piece, signal.SIGKILL), timeout)

    @staticmethod
    def wait_gone(pid: int, timeout: float) -> bool:
        """Wait until `pid` no longer runs (a zombie counts as gone); whether it went."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                return True
            if state == "Z":
                return True
            time.sleep(0.1)
        return False

    def docker(self, host: int) -> docker.DockerClient:
        """A client of Docker host 1 or 2."""
        return docker.DockerClient(base_url=f"unix://{self.root}/docker{host}/docker.sock")

    def shipper_status(self, n: int) -> dict[str, Any]:
        """Shipper n's /status."""
        with urllib.request.urlopen(f"http://127.0.0.1:{8619 + n}/status", timeout=5) as r:
            return dict(json.loads(r.read()))

    def collector_in_flight(self, n: int) -> float:
        """Collector n's batches in flight, from its /metrics (0 when it does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{8609 + n}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        for line in text.splitlines():
            if line.startswith("logpipe_collector_batches_in_flight "):
                return float(line.split()[1])
        return 0.0

    def write_primary_node(self) -> str:
        """The node holding the primary of the write index of logpipe's docker stream,
        once its replica is started (else killing the primary's node loses the shard)."""
        # This distribution lacks the _data_stream API; the newest generation is written.
        answer = self.es.perform_request("GET", "/_resolve/index/logs-docker.*")
        streams = answer.body["data_streams"]
        write = max(streams[0]["backing_indices"], key=lambda name: name.rsplit("-", 1)[1])
        self.es.cluster.health(index=write, wait_for_status="green", timeout="60s")
        shards = self.es.cat.shards(index=write, format="json", h="prirep,node,state").body
        assert isinstance(shards, list), shards  # format=json: one object a shard
        return str(next(s["node"] for s in shards if s["prirep"] == "p"))

    def lines(self, container_ids: list[str]) -> dict[tuple[str, str, str], list[str]]:
        """Messages per (host, container id, stream), in @timestamp order (all pages);
        the shipper's own events about these containers (a gap, say) under stream 'event'."""
        self.es.indices.refresh(index="logs-*")
        pit = self.es.open_point_in_time(index="logs-*", keep_alive="2m")["id"]
        out: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        after: list[Any] | None = None
        query = {"terms": {"container.id": container_ids}}
        try:
            while True:
                resp = self.es.search(
                    pit={"id": pit, "keep_alive": "2m"},
                    query=query,
                    size=5000,
                    sort=[{"@timestamp": "asc"}, {"_shard_doc": "asc"}],
                    search_after=after,
                    source_includes=["message", "host.name", "container.id", "stream"],
                )
                assert not resp["_shards"]["failed"], resp["_shards"]
                hits = resp["hits"]["hits"]
                if not hits:
                    return out
                for hit in hits:
                    src = nested(hit["_source"])
                    stream = src.get("stream", "event")
                    key = (src["host"]["name"], src["container"]["id"], stream)
                    out[key].append(src["message"])
                after = hits[-1]["sort"]
        finally:
            self.es.close_point_in_time(id=pit)
