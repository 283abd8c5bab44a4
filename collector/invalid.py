"""A config's validation errors, located by the keys a person wrote. Pure.

pydantic puts the member of a union that failed into the location (``str``,
``list[str]``, ``literal['long',...]``, ``function-after[_check(), TypedField]``): no
key of the file, so it is left out. A union reports every member that failed; when
one member got further into the value than the others (a list given where a glob or
a list of globs is taken: its item is wrong, not its being a list), only that member's
errors are worth saying; among members as far in, one that took the value's kind and
found something else wrong is worth saying rather than those that did not take it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic_core import ErrorDetails

_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})

Location = tuple[int | str, ...]


def is_tag(part: int | str) -> bool:
    """Whether a part of an error's location names a union member, not a key."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or "(" in part)


def _member(loc: Sequence[int | str]) -> tuple[Location, int]:
    """(the location up to its first union member, how deep past it); depth -1 if none."""
    for i, part in enumerate(loc):
        if is_tag(part):
            return tuple(loc[:i]), len(loc) - i - 1
    return tuple(loc), -1


def readable(errors: Iterable[ErrorDetails]) -> list[tuple[Location, ErrorDetails]]:
    """Each error with its location less union members, the union members that got
    less far into the value than another member of the same union left out."""
    listed = list(errors)
    deepest: dict[Location, int] = {}
    for err in listed:
        union, depth = _member(err["loc"])
        if depth >= 0:
            deepest[union] = max(depth, deepest.get(union, -1))
    # A member that took the value's kind and found something else wrong says more than
    # the members that did not take its kind at all ('format' is for dates, rather than
    # "should be 'long', 'double'... or a mapping").
    said: set[Location] = set()
    for err in listed:
        union, depth = _member(err["loc"])
        if depth >= 0 and depth == deepest[union] and not _wrong_kind(err):
            said.add(union)
    kept = []
    for err in listed:
        union, depth = _member(err["loc"])
        if depth >= 0 and (depth < deepest[union] or (union in said and _wrong_kind(err))):
            continue
        kept.append((tuple(part for part in err["loc"] if not is_tag(part)), err))
    return kept


def _wrong_kind(err: ErrorDetails) -> bool:
    """Whether the error says only that the value is not of the member's kind."""
    return err["type"].endswith("_type") or err["type"] in ("literal_error", "enum")


# What a value of each kind looks like, for a value given as text of no such kind.
_KIND_WORDS = {
    "int_parsing": "is not a whole number: write digits only (sizes are bytes, times seconds)",
    "int_from_float": "is not a whole number: write digits only (sizes are bytes, times seconds)",
    "float_parsing": "is not a number: write digits only, a fraction after a dot (seconds)",
    "bool_parsing": "is not a boolean: write true or false",
}


def message(err: ErrorDetails) -> str:
    """pydantic's message, or, for text where a number or boolean is taken ('1MiB'), the
    text and how to write it; a union's members keep pydantic's words, merged later."""
    words = _KIND_WORDS.get(err["type"])
    value = err.get("input")
    if words is None or not isinstance(value, str) or any(map(is_tag, err["loc"])):
        return str(err["msg"])
    return f"{value!r} {words}"
