"""What a ``GET /logs`` request asks for: which containers and streams, in which format.

``name`` and ``image`` are globs (``*``, ``?``, ``[...]``) matched against the whole
container name or image; commas (or the parameter given twice) mean any of them.
``stream`` is ``stdout`` or ``stderr`` (both when absent); ``format`` is ``plain``
(``name | line``, the default) or ``ndjson``. Anything else is a TailRequestError whose
message names the parameter.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from shipper.errors import TailRequestError
from shipper.record import Meta

Format = Literal["plain", "ndjson"]
FORMATS: tuple[Format, ...] = ("plain", "ndjson")
STREAMS = frozenset({"stdout", "stderr"})
KNOWN = frozenset({"name", "image", "stream", "format"})


def _globs(values: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern matching any of the comma-separated globs (None: no glob given)."""
    parts = [g.strip() for v in values for g in v.split(",") if g.strip()]
    if not parts:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in parts))


@dataclass(frozen=True, slots=True)
class Query:
    """A client's filters and format."""

    names: re.Pattern[str] | None = None
    images: re.Pattern[str] | None = None
    streams: frozenset[str] = STREAMS
    format: Format = "plain"

    def container(self, meta: Meta) -> bool:
        """Whether lines of this container are wanted (its streams aside)."""
        if self.names is not None and self.names.match(meta.name) is None:
            return False
        return self.images is None or self.images.match(meta.image) is not None


def parse(params: Mapping[str, Sequence[str]]) -> Query:
    """The query of a request's parameters (each name with all its values)."""
    unknown = sorted(set(params) - KNOWN)
    if unknown:
        raise TailRequestError(
            f"unknown parameter {unknown[0]!r}: /logs takes name, image, stream and format"
        )
    streams = {s.strip() for v in params.get("stream", ()) for s in v.split(",") if s.strip()}
    if streams - STREAMS:
        bad = sorted(streams - STREAMS)[0]
        raise TailRequestError(f"stream={bad!r}: write stdout or stderr")
    formats = params.get("format", ("plain",))
    fmt = formats[-1].strip() or "plain"
    if fmt not in FORMATS:
        raise TailRequestError(f"format={fmt!r}: write plain or ndjson")
    return Query(
        names=_globs(params.get("name", ())),
        images=_globs(params.get("image", ())),
        streams=frozenset(streams) or STREAMS,
        format="ndjson" if fmt == "ndjson" else "plain",
    )
