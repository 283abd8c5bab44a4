"""Parsing rules on whole batches: which rule applies, typed fields, times, drops, errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.batch import Decoded, decode
from collector.config import load_config
from collector.enrich import Context
from collector.errors import ConfigError
from collector.reload import ConfigFile
from collector.rules.config import ParseRule
from collector.rules.engine import Engine, ParsingRules
from tests.collector.wirelines import body, log, source

NS = 10**9
NOON = 1746100800 * NS  # 2025-05-01T12:00:00Z
ACCESS = {
    "name": "shop_access",
    "match": {"service": "web"},
    "dissect": '%{client} - %{user} [%{time}] "%{request}" %{status} %{bytes} %{request_time}',
    "fields": {"status": "long", "bytes": "long", "request_time": "double", "client": "ip"},
    "timestamp": {"field": "time", "format": "%d/%b/%Y:%H:%M:%S %z"},
}
LINE = '10.0.0.7 - - [01/May/2025:11:59:58 +0000] "GET /cart HTTP/1.1" 200 512 0.042'


def _rules(*rules: dict[str, Any], skew: str = "1d") -> Context:
    engine = Engine([ParseRule.model_validate(r) for r in rules], skew)
    return Context(parsing=ParsingRules(engine))


def _decode(ctx: Context, *messages: str, ts: int = NOON, **src: Any) -> Decoded:
    lines = [log(m, ts + i, i) for i, m in enumerate(messages)]
    return decode(body(source(**src), *lines), ctx, "2025-05-01T12:00:00.000Z")


def _doc(ctx: Context, message: str, **src: Any) -> dict[str, Any]:
    decoded = _decode(ctx, message, **src)
    assert len(decoded.docs) == 1
    return decoded.docs[0].body


def test_typed_fields_time_and_rule_name_land_in_the_document() -> None:
    """The access rule types its fields, takes the line's time, and names itself."""
    doc = _doc(_rules(ACCESS), LINE)
    assert doc["fields"] == {
        "status": 200,
        "bytes": 512,
        "request_time": 0.042,
        "client": "10.0.0.7",
    }
    assert doc["@timestamp"] == "2025-05-01T11:59:58.000000000Z"
    assert doc["event"]["created"] == "2025-05-01T12:00:00.000000000Z"
    assert doc["logpipe"]["rule"] == "shop_access"
    assert "status" not in doc["attributes"]
    assert doc["attributes"]["user"] == "-"
    assert "tags" not in doc
    orjson.dumps(doc)  # what the sink sends


def test_the_id_stays_dockers_when_the_time_is_the_applications() -> None:
    """The _id is made from Docker's time, so a replay of the line has the same _id."""
    plain = _decode(Context(), LINE).docs[0]
    ruled = _decode(_rules(ACCESS), LINE).docs[0]
    assert ruled.id == plain.id
    assert ruled.stream == plain.stream


def test_a_value_not_of_its_type_stays_as_text_and_the_document_is_tagged() -> None:
    """'2OO' as a long stays in attributes as text; the reason is on the document."""
    decoded = _decode(_rules(ACCESS), LINE.replace(" 200 ", " 2OO "))
    doc = decoded.docs[0].body
    assert doc["attributes"]["status"] == "2OO"
    assert "status" not in doc["fields"]
    assert doc["tags"] == ["rule_failure"]
    assert doc["logpipe"]["rule_failure"] == [
        "status: '2OO' is not a long (a whole number in 64 bits)"
    ]
    assert decoded.rules.failures == {"shop_access": 1}
    assert not decoded.dead_letters


def test_the_time_field_may_also_be_a_typed_date() -> None:
    """A key both typed (a date in fields) and named as the rule's timestamp gives both,
    rather than the typed field taking it away and every line being tagged 'no field'."""
    rule = {
        "name": "dated",
        "dissect": "%{time} %{msg}",
        "fields": {"time": {"type": "date", "format": "rfc3339"}},
        "timestamp": {"field": "time"},
    }
    doc = _doc(_rules(rule), "2025-05-01T11:59:58Z done")
    assert doc["@timestamp"] == "2025-05-01T11:59:58.000000000Z"
    assert doc["fields"] == {"time": "2025-05-01T11:59:58.000Z"}
    assert "rule_failure" not in doc["logpipe"]


def test_a_patterns_level_key_is_the_lines_level() -> None:
    """A regex's `level` group sets log.level (normalised, as a JSON line's `level`
    does), wherever in the line it stands; a value that names no level sets none."""
    ctx = _rules({"name": "sev", "regex": r"severity=(?P<level>\w+)$"})
    far = "x" * 100
    assert _doc(ctx, f"{far} severity=warning")["log"] == {"level": "warn"}
    assert "log" not in _doc(ctx, f"{far} severity=chatty")


