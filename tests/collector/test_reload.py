"""A reload applies the retention and parsing rules; every other setting the file
changes is named in a warning, to take effect at the next start."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from collector.config import load_config
from collector.reload import RELOADED, ConfigFile, RestartNeeded, restart_needed
from collector.rules.engine import ParsingRules, engine_of

START = """\
document_labels: ["*"]
indexed_attributes: ["*"]
tokens: ["first-token-of-32-characters-xxxx"]
retention:
  default: 14d
rules:
  - {name: health, regex: "^GET /health", drop: true}
"""


def test_a_reload_names_the_settings_it_does_not_apply(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(START)
    running = load_config(path)
    file = ConfigFile(path)
    file.subscribe(RestartNeeded(running, path))
    # The rules and retention change: applied by their own listeners, no warning.
    path.write_text(START.replace("14d", "7d").replace("/health", "/ready"))
    with caplog.at_level(logging.WARNING, "logpipe.collector.reload"):
        assert file.reload() is True
    assert "reload does not apply" not in caplog.text
    # The attributes, labels and a token change: named, the token's value unsaid.
    path.write_text(
        START.replace('indexed_attributes: ["*"]', 'indexed_attributes: ["user_id"]')
        .replace('document_labels: ["*"]', 'document_labels: ["team"]')
        .replace("first-token", "other-token")
    )
    with caplog.at_level(logging.WARNING, "logpipe.collector.reload"):
        assert file.reload() is True
    [record] = [r for r in caplog.records if "reload does not apply" in r.getMessage()]
    assert record.settings == ["document_labels", "indexed_attributes", "tokens"]  # type: ignore[attr-defined]
    assert "document_labels, indexed_attributes, tokens" in record.getMessage()
    assert "other-token" not in caplog.text


def test_only_the_rules_a_reload_applies_are_left_out_of_the_comparison() -> None:
    """Each setting a reload does not apply is compared; those it applies are not."""
    running = load_config(None)
    changed = running.model_copy(
        update={"timestamp_max_skew": "1h", "environment": "prod", "bulk_concurrency": 2}
    )
    assert restart_needed(running, changed) == ["bulk_concurrency", "environment"]
    assert restart_needed(running, running) == []
    assert set(RELOADED) <= set(type(running).model_fields)


def test_a_file_cut_short_while_written_keeps_the_rules_in_force(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload that finds the file empty (`>` truncates before writing) says so and
    hands nothing to the listeners: the parsing and retention rules in force stay."""
    path = tmp_path / "collector.yaml"
    path.write_text(START)
    file = ConfigFile(path)
    read: list[object] = []
    file.subscribe(read.append)
    path.write_text("")
    with caplog.at_level(logging.ERROR, "logpipe.collector.reload"):
        assert file.reload() is False
    assert read == []
    assert "the previous rules stay in force" in caplog.text
    assert "holds no settings" in caplog.text


def test_a_reload_that_changes_the_rules_names_those_that_partly_never_work(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each reload that brings new rules logs what `rules check` would warn of them, once;
    a reload that leaves the rules as they were says nothing again."""
    path = tmp_path / "collector.yaml"
    path.write_text(START)
    file = ConfigFile(path)
    parsing = ParsingRules(engine_of(load_config(path)))
    file.subscribe(parsing.take)
    shadowed = START + '  - {name: health2, regex: "^GET /health", drop: true}\n'
    path.write_text(shadowed)
    with caplog.at_level(logging.WARNING, "logpipe.collector.rules"):
        assert file.reload() is True
        assert file.reload() is True  # the same rules: not said twice
    warnings = [r for r in caplog.records if "partly never works" in r.getMessage()]
    assert [r.rule_warning for r in warnings] == [  # type: ignore[attr-defined]
        "rules 'health' and 'health2' are identical but for their names: 'health2' never "
        "applies (only a container labelled logpipe.rule=health2 gets it)"
    ]
    assert len(parsing.engine.rules) == 2
