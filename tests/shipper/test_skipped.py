"""The periodic summary of containers the shipper does not follow."""

from __future__ import annotations

from shipper.skipped import NAMED, Skipped


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_skip_is_summed_up_at_once_with_its_reason() -> None:
    """The first containers skipped are named with their reasons in one line."""
    skipped = Skipped(60, Clock())
    skipped.note("db", "label logpipe.enable=false")
    skipped.note("cache", "name 'cache' in the name filter")
    assert skipped.summary() == (
        "not following 2 containers: db (label logpipe.enable=false), "
        "cache (name 'cache' in the name filter)"
    )


def test_repeated_decisions_say_nothing_new() -> None:
    """A container decided again at every event is summed up once, not every interval."""
    clock = Clock()
    skipped = Skipped(60, clock)
    skipped.note("db", "label logpipe.enable=false")
    assert skipped.summary() is not None
    for _ in range(100):
        skipped.note("db", "label logpipe.enable=false")
    clock.now += 600
    assert skipped.summary() is None


def test_at_most_one_summary_per_interval() -> None:
    """A container skipped soon after a summary waits for the interval to pass."""
    clock = Clock()
    skipped = Skipped(60, clock)
    skipped.note("a", "r")
    assert skipped.summary() is not None
    skipped.note("b", "r")
    clock.now += 30
    assert skipped.summary() is None
    clock.now += 30
    assert skipped.summary() == "not following 1 container: b (r)"


def test_summary_is_bounded() -> None:
    """Beyond the first few names a summary only counts the rest."""
    skipped = Skipped(60, Clock())
    for i in range(NAMED + 5):
        skipped.note(f"c{i}", "r")
    line = skipped.summary()
    assert line is not None
    assert line.startswith(f"not following {NAMED + 5} containers: c0 (r)")
    assert line.endswith(f"c{NAMED - 1} (r) and 5 more")
    assert f"c{NAMED} " not in line


def test_a_new_reason_is_news() -> None:
    """A container skipped for another reason than before is summed up again."""
    clock = Clock()
    skipped = Skipped(60, clock)
    skipped.note("a", "label logpipe.enable=false")
    skipped.summary()
    skipped.note("a", "environment LOGSPOUT=ignore")
    clock.now += 60
    assert skipped.summary() == "not following 1 container: a (environment LOGSPOUT=ignore)"
