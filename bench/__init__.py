"""Benchmarks of logpipe: ratios measured in one run on one machine, never timed tests."""


def summary(doc: str | None) -> str:
    """The first paragraph of a module's docstring as one line: its `--help` description."""
    first = (doc or "").strip().split("\n\n")[0]
    return " ".join(first.split())
