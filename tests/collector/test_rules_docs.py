"""The rules shown in docs/rules.md and docs/examples/rules.yaml load and do what they say."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.batch import decode
from collector.config import CollectorConfig, load_config
from collector.enrich import Context
from collector.rules.engine import ParsingRules, engine_of
from tests.collector.wirelines import body, log, source

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
NOON = 1746100800 * 10**9  # 2025-05-01T12:00:00Z


def _blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", PAGE, flags=re.S)


def _rules_of_page() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in _blocks():
        data = yaml.safe_load(block)
        items = data if isinstance(data, list) else (data or {}).get("rules", [])
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and "name" in item:
                found[item["name"]] = item
    return found


def _one(rule: dict[str, Any], line: str, **src: Any) -> dict[str, Any]:
    config = CollectorConfig(rules=[rule])
    ctx = Context(parsing=ParsingRules(engine_of(config)))
    decoded = decode(body(source(**src), log(line, NOON)), ctx, "2025-05-01T12:00:00.000Z")
    return decoded.docs[0].body


def test_every_rule_and_section_on_the_page_loads() -> None:
    """Each YAML block of docs/rules.md that holds rules or redaction is a valid config."""
    rules = _rules_of_page()
    assert {"nginx_timed", "syslog", "shop_java", "api_json", "columns"} <= set(rules)
    for rule in rules.values():
        CollectorConfig(rules=[rule])
    redact = next(yaml.safe_load(b) for b in _blocks() if b.startswith("redact:"))
    CollectorConfig(redact=redact["redact"], rules=redact["rules"])


@pytest.mark.parametrize(
    ("name", "line", "fields", "timestamp"),
    [
        (
            "syslog",
            "May  1 14:00:00 web-3 sshd[812]: accepted key",
            {"pid": 812},
            "2025-05-01T12:00:00.000000000Z",
        ),
        (
            "shop_java",
            "2025-05-01 14:00:00,123 INFO  [main] c.e.Shop - order 42 paid in 87 ms",
            {"order": 42, "pay_ms": 87},
            "2025-05-01T12:00:00.123000000Z",
        ),
        (
            "nginx_timed",
            '10.0.0.1 - - [01/May/2025:12:00:00 +0000] "GET /cart HTTP/1.1" 200 512 "-" '
            '"curl/8.5.0" "-" 0.042',
            {"client": "10.0.0.1", "status": 200, "bytes": 512, "request_time": 0.042},
            "2025-05-01T12:00:00.000000000Z",
        ),
        (
            "api_json",
            '{"msg": "ok", "duration_ms": 7, "cache_hit": "yes", "ts": "2025-05-01T11:59:00Z"}',
            {"duration_ms": 7, "cache_hit": True},
            "2025-05-01T11:59:00.000000000Z",
        ),
    ],
)
def test_the_examples_parse_their_sample_lines(
    name: str, line: str, fields: dict[str, Any], timestamp: str
) -> None:
    """Each example rule of the page types its sample line's fields and takes its time."""
    rule = {**_rules_of_page()[name], "match": {}}
    doc = _one(rule, line)
    assert doc["fields"] == fields
    assert doc["@timestamp"] == timestamp
    assert "tags" not in doc


def test_padded_columns_example() -> None:
    """The columns example skips runs of spaces between its keys."""
    doc = _one({**_rules_of_page()["columns"], "match": {}}, "INFO     worker-3   job 42 done")
    assert doc["attributes"] == {"lvl": "INFO", "worker": "worker-3", "text": "job 42 done"}


def test_the_example_file_loads() -> None:
    """docs/examples/rules.yaml is a valid config with the rules the docs name."""
    config = load_config(ROOT / "docs" / "examples" / "rules.yaml")
    names = [rule.name for rule in config.rules]
    assert names == ["health_checks", "nginx_timed", "jobs", "api_json"]
