"""LOGPIPE_DOCUMENT_LABELS: which container labels documents carry in container.labels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector.config import CollectorConfig
from collector.enrich import Context, log_document
from collector.labels import COMPOSE_BOOKKEEPING_LABELS, LabelFilter
from collector.parse import parse
from tests.collector.test_enrich import NOW, make_log, make_source
from tests.programs import clean_env, one_line_error, run

LABELS = {
    "com.docker.compose.project": "shop",
    "com.docker.compose.service": "api",
    "com.docker.compose.config-hash": "abc",
    "traefik.enable": "true",
    "traefik.http.routers.api.rule": "Host(`shop`)",
    "team": "core",
    "Team": "upper",
}


LABEL_ARGS = ("--label", "team=core", "--label", "traefik.enable=true")


def kept(*patterns: str) -> dict[str, str]:
    return LabelFilter(patterns)(LABELS)


def test_by_default_every_label_but_compose_s_bookkeeping_is_kept() -> None:
    assert LabelFilter()(LABELS) == {
        k: v for k, v in LABELS.items() if k not in COMPOSE_BOOKKEEPING_LABELS
    }
    assert "com.docker.compose.config-hash" not in LabelFilter()(LABELS)


def test_include_patterns_keep_only_what_they_match() -> None:
    assert kept("team", "com.docker.compose.*") == {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "api",
        "team": "core",
    }
    assert kept("te?m") == {"team": "core"}  # case-sensitive, as Docker's keys are


def test_exclude_patterns_alone_start_from_every_label() -> None:
    assert kept("!traefik.*") == {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "api",
        "team": "core",
        "Team": "upper",
    }
    assert kept("com.docker.compose.*", "!*.project") == {"com.docker.compose.service": "api"}
    assert kept("!traefik.*", "!com.docker.compose.*", "!team") == {"Team": "upper"}


def test_no_pattern_keeps_no_label() -> None:
    assert kept() == {}


def test_a_bookkeeping_label_is_kept_only_where_a_pattern_is_its_key() -> None:
    assert "com.docker.compose.config-hash" not in kept("com.docker.compose.*")
    assert kept("com.docker.compose.config-hash") == {"com.docker.compose.config-hash": "abc"}


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("!", "names no label"),
        (" ", "names no label"),
        ("team=core", "match label keys, not key=value (write 'team')"),
        ("!team=core", "match label keys, not key=value (write '!team')"),
    ],
)
def test_a_pattern_that_cannot_mean_a_label_key_is_refused(pattern: str, says: str) -> None:
    with pytest.raises(ValueError, match=r".*") as raised:
        LabelFilter([pattern])
    assert says in str(raised.value)


def test_the_setting_reads_comma_separated_patterns_and_empty_as_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGPIPE_DOCUMENT_LABELS", " team , !traefik.* ,")
    assert CollectorConfig().document_labels == ["team", "!traefik.*"]
    monkeypatch.setenv("LOGPIPE_DOCUMENT_LABELS", "")
    assert CollectorConfig().document_labels == []
    monkeypatch.delenv("LOGPIPE_DOCUMENT_LABELS")
    assert CollectorConfig().document_labels == ["*"]
    assert CollectorConfig.model_validate({"document_labels": ["a.*", "!a.b"]}).document_labels == [
        "a.*",
        "!a.b",
    ]


def test_a_bad_pattern_stops_the_collector_at_start_naming_the_setting(tmp_path: Path) -> None:
    proc = run(
        "collector", "serve", cwd=tmp_path, LOGPIPE_TOKENS="t", LOGPIPE_DOCUMENT_LABELS="a,b=c"
    )
    assert proc.returncode == 2
    assert "LOGPIPE_DOCUMENT_LABELS: 'b=c': the patterns match label keys" in one_line_error(proc)


def test_documents_carry_the_labels_the_context_keeps() -> None:
    source = make_source(**LABELS)
    line = make_log("x")
    ctx = Context(labels=LabelFilter(["com.docker.compose.service", "team"]))
    doc = log_document(source, line, parse(line.message), ctx, NOW)
    assert doc.body["container"]["labels"] == {"com.docker.compose.service": "api", "team": "core"}
    none = log_document(source, line, parse(line.message), Context(labels=LabelFilter([])), NOW)
    assert "labels" not in none.body["container"]
    # The service name comes from Compose's label whether documents carry it or not.
    assert none.body["service"]["name"] == "api"


def test_serve_and_rules_test_make_documents_with_the_labels_the_setting_keeps(
    tmp_path: Path,
) -> None:
    """The setting reaches the documents `serve` makes (its state's context) and those
    `rules test` shows."""
    from collector.app import State

    config = CollectorConfig(tokens=["t"], document_labels=["team"])
    assert State(config).context.labels.patterns == ("team",)
    proc = subprocess.run(
        [sys.executable, "-m", "collector", "rules", "test", "--json", *LABEL_ARGS],
        env=clean_env(LOGPIPE_DOCUMENT_LABELS="team"),
        cwd=tmp_path,
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout.splitlines()[0])["document"]
    assert document["container"]["labels"] == {"team": "core"}


def test_a_nul_in_a_label_key_is_written_as_a_replacement_character() -> None:
    """`container.labels` is `flattened`, which keeps NUL for itself: Elasticsearch would
    refuse every document of the container. Of two keys then the same, the first stays."""
    labels = {"a\x00b": "1", "c": "2", "a\ufffdb": "3"}
    assert LabelFilter()(labels) == {"a\ufffdb": "1", "c": "2"}
    assert LabelFilter()({"c": "2"}) == {"c": "2"}
