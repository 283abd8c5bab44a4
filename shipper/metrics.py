"""The shipper's Prometheus metrics, served on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LINES_READ = Counter("logpipe_shipper_lines_read_total", "Log lines read from dockerd.")
BYTES_READ = Counter("logpipe_shipper_bytes_read_total", "Log bytes read from dockerd.")
LINES_TRUNCATED = Counter(
    "logpipe_shipper_lines_truncated_total", "Lines cut at the maximum line length."
)
DUPLICATES_DROPPED = Counter(
    "logpipe_shipper_duplicates_dropped_total",
    "Entries dockerd sent again (resume, rotation) and the shipper dropped.",
)
GAPS = Counter("logpipe_shipper_gaps_total", "Gaps: lines lost before they could be read.")
BATCHES_SENT = Counter("logpipe_shipper_batches_sent_total", "Batch requests sent.")
BATCHES_ACKED = Counter("logpipe_shipper_batches_acked_total", "Batches the collector accepted.")
BATCHES_FAILED = Counter(
    "logpipe_shipper_batches_failed_total", "Batch requests that failed, by reason.", ["reason"]
)
RECONNECTS = Counter("logpipe_shipper_docker_reconnects_total", "Reconnections to dockerd streams.")
FOLLOWED = Gauge("logpipe_shipper_containers_followed", "Containers whose logs are followed.")
QUEUED = Gauge("logpipe_shipper_queued_records", "Records read but not yet in a batch.")
CURSOR_LAG = Gauge(
    "logpipe_shipper_cursor_lag_seconds", "Now minus the oldest acknowledged cursor followed."
)
