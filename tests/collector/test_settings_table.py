"""The rows `logpipe-collector config` prints: values as a person reads them."""

from __future__ import annotations

from collector.config import load_config
from collector.retention.rules import Rollover, Rule
from collector.settings_table import rows, shown


def test_sections_and_lists_of_them_leave_their_unset_keys_out() -> None:
    """A retention rule shows the keys it was given, not a null for every match key it was
    not (which buried the one that matters), and the rollover only its conditions."""
    rule = Rule.model_validate({"match": {"service": "db"}, "keep": "90d"})
    assert shown("rules", [rule]) == '[{"match":{"service":"db"},"keep":"90d"}]'
    rollover = Rollover.model_validate({"max_age": "1d", "max_primary_shard_size": None})
    assert shown("rollover", rollover) == '{"max_age":"1d"}'


def test_secrets_are_hidden_and_empty_values_blank() -> None:
    """A token shows only that it is set; None and an empty list show as nothing."""
    assert shown("tokens", ["a", "b"]) == "(set, hidden)"
    assert shown("es_password", "x") == "(set, hidden)"
    assert shown("document_labels", []) == ""
    assert shown("environment", None) == ""


def test_every_setting_says_what_it_means() -> None:
    """`config` prints a meaning under every setting (the rollover section had none)."""
    table = rows(load_config(None))
    assert [row.variable for row in table if not row.description] == []
