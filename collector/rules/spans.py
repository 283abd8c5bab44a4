"""What every redaction shares: the mask, RE2 matches over bytes, masking a part of one,
and a rule applied to a text.

Redaction works on UTF-8 bytes: a match's part is replaced by a mask and the rest of the
match is kept (``password=[REDACTED]``). A masker returns the new bytes of a match and
how many masks it put in; a part that is empty or already the mask is left alone, so
redacting twice changes nothing the second time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import re2

MASK = b"[REDACTED]"


class Match(Protocol):
    """What the maskers read of an RE2 match over bytes."""

    def group(self, group: int = 0, /) -> bytes | None:
        """The text of a group; None when it took no part in the match."""

    def start(self, group: int = 0, /) -> int:
        """Where a group starts in the searched bytes (-1 when it took no part)."""

    def end(self, group: int = 0, /) -> int:
        """Where a group ends in the searched bytes (-1 when it took no part)."""

    def span(self, group: int = 0, /) -> tuple[int, int]:
        """Where a group starts and ends: one call for both ((-1, -1) when it took no part)."""

    @property
    def string(self) -> bytes:
        """The bytes searched."""


Masker = Callable[[Match], tuple[bytes, int]]


def masked_span(
    match: Match, start: int, end: int, mask: bytes = MASK, quote: bytes = b""
) -> tuple[bytes, int]:
    """The match with its bytes [start, end) replaced by `mask`, and the masks put in.

    Masks already in that part stay, each piece between them is masked on its own: so no
    count is lost to a later rule masking over an earlier one, and a part that is empty
    or already the mask is left as it is. What is masked is put between `quote`s.
    """
    offset, stop = match.span()
    whole = match.string[offset:stop]
    part = whole[start - offset : end - offset]
    pieces = part.split(mask)
    count = sum(1 for piece in pieces if piece)
    if not count:
        return whole, 0
    masked = quote + mask.join(mask if piece else b"" for piece in pieces) + quote
    return whole[: start - offset] + masked + whole[end - offset :], count


def masked_group(match: Match, group: int, mask: bytes = MASK) -> tuple[bytes, int]:
    """The match with one group's text replaced by `mask`."""
    start, end = match.span(group)
    if start < 0:
        return match.group(0) or b"", 0
    return masked_span(match, start, end, mask)


def group_number(pattern: str, name: str) -> int:
    """The number of the group called `name` in `pattern` (RE2's matches take numbers)."""
    return int(re2.compile(pattern).groupindex[name])


class CompiledPattern(Protocol):
    """What the redactor uses of a compiled RE2 pattern."""

    @property
    def groupindex(self) -> Mapping[str, int]:
        """The number of each named group."""

    def search(self, text: bytes, pos: int, /) -> Match | None:
        """The first match in `text` from `pos` on (what comes before is context)."""


@dataclass(frozen=True)
class Rule:
    """A redaction ready to run: its name, its pattern (source and compiled), its masker."""

    name: str
    source: str
    pattern: CompiledPattern
    masker: Masker
    # Where to search again when the masker keeps a match, as its text may hold one: a
    # group's start, or a function of the match (to skip what cannot hold one).
    rescan: int | Callable[[Match], int] | None = None

    def apply(self, data: bytes) -> tuple[bytes, int]:
        """`data` with this rule's matches masked, and the number of masks put in.

        A match inside a mask already there is left alone: a user's pattern such as
        ``[A-Z]{4,}`` finds ``REDACTED`` in it, and masking that would make
        ``[[REDACTED]]`` (and again each time the text is redacted).
        """
        pieces: list[bytes] = []
        done = pos = count = 0
        masks_in = _mask_starts(data)
        while pos <= len(data) and (match := self.pattern.search(data, pos)) is not None:
            start, end = match.span()
            if masks_in and _inside_a_mask(masks_in, start, end):
                pos = max(end, start + 1)
                continue
            replaced, masks = self.masker(match)
            if masks:
                pieces += [data[done:start], replaced]
                done, count = end, count + masks
            if masks or self.rescan is None:
                again = -1
            elif isinstance(self.rescan, int):
                again = match.start(self.rescan)
            else:
                again = self.rescan(match)
            pos = again if again > start else max(end, start + 1)
        return b"".join([*pieces, data[done:]]), count


def _mask_starts(data: bytes) -> list[int]:
    """Where each mask in `data` starts, in order."""
    starts: list[int] = []
    at = data.find(MASK)
    while at >= 0:
        starts.append(at)
        at = data.find(MASK, at + len(MASK))
    return starts


def _inside_a_mask(starts: list[int], start: int, end: int) -> bool:
    """Whether [start, end) lies within one of the masks starting at `starts`."""
    i = bisect_right(starts, start) - 1
    return i >= 0 and end <= starts[i] + len(MASK)
