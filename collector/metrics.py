"""The collector's Prometheus metrics, served on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "logpipe_collector_requests_total", "HTTP requests to the ingest API by status.", ["status"]
)
RECORDS_RECEIVED = Counter("logpipe_collector_records_received_total", "Wire lines received.")
RECORDS_INDEXED = Counter("logpipe_collector_records_indexed_total", "Documents newly indexed.")
RECORDS_DUPLICATE = Counter(
    "logpipe_collector_records_duplicate_total", "Documents that already existed (replays)."
)
RECORDS_RETRIED = Counter(
    "logpipe_collector_records_retried_total", "Documents sent again after 429/5xx/conn errors."
)
RECORDS_DEAD_LETTERED = Counter(
    "logpipe_collector_records_dead_lettered_total", "Documents stored in the dead-letter stream."
)
LINES_INVALID = Counter(
    "logpipe_collector_lines_invalid_total", "Wire lines that were malformed or off-schema."
)
BULK_SECONDS = Histogram(
    "logpipe_collector_bulk_seconds",
    "Duration of one _bulk request to Elasticsearch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BULK_MERGED = Counter(
    "logpipe_collector_bulk_merged_total",
    "Small batches sent to Elasticsearch in one _bulk request together with others.",
)
IN_FLIGHT = Gauge("logpipe_collector_batches_in_flight", "Batches being processed now.")
BODIES_READING = Gauge(
    "logpipe_collector_bodies_reading", "Request bodies being received now (before a place)."
)
REQUESTS_ABORTED = Counter(
    "logpipe_collector_requests_aborted_total",
    "Ingest requests whose body never arrived whole: the sender stalled past body_timeout "
    "(body_timeout) or closed the connection (disconnected).",
    ["reason"],
)
for _reason in ("body_timeout", "disconnected"):
    REQUESTS_ABORTED.labels(_reason)  # shown as 0 from the start
ES_REACHABLE = Gauge(
    "logpipe_collector_elasticsearch_reachable",
    "1 while Elasticsearch answers; 0 once no node answered and a probe failed.",
)
