"""What `rules check` warns of: rules that load but cannot do all they say. Pure.

Loading refuses what cannot work at all (config.py); these are rules that work, but
part of which never will, so the collector takes them and `rules check` names them:

- a rule identical to an earlier one but for its name: it never applies (only a
  container labelled ``logpipe.rule=<its name>`` gets it);
- a rule behind an earlier one that applies first to every line it could take (the
  earlier one has no pattern, or the same pattern, and its ``match`` takes every record
  the later one's takes): its fields are never captured;
- a typed field, or the timestamp's field, that the rule's pattern never captures (a
  name the pattern lacks, or a key it skips): only a JSON or logfmt line's own key of
  that name can fill it.

Whether one ``match`` takes every record another takes is decided only where it is
plain (each glob of the later rule's key is one of the earlier rule's, or the earlier
one's is ``*``), so every warning is true; a shadowing only glob arithmetic would show
is not reported.
"""

from __future__ import annotations

from collector.matching import Globs, Match
from collector.rules.config import ParseRule
from collector.rules.dissect import KEY
from collector.rules.regex import Regex

_KEYS = ("service", "container", "image", "namespace", "dataset", "level")


def rule_warnings(rules: list[ParseRule]) -> list[str]:
    """Each warning about `rules`, in the file's order, naming the rules."""
    warnings: list[str] = []
    for i, rule in enumerate(rules):
        earlier = next((e for e in rules[:i] if _takes_first(e, rule)), None)
        if earlier is not None:
            warnings.append(_shadowed(earlier, rule))
        else:  # a rule that never applies captures nothing: said once
            warnings += _never_captured(rule)
    return warnings


def _body(rule: ParseRule) -> dict[str, object]:
    return rule.model_dump(exclude={"name"})


def _shadowed(earlier: ParseRule, rule: ParseRule) -> str:
    label = f"(only a container labelled logpipe.rule={rule.name} gets it)"
    if _body(earlier) == _body(rule):
        return (
            f"rules '{earlier.name}' and '{rule.name}' are identical but for their names: "
            f"'{rule.name}' never applies {label}"
        )
    pattern = "the same pattern" if earlier.pattern_given else "no pattern"
    return (
        f"rule '{rule.name}' never applies: rule '{earlier.name}' before it, with {pattern}, "
        f"takes every line its match takes {label}"
    )


def _takes_first(earlier: ParseRule, rule: ParseRule) -> bool:
    """Whether `earlier` applies to every line `rule` could apply to."""
    if earlier.pattern_given and (earlier.dissect, earlier.regex) != (rule.dissect, rule.regex):
        return False
    return _covers(earlier.match, rule.match)


def _covers(wide: Match, narrow: Match) -> bool:
    """Whether `wide` plainly matches every record `narrow` matches."""
    if not all(_covers_globs(getattr(wide, k), getattr(narrow, k)) for k in _KEYS):
        return False
    labels = narrow.label or {}
    return all(_covers_globs(globs, labels.get(key)) for key, globs in (wide.label or {}).items())


def _covers_globs(wide: Globs | None, narrow: Globs | None) -> bool:
    if wide is None or wide == "*" or (isinstance(wide, list) and "*" in wide):
        return True
    if narrow is None:
        return False
    wide_set = {wide} if isinstance(wide, str) else set(wide)
    narrow_set = {narrow} if isinstance(narrow, str) else set(narrow)
    return narrow_set <= wide_set


def _never_captured(rule: ParseRule) -> list[str]:
    """A warning per typed field (and timestamp field) the rule's pattern never fills."""
    if not rule.pattern_given:
        return []
    captured, skipped = pattern_keys(rule)
    wanted = list(rule.fields)
    if rule.timestamp is not None and rule.timestamp.field not in wanted:
        wanted.append(rule.timestamp.field)
    out = []
    for field in wanted:
        if field in captured:
            continue
        why = "skips that key" if field in skipped else "has no key of that name"
        keys = ", ".join(sorted(captured)) or "none"
        out.append(
            f"rule '{rule.name}': field '{field}' is never captured: its pattern {why} "
            f"(its keys: {keys}); only a JSON or logfmt line's own '{field}' fills it"
        )
    return out


def pattern_keys(rule: ParseRule) -> tuple[set[str], set[str]]:
    """The keys the rule's pattern captures, and (dissect) those it skips by name."""
    if rule.regex is not None:
        return set(Regex(rule.regex).names), set()
    specs = [spec.removesuffix("->") for spec in KEY.findall(rule.dissect or "")]
    captured = {s for s in specs if s and not s.startswith("?")}
    return captured, {s[1:] for s in specs if s.startswith("?")}
