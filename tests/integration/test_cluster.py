"""The multi-host topology of `.ci/cluster` under faults: two Docker hosts, two shippers,
nginx with TLS, three collectors, three Elasticsearch nodes with one replica.

Containers on both hosts print numbered lines while, in turn, the node holding the
write index's primary is killed and started again, a collector is killed and another
stopped with batches in flight, nginx is reloaded and restarted, and a shipper is
killed and started again. Every line must then be in Elasticsearch exactly once and
in order. Select it with `-m cluster`; `-s` shows the counts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import ssl
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from collector.wire import NDJSON, PATH_LOGS
from tests.conftest import wait_until
from tests.integration.cluster import Cluster, ClusterError, ports_taken

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.cluster,
    # Its topology listens on fixed ports and its faults take two cores' worth of nodes.
    pytest.mark.alone,
    pytest.mark.timeout(900),
]
log = logging.getLogger("logpipe.test.cluster")

# Each container prints "out i" and "err i" every ~20 ms until told to stop, then
# "last N" on stdout: about 90 lines/s per container, four containers in all.
PRINTER = (
    'i=1; while [ ! -f /tmp/stop ]; do echo "out $i"; echo "err $i" >&2; usleep 20000; '
    'i=$((i+1)); done; echo "last $((i-1))"'
)
STUCK = {"waiting for collector", "reconnecting"}


PARENT = Path("/var/tmp")


def stop_orphans() -> None:
    """Stop the topologies of test runs that died before their finalizer ran."""
    for root in PARENT.glob("logpipe-cluster-*"):
        owner = root / "owner.pid"
        try:
            alive = Path(f"/proc/{int(owner.read_text())}").exists()
        except (OSError, ValueError):
            alive = False
        if not alive:
            orphan = Cluster(root)
            with contextlib.suppress(ClusterError):
                orphan.script("stop", "--wipe", timeout=300)
            orphan.es.close()
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """The topology started by `.ci/cluster start`, stopped and wiped afterwards."""
    stop_orphans()
    taken = ports_taken()
    if taken:
        pytest.fail(f"ports {taken} are taken: stop the cluster using them (.ci/cluster stop)")
    root = Path(tempfile.mkdtemp(prefix="logpipe-cluster-", dir=PARENT))
    (root / "owner.pid").write_text(str(os.getpid()))
    topology = Cluster(root)
    try:
        seconds = topology.script("start")
        print(f"\n.ci/cluster start took {seconds:.0f}s")
        yield topology
    except ClusterError as exc:
        pytest.fail(str(exc))
    finally:
        topology.es.close()
        began = time.monotonic()
        with contextlib.suppress(ClusterError):
            topology.script("stop", "--wipe", timeout=300)
        print(f".ci/cluster stop took {time.monotonic() - began:.0f}s")
        shutil.rmtree(root, ignore_errors=True)


def start_printers(cluster: Cluster) -> list[tuple[int, Any]]:
    """Two printing containers on each Docker host: (host, container)."""
    made = []
    for host in (1, 2):
        client = cluster.docker(host)
        for k in (1, 2):
            # A run before this one (a rerun) may have left its printer behind.
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(f"printer-{host}-{k}").remove(force=True)
            c = client.containers.run(
                "busybox:latest",
                ["sh", "-c", PRINTER],
                name=f"printer-{host}-{k}",
                network_mode="none",
                labels={"logpipe.parser": "plain"},
                detach=True,
            )
            made.append((host, c))
    return made


def inject_faults(cluster: Cluster, notes: list[str]) -> None:
    """The four faults of the test, in turn, each written to `notes`."""
    time.sleep(8)
    node = cluster.write_primary_node()
    cluster.kill(node)
    notes.append(f"kill -9 {node} (write index primary)")
    time.sleep(5)
    notes.append(f"{node} started again in {cluster.script('start', node):.0f}s")

    cluster.kill("collector1")
    notes.append("kill -9 collector1")
    time.sleep(3)
    busy = wait_for_in_flight(cluster, 2, 15)
    pid = cluster.signal("collector2", signal.SIGTERM)
    assert cluster.wait_gone(pid, 45), "collector2 did not exit within 45s of SIGTERM"
    notes.append(f"SIGTERM collector2 ({'with' if busy else 'no'} batch seen in flight), exited")
    time.sleep(2)
    cluster.script("start", "collector1", "collector2")
    notes.append("collector1 and collector2 started again")

    cluster.signal("nginx", signal.SIGHUP)
    notes.append("nginx reloaded (SIGHUP)")
    time.sleep(3)
    pid = cluster.signal("nginx", signal.SIGTERM)
    assert cluster.wait_gone(pid, 20), "nginx did not exit on SIGTERM"
    cluster.script("start", "nginx")
    notes.append("nginx stopped (SIGTERM) and started again")

    time.sleep(3)
    cluster.kill("shipper1")
    notes.append("kill -9 shipper1")
    time.sleep(3)
    cluster.script("start", "shipper1")
    notes.append("shipper1 started again")
    time.sleep(3)


def wait_for_in_flight(cluster: Cluster, n: int, timeout: float) -> bool:
    """Wait until collector n has a batch in flight; whether one was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.collector_in_flight(n) > 0:
            return True
        time.sleep(0.02)
    return False


