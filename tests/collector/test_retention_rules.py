"""Retention rules: validation messages, matching, and the stream names that carry rules."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.config import load_config
from collector.enrich import Context
from collector.errors import ConfigError
from collector.retention.rules import (
    RetentionConfig,
    RetentionRules,
    RulesHolder,
    is_logpipe_stream,
    rule_of_stream,
    seconds,
    stream_dataset,
)
from collector.routing import route
from collector.templates import DEADLETTER_STREAM
from collector.wire import NAME_PART_PATTERN, Hints, Source

ISSUE_EXAMPLE = """
retention:
  default: 14d
  rules:
    - match: {service: "payments-*"}
      keep: 400d
    - match: {level: [debug, trace]}
      keep: 2d
    - match: {namespace: staging}
      keep: 3d
  rollover: {max_age: 1d, max_primary_shard_size: 50gb}
"""


def _source(
    name: str = "web-1",
    image: str = "busybox:latest",
    labels: dict[str, str] | None = None,
    hints: Hints | None = None,
) -> Source:
    return Source(
        kind="source",
        src=0,
        host="h1",
        container_id=uuid.uuid4().hex,  # a container's labels never change: new id
        container_name=name,
        image=image,
        labels=labels or {},
        hints=hints or Hints(),
    )


def _ctx(yaml_text: str, tmp_path: Path) -> Context:
    path = tmp_path / "collector.yaml"
    path.write_text(yaml_text)
    return Context(retention=RulesHolder(load_config(path).retention))


def _config_error(yaml_text: str, tmp_path: Path) -> str:
    path = tmp_path / "collector.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def _rules_error(tmp_path: Path, *rules: str) -> str:
    """The error of a config whose retention rules are `rules`, each a YAML flow mapping."""
    return _config_error(
        "retention:\n  rules:\n" + "".join(f"    - {r}\n" for r in rules), tmp_path
    )


def _match_error(tmp_path: Path, key: str, glob: str) -> str:
    """The error of a config with one rule, keeping for 2d what `key` matches with `glob`."""
    return _rules_error(tmp_path, f"{{match: {{{key}: {glob}}}, keep: 2d}}")


def test_issue_example_routes_each_record_to_its_rules_stream(tmp_path: Path) -> None:
    """The issue's example config sends service, level and namespace matches to own streams."""
    ctx = _ctx(ISSUE_EXAMPLE, tmp_path)
    payments = _source("pay-1", labels={"com.docker.compose.service": "payments-api"})
    assert route(payments, ctx, "debug").stream == "logs-docker.keep_400d-default"
    assert route(_source(), ctx, "DEBUG").stream == "logs-docker.keep_2d-default"
    assert route(_source(), ctx, "info").stream == "logs-docker.keep_14d-default"
    assert route(_source(), ctx, None).stream == "logs-docker.keep_14d-default"
    staging = _source(hints=Hints(namespace="staging"))
    assert route(staging, ctx, "info").stream == "logs-docker.keep_3d-staging"


def test_service_falls_back_to_container_name(tmp_path: Path) -> None:
    """Without a compose label, `service` matches the container name."""
    ctx = _ctx(ISSUE_EXAMPLE, tmp_path)
    assert route(_source("payments-worker"), ctx).rule == "400d"


def test_every_key_of_a_match_must_hold(tmp_path: Path) -> None:
    """A rule with image, label, container and dataset globs applies only when all match."""
    ctx = _ctx(
        """
retention:
  rules:
    - name: audit
      match:
        image: ["nginx:*", "caddy:*"]
        label: {team: "sec*"}
        container: "edge-?"
        dataset: docker
      keep: 1w
""",
        tmp_path,
    )
    labels = {"team": "security"}
    assert route(_source("edge-1", "caddy:2", labels), ctx).rule == "audit"
    assert route(_source("edge-1", "caddy:2", {"team": "web"}), ctx).rule == "14d"
    assert route(_source("edge-1", "caddy:2"), ctx).rule == "14d"
    assert route(_source("edge-12", "caddy:2", labels), ctx).rule == "14d"
    assert route(_source("edge-1", "busybox", labels), ctx).rule == "14d"
    other = _source("edge-1", "caddy:2", labels, Hints(dataset="web"))
    assert route(other, ctx).rule == "14d"


def test_first_matching_rule_wins(tmp_path: Path) -> None:
    """When two rules match, the earlier one decides."""
    ctx = _ctx(
        """
retention:
  rules:
    - {match: {level: error}, keep: 90d}
    - {match: {service: "*"}, keep: 1d}
""",
        tmp_path,
    )
    assert route(_source(), ctx, "error").rule == "90d"
    assert route(_source(), ctx, "info").rule == "1d"


