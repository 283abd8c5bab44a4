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
BATCHES_LOOKED_UP = Counter(
    "logpipe_collector_batches_looked_up_total",
    "Batches sent again whose ids were first looked up in their whole streams.",
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
LINES_TRUNCATED = Counter(
    "logpipe_collector_lines_truncated_total",
    "Log lines longer than max_line_bytes, indexed cut there and tagged truncated.",
)
TEXTS_TRUNCATED = Counter(
    "logpipe_collector_texts_truncated_total",
    "Source, event and gap lines whose free text (name, image, labels, detail, reason) was "
    "cut at the wire's bounds, by their sender or the collector, and tagged truncated.",
    ["kind"],
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
BULK_HUNG = Counter(
    "logpipe_collector_bulk_hung_total",
    "_bulk requests given up: their node answered neither them nor a probe (hung).",
)
RULE_DROPPED = Counter(
    "logpipe_collector_rule_dropped_total",
    "Lines dropped on purpose by a drop rule (never lost: the shipper is told).",
    ["rule"],
)
RULE_FAILURES = Counter(
    "logpipe_collector_rule_failures_total",
    "Documents a parsing rule tagged rule_failure (a value not of its type, a bad time).",
    ["rule"],
)


REDACTIONS = Counter(
    "logpipe_collector_redactions_total",
    "Secrets masked before indexing, per redaction (built-in or custom name).",
    ["redaction"],
)


def count_rules(
    dropped: dict[str, int], failures: dict[str, int], redactions: dict[str, int]
) -> None:
    """Count one batch's drops, failures and masks per rule (once per batch, not per line)."""
    for rule, n in dropped.items():
        RULE_DROPPED.labels(rule).inc(n)
    for rule, n in failures.items():
        RULE_FAILURES.labels(rule).inc(n)
    for name, n in redactions.items():
        REDACTIONS.labels(name).inc(n)


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
READ_REQUESTS = Counter(
    "logpipe_collector_read_requests_total",
    "Requests to the read API by endpoint (search, tail) and status.",
    ["endpoint", "status"],
)
TAILS_OPEN = Gauge("logpipe_collector_tails_open", "Tails (/v1/tail) open now.")
TAIL_POLLERS = Gauge(
    "logpipe_collector_tail_pollers", "Readers of Elasticsearch shared by tails with equal filters."
)
TAIL_LINES_SENT = Counter("logpipe_collector_tail_lines_total", "Lines handed to tail readers.")
TAIL_LINES_LATE = Counter(
    "logpipe_collector_tail_lines_late_total",
    "Lines that became searchable after the settle delay and were sent after later ones.",
)
TAIL_LINES_MISSED = Counter(
    "logpipe_collector_tail_lines_missed_total",
    "Lines skipped for tail readers that were too slow.",
)