def expected_lines(container: Any) -> dict[str, list[str]]:
    """What an exited printer wrote, per stream, from its own last line; and the
    shipper's two events about it (start, die), which are indexed exactly once too."""
    # The whole of stdout, not `tail=1`: dockerd counts a tail over both streams before
    # it picks one, and its two copiers may write the last "err" after "last".
    lines = container.logs(stdout=True, stderr=False).decode().splitlines()
    last = lines[-1].split() if lines else []
    assert last[:1] == ["last"], f"{container.name} did not finish: {lines[-3:]}"
    n = int(last[1])
    out = [f"out {i}" for i in range(1, n + 1)] + [f"last {n}"]
    events = [f"container {container.name} start", f"container {container.name} die (exit code 0)"]
    return {"stdout": out, "stderr": [f"err {i}" for i in range(1, n + 1)], "event": events}


def compare(expected: list[str], got: list[str]) -> dict[str, int]:
    """Lost, duplicated and unexpected lines, and whether the order held."""
    counts = Counter(got)
    return {
        "expected": len(expected),
        "indexed": len(got),
        "lost": len(set(expected) - set(counts)),
        "duplicated": sum(c - 1 for c in counts.values() if c > 1),
        "unexpected": len(set(counts) - set(expected)),
        "out_of_order": int(got != expected and len(got) == len(expected)),
    }


def test_no_line_lost_or_duplicated_under_faults(cluster: Cluster) -> None:
    """Every printed line is indexed exactly once, in order, through all four faults."""
    printers = start_printers(cluster)
    notes: list[str] = []
    began = time.monotonic()
    try:
        inject_faults(cluster, notes)
    finally:
        for _, c in printers:
            c.exec_run(["touch", "/tmp/stop"])
    for _, c in printers:
        c.wait(timeout=60)
    printed_for = time.monotonic() - began

    want = {}
    for host, c in printers:
        for stream, lines in expected_lines(c).items():
            want[(f"logpipe-host-{host}", c.id, stream)] = lines
    total = sum(len(v) for v in want.values())
    ids = [c.id for _, c in printers]
    count_query = {"terms": {"container.id": ids}}

    def indexed() -> int:
        cluster.es.indices.refresh(index="logs-*")
        return int(cluster.es.count(index="logs-*", query=count_query)["count"])

    with contextlib.suppress(pytest.fail.Exception):
        wait_until(lambda: indexed() >= total, 180, 2)
    got = cluster.lines(ids)
    rows = {key: compare(lines, got.get(key, [])) for key, lines in want.items()}
    report(rows, notes, printed_for)

    unknown = {key: got[key] for key in set(got) - set(want)}
    assert not unknown, f"documents of streams no printer wrote: {unknown}"
    for key, row in rows.items():
        assert row["lost"] == 0, f"{key}: {row}"
        assert row["unexpected"] == 0, f"{key}: {row}"
        assert row["duplicated"] == 0, f"{key}: {row}"
        assert row["out_of_order"] == 0, f"{key}: lines out of @timestamp order"

    health = cluster.es.cluster.health(wait_for_status="green", timeout="120s")
    assert health["status"] == "green", health
    for n in (1, 2):
        wait_until(lambda n=n: settled(cluster.shipper_status(n)), 60, 1)  # type: ignore[misc]  # a lambda with a default: mypy cannot infer it


