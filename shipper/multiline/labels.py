"""What a container's labels ask of its lines: a multiline rule, include and exclude
filters, with a warning for each label the shipper cannot use."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from shipper.multiline.builtin import ALIASES, BUILTINS
from shipper.multiline.patterns import Pattern
from shipper.multiline.rules import Match, Rule, text_of
from shipper.record import LogRecord

# The most each number label may ask for. An event is held in the shipper's memory until
# its last line, and becomes one document: no longer than the longest line the shipper
# keeps whole (collector.wire.MAX_LINE_BYTES: a default Elasticsearch node can always
# index it). A deep recursion's trace (Java prints 1024 frames) fits in 10000 lines; a
# trace's lines come within milliseconds, and a longer wait only delays the event.
BOUNDS: dict[str, float] = {"timeout": 300.0, "max_lines": 10_000, "max_bytes": 4 * 1024 * 1024}
_BOUNDS_SHOWN = {"timeout": "300 s", "max_lines": "10000", "max_bytes": "4194304 (4 MiB)"}
PREFIX = "logpipe.multiline"
# Every label this module reads (the shipper warns about other logpipe.* keys).
LABELS = (
    PREFIX,
    *(f"{PREFIX}.{key}" for key in ("pattern", "negate", "match", "timeout")),
    *(f"{PREFIX}.{key}" for key in ("max_lines", "max_bytes")),
    "logpipe.include_lines",
    "logpipe.exclude_lines",
)


@dataclass(frozen=True, slots=True)
class Shaping:
    """A container's hints for its lines: how to join them, which events to keep."""

    multiline: Rule | None = None
    include: Pattern | None = None
    exclude: Pattern | None = None

    def keeps(self, record: LogRecord) -> bool:
        """Whether the event passes include_lines / exclude_lines."""
        if self.include is None and self.exclude is None:
            return True
        text = text_of(record)
        if self.include is not None and not self.include.search(text):
            return False
        return self.exclude is None or not self.exclude.search(text)


def shaping_from(labels: dict[str, str]) -> tuple[Shaping | None, list[str]]:
    """The shaping the labels ask for (None: lines pass as they are), and warnings."""
    warnings: list[str] = []
    rule = _rule(labels, warnings)
    include = _regex(labels, "logpipe.include_lines", warnings)
    exclude = _regex(labels, "logpipe.exclude_lines", warnings)
    if rule is None and include is None and exclude is None:
        return None, warnings
    return Shaping(rule, include, exclude), warnings


def _given(labels: dict[str, str], key: str, warnings: list[str]) -> str | None:
    """The label's value; None when it is absent or empty (an empty one is reported)."""
    value = labels.get(key)
    if value == "":
        warnings.append(f"label {key}={value!r} is empty: ignored, as if it were not set")
        return None
    return value


def _regex(labels: dict[str, str], key: str, warnings: list[str]) -> Pattern | None:
    value = _given(labels, key, warnings)
    if value is None:
        return None
    from collector.rules.regex import RegexRefused

    try:
        return Pattern(value)
    except RegexRefused as exc:
        warnings.append(
            f"label {key}={value!r} is not a regular expression RE2 accepts (no look-around, "
            f"no back-references): {exc.reason}"
        )
        return None


def _rule(labels: dict[str, str], warnings: list[str]) -> Rule | None:
    name = (_given(labels, PREFIX, warnings) or "").strip().lower()
    base: Rule | None = None
    if _given(labels, f"{PREFIX}.pattern", warnings) is not None:
        pattern = _regex(labels, f"{PREFIX}.pattern", warnings)
        if pattern is None:
            return None
        if name:
            warnings.append(f"label {PREFIX}={name!r} ignored: {PREFIX}.pattern is set")
        base = Rule(pattern, _negate(labels, warnings), _match(labels, warnings))
    elif name:
        base = BUILTINS.get(ALIASES.get(name, name))
        if base is None:
            names = sorted([*BUILTINS, *ALIASES])
            warnings.append(f"label {PREFIX}={name!r} is not one of {names}")
    else:  # no rule: what would tune one has nothing to tune
        for key in ("negate", "match", "timeout", "max_lines", "max_bytes"):
            if f"{PREFIX}.{key}" in labels:
                warnings.append(
                    f"label {PREFIX}.{key} ignored: no {PREFIX} or {PREFIX}.pattern label "
                    "gives a multiline rule for it to apply to"
                )
    if base is None:
        return None
    return dataclasses.replace(
        base,
        timeout=_number(labels, "timeout", base.timeout, warnings),
        max_lines=int(_number(labels, "max_lines", base.max_lines, warnings)),
        max_bytes=int(_number(labels, "max_bytes", base.max_bytes, warnings)),
    )


def _negate(labels: dict[str, str], warnings: list[str]) -> bool:
    value = labels.get(f"{PREFIX}.negate", "false").strip().lower()
    if value not in ("true", "false"):
        warnings.append(f"label {PREFIX}.negate={value!r} is not true or false; using false")
    return value == "true"


def _match(labels: dict[str, str], warnings: list[str]) -> Match:
    value = labels.get(f"{PREFIX}.match", "after").strip().lower()
    if value == "before":
        return "before"
    if value != "after":
        warnings.append(f"label {PREFIX}.match={value!r} is not after or before; using after")
    return "after"


def _number(labels: dict[str, str], key: str, default: float, warnings: list[str]) -> float:
    """The label's number: the default when it is none the shipper can use, at most BOUNDS."""
    raw = labels.get(f"{PREFIX}.{key}")
    if raw is None:
        return default
    number = _parse_number(key, raw)
    if not number > 0:  # not a number (NaN too), or not positive
        what = "number of seconds (5, 5s, 500ms)" if key == "timeout" else "whole number"
        warnings.append(f"label {PREFIX}.{key}={raw!r} is not a positive {what}; using {default}")
        return default
    bound = BOUNDS[key]
    if number > bound:  # `inf` and `1e400` too
        warnings.append(
            f"label {PREFIX}.{key}={raw!r} is over the most allowed, {_BOUNDS_SHOWN[key]}; "
            f"using {int(bound)}"
        )
        return bound
    if key != "timeout" and number != int(number):
        warnings.append(
            f"label {PREFIX}.{key}={raw!r} is not a positive whole number; using {default}"
        )
        return default
    return number


def _parse_number(key: str, raw: str) -> float:
    """The label's value as a number (a timeout in seconds); NaN when it is none."""
    value = raw.strip().lower()
    scale = 1.0
    if key == "timeout" and value.endswith("ms"):
        value, scale = value[:-2], 0.001
    elif key == "timeout" and value.endswith("s"):
        value = value[:-1]
    try:
        return float(value) * scale
    except ValueError:
        return float("nan")
