"""Retention: which records are kept how long, and the lifecycle that enforces it.

Empty on purpose: the configuration imports ``collector.retention.rules``, which must not
pull in the lifecycle (and with it the Elasticsearch client).
"""
