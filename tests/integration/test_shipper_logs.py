"""GET /logs on a real shipper following real containers: filters, formats, the collector
down, a client that never reads, and the token."""

from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable

import docker
import pytest

from tests.conftest import Pipeline, wait_until
from tests.integration.capture import captured, metric, run, wait_exit, wait_lines

pytestmark = pytest.mark.integration

TOKEN = "tail-secret"
MISSED = re.compile(r"^logpipe: (\d+) lines missed$")


class Client:
    """A /logs client of the pipeline's shipper that reads lines when asked to."""

    def __init__(self, p: Pipeline, query: str = "", rcvbuf: int = 0) -> None:
        sock = socket.socket()
        if rcvbuf:  # before connecting, so that the window is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(60)
        sock.connect(("127.0.0.1", p.status_port))
        self.conn = http.client.HTTPConnection("127.0.0.1", p.status_port, timeout=60)
        self.conn.sock = sock
        self.conn.request("GET", f"/logs?{query}", headers={"Authorization": f"Bearer {TOKEN}"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.read()

    def lines_until(self, last: Callable[[str], bool]) -> list[str]:
        """The lines read up to and including the first for which `last` is true."""
        out: list[str] = []
        while True:
            raw = self.response.readline()
            assert raw, f"stream ended after {out[-3:]}"
            out.append(raw.decode("utf-8", "replace").rstrip("\n"))
            if last(out[-1]):
                return out

    def close(self) -> None:
        """Disconnect."""
        self.conn.close()


def attached(p: Pipeline, n: int) -> None:
    """Wait until the shipper counts `n` /logs clients."""
    wait_until(lambda: metric(p, "logpipe_shipper_tail_clients") == n, 30)


def test_lines_appear_on_logs_as_the_filters_and_format_ask(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """A name glob + stream client gets only those lines, in order, as `name | line`; an
    image glob client gets every line as NDJSON with the container's id, name and image."""
    p = pipeline_factory(shipper_tail_token=TOKEN).start()
    errors = Client(p, f"name={p.run}-a*&stream=stderr")
    everything = Client(p, "image=busy*&format=ndjson")
    attached(p, 2)
    script = 'for i in 1 2 3 4 5; do echo "out $i"; echo "err $i" >&2; done'
    a1 = run(docker_client, p, script, name=f"{p.run}-a1")
    b1 = run(docker_client, p, script, name=f"{p.run}-b1")
    assert wait_exit(a1) == wait_exit(b1) == 0
    a2 = run(docker_client, p, "echo done >&2", name=f"{p.run}-a2")
    assert wait_exit(a2) == 0

    got = errors.lines_until(lambda line: line.endswith("| done"))
    assert got == [f"{p.run}-a1 | err {i}" for i in range(1, 6)] + [f"{p.run}-a2 | done"]

    docs = [json.loads(line) for line in everything.lines_until(lambda x: '"done"' in x)]
    names = {a1.id: a1.name, b1.id: b1.name, a2.id: a2.name}
    for doc in docs:
        assert doc["name"] == names[doc["id"]]
        assert doc["image"] == "busybox:latest"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", doc["time"])
    expected = Counter(
        (f"{p.run}-{c}", s, f"{s[3:]} {i}") for c in ("a1", "b1") for s in ("stdout", "stderr")
        for i in range(1, 6)
    )  # fmt: skip
    expected[(f"{p.run}-a2", "stderr", "done")] = 1
    assert Counter((d["name"], d["stream"], d["line"]) for d in docs) == expected
    errors.close()
    everything.close()
    attached(p, 0)


def test_logs_works_while_the_collector_is_down(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """With no collector running, a container's lines still reach a /logs client."""
    p = pipeline_factory(shipper_tail_token=TOKEN)
    p.shipper.start()  # the collector is never started: its port has no listener
    p.wait_shipper()
    client = Client(p)
    attached(p, 1)
    c = run(docker_client, p, "echo one; echo two; echo three", name=f"{p.run}-alone")
    assert wait_exit(c) == 0
    got = client.lines_until(lambda line: line.endswith("| three"))
    assert got == [f"{p.run}-alone | {w}" for w in ("one", "two", "three")]
    wait_until(lambda: p.status()["collector_error"], 30)  # it really could not deliver
    client.close()


def test_a_client_that_never_reads_misses_lines_and_shipping_delivers_every_one(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """A stalled client's queue fills: every line is still indexed, and once it reads it is
    told how many it missed; what it read and what it missed add up to every line."""
    n = 20_000
    p = pipeline_factory(shipper_tail_token=TOKEN, shipper_tail_buffer_lines="100").start()
    stalled = Client(p, rcvbuf=4096)
    attached(p, 1)
    pad = "x" * 1000  # 20 MB in all: far past what the sockets' buffers hold
    script = f'i=1; while [ $i -le {n} ]; do echo "line $i {pad}"; i=$((i+1)); done'
    c = run(docker_client, p, script, name=f"{p.run}-busy")
    assert wait_exit(c, timeout=300) == 0
    wait_lines(p, c.id, n, timeout=300)
    indexed = captured(p, c.id)
    assert not indexed.duplicates()
    assert {d["message"] for d in indexed.lines} == {f"line {i} {pad}" for i in range(1, n + 1)}
    assert metric(p, "logpipe_shipper_tail_missed_total") > 0

    read = missed = 0

    def seen_all(line: str) -> bool:
        nonlocal read, missed
        notice = MISSED.match(line)
        if notice:
            missed += int(notice.group(1))
        else:
            assert line.startswith(f"{p.run}-busy | line "), line[:80]
            read += 1
        return read + missed >= n

    stalled.lines_until(seen_all)
    assert missed > 0
    assert read + missed == n
    stalled.close()


def test_logs_is_404_without_a_token_setting_and_401_with_a_wrong_token(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    """A shipper without LOGPIPE_TAIL_TOKEN answers 404 saying how to turn /logs on; one with
    it answers 401 to a wrong or missing token."""
    off = pipeline_factory()
    on = pipeline_factory(shipper_tail_token=TOKEN)
    for p in (off, on):
        p.shipper.start()
        p.wait_shipper()

    def status(p: Pipeline, token: str | None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(f"http://127.0.0.1:{p.status_port}/logs", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(req, timeout=10)
        with caught.value as answer:
            return answer.code, json.loads(answer.read())["error"]

    code, message = status(off, TOKEN)
    assert code == 404
    assert "LOGPIPE_TAIL_TOKEN" in message
    for token in ("wrong", None):
        code, message = status(on, token)
        assert code == 401
        assert "Bearer" in message


def test_head_of_logs_is_refused_and_holds_no_place(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    """HEAD /logs is 405 (a stream without a body would only hold a client's place)."""
    p = pipeline_factory(shipper_tail_token=TOKEN)
    p.shipper.start()
    p.wait_shipper()
    req = urllib.request.Request(
        f"http://127.0.0.1:{p.status_port}/logs",
        method="HEAD",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=10)
    caught.value.close()
    assert caught.value.code == 405
    assert metric(p, "logpipe_shipper_tail_clients") == 0