def test_a_time_beyond_the_skew_is_ignored_and_tagged() -> None:
    """A line time two days from Docker's keeps Docker's @timestamp, with the reason."""
    doc = _doc(_rules(ACCESS), LINE.replace("01/May/2025", "03/May/2025"))
    assert doc["@timestamp"] == "2025-05-01T12:00:00.000000000Z"
    assert "created" not in doc["event"]
    assert "more than the allowed skew" in doc["logpipe"]["rule_failure"][0]


def test_a_unix_time_as_text_keeps_its_nanoseconds_and_a_bad_one_says_why() -> None:
    """`format: unix` reads `1746100800.123456789` to the nanosecond into @timestamp; text
    that is no decimal number is ignored and tagged, the reason naming the form to write."""
    rule = {
        "name": "epoch",
        "regex": r"^(?P<ts>\S+) (?P<msg>.*)$",
        "timestamp": {"field": "ts", "format": "unix"},
    }
    doc = _doc(_rules(rule), "1746100800.123456789 served")
    assert doc["@timestamp"] == "2025-05-01T12:00:00.123456789Z"
    assert "rule_failure" not in doc["logpipe"]
    bad = _doc(_rules(rule), "1_746_100_800 served")
    assert bad["@timestamp"] == "2025-05-01T12:00:00.000000000Z"
    assert bad["tags"] == ["rule_failure"]
    assert bad["logpipe"]["rule_failure"] == [
        "timestamp: '1_746_100_800' is not a number of seconds since 1970 (write digits, "
        "perhaps a decimal point and an exponent: 1733400011.123456789, 1.7334e9)"
    ]


def test_the_first_rule_whose_match_and_pattern_fit_wins() -> None:
    """A rule whose pattern does not fit the line is passed over for the next."""
    first = {"name": "kv", "regex": r"^user=(?P<user>\w+)$", "fields": {"user": "keyword"}}
    ctx = _rules(first, ACCESS, {"name": "other", "regex": "(?P<word>\\w+)"})
    assert _doc(ctx, "user=ann")["logpipe"]["rule"] == "kv"
    assert _doc(ctx, LINE)["logpipe"]["rule"] == "shop_access"
    assert _doc(ctx, "just words")["logpipe"]["rule"] == "other"


def test_match_by_service_and_level_chooses_rules() -> None:
    """A rule for another service, or another level, does not apply."""
    ctx = _rules(
        {"name": "db", "match": {"service": "db"}, "regex": "(?P<w>\\w+)"},
        {"name": "errors", "match": {"level": "error"}, "regex": "(?P<w>\\w+)"},
    )
    assert "rule" not in _doc(ctx, "INFO all fine")["logpipe"]
    assert _doc(ctx, "ERROR boom")["logpipe"]["rule"] == "errors"
    # Another container (the engine caches by container id: its labels never change).
    db = {"labels": {"com.docker.compose.service": "db"}, "container_id": "d" * 64}
    assert _doc(ctx, "INFO all fine", **db)["logpipe"]["rule"] == "db"


def test_a_renamed_container_gets_the_rules_of_its_new_name() -> None:
    """After `docker rename`, the same container's lines match rules by the new name (and
    by it as the service, when the container has no compose service)."""
    ctx = _rules(
        {"name": "renamed", "match": {"container": "new-*"}, "regex": "(?P<w>\\w+)"},
        {"name": "by_service", "match": {"service": "newer"}, "regex": "(?P<w>\\w+)"},
    )
    old = {"container_name": "old-1", "labels": {}}
    assert "rule" not in _doc(ctx, "hello", **old)["logpipe"]
    assert _doc(ctx, "hello", **{**old, "container_name": "new-1"})["logpipe"]["rule"] == "renamed"
    assert (
        _doc(ctx, "hello", **{**old, "container_name": "newer"})["logpipe"]["rule"] == "by_service"
    )


def test_the_container_label_names_its_rule_and_a_line_that_does_not_fit_is_tagged() -> None:
    """logpipe.rule=<name> picks the rule whatever its match; a misfit is tagged, kept."""
    ctx = _rules({**ACCESS, "match": {"service": "nobody"}})
    labels = {"labels": {"logpipe.rule": "shop_access"}}
    assert _doc(ctx, LINE, **labels)["fields"]["status"] == 200
    misfit = _doc(ctx, "hello", **labels)
    assert misfit["logpipe"]["rule_failure"] == ["the pattern of rule 'shop_access' does not fit"]
    unknown = _doc(ctx, "hello", labels={"logpipe.rule": "nope"}, container_id="e" * 64)
    assert "names no rule" in unknown["logpipe"]["rule_failure"][0]
    assert "rule" not in unknown["logpipe"]


def test_drop_rules_drop_and_count_lines_by_rule() -> None:
    """Lines a drop rule fits are not documents, and are counted under the rule's name."""
    ctx = _rules({"name": "health", "regex": "GET /healthz", "drop": True}, ACCESS)
    decoded = _decode(ctx, LINE.replace("/cart", "/healthz"), LINE, "GET /healthz again")
    assert decoded.rules.dropped == {"health": 2}
    assert [d.body["logpipe"]["rule"] for d in decoded.docs] == ["shop_access"]
    assert decoded.received == 4  # the source line and three log lines


