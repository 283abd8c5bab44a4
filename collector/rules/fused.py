"""A dissect rule's cut, typed fields and time as one written-out function: the usual case.

Most lines a dissect rule fits are plain: a line logpipe parsed no attributes out of,
every typed value of its type, the time within the allowed skew. For those, the rule's
work is done by one function made once per rule from its pattern (as ``Dissect.cut``
is): the keys are cut, the typed ones converted where they were cut (a long of ASCII
digits and a dotted-quad IPv4 address are checked in the line's own code, as
``to_long`` and ``to_ip`` check them first), the time read through the rule's
``TimeParser``, and the attributes built once without the typed keys.

Anything else (a value not of its type, a time that does not read or lies beyond the
skew, a line with attributes of its own) gives ``SLOW``: the rule then shapes the line
its general way (``CompiledRule.shape``), which says why. So the fast way never decides
what a document holds; tests/collector/test_rules_fastpaths.py holds it to the general
way's documents.

A rule is written out this way when it has a dissect pattern, no redactions of its own,
is not a drop rule, has no `level` key (the line's level, which the general way sets),
and takes its time (if any) from a key of its pattern that is not also a typed field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from collector.rules.convert import _IPV4, Typed
from collector.rules.dissect import Dissect, cut_code, written
from collector.rules.timestamp import TimeParser

# What a written-out rule gives: the attributes, the typed fields and the time (or
# None), or None when the pattern does not fit, or SLOW.
Fast = tuple[dict[str, str], dict[str, Typed], int | None]
# Any, not a union: the hot path unpacks it without a cast (a call at run time).
FusedRule = Callable[[str, int, int], Any]  # Fast, None or SLOW
SLOW = object()


def fused(
    dissect: Dissect,
    converters: Sequence[tuple[str, str, Callable[[Any, int], Typed]]],
    time_field: str | None,
    time_parser: TimeParser | None,
) -> FusedRule | None:
    """The written-out rule (`text, docker_ns, max_skew_ns`), or None if it cannot be.

    `converters`: (field, type, converter) per typed field, in the rule's order.
    """
    code = cut_code(dissect.prefix, dissect.steps)
    values = code.values
    typed = {name for name, _kind, _convert in converters}
    if time_field is not None and (time_field not in values or time_field in typed):
        return None
    if "level" in values:  # the line's level: the general way sets it
        return None
    env = {**code.env, "SLOW": SLOW, "IPV4": _IPV4.fullmatch, "TP": time_parser}
    body = list(code.lines)
    fields: list[str] = []
    for n, (name, kind, convert) in enumerate(converters):
        if name not in values:  # only in a line's own attributes, which go the general way
            continue
        body.append(f"    t{n} = {values[name]}")
        if kind == "long":  # to_long's first test: at most 18 ASCII digits always fit
            body.append(f"    if not (len(t{n}) < 19 and t{n}.isdigit() and t{n}.isascii()):")
            body.append("        return SLOW")
            fields.append(f"{name!r}: int(t{n})")
        elif kind == "ip":  # to_ip's first test: a dotted quad written as ipaddress would
            body.append(f"    if IPV4(t{n}) is None:")
            body.append("        return SLOW")
            fields.append(f"{name!r}: t{n}")
        else:
            env[f"C{n}"] = convert
            body.append("    try:")
            body.append(f"        t{n} = C{n}(t{n}, docker_ns)")
            body.append("    except ValueError:")
            body.append("        return SLOW")
            fields.append(f"{name!r}: t{n}")
    if time_field is not None:
        body.append(f"    when = {values[time_field]}")
        body.append("    last = TP.last")
        body.append("    if when == last[0]:")
        body.append("        ns = last[1]")
        body.append("    else:")
        body.append("        try:")
        body.append("            ns = TP.parse(when, docker_ns)")
        body.append("        except ValueError:")
        body.append("            return SLOW")
        body.append("    if not -max_skew_ns <= ns - docker_ns <= max_skew_ns:")
        body.append("        return SLOW")
    else:
        body.append("    ns = None")
    kept = ", ".join(f"{k!r}: {v}" for k, v in values.items() if k not in typed)
    body.append(f"    return {{{kept}}}, {{{', '.join(fields)}}}, ns")
    made: FusedRule = written("fused", "text, docker_ns, max_skew_ns", body, env)
    return made
