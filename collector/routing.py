"""Where each record goes: its data stream, from the container's hints, else the
collector's config, then the retention rules. Pure: no I/O.

A stream's name is Elastic's ``logs-<dataset>-<namespace>``, its dataset carrying the
retention rule that keeps its records.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from collector.retention.rules import RulesHolder, stream_dataset
from collector.wire import Source

COMPOSE_SERVICE_LABEL = "com.docker.compose.service"


class Defaults(Protocol):
    """What routing reads of the collector's settings (the enrichment context has it)."""

    @property
    def dataset(self) -> str:
        """The dataset of containers without a dataset hint."""

    @property
    def namespace(self) -> str:
        """The namespace of containers without a namespace hint."""

    @property
    def retention(self) -> RulesHolder:
        """The retention rules in force, read per record so a reload applies at once."""


def service_name(source: Source) -> str:
    """The compose service if the container has one, else the container name."""
    return source.labels.get(COMPOSE_SERVICE_LABEL) or source.container_name


class Route(NamedTuple):
    """Where a record goes: its dataset and namespace, and the retention rule keeping it."""

    dataset: str
    namespace: str
    rule: str

    @property
    def stream_dataset(self) -> str:
        """The dataset part of the data stream name, which carries the rule."""
        return stream_dataset(self.dataset, self.rule)

    @property
    def stream(self) -> str:
        """The data stream's name."""
        return data_stream_name(self.stream_dataset, self.namespace)


def route(source: Source, ctx: Defaults, level: str | None = None) -> Route:
    """The data stream of a record of `source` at `level` (hints, else config; then rules)."""
    dataset = source.hints.dataset or ctx.dataset
    namespace = source.hints.namespace or ctx.namespace
    values = (service_name(source), source.container_name, source.image, namespace, dataset)
    # A container's labels never change, so its id stands for them in the cache key.
    key = (source.host, source.container_id, *values, level)
    rule = ctx.retention.rules.rule_for(values, source.labels, level, key)
    return Route(dataset, namespace, rule)


def data_stream_name(dataset: str, namespace: str) -> str:
    """Elastic's data stream naming scheme for logs."""
    return f"logs-{dataset}-{namespace}"