def test_reload_of_the_holder_changes_routing_of_the_same_source() -> None:
    """Swapping the holder's rules re-routes records of an already seen (cached) source."""
    holder = RulesHolder()
    ctx = Context(retention=holder)
    src = _source()
    assert route(src, ctx, "debug").rule == "14d"
    holder.rules = RetentionRules(
        RetentionConfig.model_validate({"rules": [{"match": {"level": "debug"}, "keep": "2d"}]})
    )
    assert route(src, ctx, "debug").rule == "2d"


def test_bad_rule_is_named_by_number_and_name_with_its_key(tmp_path: Path) -> None:
    """Each problem names the rule (position and name) and the offending key."""
    message = _config_error(
        """
retention:
  rules:
    - {match: {service: a}, keep: 400d, name: payments}
    - {match: {service: b, colour: red}, keep: 2x, name: debug}
""",
        tmp_path,
    )
    assert "rule 2 (debug): unknown key 'match.colour'" in message
    assert "rule 2 (debug): 'keep': '2x' is not a duration" in message
    assert "rule 1" not in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("{match: {}, keep: 3d, name: Bad-Name}", "rule 1 (Bad-Name): 'name':"),
        ("{match: {level: []}, keep: 3d}", "rule 1 (3d): 'match.level': an empty list"),
        ("{match: {}, keep: 3d, name: 5d}", "rule 1 (5d): name '5d' looks like a duration"),
        ("{match: {}}", "rule 1: 'keep': Field required"),
        (
            "{match: {}, keep: 30}",
            "rule 1: 'keep': 30 has no unit: write 30s, 30m, 30h, 30d or 30w",
        ),
        ("{match: {}, keep: 1.5}", "rule 1: 'keep': 1.5 is not a duration: write a whole number"),
        (
            "{match: {}, keep: 99999999d}",
            "rule 1 (99999999d): 'keep': '99999999d' is too long a duration: at most 9999999",
        ),
    ],
)
def test_each_kind_of_bad_rule_is_explained(rule: str, expected: str, tmp_path: Path) -> None:
    """Bad names, empty pattern lists, misleading names, missing keys and a number without
    its unit (YAML reads `keep: 30` as a number) are all refused, saying what to write."""
    assert expected in _rules_error(tmp_path, rule)


@pytest.mark.parametrize("everything", ["{}", "{label: {}}"])
def test_a_rule_behind_one_for_every_record_is_refused(tmp_path: Path, everything: str) -> None:
    """The first rule that matches wins: a rule after one whose match is empty would keep
    nothing, its records kept as the first rule says instead; last, that rule is taken."""
    message = _rules_error(
        tmp_path,
        f"{{match: {everything}, keep: 2d}}",
        "{match: {service: payments}, keep: 400d, name: pay}",
    )
    assert message.endswith(
        "rule 2 (pay) never applies: rule 1 (2d) has an empty match, which takes every "
        "record first; put that rule last, or make its keep the default"
    )
    ctx = _ctx(
        "retention:\n  rules:\n    - {match: {service: payments}, keep: 400d, name: pay}\n"
        f"    - {{match: {everything}, keep: 2d}}\n",
        tmp_path,
    )
    assert route(_source(), ctx).stream == "logs-docker.keep_2d-default"
    assert route(_source("payments"), ctx).stream == "logs-docker.keep_pay-default"


def test_two_rules_of_one_name_must_keep_alike(tmp_path: Path) -> None:
    """Records of one stream cannot have two retentions."""
    message = _config_error(
        """
retention:
  rules:
    - {match: {service: a}, keep: 400d, name: pay}
    - {match: {service: b}, keep: 2d, name: pay}
""",
        tmp_path,
    )
    assert "rule 2 (pay): 'name': another rule of that name keeps 400d" in message


def test_a_levels_other_names_match_the_name_lines_carry(tmp_path: Path) -> None:
    """Lines carry one of six level names (warn, not warning): `warning`, `critical` and
    `err` in a match are read as warn, fatal and error, instead of matching nothing."""
    ctx = _ctx(
        "retention:\n  rules:\n    - {match: {level: [Warning, critical]}, keep: 30d}\n"
        "    - {match: {level: err}, keep: 60d}\n    - {match: {level: 'd*'}, keep: 2d}\n",
        tmp_path,
    )
    assert route(_source(), ctx, "warn").stream == "logs-docker.keep_30d-default"
    assert route(_source(), ctx, "fatal").stream == "logs-docker.keep_30d-default"
    assert route(_source(), ctx, "error").stream == "logs-docker.keep_60d-default"
    assert route(_source(), ctx, "debug").stream == "logs-docker.keep_2d-default"


