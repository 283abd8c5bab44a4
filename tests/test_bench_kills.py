"""bench.kills without services: the kill schedule, the exact count of missing and
duplicated lines, the keys read from each shipper's documents, the drain's loop with a
fake shipper and clock, and the command lines --kills refuses."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from bench import kills, logdriver, peers, services, sidebyside
from bench.shippers import FLUENT_BIT, LOGPIPE, LOGSPOUT
from tests.test_bench import _refused

A = "a" * 64
B = "b" * 64


def test_kills_come_at_equal_shares_of_the_lines() -> None:
    """N kills come when the index passes k/(N+1) of the lines, k = 1..N; none for 0."""
    assert kills.schedule(360_000, 3) == [90_000, 180_000, 270_000]
    assert kills.schedule(10, 1) == [5]
    assert kills.schedule(360_000, 0) == []


def test_a_tally_counts_missing_and_duplicated_lines_and_their_extra_copies() -> None:
    """A line in no document is missing, one in three documents is duplicated with two
    extra copies, and a document of no printed line is counted apart."""
    printed = [(A, "stdout", 1), (A, "stdout", 2), (A, "stderr", 2), (B, "stdout", 1)]
    found = [(A, "stdout", 1)] * 3 + [(A, "stdout", 2), (B, "stdout", 1), (B, "stdout", 9)]
    t = kills.tally(printed, found)
    assert t == kills.Tally(
        expected=4, documents=6, distinct=3, missing=1, duplicated=1, extra=2, unexpected=1,
        shared=0,
    )  # fmt: skip


def test_lines_that_share_a_key_count_as_many_times_as_they_were_printed() -> None:
    """Two printed lines with one key, found once: one missing; a line found twice that
    was printed once: duplicated."""
    printed = [(A, "stdout", 1), (A, "stdout", 1), (A, "stdout", 2)]
    t = kills.tally(printed, [(A, "stdout", 1), (A, "stdout", 2), (A, "stdout", 2)])
    assert (t.missing, t.duplicated, t.extra, t.shared, t.distinct) == (1, 1, 1, 2, 2)
    whole = kills.tally(printed, printed)
    assert (whole.missing, whole.duplicated, whole.extra, whole.unexpected) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-12-07T12:12:03.364281282Z", 1_796_645_523_364_281_282),
        # dockerd's json-file drops trailing zeros; logpipe writes all nine digits
        ("2026-12-07T12:12:03.36428128Z", 1_796_645_523_364_281_280),
        ("2026-12-07T12:12:03.364281280Z", 1_796_645_523_364_281_280),
        ("2026-12-07T12:12:03Z", 1_796_645_523_000_000_000),
    ],
)
def test_a_docker_timestamp_is_read_to_the_nanosecond(text: str, ns: int) -> None:
    """RFC 3339 UTC times with nine, fewer or no fractional digits, in ns."""
    assert kills.stamp_ns(text) == ns


@pytest.mark.parametrize(
    "text",
    ["2026-12-07T12:12:03.1234567891Z", "2026-12-07T12:12:03.12+01:00", "1796645523", "x" * 25],
)
def test_a_time_that_is_not_a_docker_timestamp_is_refused(text: str) -> None:
    """A time with more than nine fractional digits, an offset or no date is an error."""
    with pytest.raises(ValueError, match=r"RFC 3339|fractional"):
        kills.stamp_ns(text)


def test_a_logpipe_document_is_keyed_by_container_stream_and_timestamp() -> None:
    """Dotted or nested fields give the same key; a gap or an event document holds no
    line: its action instead."""
    stamp = "2026-12-07T12:12:03.364281282Z"
    flat = {"@timestamp": stamp, "container.id": A, "stream": "stderr"}
    nested = {"@timestamp": stamp, "container": {"id": A}, "stream": "stderr"}
    key = (A, "stderr", kills.stamp_ns(stamp))
    assert kills.key_of(LOGPIPE, flat) == kills.key_of(LOGPIPE, nested) == key
    assert kills.key_of(LOGPIPE, {**nested, "event": {"kind": "event", "action": "gap"}}) == "gap"
    assert kills.key_of(LOGPIPE, {"event.kind": "event", "event.action": "die"}) == "die"


def test_a_fluent_bit_document_is_keyed_by_the_container_in_its_tag() -> None:
    """The container id comes from the log path in the tag; a document without it is an
    error, never a line of no container."""
    tag = f"docker.var.lib.docker.containers.{B}.{B}-json.log"
    doc = {"time": "2026-12-07T12:12:03.5Z", "stream": "stdout", kills.TAG_KEY: tag}
    assert kills.key_of(FLUENT_BIT, doc) == (B, "stdout", 1_796_645_523_500_000_000)
    with pytest.raises(ValueError, match="no container id"):
        kills.key_of(FLUENT_BIT, {"time": doc["time"], "stream": "stdout"})


def test_gap_documents_are_counted_apart_from_the_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """count() reads every document of the index, sets gap documents apart and tallies
    the rest against the printed lines."""
    stamp = "2026-12-07T12:12:03.000000001Z"
    docs = [
        {"@timestamp": stamp, "container.id": A, "stream": "stdout"},
        {"@timestamp": stamp, "container.id": A, "event.kind": "event", "event.action": "gap"},
        {"@timestamp": stamp, "container.id": A, "event.kind": "event", "event.action": "gap"},
        {"@timestamp": stamp, "container.id": A, "event.kind": "event", "event.action": "start"},
        {"@timestamp": stamp, "container.id": A},
    ]
    monkeypatch.setattr(kills, "sources", lambda index, fields: iter(docs))
    monkeypatch.setattr(kills, "printed", lambda made: iter([(A, "stdout", kills.stamp_ns(stamp))]))
    shown: list[str] = []
    monkeypatch.setattr(kills, "show_events", shown.append)
    out = kills.count(_Ship([]), kills.KillResult(LOGPIPE, 1, 0), [])
    assert out.events == {"gap": 2, "start": 1, "unreadable": 1}
    assert shown == [_Ship.index]
    assert out.counted is not None
    assert (out.counted.documents, out.counted.missing, out.counted.duplicated) == (1, 0, 0)


class _Clock:
    """time.monotonic and time.sleep of a clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _Ship:
    """A shipper whose index grows by `steps` per look (then stays), as killed and
    launched: what the drain did to it."""

    name = LOGPIPE
    index = "logs-bench.sidetest*"
    poll = 0.2

    def __init__(self, steps: list[int]) -> None:
        self.steps = steps
        self.seen = 0
        self.calls: list[str] = []

    def prepare(self) -> dict[str, list[int]]:
        self.calls.append("prepare")
        return {}

    def launch(self) -> dict[str, list[int]]:
        self.calls.append("launch")
        return {"shipper": [os.getpid()]}  # alive as long as the test runs

    def arrived(self) -> int:
        if self.steps:
            self.seen = self.steps.pop(0)
        return self.seen

    def kill(self) -> None:
        self.calls.append(f"kill at {self.seen}")

    def stop(self) -> None:
        self.calls.append("stop")

    def sent_again(self) -> int:
        return 7

    # The rest of a Shipper: a drain and its count use none of them.
    def make_index(self) -> str | None:
        raise AssertionError("the index is made before the drain")

    def unpacked(self) -> int | None:
        raise AssertionError("not asked of a drain")

    def cleanup(self) -> None:
        raise AssertionError("cleaned up after the drain")


