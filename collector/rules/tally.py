"""What `rules test` says after the last line: how often each rule applied, and the
keys of each rule no document it made ever held. Pure."""

from __future__ import annotations

from collections import Counter
from typing import Any

from collector.rules.check import pattern_keys
from collector.rules.config import ParseRule


class Tally:
    """Counts of the documents `rules test` made, per rule, and the keys they held."""

    def __init__(self, rules: list[ParseRule]) -> None:
        self.rules = rules
        self.lines = 0
        self.records = 0
        self.applied: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.left_out = 0  # records the labels' include/exclude_lines leave out
        self.no_rule = 0
        self.held: dict[str, set[str]] = {rule.name: set() for rule in rules}

    def add(self, row: dict[str, Any], lines: int) -> None:
        """Count one record's outcome (a row of --json) of `lines` physical lines."""
        self.lines += lines
        self.records += 1
        if row.get("left_out"):
            self.left_out += 1
        elif "dropped_by" in row:
            self.dropped[row["dropped_by"]] += 1
        elif row["rule"] is None:
            self.no_rule += 1
        else:
            self._applied(row["rule"], row["document"])

    def _applied(self, rule: str, doc: dict[str, Any]) -> None:
        self.applied[rule] += 1
        if "rule_failure" in doc.get("logpipe", {}):
            self.failures[rule] += 1
        for part in ("fields", "attributes", "attributes_unindexed"):
            held = doc.get(part)
            if isinstance(held, dict):
                self.held.setdefault(rule, set()).update(held)

    def never_held(self) -> dict[str, list[str]]:
        """Per rule that applied, its keys (pattern keys, typed and timestamp fields)
        that no document it made held."""
        out = {}
        for rule in self.rules:
            missing = sorted(_keys(rule) - self.held[rule.name])
            if self.applied[rule.name] and missing:
                out[rule.name] = missing
        return out

    def as_json(self) -> dict[str, Any]:
        """The summary as --json prints it, after the last record."""
        return {
            "lines": self.lines,
            "records": self.records,
            "applied": {rule.name: self.applied[rule.name] for rule in self.rules},
            "dropped": dict(self.dropped),
            "rule_failures": dict(self.failures),
            "no_rule": self.no_rule,
            "left_out": self.left_out,
            "never_captured": self.never_held(),
        }

    def text(self) -> str:
        """The summary in words."""
        out = [f"summary: {_count(self.lines, 'line')} in {_count(self.records, 'record')}"]
        for rule in self.rules:
            count = self.applied[rule.name] + self.dropped[rule.name]
            what = "dropped" if rule.drop else "applied to"
            failed = self.failures[rule.name]
            tagged = f" ({failed} tagged rule_failure)" if failed else ""
            out.append(f"  rule {rule.name}: {what} {count}{tagged}")
        out.append(f"  no rule: {self.no_rule}")
        if self.left_out:
            out.append(f"  left out by the labels' include/exclude_lines: {self.left_out}")
        for name, keys in self.never_held().items():
            out.append(f"  rule {name} never captured: {', '.join(keys)}")
        return "\n".join(out) + "\n"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _keys(rule: ParseRule) -> set[str]:
    keys = pattern_keys(rule)[0] | set(rule.fields)
    if rule.timestamp is not None:
        keys.add(rule.timestamp.field)
    return keys
