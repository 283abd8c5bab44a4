"""`.ci/check`'s test runs: every test in exactly one of them, the integration tests side
by side but for those marked `alone`, which run one at a time; each run lists its slowest
and reruns a failure once, and a failure of any fails the check. The script is read, not
run."""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

from _pytest.mark.expression import Expression

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / ".ci" / "check"
MARKERS = ("integration", "alone", "cluster", "slow")


def runs() -> dict[str, list[str]]:
    """The whole-suite pytest commands of .ci/check, by their `-m` expression."""
    found = {}
    for line in CHECK.read_text().splitlines():
        if line.startswith("python3 -m pytest -m "):
            argv = shlex.split(line)
            found[argv[argv.index("-m", 3) + 1]] = argv
    return found


def selected(expression: str, marks: set[str]) -> bool:
    """Whether `-m expression` selects a test carrying `marks`."""

    def marked(name: str, /, **kwargs: str | int | bool | None) -> bool:
        return name in marks

    return Expression.compile(expression).evaluate(marked)


def test_every_test_runs_in_exactly_one_of_the_checks_runs() -> None:
    """Whatever markers a test carries, one run of the check selects it, never two."""
    expressions = list(runs())
    assert len(expressions) == 3, expressions
    for n in range(len(MARKERS) + 1):
        for marks in itertools.combinations(MARKERS, n):
            chosen = [e for e in expressions if selected(e, set(marks))]
            assert len(chosen) == 1, (marks, chosen)


def test_alone_tests_run_one_at_a_time_and_the_others_side_by_side() -> None:
    """The run that selects `alone` integration tests has no workers; the one that selects
    the other integration tests has several, each given whole files."""
    by_role = {
        (selected(e, {"integration"}), selected(e, {"integration", "alone"})): argv
        for e, argv in runs().items()
    }
    alone, side_by_side = by_role[(False, True)], by_role[(True, False)]
    assert "-n" not in alone
    assert int(side_by_side[side_by_side.index("-n") + 1]) >= 2
    assert side_by_side[side_by_side.index("--dist") + 1] == "loadfile"


def test_each_run_lists_its_slowest_reruns_once_and_fails_the_check() -> None:
    """Every integration run prints its slowest 25; every run reruns a failure once and
    records its status, which the check exits with."""
    text = CHECK.read_text()
    for expression, argv in runs().items():
        assert "${rerun[@]}" in argv, expression
        assert argv[-2:] == ["||", "status=$?"], argv
        if any(selected(expression, {"integration", *more}) for more in ((), ("alone",))):
            assert argv[argv.index("--durations") + 1] == "25", expression
    assert re.search(r"^rerun=\(--reruns 1 ", text, re.M)
    assert text.rstrip().endswith('exit "$status"')


def test_the_cluster_tests_are_alone() -> None:
    """A file whose tests start the fixed-port topology marks them `alone` as well."""
    files = [
        f
        for f in (ROOT / "tests" / "integration").glob("test_*.py")
        if "pytest.mark.cluster" in f.read_text()
    ]
    assert files
    for f in files:
        assert "pytest.mark.alone" in f.read_text(), f.name