@pytest.mark.parametrize(
    ("level", "error"),
    [
        ("notice_me", "'notice_me' is not a level: a line's level is one of trace, debug,"),
        ("'warning*'", "'warning*' matches none of the levels a line has"),
    ],
)
def test_a_level_no_line_can_have_is_refused(tmp_path: Path, level: str, error: str) -> None:
    """A level word logpipe never gives a line, or a glob matching none of the six, is a
    config error naming the rule, not a rule that silently never applies."""
    message = _match_error(tmp_path, "level", level)
    assert f"rule 1 (2d): 'match.level': {error}" in message


@pytest.mark.parametrize(
    ("key", "glob", "error"),
    [
        ("namespace", "Staging", "'Staging' matches no namespace: 'S' is never in one"),
        ("namespace", "'prod-*'", "'prod-*' matches no namespace: '-' is never in one"),
        ("namespace", "'[A-Z]*'", "'[A-Z]*' matches no namespace: '[A-Z]' is never in one"),
        (
            "namespace",
            "'[!a-z0-9_.]*'",
            "'[!a-z0-9_.]*' matches no namespace: '[!a-z0-9_.]' is never in one",
        ),
        ("dataset", "'nginx access'", "'nginx access' matches no dataset: ' ' is never in one"),
        ("dataset", "''", "'' matches no dataset"),
    ],
)
def test_a_namespace_or_dataset_no_stream_can_have_is_refused(
    tmp_path: Path, key: str, glob: str, error: str
) -> None:
    """Namespaces and datasets are lower case a-z 0-9 _ . (the wire refuses others): a
    glob that no such name can match is a config error naming the rule, not a rule that
    silently never applies (the data it was for kept for the default's time)."""
    message = _match_error(tmp_path, key, glob)
    assert f"rule 1 (2d): 'match.{key}': {error}" in message
    assert "1 to 100 of a-z 0-9 _ ." in message


@pytest.mark.parametrize(
    ("key", "glob", "where"),
    [
        ("service", "'[abc'", "'[abc': the '[' at character 1"),
        ("image", "'nginx:[1.2'", "'nginx:[1.2': the '[' at character 7"),
        ("container", "['web', 'a[b]c[']", "'a[b]c[': the '[' at character 6"),
        ("namespace", "'[!]'", "'[!]': the '[' at character 1"),
        ("dataset", "'x[]'", "'x[]': the '[' at character 2"),
        ("level", "'[ew'", "'[ew': the '[' at character 1"),
        ("label", "{app: 'shop[0-9'}", "label 'app': 'shop[0-9': the '[' at character 5"),
    ],
)
def test_a_glob_with_an_unclosed_class_is_refused(
    tmp_path: Path, key: str, glob: str, where: str
) -> None:
    """fnmatch reads a `[` no `]` closes as the character itself, so `[abc` would match
    only names holding a `[`: refused, naming the rule, the glob and where the `[` is."""
    message = _match_error(tmp_path, key, glob)
    assert f"rule 1 (2d): 'match.{key}" in message
    assert message.endswith(
        f"{where} opens a class that no ']' closes (write '[[]' to match a '[' itself)"
    )


def test_globs_with_closed_classes_still_load_and_match(tmp_path: Path) -> None:
    """Classes fnmatch closes (`[[]`, `[]]`, `[!]]`, `[a-c]`) load and match as fnmatch
    reads them."""
    ctx = _ctx(
        "retention:\n  rules:\n"
        "    - {match: {container: ['[[]x', 'a[]]', 'q[!]]', 'w[a-c]']}, keep: 3d}\n",
        tmp_path,
    )
    for name in ("[x", "a]", "qz", "wb"):
        assert route(_source(name), ctx).stream == "logs-docker.keep_3d-default"
    for name in ("x", "a", "q]", "wd"):
        assert route(_source(name), ctx).stream == "logs-docker.keep_14d-default"


