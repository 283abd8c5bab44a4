"""Unit tests of which containers are read when the shipper (re)connects."""

from __future__ import annotations

from shipper.catchup import CATCH_UP_NS, floor, gone_gaps, to_follow, worth_inspecting
from shipper.containers import ContainerSummary, Listed
from shipper.cursor import Cursor, Position, SavedMeta
from tests.shipper.summaries import container

ALIVE = 1_000 * 1_000_000_000


def summary(running: bool, finished_ns: int = 0) -> ContainerSummary:
    return container(cid="c", running=running, finished_ns=finished_ns)


def test_running_and_unfinished_containers_are_followed() -> None:
    """Running containers, and stopped ones not read to their end, are followed."""
    assert worth_inspecting(Listed(id="c", state="running"), None, 0)
    assert to_follow(summary(True), None, 0)
    unfinished = Cursor({"stdout": Position(5, 1)})
    assert worth_inspecting(Listed(id="c", state="exited"), unfinished, 0)
    assert to_follow(summary(False), unfinished, 0)
    assert not to_follow(summary(False), Cursor(done=True), 0)


def test_exited_while_away_is_read_only_when_the_last_run_is_known() -> None:
    """A container that exited after the shipper's last sign of life is read; older ones not."""
    exited = Listed(id="c", state="exited")
    assert not worth_inspecting(exited, None, 0)  # first run ever: no idea what was read
    assert worth_inspecting(exited, None, ALIVE)
    assert to_follow(summary(False, finished_ns=ALIVE + 1), None, ALIVE)
    assert to_follow(summary(False, finished_ns=ALIVE - CATCH_UP_NS), None, ALIVE)
    assert not to_follow(summary(False, finished_ns=ALIVE - CATCH_UP_NS - 1), None, ALIVE)
    assert not worth_inspecting(Listed(id="c", state="created"), None, ALIVE)


def test_where_a_new_container_is_read_from() -> None:
    """start_at=end reads new containers from the last sign of life (else now) at start."""
    assert floor("beginning", True, ALIVE, 5) == 0
    assert floor("end", True, ALIVE, 5) == ALIVE
    assert floor("end", True, 0, 5) == 5
    assert floor("end", False, ALIVE, 5) == 0  # seen starting later: all of it


def test_a_container_gone_while_away_is_a_gap_unless_read_to_the_end() -> None:
    """Both streams get a gap from the last line read; a log read to its end gets none."""
    meta = SavedMeta(name="web", image="nginx", labels={})
    cursor = Cursor({"stdout": Position(7, 1)}, floor=3, meta=meta)
    gaps = gone_gaps("c", cursor, 99)
    assert [(g.stream, g.from_ts, g.to_ts) for g in gaps] == [("stdout", 7, 99), ("stderr", 7, 99)]
    assert gaps[0].meta.name == "web"
    cursor.done = True
    assert gone_gaps("c", cursor, 99) == []
