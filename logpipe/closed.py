"""Closed indices a collector's answer names, and the warning they make on stderr.

Elasticsearch skips a closed index when it searches, so the lines it holds are missing
from the answer. The collector says so: a search page in its `Logpipe-Closed-Indices`
header (`<count> <name>,<name>,...`, the names at most ten), a tail in a `closed` event
(`{"closed": <count>, "indices": [<name>, ...]}`). Either becomes one warning; the lines
on stdout stay as they are. When the collector could not list them, it says why instead
(the header `Logpipe-Closed-Indices-Unchecked: <reason>`, the event `closed_unchecked`,
`{"reason": <reason>}`): a warning that the command could not check.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

HEADER = "Logpipe-Closed-Indices"
# Why the collector could not list the closed indices (then it cannot name them).
UNCHECKED_HEADER = "Logpipe-Closed-Indices-Unchecked"
MAX_REASON = 300


@dataclass(frozen=True)
class Closed:
    """How many closed indices may hide lines, and the names the collector gave."""

    count: int
    names: tuple[str, ...]

    def warning(self) -> str:
        """The warning for the user, naming the indices."""
        listed = ", ".join(self.names)
        if self.count > len(self.names):
            listed += f" and {self.count - len(self.names)} more"
        which = (
            "index of the streams read is" if self.count == 1 else "indices of the streams read are"
        )
        return (
            f"warning: lines may be missing: Elasticsearch skips closed indices, and "
            f"{self.count} {which} closed: {listed}"
        )


def from_header(value: str | None) -> Closed | None:
    """What a search page's header says; None without one (or with one not understood)."""
    if not value:
        return None
    count, _, names = value.strip().partition(" ")
    if not (count.isascii() and count.isdigit()) or int(count) == 0:
        return None
    return Closed(int(count), tuple(n for n in names.split(",") if n))


def from_event(data: str) -> Closed | None:
    """What a tail's `closed` event says; None when its data is not understood."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    count, names = body.get("closed"), body.get("indices")
    if not isinstance(count, int) or count <= 0 or not isinstance(names, list):
        return None
    return Closed(count, tuple(str(n) for n in names))


def unchecked_warning(command: str, reason: str) -> str:
    """The warning when the collector could not list the closed indices: `command` (the
    search, the tail) could not check, and why in the collector's few words."""
    shown = "".join(c if c.isprintable() else " " for c in reason).strip()[:MAX_REASON]
    return (
        f"warning: lines may be missing: {command} could not check for closed indices, "
        f"which Elasticsearch skips: {shown or 'no reason given'}"
    )


def reason_of_event(data: str) -> str | None:
    """The reason a tail's `closed_unchecked` event gives; None when not understood."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) else None
