"""Latency from a line's Docker timestamp to its first visibility in a search.

A thread polls Elasticsearch for marker lines (``lpmark``) of one host; the first poll
that finds a marker document gives its latency: poll time minus the document's
``@timestamp``, which is Docker's own timestamp of the line. Only searches are used,
no refresh is forced, so what is measured is what a person searching would see.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from bench import corpus, services
from shipper.demux import parse_ts

POLL = 0.25  # seconds between searches: the resolution of every sample


def iso(ns: int) -> str:
    """An RFC 3339 time with nanoseconds for a date_nanos range query."""
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


class Probe:
    """Polls for marker lines and keeps the latency of each the first time it is seen."""

    def __init__(self, index: str, host: str) -> None:
        self.index = index
        self.host = host
        self.first_seen: dict[str, tuple[int, int]] = {}  # _id -> (docker ts, seen ns)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._since = time.time_ns()

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.time_ns()
            try:
                hits = self._search(max(self._since, began - 20_000_000_000))
            except OSError:
                hits = []
            seen = time.time_ns()
            for hit in hits:
                if hit["_id"] not in self.first_seen:
                    ts = parse_ts(hit["_source"]["@timestamp"].encode())
                    self.first_seen[hit["_id"]] = (ts, seen)
            self._stop.wait(max(0.0, POLL - (seen - began) / 1e9))

    def _search(self, since_ns: int) -> list[dict[str, Any]]:
        body = {
            "size": 10000,
            "_source": ["@timestamp"],
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"host.name": self.host}},
                        {"match": {"message": corpus.MARKER}},
                        {"range": {"@timestamp": {"gte": iso(since_ns)}}},
                    ]
                }
            },
        }
        answer = services.es("POST", f"/{self.index}/_search?ignore_unavailable=true", body)
        return list(answer["hits"]["hits"])

    def latencies(self, start_ns: int, end_ns: int) -> list[float]:
        """Seconds to visibility of the markers Docker stamped within [start, end)."""
        return sorted(
            (seen - ts) / 1e9 for ts, seen in self.first_seen.values() if start_ns <= ts < end_ns
        )


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of sorted values, nearest rank."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))]
