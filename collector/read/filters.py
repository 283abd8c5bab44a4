"""The filters of a read request, parsed from its query parameters. Pure.

Every problem is a :class:`~collector.errors.BadRequest` naming the parameter, so the
reader knows what to change. Times are resolved once, against the `now` given, to
nanoseconds since the epoch (UTC).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from collector.errors import BadRequest

# Least level first; a `level` filter keeps that one and those after it.
LEVEL_ORDER = ("trace", "debug", "info", "warn", "error", "fatal")
_LEVEL_ALIASES = {"warning": "warn"}
STREAMS = ("stdout", "stderr")
_RELATIVE = re.compile(r"(\d+)(s|m|h|d)")
_UNIT_NS = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}
# Glob values: names as Docker and Compose allow them, plus the `*` and `?` wildcards.
_GLOB = re.compile(r"[A-Za-z0-9_.:/@*?+-]+")
DEFAULT_SINCE_NS = 24 * 3600 * 10**9
MAX_NS = 2**63 - 1  # the last instant of a `date_nanos` field (2262-04-11T23:47:16Z)
# The query parameters of both endpoints' filters; an empty one is refused.
FILTER_PARAMS = (
    *("q", "since", "until", "host", "service", "name", "dataset", "level", "stream", "kind"),
)


@dataclass(frozen=True, slots=True)
class Filters:
    """Which documents a request reads; times in ns since the epoch, None = unbounded."""

    since: int | None = None
    until: int | None = None
    hosts: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()  # the levels kept; empty = no level filter
    stream: str | None = None
    text: str | None = None
    all_kinds: bool = False

    def without_times(self) -> Filters:
        """The same filters over all times: what tails with equal filters share."""
        return replace(self, since=None, until=None)


def parse_time(name: str, value: str, now_ns: int) -> int:
    """`30s`, `15m`, `2h`, `7d` before `now_ns`, or an RFC 3339 time, in ns since the epoch;
    a BadRequest outside what a `date_nanos` field holds (Elasticsearch would fail late)."""
    relative = _RELATIVE.fullmatch(value.strip())
    if relative:
        ns = now_ns - int(relative.group(1)) * _UNIT_NS[relative.group(2)]
    else:
        ns = _absolute(name, value.strip())
    if not 0 <= ns <= MAX_NS:
        raise BadRequest(
            f"{name}: '{value[:40]}' is outside the times logs are stored with "
            "(1970-01-01 to 2262-04-11)"
        )
    return ns


def _absolute(name: str, value: str) -> int:
    match = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", value)
    if not match:
        raise BadRequest(
            f"{name}: '{value}' is neither a duration (30s, 15m, 2h, 7d) nor an RFC 3339 "
            "time (2026-12-02T10:00:00Z, an offset allowed)"
        )
    head, fraction, zone = match.groups()
    try:
        whole = datetime.fromisoformat(head + ("+00:00" if zone == "Z" else zone))
        whole.timestamp()  # a year 1 with a later offset is before year 1: out of range
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"{name}: '{value}' is not a valid time: {exc}") from exc
    return int(whole.timestamp()) * 10**9 + int((fraction or "").ljust(9, "0"))


def parse_globs(name: str, value: str | None) -> tuple[str, ...]:
    """Comma-separated globs (`api*,web`), each checked for characters a name can hold."""
    if value is None:
        return ()
    globs = tuple(part.strip() for part in value.split(",") if part.strip())
    for glob in globs:
        if not _GLOB.fullmatch(glob) or len(glob) > 256:
            raise BadRequest(
                f"{name}: '{glob[:80]}' is not a name or a glob (letters, digits, . _ - : / @ +, "
                "with * and ? as wildcards, up to 256 characters)"
            )
    return globs


def parse_level(value: str | None) -> tuple[str, ...]:
    """The levels at `value` and above (`warning` is `warn`)."""
    if value is None:
        return ()
    level = _LEVEL_ALIASES.get(value.strip().lower(), value.strip().lower())
    if level not in LEVEL_ORDER:
        raise BadRequest(
            f"level: '{value}' is not a level: use one of {', '.join(LEVEL_ORDER)} "
            "(that level and above are kept)"
        )
    return LEVEL_ORDER[LEVEL_ORDER.index(level) :]


def parse_stream(value: str | None) -> str | None:
    """`stdout` or `stderr`."""
    if value is None or value in STREAMS:
        return value
    raise BadRequest(f"stream: '{value}' is neither stdout nor stderr")


def parse_text(value: str | None, max_chars: int) -> str | None:
    """The free-text query, bounded in length."""
    if value is None or not value.strip():
        return None
    if len(value) > max_chars:
        raise BadRequest(f"q: {len(value)} characters, more than the {max_chars} allowed")
    return value


def parse_kind(value: str | None) -> bool:
    """Whether lifecycle events and gaps are wanted too (`kind=all`)."""
    if value is None or value == "lines":
        return False
    if value == "all":
        return True
    raise BadRequest(f"kind: '{value}' is not 'all' (every record) or 'lines' (the default)")


def check_params(params: Mapping[str, str], known: tuple[str, ...]) -> None:
    """A BadRequest for a parameter of another name (a misspelled filter would read
    everything), an empty filter (`service=`: which service?) or one given twice (only
    one would count: `host=a&host=b` is `host=a,b`)."""
    seen: set[str] = set()
    for name, value in params.items():
        if name not in known:
            raise BadRequest(
                f"{name[:40]}: no such parameter (the parameters are {', '.join(known)})"
            )
        if not value.strip(" ,") and name != "q":
            raise BadRequest(f"{name}: empty: give a value, or leave the parameter out")
        if name in seen:
            raise BadRequest(
                f"{name}: given more than once: give it once (several names or globs: "
                "comma-separated, any of them matches)"
            )
        seen.add(name)


def parse_filters(
    params: Mapping[str, str], now_ns: int, max_text: int, default_since: int | None
) -> Filters:
    """The filters the parameters ask for; `default_since` (ns) applies without `since`,
    before `until` (else now), and `until` defaults to unbounded (now, for a search).
    `until` is exclusive: a search's pages read [since, until)."""
    since = params.get("since")
    until = params.get("until")
    since_ns = parse_time("since", since, now_ns) if since else None
    until_ns = parse_time("until", until, now_ns) if until else None
    if since_ns is None and default_since is not None:
        since_ns = max(0, (now_ns if until_ns is None else until_ns) - default_since)
    if since_ns is not None and until_ns is not None and until_ns <= since_ns:
        if since is None:  # the default window before `until`, cut at 1970: until is then
            raise BadRequest(
                f"until: '{until}' is the earliest time logs are stored with "
                "(1970-01-01T00:00:00Z): no time lies before it"
            )
        raise BadRequest(f"until: '{until}' is not after since '{since}': the range is empty")
    return Filters(
        since=since_ns,
        until=until_ns,
        hosts=parse_globs("host", params.get("host")),
        services=parse_globs("service", params.get("service")),
        names=parse_globs("name", params.get("name")),
        datasets=parse_globs("dataset", params.get("dataset")),
        levels=parse_level(params.get("level")),
        stream=parse_stream(params.get("stream")),
        text=parse_text(params.get("q"), max_text),
        all_kinds=parse_kind(params.get("kind")),
    )


def parse_int(name: str, value: str | None, default: int, most: int, least: int = 1) -> int:
    """A bounded whole number parameter."""
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name}: '{value[:40]}' is not a whole number") from None
    if not least <= number <= most:
        raise BadRequest(f"{name}: {number} is outside {least}..{most}")
    return number