def settled(status: dict[str, Any]) -> bool:
    """A shipper with nothing queued or unacknowledged and no container stuck."""
    stuck = [c["name"] for c in status["containers"] if c["state"] in STUCK]
    return (
        not stuck
        and status["queued_records"] == 0
        and status["batches_unacknowledged"] == 0
        and status["collector_error"] is None
    )


def report(rows: dict[tuple[str, str, str], dict[str, int]], notes: list[str], secs: float) -> None:
    """Print the faults and the counts per host, container and stream; log a summary."""
    print(f"\nprinted for {secs:.0f}s; faults, in turn:")
    for note in notes:
        print(f"  {note}")
    print(f"{'host':16} {'container':12} {'stream':7} " + " ".join(f"{k:>12}" for k in COLUMNS))
    for (host, cid, stream), row in sorted(rows.items()):
        print(f"{host:16} {cid[:12]:12} {stream:7} " + " ".join(f"{row[k]:>12}" for k in COLUMNS))
    totals = {k: sum(r[k] for r in rows.values()) for k in COLUMNS}
    summary = " ".join(f"{k}={v}" for k, v in totals.items())
    print(f"total: {summary}")
    log.info("cluster fault test: %s", summary)


COLUMNS = ["expected", "indexed", "lost", "duplicated", "unexpected", "out_of_order"]


STALLED = 20
ABORTED = "logpipe_collector_requests_aborted_total"


def stalled_tls_request(cluster: Cluster) -> ssl.SSLSocket:
    """A TLS connection to nginx that sent a batch's headers and one byte of its body."""
    ctx = ssl.create_default_context(cafile=str(cluster.root / "tls" / "ca.crt"))
    raw = socket.create_connection(("127.0.0.1", 8643), timeout=10)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    token = (cluster.root / "token").read_text().strip()
    head = (
        f"POST {PATH_LOGS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {NDJSON}\r\nContent-Length: 100000\r\n\r\n{{"
    )
    sock.sendall(head.encode())
    return sock


def closed_by_peer(sock: ssl.SSLSocket, wait: float) -> bytes:
    """What nginx sends on a stalled connection until it closes it (fails after `wait`)."""
    sock.settimeout(wait)
    received = b""
    with contextlib.suppress(ssl.SSLError, ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def aborted(cluster: Cluster) -> float:
    """Requests the three collectors counted as aborted (stalled or disconnected)."""
    total = 0.0
    for n in (1, 2, 3):
        with urllib.request.urlopen(f"http://127.0.0.1:{8609 + n}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(ABORTED + "{"):
                    total += float(line.split()[1])
    return total


def test_stalled_senders_through_nginx_hold_no_collector(cluster: Cluster) -> None:
    """20 senders stalled mid-body at nginx: a shipper's lines are indexed meanwhile, nginx
    drops the stalled ones itself and no collector ever sees them."""
    before = aborted(cluster)
    with contextlib.ExitStack() as stack:
        stalled = [stack.enter_context(stalled_tls_request(cluster)) for _ in range(STALLED)]
        began = time.monotonic()
        printer = cluster.docker(1).containers.run(
            "busybox:latest",
            ["sh", "-c", 'i=1; while [ $i -le 2000 ]; do echo "during stall $i"; i=$((i+1)); done'],
            name="printer-during-stall",
            network_mode="none",
            labels={"logpipe.parser": "plain"},
            detach=True,
        )
        printer.wait(timeout=60)

        def indexed() -> int:
            cluster.es.indices.refresh(index="logs-*")
            query = {"term": {"container.id": printer.id}}
            return int(cluster.es.count(index="logs-*", query=query)["count"])

        wait_until(lambda: indexed() >= 2002, 60, 0.5)  # the lines, start and die
        took = time.monotonic() - began
        answers = [closed_by_peer(sock, 60) for sock in stalled]
        closed_after = time.monotonic() - began
    print(
        f"\n{STALLED} stalled TLS senders at nginx: 2000 lines of a healthy shipper indexed "
        f"after {took:.1f}s; nginx closed the stalled ones after {closed_after:.1f}s"
    )
    assert indexed() == 2002
    assert all(b" 408 " in a.split(b"\r\n", 1)[0] or a == b"" for a in answers), answers[:2]
    assert aborted(cluster) == before, "a stalled sender reached a collector"