def test_namespace_and_dataset_globs_a_stream_can_have_still_match(tmp_path: Path) -> None:
    """Wildcards, classes with a letter a name can hold and dots are kept as written."""
    ctx = _ctx(
        "retention:\n  rules:\n"
        "    - {match: {namespace: ['[A-Za-z]*', 'x'], dataset: 'app.?'}, keep: 30d}\n"
        "    - {match: {namespace: '[!a]*_[0-9]'}, keep: 60d}\n",
        tmp_path,
    )
    web = _source(hints=Hints(namespace="prod", dataset="app.x"))
    assert route(web, ctx, None).stream == "logs-app.x.keep_30d-prod"
    team = _source(hints=Hints(namespace="team_1"))
    assert route(team, ctx, None).stream == "logs-docker.keep_60d-team_1"


def test_rollover_needs_a_maximum_and_sends_seconds(tmp_path: Path) -> None:
    """Weeks become seconds for Elasticsearch; a rollover without any max_* is refused."""
    ctx = _ctx("retention:\n  rollover: {max_age: 1w, max_docs: 10}\n", tmp_path)
    conditions = ctx.retention.rules.config.rollover.conditions()
    assert conditions == {
        "min_docs": 1,
        "max_age": "604800s",
        "max_primary_shard_size": "50gb",
        "max_docs": 10,
    }
    message = _config_error(
        "retention:\n  rollover: {max_age: null, max_primary_shard_size: null}\n", tmp_path
    )
    assert "at least one of max_age" in message


@pytest.mark.parametrize(
    ("rollover", "error"),
    [
        ("{max_primary_shard_size: 8192pb}", "'8192pb' is more than Elasticsearch takes (8191pb)"),
        ("{max_primary_shard_size: 9999999tb}", "'9999999tb' is more than Elasticsearch takes"),
        ("{max_docs: 9223372036854775808}", "less than or equal to 9223372036854775807"),
    ],
)
def test_rollover_conditions_elasticsearch_cannot_read_are_refused_at_load(
    tmp_path: Path, rollover: str, error: str
) -> None:
    """A size or a count beyond a long made every rollover request fail, and with it every
    retention run (nothing deleted): refused when the config loads instead."""
    message = _config_error(f"retention:\n  rollover: {rollover}\n", tmp_path)
    assert error in message
    assert message.startswith("'retention.rollover.max_")
    ok = _ctx("retention:\n  rollover: {max_primary_shard_size: 8191pb}\n", tmp_path)
    assert ok.retention.rules.config.rollover.conditions()["max_primary_shard_size"] == "8191pb"


def test_stream_retention_comes_from_its_name() -> None:
    """Streams carry their rule; orphaned named rules and foreign streams are never deleted."""
    rules = RetentionRules(
        RetentionConfig.model_validate(
            {
                "default": "14d",
                "deadletter": "30d",
                "rules": [{"match": {"service": "x"}, "keep": "400d", "name": "payments"}],
            }
        )
    )
    assert rules.keep_seconds("logs-docker.keep_payments-default") == ("payments", 400 * 86400)
    assert rules.keep_seconds("logs-docker.keep_14d-default") == ("14d", 14 * 86400)
    assert rules.keep_seconds("logs-docker.keep_3d-default") == ("3d", 3 * 86400)
    assert rules.keep_seconds("logs-docker.keep_gone-default") is None
    assert rules.keep_seconds("logs-docker-default") is None
    assert rules.keep_seconds("metrics-docker.keep_3d-default") is None
    assert rules.keep_seconds("logs-logpipe.deadletter-default") == ("deadletter", 30 * 86400)


@given(
    dataset=st.from_regex(NAME_PART_PATTERN, fullmatch=True),
    name=st.from_regex(r"^[a-z0-9_]{1,16}$", fullmatch=True),
)
def test_rule_name_round_trips_through_stream_name(dataset: str, name: str) -> None:
    """The rule name is recovered from any data stream name it was put into."""
    assert rule_of_stream(f"logs-{stream_dataset(dataset, name)}-default") == name


def test_durations_convert_to_seconds() -> None:
    """Each unit s m h d w converts to seconds."""
    assert [seconds(d) for d in ("5s", "2m", "1h", "1d", "2w")] == [5, 120, 3600, 86400, 1209600]


def test_logpipe_streams_are_told_from_other_tools_by_name() -> None:
    """Streams named after a rule, and the dead letters, are logpipe's; other logs-*-* are not."""
    assert is_logpipe_stream("logs-docker.keep_14d-default")
    assert is_logpipe_stream("logs-nginx.access.keep_payments-prod")
    assert is_logpipe_stream(DEADLETTER_STREAM)
    assert not is_logpipe_stream("logs-nginx.access-default")
    assert not is_logpipe_stream("logs-generic-default")
    assert not is_logpipe_stream("logs-apm.app.keep_-default")
    assert not is_logpipe_stream("metrics-docker.keep_14d-default")
