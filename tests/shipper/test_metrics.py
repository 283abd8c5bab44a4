"""Unit tests of the shipper's read counters, exposed on /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from shipper.metrics import ReadTally


def _exposed(tally: ReadTally) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(tally)
    text = generate_latest(registry).decode()
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in text.splitlines())
        if not name.startswith("#")
    }


def test_lines_and_bytes_read_are_exposed_as_counters() -> None:
    """Each counted line adds one line and its size; a scrape shows both as _total."""
    tally = ReadTally()
    assert _exposed(tally) == {
        "logpipe_shipper_lines_read_total": 0.0,
        "logpipe_shipper_bytes_read_total": 0.0,
    }
    for size in (10, 0, 16384):
        tally.add(size)
    assert _exposed(tally) == {
        "logpipe_shipper_lines_read_total": 3.0,
        "logpipe_shipper_bytes_read_total": 16394.0,
    }
    tally.add(6)
    assert _exposed(tally)["logpipe_shipper_lines_read_total"] == 4.0