def _drain(monkeypatch: pytest.MonkeyPatch, steps: list[int], n: int) -> tuple[Any, _Ship]:
    clock = _Clock()
    monkeypatch.setattr(time, "monotonic", clock.monotonic)
    monkeypatch.setattr(time, "sleep", clock.sleep)
    ship = _Ship(steps)
    return kills.drain(ship, 1000, n, 1), ship


def test_a_drain_kills_at_each_share_restarts_at_once_and_ends_when_nothing_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each kill comes at the first look past its share, a launch follows it at once,
    and the drain ends once the index took nothing for QUIET seconds."""
    out, ship = _drain(monkeypatch, [100, 300, 340, 600, 700, 1000], 3)
    assert out.killed_at == [300, 600, 1000]
    assert ship.calls == [
        "prepare", "launch", "kill at 300", "launch", "kill at 600", "launch",
        "kill at 1000", "launch", "stop",
    ]  # fmt: skip
    assert out.ended == f"nothing indexed for {kills.QUIET:.0f} s"
    assert out.sent_again == 7  # read once the shipper stopped


def test_a_drain_that_stops_short_of_a_kill_ends_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An index that stops growing before the last kill's share ends the drain with the
    kills not made named, instead of waiting for the time limit."""
    out, ship = _drain(monkeypatch, [100, 300, 400], 3)
    assert out.killed_at == [300]
    assert out.ended == f"nothing indexed for {kills.QUIET:.0f} s (2 kill(s) not made)"
    assert ship.calls[-1] == "stop"


def test_a_fluent_bit_config_names_its_tag_in_each_document_only_with_kills(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Include_Tag_Key goes into the es output only when asked (the drains with kills),
    under the field the keys are read from."""
    monkeypatch.setattr(services, "Child", lambda *a, **kw: None)
    for tag_key in (False, True):
        folder = tmp_path / str(tag_key)
        peers.FluentBit(Path("/bin/true"), ["/x-json.log"], "bench-x", folder, tag_key=tag_key)
        conf = (folder / "fluent-bit.conf").read_text()
        output = conf.split("[OUTPUT]", 1)[1]
        assert ("Include_Tag_Key    On" in output) is tag_key
        assert (f"Tag_Key            {kills.TAG_KEY}" in output) is tag_key


def test_with_kills_logspout_is_left_out_of_the_shippers_run() -> None:
    """logspout has no Elasticsearch output: drains with kills run the others only."""
    assert LOGSPOUT in sidebyside.runnable(logdriver.DEFAULT)
    assert sidebyside.runnable(logdriver.DEFAULT, 3) == [LOGPIPE, FLUENT_BIT]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--kills", "-1"], "'-1' is not a whole number of at least 0"),
        (["--kills", "two"], "'two' is not a whole number of at least 0"),
        (["--kills", "2", "--live", "1000"], "--kills is an option of a drain"),
        (["--kills", "2", "--warmup", "1"], "--kills times nothing"),
        (["--kills", "2", "--existing"], "--kills times nothing"),
        (["--kills", "2", "--log-opt", "max-size=1m"], "leave out --log-driver and --log-opt"),
        (["--kills", "2", "--only", "logpipe,logspout"], "logspout has none"),
    ],
)
def test_a_command_line_kills_cannot_run_is_refused_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    said: str,
) -> None:
    """--kills takes a whole number of at least 0 and refuses what a drain with kills
    cannot do, each with its own message, before touching any service."""

    def reached(*args: object) -> None:
        raise AssertionError("the command line was let through to the services")

    monkeypatch.setattr(peers, "find", reached)
    assert said in _refused(monkeypatch, capsys, sidebyside.main, *argv)
