"""The shipper's Prometheus metrics, served on /metrics."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class ReadTally(Collector):
    """Lines and bytes read from dockerd: plain additions on the per-line path, exposed as
    two counters when /metrics is scraped (a ``Counter.inc`` takes a lock per call, which
    cost more than the rest of counting a line)."""

    def __init__(self) -> None:
        self.lines = 0
        self.bytes = 0

    def add(self, size: int) -> None:
        """Count one line of `size` bytes."""
        self.lines += 1
        self.bytes += size

    def add_many(self, lines: int, size: int) -> None:
        """Count `lines` lines of `size` bytes in all."""
        self.lines += lines
        self.bytes += size

    def collect(self) -> Iterator[CounterMetricFamily]:
        """The two counters (the registry calls this on every scrape)."""
        yield CounterMetricFamily(
            "logpipe_shipper_lines_read",
            "Log lines read, through dockerd or from its json-file files.",
            value=self.lines,
        )
        yield CounterMetricFamily(
            "logpipe_shipper_bytes_read",
            "Log bytes read, through dockerd or from its json-file files.",
            value=self.bytes,
        )


READ = ReadTally()
REGISTRY.register(READ)
LINES_TRUNCATED = Counter(
    "logpipe_shipper_lines_truncated_total", "Lines cut at the maximum line length."
)
DUPLICATES_DROPPED = Counter(
    "logpipe_shipper_duplicates_dropped_total",
    "Entries dockerd sent again (resume, rotation) and the shipper dropped.",
)
GAPS = Counter("logpipe_shipper_gaps_total", "Gaps: lines lost before they could be read.")
UNCHECKED_ENDS = Counter(
    "logpipe_shipper_unchecked_ends_total",
    "Containers (not --rm) removed as their stream ended, before the end of their log"
    " could be checked (docker rm -f of a running container).",
)
EVENTS_MISSED = Counter(
    "logpipe_shipper_event_replays_short_total",
    "Subscriptions to dockerd's events whose replay began after where it was asked from"
    " (dockerd keeps its last 256 events): lifecycle events before it may be missing.",
)
TAIL_CLIENTS = Gauge("logpipe_shipper_tail_clients", "Clients of GET /logs attached now.")
TAIL_MISSED = Counter(
    "logpipe_shipper_tail_missed_total",
    "Lines a GET /logs client missed because it read slower than they came (its queue was"
    " full); shipping is not affected.",
)
BATCHES_SENT = Counter("logpipe_shipper_batches_sent_total", "Batch requests sent.")
BATCHES_ACKED = Counter("logpipe_shipper_batches_acked_total", "Batches the collector accepted.")
BATCHES_FAILED = Counter(
    "logpipe_shipper_batches_failed_total",
    "Batch requests that failed, by reason (connection, tls, unauthorized, token_file,"
    " http_503...).",
    ["reason"],
)
BATCHES_SPLIT = Counter(
    "logpipe_shipper_batches_split_total",
    "Batches (or halves of them) sent again as two halves, by why: too_large (413; in parts"
    " under the limit the collector said, where it said one), too_slow (408, or the request"
    " timeout with the body still being sent).",
    ["reason"],
)
BATCHES_PRESPLIT = Counter(
    "logpipe_shipper_batches_presplit_total",
    "Batches (or parts of them) larger than the body size a collector was learnt to take"
    " (after a 408 or 413) or said it takes, sent in parts at once instead of whole first.",
)
BODY_CAP = Gauge(
    "logpipe_shipper_body_cap_bytes",
    "The largest gzip body sent whole to a collector, learnt from the parts that went"
    " through after a 408 or 413; 0 while none is learnt (bodies of any size are sent whole).",
    ["collector"],
)
BODY_LIMIT = Gauge(
    "logpipe_shipper_body_limit_bytes",
    "The largest body a collector said it takes (its X-Logpipe-Body-Limit: a logpipe"
    " collector's LOGPIPE_MAX_BODY_BYTES, decompressed); larger ones are sent in parts"
    " under it. 0 while it said none.",
    ["collector"],
)
COLLECTOR_UP = Gauge(
    "logpipe_shipper_collector_up",
    "1 when the collector's last answer was an acknowledgement, 0 while it is backed off.",
    ["collector"],
)
RECONNECTS = Counter("logpipe_shipper_docker_reconnects_total", "Reconnections to dockerd streams.")
FOLLOWED = Gauge("logpipe_shipper_containers_followed", "Containers whose logs are followed.")
QUEUED = Gauge("logpipe_shipper_queued_records", "Records read but not yet in a batch.")
CURSOR_LAG = Gauge(
    "logpipe_shipper_cursor_lag_seconds",
    "Age of the oldest line read but not yet acknowledged by a collector (0 when none).",
)
DELIVERY_SECONDS = Histogram(
    "logpipe_shipper_delivery_seconds",
    "From Docker's timestamp of a batch's oldest line to the collector's acknowledgement.",
    buckets=(0.1, 0.25, 0.5, 0.75, 1, 2, 5, 15, 60, 300, 1800),
)
BUFFER_BYTES = Gauge("logpipe_shipper_buffer_bytes", "Bytes of batches in the disk buffer.")
BUFFER_BATCHES = Gauge(
    "logpipe_shipper_buffer_batches", "Batches in the disk buffer (unsent or unacknowledged)."
)
BUFFER_LIMIT = Gauge("logpipe_shipper_buffer_limit_bytes", "The disk buffer's bound.")
BUFFER_FULL = Counter(
    "logpipe_shipper_buffer_full_total", "Times the disk buffer was full and all reading stopped."
)
BUFFER_CORRUPT = Counter(
    "logpipe_shipper_buffer_corrupt_total", "Disk buffer segments found corrupt (lines lost)."
)
BUFFER_WRITE_ERRORS = Counter(
    "logpipe_shipper_buffer_write_errors_total",
    "Failed writes of a batch to the disk buffer (disk full, I/O error); each is retried.",
)
CURSOR_SAVE_ERRORS = Counter(
    "logpipe_shipper_cursor_save_errors_total",
    "Failed saves of the cursors (disk full, read-only, I/O error); each is retried.",
)
PAUSED = Gauge(
    "logpipe_shipper_containers_paused",
    "Containers whose reading is paused because the disk buffer is nearly full.",
)
PAUSES = Counter(
    "logpipe_shipper_container_pauses_total",
    "Times a container's reading was paused (busiest first) as the disk buffer filled.",
)
MULTILINE_FLUSHED = Counter(
    "logpipe_shipper_multiline_timeouts_total",
    "Multiline events sent because their next line did not come within the timeout.",
)
LINES_EXCLUDED = Counter(
    "logpipe_shipper_lines_excluded_total",
    "Events dropped on purpose by logpipe.include_lines / logpipe.exclude_lines labels.",
)
CONTAINER_LINES = Counter(
    "logpipe_shipper_container_lines_total",
    "Lines read per container (only with LOGPIPE_METRICS_PER_CONTAINER; bounded).",
    ["container"],
)
CONTAINER_BYTES = Counter(
    "logpipe_shipper_container_bytes_total",
    "Bytes read per container (only with LOGPIPE_METRICS_PER_CONTAINER; bounded).",
    ["container"],
)
OTHER_CONTAINERS = "_other"


class PerContainer:
    """Per-container line and byte counters, at most `limit` series; the rest are summed."""

    def __init__(self, enabled: bool, limit: int) -> None:
        self.enabled = enabled
        self._limit = limit
        self._names: set[str] = set()

    def read(self, name: str, size: int, lines: int = 1) -> None:
        """Count `lines` lines of `size` bytes in all for container `name`."""
        if not self.enabled:
            return
        if name not in self._names:
            if len(self._names) >= self._limit:
                name = OTHER_CONTAINERS
            else:
                self._names.add(name)
        CONTAINER_LINES.labels(name).inc(lines)
        CONTAINER_BYTES.labels(name).inc(size)