def test_json_keys_are_typed_and_json_time_becomes_the_timestamp() -> None:
    """A rule without a pattern types keys of a JSON line and takes its `ts`."""
    rule = {"name": "api", "fields": {"duration_ms": "long"}, "timestamp": {"field": "ts"}}
    doc = _doc(_rules(rule), '{"msg": "done", "duration_ms": 250, "ts": "2025-05-01T11:00:00Z"}')
    assert doc["fields"] == {"duration_ms": 250}
    assert doc["@timestamp"] == "2025-05-01T11:00:00.000000000Z"
    assert doc["message"] == "done"


def test_no_rules_leave_documents_exactly_as_before() -> None:
    """With an empty engine the documents are those of the collector without rules."""
    assert not Engine()
    assert _doc(Context(parsing=ParsingRules(Engine())), LINE) == _doc(Context(), LINE)


def _config(path: Path, rules: list[dict[str, Any]]) -> None:
    path.write_text(orjson.dumps({"rules": rules}).decode())


def test_conflicting_types_are_a_config_error_naming_both_rules(tmp_path: Path) -> None:
    """One field declared long by one rule and double by another is refused at load."""
    path = tmp_path / "collector.yaml"
    other = {"name": "timing", "regex": "(?P<bytes>\\S+)", "fields": {"bytes": "double"}}
    _config(path, [ACCESS, other])
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "field 'bytes' is long in rule 'shop_access' and double in rule 'timing'" in message


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"name": "a", "regex": "(?<=x)y"}, "rule 'a': the regular expression does not compile"),
        ({"name": "b", "dissect": "%{x}%{y}"}, "rule 'b': keys %{x} and %{y} have no text"),
        ({"name": "c", "dissect": "%{x}", "regex": "x"}, "rule 'c': give 'dissect' or 'regex'"),
        ({"name": "d"}, "rule 'd': the rule does nothing"),
        ({"name": "e", "regex": "x", "drop": True, "fields": {"x": "long"}}, "rule 'e': a drop"),
        ({"name": "F", "regex": "x"}, "rule 'F': a name is 1 to 32"),
        ({"name": "g", "fields": {"x": "float"}}, "Input should be 'long'"),
        ({"name": "h", "fields": {"x": {"type": "long", "format": "unix"}}}, "for dates"),
        ({"name": "i", "timestamp": {"field": "t", "timezone": "Nowhere"}}, "time zone"),
        ({"name": "j", "fields": {"a.b": "long"}}, "rule 'j': field 'a.b'"),
    ],
)
def test_rules_that_cannot_work_are_refused_naming_the_rule(
    tmp_path: Path, rule: dict[str, Any], says: str
) -> None:
    """Each mistake is a config error that names the rule and says what is wrong."""
    path = tmp_path / "collector.yaml"
    _config(path, [rule])
    with pytest.raises(ConfigError, match="rules") as caught:
        load_config(path)
    assert says in str(caught.value)


def test_two_rules_of_one_name_are_refused(tmp_path: Path) -> None:
    """Rule names are unique (a label names one)."""
    path = tmp_path / "collector.yaml"
    _config(path, [ACCESS, {**ACCESS, "fields": {}}])
    with pytest.raises(ConfigError, match="two rules are named 'shop_access'"):
        load_config(path)


def test_reload_swaps_the_engine_and_a_bad_file_keeps_the_old_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A good edit gives a new engine; a bad one is logged and the old engine stays."""
    path = tmp_path / "collector.yaml"
    _config(path, [ACCESS])
    file = ConfigFile(path)
    parsing = ParsingRules(Engine(load_config(path).rules))
    file.subscribe(parsing.take)
    before = parsing.engine
    _config(path, [{**ACCESS, "regex": "(?<=x)"}])
    with caplog.at_level(logging.ERROR):
        assert file.reload_if_changed() is False
    assert parsing.engine is before
    assert "rule 'shop_access'" in caplog.text
    assert "previous rules stay in force" in caplog.text
    _config(path, [{"name": "other", "regex": "(?P<w>\\w+)"}])
    assert file.reload() is True
    assert [r.name for r in parsing.engine.rules] == ["other"]


def test_a_json_value_of_the_wrong_type_stays_as_its_json_text() -> None:
    """An object where a long is declared is kept in attributes as JSON text, tagged."""
    rule = {"name": "api", "fields": {"duration_ms": "long"}}
    doc = _doc(_rules(rule), '{"msg": "done", "duration_ms": {"p50": 3}}')
    assert doc["attributes"]["duration_ms"] == '{"p50":3}'
    assert doc["tags"] == ["rule_failure"]
