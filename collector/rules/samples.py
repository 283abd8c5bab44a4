"""The lines `rules test` is given, as the collector would receive them. Pure.

The collector joins nothing: each line the shipper sends is one document. The shipper
sends a container's lines one by one, unless its labels ask for multiline joining
(``logpipe.multiline``...) or filtering (``logpipe.include_lines`` /
``logpipe.exclude_lines``): then it joins and filters them first, with the rules of
:mod:`shipper.multiline`, and those are applied here too, to the same labels. The lines
are taken as read at once: an event is never sent on its ``logpipe.multiline.timeout``,
only when the next event starts or the input ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shipper.multiline import Joiner, Shaping
from shipper.record import LogRecord, Meta


@dataclass(frozen=True, slots=True)
class Sample:
    """One record as the collector would receive it: its text and where it came from."""

    first: int  # the number of its first line (from 1)
    lines: int  # physical lines it holds (more than 1: joined)
    data: bytes
    kept: bool = True  # False: the labels' include/exclude_lines leave it out


def samples(lines: Iterable[bytes], shaping: Shaping | None) -> Iterator[Sample]:
    """`lines` (each without its line break) as the records the shipper would send."""
    if shaping is None:
        for number, line in enumerate(lines, 1):
            yield Sample(number, 1, line)
        return
    meta = Meta(id="rules-test", name="sample", image="sample")
    joiner = None if shaping.multiline is None else Joiner(shaping.multiline)
    for seq, line in enumerate(lines):
        record = LogRecord(meta, "stdout", 0, seq, line)
        for event in [record] if joiner is None else joiner.push(record, 0.0):
            yield _sample(event, shaping)
    for event in [] if joiner is None else joiner.flush():
        yield _sample(event, shaping)


def _sample(event: LogRecord, shaping: Shaping) -> Sample:
    return Sample(event.seq + 1, event.lines, event.data, shaping.keeps(event))
