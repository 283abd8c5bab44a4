"""Card numbers: candidates found by RE2, masked only where whole digit groups pass Luhn."""

from __future__ import annotations

from collector.rules.spans import MASK, Match, group_number

# A run of digits, single spaces and dashes, not inside a word, nor after a decimal point,
# a minus or a plus sign (floats, negative ids, phone numbers: 10% of them pass Luhn).
CARD = r"(?:^|[^0-9A-Za-z_.+-])(?P<run>[2-6](?:[ -]?[0-9]){12,})\b"
_RUN = group_number(CARD, "run")
_SEPARATORS = b" -"


def mask_cards(match: Match) -> tuple[bytes, int]:
    """Each run of whole digit groups (13-19 digits, first digit 2-6) passing Luhn, masked."""
    before = (match.group(0) or b"")[: match.start(_RUN) - match.start(0)]
    masked, count = _masked_run(match.group(_RUN) or b"")
    return before + masked, count


def _masked_run(run: bytes) -> tuple[bytes, int]:
    """`run` with each card number in it masked, and how many there were."""
    groups = _digit_groups(run)
    pieces: list[bytes] = []
    done = 0  # bytes of `run` already copied to pieces
    count = 0
    first = 0
    while first < len(groups):
        last = _card_ending_at(run, groups, first)
        if last is None:
            first += 1
            continue
        pieces += [run[done : groups[first][0]], MASK]
        done = groups[last][1]
        count += 1
        first = last + 1
    return b"".join([*pieces, run[done:]]), count


def _digit_groups(run: bytes) -> list[tuple[int, int]]:
    """The [start, end) of each group of digits between separators."""
    groups: list[tuple[int, int]] = []
    start = 0
    for index, byte in enumerate(run):
        if byte in _SEPARATORS:
            groups.append((start, index))
            start = index + 1
    groups.append((start, len(run)))
    return groups


def _card_ending_at(run: bytes, groups: list[tuple[int, int]], first: int) -> int | None:
    """The last group of the longest card number starting at group `first`, if any."""
    if run[groups[first][0]] not in b"23456":
        return None
    digits = b""
    found = None
    for last in range(first, len(groups)):
        digits += run[groups[last][0] : groups[last][1]]
        if len(digits) > 19:
            break
        if len(digits) >= 13 and luhn_valid(digits):
            found = last
    return found


def luhn_valid(digits: bytes) -> bool:
    """Whether ASCII digits pass the Luhn check (the check digit of card numbers)."""
    total = 0
    for position, byte in enumerate(reversed(digits)):
        value = byte - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0
