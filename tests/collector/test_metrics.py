"""The collector's metrics are the ones the README lists."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from collector import metrics

README = Path(__file__).parents[2] / "README.md"


def defined() -> set[str]:
    """Every metric collector/metrics.py defines, named as /metrics shows it."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_the_readme_lists_every_metric_of_the_collector() -> None:
    """Each metric the collector serves is named in the README's table of them, and only those."""
    text = README.read_text().split("The collector's `/metrics`", 1)[1]
    table = text.split("\n\n", 2)[1]
    listed = set(re.findall(r"`(logpipe_collector_[a-z_]+)", table))
    assert listed == defined()
