"""The Elasticsearch query of a read request's filters. Pure.

Reads only logpipe's own log streams (:data:`READ_PATTERN`), never another tool's
``logs-*-*`` nor the dead letters. Free text is a ``simple_query_string`` on ``message``
with only the operators that cannot blow up: no regular expressions (that query has
none), no fuzzy or slop operators; prefixes (``err*``) stay, bounded by Elasticsearch's
clause limit. A syntax error in it is read as plain text, never as an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from collector.read.filters import Filters

READ_PATTERN = "logs-*.keep_*-*"
TEXT_FLAGS = "AND|OR|NOT|PHRASE|PRECEDENCE|WHITESPACE|ESCAPE|PREFIX"
# Query clause of Elasticsearch's query DSL, as the client takes it.
Clause = dict[str, Any]


def nanos_iso(ns: int) -> str:
    """ns since the epoch as the RFC 3339 text a `date_nanos` range reads exactly."""
    seconds, fraction = divmod(ns, 10**9)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{fraction:09d}Z"


def _globs(field: str, globs: tuple[str, ...]) -> Clause:
    """Any of the globs on a keyword field (a plain name is a term query)."""
    clauses: list[Clause] = [
        {"wildcard": {field: {"value": glob}}}
        if "*" in glob or "?" in glob
        else {"term": {field: glob}}
        for glob in globs
    ]
    return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses}}


def _time_range(filters: Filters) -> Clause | None:
    bounds: dict[str, str] = {}
    if filters.since is not None:
        bounds["gte"] = nanos_iso(filters.since)
    if filters.until is not None:
        bounds["lt"] = nanos_iso(filters.until)  # until is exclusive
    if not bounds:
        return None
    return {"range": {"@timestamp": {**bounds, "format": "strict_date_optional_time_nanos"}}}


def text_clause(text: str) -> Clause:
    """The free-text part: every word must be there unless `|` says otherwise."""
    return {
        "simple_query_string": {
            "query": text,
            "fields": ["message"],
            "flags": TEXT_FLAGS,
            "default_operator": "and",
            "lenient": True,
        }
    }


def filter_clauses(filters: Filters) -> list[Clause]:
    """The clauses every document read must match."""
    clauses: list[Clause] = []
    time_range = _time_range(filters)
    if time_range is not None:
        clauses.append(time_range)
    for field, globs in (
        ("host.name", filters.hosts),
        ("service.name", filters.services),
        ("container.name", filters.names),
        ("event.dataset", filters.datasets),
    ):
        if globs:
            clauses.append(_globs(field, globs))
    if filters.levels:
        clauses.append({"terms": {"log.level": list(filters.levels)}})
    if filters.stream is not None:
        clauses.append({"term": {"stream": filters.stream}})
    if filters.text is not None:
        clauses.append(text_clause(filters.text))
    return clauses


def query(filters: Filters, *extra: Clause) -> Clause:
    """The whole query: the filters, `extra` clauses, and log lines only unless asked."""
    must_not: list[Clause] = [] if filters.all_kinds else [{"exists": {"field": "event.kind"}}]
    return {"bool": {"filter": [*filter_clauses(filters), *extra], "must_not": must_not}}
