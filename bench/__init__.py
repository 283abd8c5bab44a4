"""Benchmarks of logpipe: ratios measured in one run on one machine, never timed tests."""

import argparse
from collections.abc import Callable


def summary(doc: str | None) -> str:
    """The first paragraph of a module's docstring as one line: its `--help` description."""
    first = (doc or "").strip().split("\n\n")[0]
    return " ".join(first.split())


def at_least(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `least` ("300,000" and "300_000" too)."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace(",", "").replace("_", ""))
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number of at least {least:,}"
            )
        return value

    return parse
