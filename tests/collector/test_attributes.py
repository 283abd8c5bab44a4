"""LOGPIPE_INDEXED_ATTRIBUTES: which parsed keys `attributes` indexes; the others are
kept, unindexed, in `attributes_unindexed`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector import attributes as attributes_module
from collector.attributes import (
    FLATTENED_DEPTH,
    LONGEST_KEY,
    UNINDEXED,
    AttributeFilter,
    within_depth,
)
from collector.config import CollectorConfig
from collector.enrich import Context, log_document
from collector.parse import parse
from collector.shape import flat, nested
from collector.templates import TEMPLATE_VERSION, index_template
from tests.collector.test_enrich import NOW, make_log, make_source
from tests.programs import clean_env, one_line_error, run

KEYS = {"time": "2026-12-04T10:00:00Z", "user_id": 7, "ctx": {"a": 1}, "Path": "/x"}
LINE = json.dumps({"msg": "paid", **KEYS})


def split(*patterns: str) -> tuple[dict[str, object], dict[str, object]]:
    parsed = parse(LINE)
    assert parsed.attributes is not None
    return AttributeFilter(patterns).split(parsed.attributes)


def test_every_key_is_indexed_by_default() -> None:
    assert AttributeFilter().every
    assert split("*") == (
        {"time": "2026-12-04T10:00:00Z", "user_id": 7, "ctx": {"a": 1}, "Path": "/x"},
        {},
    )


@pytest.mark.parametrize(
    ("patterns", "indexed"),
    [
        (("user_id", "ctx"), ["user_id", "ctx"]),
        (("user_*",), ["user_id"]),
        (("!time",), ["user_id", "ctx", "Path"]),  # excludes alone start from every key
        (("*", "!time", "!ctx"), ["user_id", "Path"]),
        (("path",), []),  # case-sensitive
        ((), []),  # no pattern: none indexed
    ],
)
def test_the_patterns_choose_the_indexed_keys_the_rest_kept_in_order(
    patterns: tuple[str, ...], indexed: list[str]
) -> None:
    got, rest = split(*patterns)
    assert list(got) == indexed
    assert list(rest) == [k for k in KEYS if k not in indexed]  # the line's order
    assert {**got, **rest} == KEYS  # nothing lost
    assert not AttributeFilter(patterns).every


def test_documents_carry_the_unindexed_keys_beside_the_indexed_ones() -> None:
    source, line = make_source(), make_log(LINE)
    ctx = Context(attributes=AttributeFilter(["user_id"]))
    body = log_document(source, line, parse(line.message), ctx, NOW).body
    assert body["attributes"] == {"user_id": 7}
    assert body[UNINDEXED] == {"time": "2026-12-04T10:00:00Z", "ctx": {"a": 1}, "Path": "/x"}
    # Indexed flat, each an object its field's type takes; read back nested, the same.
    flat_body = flat(body)
    assert flat_body[UNINDEXED] == body[UNINDEXED]
    assert flat_body["attributes"] == {"user_id": 7}
    assert nested(flat_body) == body
    none = log_document(source, line, parse(line.message), Context(), NOW).body
    assert UNINDEXED not in none
    every_unindexed = Context(attributes=AttributeFilter([]))
    body = log_document(source, line, parse(line.message), every_unindexed, NOW).body
    assert "attributes" not in body  # no empty object for Elasticsearch to parse
    assert set(body[UNINDEXED]) == {"time", "user_id", "ctx", "Path"}


def _nest(levels: int, leaf: object = "v") -> dict[str, object]:
    """`levels` objects, one inside the other, around `leaf`."""
    value: object = leaf
    for i in range(levels):
        value = {f"k{i}": value}
    assert isinstance(value, dict)
    return value


def _levels(value: object) -> int:
    """The objects nested in `value`, itself counted (arrays are no level)."""
    if isinstance(value, dict):
        return 1 + max((_levels(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((_levels(v) for v in value), default=0)
    return 0


def test_objects_deeper_than_a_flattened_field_takes_are_kept_as_their_json_text() -> None:
    """Elasticsearch refuses `attributes` nested more than 20 objects deep (itself
    counted): the object too deep becomes its JSON text, the rest stays as it was."""
    deep = {"msg": "deep", "outer": _nest(FLATTENED_DEPTH)}  # 21 levels with `attributes`
    source, line = make_source(), make_log(json.dumps(deep))
    for ctx in (Context(), Context(attributes=AttributeFilter(["outer"]))):
        body = log_document(source, line, parse(line.message), ctx, NOW).body
        attributes = body["attributes"]
        assert _levels(attributes) == FLATTENED_DEPTH
        inner: object = attributes["outer"]
        for i in reversed(range(1, FLATTENED_DEPTH)):
            assert isinstance(inner, dict)
            inner = inner[f"k{i}"]
        assert inner == json.dumps(_nest(1), separators=(",", ":"))  # {"k0":"v"}
    # Kept unindexed, any depth is taken (Elasticsearch does not parse it into fields).
    unindexed = Context(attributes=AttributeFilter(["other"]))
    body = log_document(source, line, parse(line.message), unindexed, NOW).body
    assert body[UNINDEXED] == {"outer": _nest(FLATTENED_DEPTH)}


def test_arrays_are_no_level_and_what_fits_is_the_same_object() -> None:
    fits = {"a": _nest(FLATTENED_DEPTH - 1), "b": [1, {"c": 2}]}
    assert within_depth(fits) is fits
    too_deep = {"list": [{"x": 1}, _nest(FLATTENED_DEPTH)]}
    got = within_depth(too_deep)
    assert _levels(got) == FLATTENED_DEPTH
    assert got["list"][0] == {"x": 1}


@pytest.mark.parametrize(
    ("key", "value", "kept_apart"),
    [
        ("k" * LONGEST_KEY, 1, False),
        ("k" * (LONGEST_KEY + 1), 1, True),
        ("é" * LONGEST_KEY, 1, False),  # characters, not bytes
        ("a", {"b" * (LONGEST_KEY - 2): 1}, False),  # a.bbb...: the path counts
        ("a", {"b" * (LONGEST_KEY - 1): 1}, True),
        ("a", [{"b" * (LONGEST_KEY - 1): 1}], True),  # through a list
        ("a\x00b", 1, True),
        ("a", {"b\x00": 1}, True),
        ("a", [{"\x00": 1}], True),
        ("a", "x\x00y", False),  # a value may hold it
    ],
)
def test_a_key_whose_path_elasticsearch_cannot_index_is_kept_unindexed(
    key: str, value: object, kept_apart: bool
) -> None:
    """A parsed key longer than LONGEST_KEY (with its nested keys' path), or one that
    holds NUL, goes to attributes_unindexed, whatever LOGPIPE_INDEXED_ATTRIBUTES says:
    `attributes` indexes its whole path in one term, and Elasticsearch refused such a
    line's document (40,000 characters; a key with the NUL a `flattened` field keeps for
    itself); the other keys stay indexed."""
    source = make_source()
    line = make_log(json.dumps({"msg": "m", "user": 7, key: value}))
    for ctx in (Context(), Context(attributes=AttributeFilter(["user", key]))):
        body = log_document(source, line, parse(line.message), ctx, NOW).body
        if kept_apart:
            assert body["attributes"] == {"user": 7}
            assert body[UNINDEXED] == {key: value}
        else:
            assert body["attributes"] == {"user": 7, key: value}
            assert UNINDEXED not in body


def test_a_logfmt_key_that_holds_nul_is_kept_unindexed_and_the_line_parsed() -> None:
    """A binary line that still reads as logfmt: its NUL key would have the document
    refused (a dead letter); the key is kept unindexed, the line indexed as logfmt."""
    line = make_log("level=info user=ann a\x00b=1 msg=bin")
    doc = log_document(make_source(), line, parse(line.message), Context(), NOW).body
    assert (doc["logpipe"]["parser"], doc["message"]) == ("logfmt", "bin")
    assert (doc["attributes"], doc[UNINDEXED]) == ({"user": "ann"}, {"a\x00b": "1"})


def test_the_decisions_remembered_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attributes_module, "DECISIONS", 8)
    chosen = AttributeFilter(["k1*"])
    for n in range(50):
        assert chosen.indexes(f"k{n}") == str(n).startswith("1")
        assert len(chosen._decided) <= 8


def test_the_template_keeps_the_unindexed_keys_in_source_only() -> None:
    props = index_template()["template"]["mappings"]["properties"]
    assert props[UNINDEXED] == {"type": "flattened", "index": False, "doc_values": False}
    assert props["attributes"]["type"] == "flattened"
    assert TEMPLATE_VERSION == 6


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("!", "names no attribute"),
        ("user=7", "match attribute keys, not key=value (write 'user')"),
    ],
)
def test_a_pattern_that_cannot_mean_a_key_is_refused(pattern: str, says: str) -> None:
    with pytest.raises(ValueError, match=r".*") as raised:
        AttributeFilter([pattern])
    assert says in str(raised.value)


def test_the_setting_reads_comma_separated_patterns_and_empty_as_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGPIPE_INDEXED_ATTRIBUTES", " user_id , !time ,")
    assert CollectorConfig().indexed_attributes == ["user_id", "!time"]
    monkeypatch.setenv("LOGPIPE_INDEXED_ATTRIBUTES", "")
    assert CollectorConfig().indexed_attributes == []
    monkeypatch.delenv("LOGPIPE_INDEXED_ATTRIBUTES")
    assert CollectorConfig().indexed_attributes == ["*"]
    from_file = CollectorConfig.model_validate({"indexed_attributes": ["user_*", "!user_agent"]})
    assert from_file.indexed_attributes == ["user_*", "!user_agent"]


def test_a_bad_pattern_stops_the_collector_at_start_naming_the_setting(tmp_path: Path) -> None:
    proc = run(
        "collector", "serve", cwd=tmp_path, LOGPIPE_TOKENS="t", LOGPIPE_INDEXED_ATTRIBUTES="a,b=c"
    )
    assert proc.returncode == 2
    assert "LOGPIPE_INDEXED_ATTRIBUTES: 'b=c': the patterns match attribute keys" in one_line_error(
        proc
    )


def test_serve_and_rules_test_make_documents_with_the_keys_the_setting_indexes(
    tmp_path: Path,
) -> None:
    """The setting reaches the documents `serve` makes (its state's context) and those
    `rules test` shows."""
    from collector.app import State

    config = CollectorConfig(tokens=["t"], indexed_attributes=["user_id"])
    assert State(config).context.attributes.patterns == ("user_id",)
    proc = subprocess.run(
        [sys.executable, "-m", "collector", "rules", "test", "--json"],
        env=clean_env(LOGPIPE_INDEXED_ATTRIBUTES="user_id"),
        cwd=tmp_path,
        input=LINE + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout.splitlines()[0])["document"]
    assert document["attributes"] == {"user_id": 7}
    assert set(document[UNINDEXED]) == {"time", "ctx", "Path"}
