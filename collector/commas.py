"""Lists written as comma-separated text, as both programs' settings read them.

Imports nothing, so that the shipper's config can share it without the collector's.
"""

from __future__ import annotations


def split_commas(value: object) -> object:
    """`a, b,,c` as `["a", "b", "c"]`; a value that is not text is left to the model."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value
