"""Unit tests of which containers are followed and of the hints their labels give."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from collector.rules.config import RULE_LABEL
from shipper.config import ShipperConfig
from shipper.selection import meta_from, skip_reason, unknown_labels
from tests.shipper.summaries import container


def config(**settings: Any) -> ShipperConfig:
    """The config of `settings` alone (no .env), their values checked by pydantic."""
    return ShipperConfig(_env_file=None, **settings)


names = st.text(alphabet="abcdefghij-_.0123456789", min_size=1, max_size=20)


@given(names, names)
def test_without_filters_everything_is_followed(name: str, image: str) -> None:
    """With no filter and no opt-out, every container is followed."""
    assert skip_reason(container(name=name, image=image), config(), None) is None


@given(names)
def test_exclude_wins_over_include(name: str) -> None:
    """A name both included and excluded is not followed."""
    cfg = config(include_names=["*"], exclude_names=[name])
    assert skip_reason(container(name=name), cfg, None) is not None


def test_name_image_and_label_globs() -> None:
    """Include and exclude globs apply to names, images and key=value labels."""
    web = container(name="web-1", image="nginx:1.27", labels={"tier": "front", "team": "a"})
    db = container(name="db-1", image="postgres:16", labels={"tier": "back"})
    assert skip_reason(web, config(include_names=["web-*"]), None) is None
    assert skip_reason(db, config(include_names=["web-*"]), None)
    assert skip_reason(db, config(exclude_images=["postgres:*"]), None)
    assert skip_reason(web, config(exclude_images=["postgres:*"]), None) is None
    assert skip_reason(web, config(include_images=["nginx*"]), None) is None
    assert skip_reason(web, config(include_labels=["tier=front"]), None) is None
    assert skip_reason(db, config(include_labels=["tier=front"]), None)
    assert skip_reason(web, config(exclude_labels=["team"]), None)  # key alone: any value
    assert skip_reason(db, config(exclude_labels=["te*=*"]), None) is None


def test_comma_separated_settings_become_lists() -> None:
    """LOGPIPE_INCLUDE_NAMES=a,b is two patterns."""
    assert config(include_names="web-*, api-*").include_names == ["web-*", "api-*"]


def test_opt_out_label_and_logspout_environment() -> None:
    """logpipe.enable=false and LOGSPOUT=ignore are honoured, whatever the filters."""
    for value in ("false", "False", "0", "no"):
        assert skip_reason(container(labels={"logpipe.enable": value}), config(), None)
    assert skip_reason(container(labels={"logpipe.enable": "true"}), config(), None) is None
    assert skip_reason(container(env=["LOGSPOUT=ignore"]), config(), None)
    assert skip_reason(container(env=["LOGSPOUT=other"]), config(), None) is None


def test_never_follows_itself() -> None:
    """The shipper's own container (by full or short id) is never followed."""
    me = container(cid="b" * 64)
    assert skip_reason(me, config(), "b" * 64)
    assert skip_reason(me, config(), "b" * 12)
    assert skip_reason(container(), config(), "b" * 12) is None


def test_hints_from_labels_and_warnings_for_bad_ones() -> None:
    """Parser, dataset and namespace labels become hints; invalid ones are warned about."""
    meta, warnings = meta_from(
        container(
            labels={
                "logpipe.parser": "JSON",
                "logpipe.dataset": "web.access",
                "logpipe.namespace": "Prod-1",
            }
        )
    )
    assert (meta.parser, meta.dataset, meta.namespace) == ("json", "web.access", None)
    assert len(warnings) == 1
    assert "namespace" in warnings[0]
    meta, warnings = meta_from(container(labels={"logpipe.parser": "xml"}))
    assert meta.parser == "auto"
    assert warnings


def test_a_misspelt_logpipe_label_is_warned_about_with_the_key_meant() -> None:
    """logpipe.exclude_line would do nothing, silently: a warning names the label meant."""
    _, warnings = meta_from(
        container(labels={"logpipe.exclude_line": "^DEBUG", "logpipe.multline": "java"})
    )
    assert warnings == [
        "label logpipe.exclude_line is unknown: did you mean logpipe.exclude_lines?",
        "label logpipe.multline is unknown: did you mean logpipe.multiline?",
    ]
    _, warnings = meta_from(container(labels={"logpipe.team": "payments"}))
    assert warnings == ["label logpipe.team is unknown: no such logpipe label"]


def test_every_label_logpipe_reads_is_known() -> None:
    """The hints of the README's table, and the collector's logpipe.rule, are never warned about."""
    labels = {
        key: "x"
        for key in (
            "logpipe.parser",
            "logpipe.dataset",
            "logpipe.namespace",
            "logpipe.multiline",
            "logpipe.multiline.pattern",
            "logpipe.multiline.negate",
            "logpipe.multiline.match",
            "logpipe.multiline.timeout",
            "logpipe.multiline.max_lines",
            "logpipe.multiline.max_bytes",
            "logpipe.include_lines",
            "logpipe.exclude_lines",
            "logpipe.enable",
            RULE_LABEL,
            "com.docker.compose.service",
        )
    }
    assert unknown_labels(labels) == []


def test_a_logpipe_label_named_by_a_label_filter_is_in_use() -> None:
    """LOGPIPE_INCLUDE_LABELS=logpipe.test=run1 makes logpipe.test a label of the user's."""
    labels = {"logpipe.test": "run1", "logpipe.bench": "b"}
    assert unknown_labels(labels, ["logpipe.test=run1", "logpipe.ben*"]) == []
    assert unknown_labels(labels, ["logpipe.test"]) == [
        "label logpipe.bench is unknown: no such logpipe label"
    ]


def test_a_container_logging_to_none_is_not_followed() -> None:
    """dockerd answers every read of a `--log-driver none` container 501: it is skipped,
    said once, instead of retried every 10 s for good. Other drivers are read (dockerd's
    dual logging keeps a copy of theirs)."""
    reason = skip_reason(container(log_driver="none"), config(), None)
    assert reason == "its logging driver is none: dockerd keeps no log of it to read"
    for driver in ("json-file", "local", "journald", "syslog", "fluentd", ""):
        assert skip_reason(container(log_driver=driver), config(), None) is None
