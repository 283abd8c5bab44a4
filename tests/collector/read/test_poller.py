"""How often a poller asks Elasticsearch: a read every poll, the count of the late window
at most once a second however short the poll interval (a reader standing in for
Elasticsearch counts the requests; what they find is tested on the real node)."""

from __future__ import annotations

from typing import Any, cast

from collector.read.filters import Filters
from collector.read.poller import LATE_CHECK_MS, Pace, Poller, refresh_seconds, settle_problem
from collector.read.search import Reader

START_MS = 1_800_000_000_000


class CountingReader:
    """Answers every read with nothing, and counts the reads and the counts."""

    def __init__(self) -> None:
        self.pages = 0
        self.counts = 0

    async def page(self, *_: Any) -> list[Any]:
        self.pages += 1
        return []

    async def count(self, _: Any) -> int:
        self.counts += 1
        return 0

    async def seen(self, *_: Any) -> list[Any]:
        return []


class ClockPoller(Poller):
    """A poller on the test's clock (epoch ms)."""

    now_ms = START_MS

    def _now_ms(self) -> int:
        return self.now_ms


async def polls(interval_ms: int, late_window: float, rounds: int) -> CountingReader:
    """`rounds` polls `interval_ms` apart; the reader that counted them."""
    reader = CountingReader()
    pace = Pace(interval=interval_ms / 1000, settle=1.5, late_window=late_window)
    poller = ClockPoller(cast(Reader, reader), Filters(hosts=("h",)), pace)
    for n in range(rounds):
        poller.now_ms = START_MS + n * interval_ms
        await poller.poll()
    return reader


async def test_a_short_interval_counts_late_lines_once_a_second() -> None:
    """Polls every 0.25 s for 3 s: 12 reads, and a count at 0, 1 and 2 s only."""
    assert LATE_CHECK_MS == 1000
    reader = await polls(250, 30, 12)
    assert (reader.pages, reader.counts) == (12, 3)


async def test_a_long_interval_counts_every_poll() -> None:
    """Polls every 2 s: each one also counts."""
    reader = await polls(2000, 30, 4)
    assert (reader.pages, reader.counts) == (4, 4)


async def test_no_late_window_no_count() -> None:
    """late_window 0: the poller never counts."""
    reader = await polls(250, 0, 8)
    assert (reader.pages, reader.counts) == (8, 0)


def test_refresh_intervals_as_elasticsearch_writes_them() -> None:
    """Units from nanos to days; -1 (no periodic refresh) and nonsense are None."""
    assert refresh_seconds("1s") == 1
    assert refresh_seconds("500ms") == 0.5
    assert refresh_seconds("2m") == 120
    assert refresh_seconds(" 30s ") == 30
    assert refresh_seconds("-1") is None
    assert refresh_seconds("soon") is None


def test_a_settle_delay_within_half_a_second_of_the_refresh_is_a_problem() -> None:
    """1.5 s with the default 1 s refresh is fine; 1 s is not, nor 1.5 s with 5 s; the
    message says what to set."""
    assert settle_problem(1.5, "1s") is None
    assert settle_problem(1.5, None) is None  # Elasticsearch's default: 1 s while searched
    assert settle_problem(1.0, None) is not None
    assert settle_problem(1.2, "500ms") is None
    assert settle_problem(0.1, "-1") is None
    problem = settle_problem(1.0, "1s")
    assert problem is not None
    assert problem.endswith("set it to 1.5 or more")
    problem = settle_problem(1.5, "5s")
    assert problem is not None
    assert problem.startswith("LOGPIPE_READ_TAIL_SETTLE (1.5 s)")
    assert problem.endswith("set it to 5.5 or more")
