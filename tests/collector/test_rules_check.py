"""`rules check`: rules that load but partly never work are named, and still load."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
import yaml

from collector.errors import ConfigError
from collector.rules.check import rule_warnings
from collector.rules.cli import run_check
from collector.rules.config import ParseRule


def _rules(*rules: dict[str, object]) -> list[ParseRule]:
    return [ParseRule.model_validate(rule) for rule in rules]


ACCESS = {"match": {"service": "web"}, "dissect": "%{client} [%{time}] %{status}"}


def test_identical_rules_are_named() -> None:
    """A rule equal to an earlier one but for its name never applies: both are named."""
    [warning] = rule_warnings(_rules({"name": "a", **ACCESS}, {"name": "b", **ACCESS}))
    assert warning == (
        "rules 'a' and 'b' are identical but for their names: 'b' never applies "
        "(only a container labelled logpipe.rule=b gets it)"
    )


@pytest.mark.parametrize(
    "earlier",
    [
        {"match": {"service": ["web", "api"]}, "fields": {"took": "long"}},
        {"match": {}, "fields": {"took": "long"}},
        {"match": {"service": "*"}, "drop": True},
        {"match": {"service": "web"}, "regex": "x=(?P<x>1)"},
    ],
)
def test_a_rule_an_earlier_one_always_takes_first_is_named(earlier: dict[str, object]) -> None:
    """An earlier rule with no pattern (or the same one) whose match takes every record
    the later one's takes leaves the later one nothing: its fields are never captured."""
    later = {"match": {"service": "web", "level": "error"}, "regex": "x=(?P<x>1)"}
    later["fields"] = {"x": "long"}
    [warning] = rule_warnings(_rules({"name": "first", **earlier}, {"name": "second", **later}))
    assert warning.startswith("rule 'second' never applies: rule 'first' before it, with ")
    assert warning.endswith("(only a container labelled logpipe.rule=second gets it)")


@pytest.mark.parametrize(
    "earlier",
    [
        {"match": {"service": "web", "level": "error"}, "fields": {"took": "long"}},
        {"match": {"service": "api"}, "fields": {"took": "long"}},
        {"match": {"service": "web"}, "regex": "y=(?P<y>1)"},
        {"match": {"label": {"tier": "front"}}, "fields": {"took": "long"}},
    ],
)
def test_a_rule_an_earlier_one_leaves_lines_to_is_not_named(earlier: dict[str, object]) -> None:
    """An earlier rule narrower on some key (level, service, a label) or with another
    pattern leaves lines to the later one: no warning."""
    later = {"match": {"service": "web"}, "regex": "x=(?P<x>1)", "fields": {"x": "long"}}
    assert rule_warnings(_rules({"name": "first", **earlier}, {"name": "second", **later})) == []


def test_fields_the_pattern_never_captures_are_named() -> None:
    """A typed or timestamp field the pattern lacks (a typo) or skips is named with the
    keys the pattern has; a rule without a pattern types JSON keys and is not named."""
    rules = _rules(
        {
            "name": "typo",
            **ACCESS,
            "dissect": "%{client} %{?ident} [%{time}] %{status}",
            "fields": {"stauts": "long", "ident": "keyword", "status": "long"},
            "timestamp": {"field": "ts"},
        },
        {"name": "json", "match": {"service": "api"}, "fields": {"anything": "long"}},
        {"name": "groups", "match": {"service": "x"}, "regex": "(?P<a>1)", "fields": {"b": "ip"}},
    )
    assert rule_warnings(rules) == [
        "rule 'typo': field 'stauts' is never captured: its pattern has no key of that name "
        "(its keys: client, status, time); only a JSON or logfmt line's own 'stauts' fills it",
        "rule 'typo': field 'ident' is never captured: its pattern skips that key "
        "(its keys: client, status, time); only a JSON or logfmt line's own 'ident' fills it",
        "rule 'typo': field 'ts' is never captured: its pattern has no key of that name "
        "(its keys: client, status, time); only a JSON or logfmt line's own 'ts' fills it",
        "rule 'groups': field 'b' is never captured: its pattern has no key of that name "
        "(its keys: a); only a JSON or logfmt line's own 'b' fills it",
    ]


def _check(tmp_path: Path, rules: list[dict[str, object]]) -> str:
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump({"rules": rules}))
    out = io.StringIO()
    assert run_check(argparse.Namespace(config=path), out) == 0
    return out.getvalue()


def test_check_prints_each_warning_and_still_loads(tmp_path: Path) -> None:
    """Warnings are printed one a line, and the command succeeds: they do not refuse."""
    text = _check(tmp_path, [{"name": "a", **ACCESS}, {"name": "b", **ACCESS}])
    assert text.splitlines() == [
        "warning: rules 'a' and 'b' are identical but for their names: 'b' never applies "
        "(only a container labelled logpipe.rule=b gets it)",
        "2 rules load; 1 warnings",
    ]
    assert _check(tmp_path, [{"name": "a", **ACCESS}]) == "1 rules load; 0 warnings\n"


def test_check_refuses_what_serve_refuses(tmp_path: Path) -> None:
    """A rule that cannot work is refused as serve refuses it, naming the rule."""
    with pytest.raises(ConfigError, match="rule 'a'"):
        _check(tmp_path, [{"name": "a", "regex": "(?P<x>"}])
