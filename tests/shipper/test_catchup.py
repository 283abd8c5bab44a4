"""Unit tests of which containers are read when the shipper (re)connects."""

from __future__ import annotations

import pytest

from shipper.catchup import (
    CATCH_UP_NS,
    DOCKERD_EVENTS_KEPT,
    ReplayCheck,
    floor,
    gone_gaps,
    left_unread,
    to_follow,
    worth_inspecting,
)
from shipper.containers import ContainerSummary, Listed
from shipper.cursor import Cursor, Position, SavedMeta
from tests.shipper.summaries import container

ALIVE = 1_000 * 1_000_000_000


def summary(running: bool, finished_ns: int = 0) -> ContainerSummary:
    return container(cid="c", running=running, finished_ns=finished_ns)


def test_running_and_unfinished_containers_are_followed() -> None:
    """Running containers, and stopped ones not read to their end, are followed."""
    assert worth_inspecting(Listed(id="c", state="running"), None, 0, False)
    assert to_follow(summary(True), None, 0, False, "end")
    unfinished = Cursor({"stdout": Position(5, 1)})
    assert worth_inspecting(Listed(id="c", state="exited"), unfinished, 0, False)
    assert to_follow(summary(False), unfinished, 0, False, "end")
    assert not to_follow(summary(False), Cursor(done=True), 0, False, "beginning")


def test_exited_while_away_is_read_when_the_last_run_is_known() -> None:
    """A container that exited after the shipper's last sign of life is read; older ones
    were there for the last run to decide on, and are not."""
    exited = Listed(id="c", state="exited")
    assert worth_inspecting(exited, None, ALIVE, False)
    assert to_follow(summary(False, finished_ns=ALIVE + 1), None, ALIVE, False, "end")
    assert to_follow(summary(False, finished_ns=ALIVE - CATCH_UP_NS), None, ALIVE, False, "end")
    long_ago = summary(False, finished_ns=ALIVE - CATCH_UP_NS - 1)
    assert not to_follow(long_ago, None, ALIVE, False, "beginning")
    assert not left_unread(long_ago, None, False, "end")
    assert not worth_inspecting(Listed(id="c", state="created"), None, ALIVE, False)


def test_exited_again_while_away_is_read_though_it_was_finished() -> None:
    """Read to its end, then started and exited again while the shipper was down: read."""
    finished = Cursor({"stdout": Position(5, 1)}, done=True)
    again = summary(False, finished_ns=ALIVE + 1)
    assert worth_inspecting(Listed(id="c", state="exited"), finished, ALIVE, False)
    assert to_follow(again, finished, ALIVE, False, "end")


def test_a_finished_container_is_not_read_again() -> None:
    """A stopped container whose cursor says it was read to its end is not even inspected,
    at the first start of a state too (a run killed before it noted being alive)."""
    finished = Cursor({"stdout": Position(5, 1)}, done=True)
    for fresh in (False, True):
        assert not worth_inspecting(Listed(id="c", state="exited"), finished, 0, fresh)
        assert not to_follow(summary(False, finished_ns=9), finished, 0, fresh, "beginning")
        assert not left_unread(summary(False, finished_ns=9), finished, fresh, "end")


def test_stopped_before_the_first_start_follows_start_at() -> None:
    """At the first start of a state, a stopped container's log is read to its end with
    start_at=beginning; with start_at=end it is left unread (and given a cursor)."""
    for state in ("exited", "dead"):
        assert worth_inspecting(Listed(id="c", state=state), None, 0, True)
        assert not worth_inspecting(Listed(id="c", state=state), None, 0, False)
    assert not worth_inspecting(Listed(id="c", state="created"), None, 0, True)
    stopped = summary(False, finished_ns=7)
    assert to_follow(stopped, None, 0, True, "beginning")
    assert not left_unread(stopped, None, True, "beginning")
    assert not to_follow(stopped, None, 0, True, "end")
    assert left_unread(stopped, None, True, "end")
    assert not left_unread(summary(True), None, True, "end")  # running: followed from now
    assert not to_follow(stopped, None, 0, False, "beginning")  # a later listing


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


def test_a_replay_that_began_after_where_it_was_asked_from_is_said_once() -> None:
    """dockerd keeps its last 256 events: a replay of that many, all later than the time
    asked for, may have lost the ones before them; said once, at the last of them, with
    the oldest dockerd still had."""
    check = ReplayCheck(since=1_000, subscribed=10_000)
    said = [check.see(2_000 + n) for n in range(DOCKERD_EVENTS_KEPT)]
    assert said[:-1] == [None] * (DOCKERD_EVENTS_KEPT - 1)
    assert said[-1] == 2_000
    assert check.see(9_000) is None  # said once
    assert check.see(20_000) is None  # a live event


@pytest.mark.parametrize(
    ("since", "first", "count"),
    [
        (1_000, 1_000, DOCKERD_EVENTS_KEPT),  # it began where asked: nothing before it lost
        (1_000, 2_000, DOCKERD_EVENTS_KEPT - 1),  # fewer than dockerd keeps: all of them
        (0, 2_000, DOCKERD_EVENTS_KEPT),  # asked from nowhere in particular
    ],
)
def test_a_replay_that_reached_back_is_not_said(since: int, first: int, count: int) -> None:
    check = ReplayCheck(since=since, subscribed=10_000)
    assert all(check.see(first + n) is None for n in range(count))


def test_live_events_do_not_count_as_replayed() -> None:
    """Events stamped after the subscription are live, however many come."""
    check = ReplayCheck(since=1_000, subscribed=10_000)
    assert check.see(2_000) is None
    assert all(check.see(10_001 + n) is None for n in range(2 * DOCKERD_EVENTS_KEPT))
