"""Unit tests of reading Docker's container events."""

from __future__ import annotations

from shipper.events import LIFECYCLE, parse_event, summary_from_event

RAW = {
    "Type": "container",
    "Action": "die",
    "Actor": {
        "ID": "c" * 64,
        "Attributes": {
            "exitCode": "137",
            "image": "busybox:latest",
            "name": "web-1",
            "com.docker.compose.service": "web",
        },
    },
    "timeNano": 1795812919123456789,
}


def test_die_carries_exit_code_and_exact_nanoseconds() -> None:
    """timeNano exceeds 2^53 and stays exact; the exit code is an int."""
    event = parse_event(RAW)
    assert event is not None
    assert (event.action, event.exit_code, event.ts) == ("die", 137, 1795812919123456789)
    assert event.action in LIFECYCLE


def test_health_status_detail_and_rename_names() -> None:
    """'health_status: healthy' is the action and its detail; a rename names both names."""
    health = parse_event({**RAW, "Action": "health_status: healthy"})
    assert health is not None
    assert (health.action, health.detail) == ("health_status", "healthy")
    rename = parse_event(
        {
            "Action": "rename",
            "Actor": {"ID": "d" * 64, "Attributes": {"name": "/new", "oldName": "/old"}},
        }
    )
    assert rename is not None
    assert (rename.name, rename.old_name) == ("new", "old")


def test_labels_are_the_attributes_that_are_not_docker_fields() -> None:
    """name, image and exitCode are not labels; the rest are."""
    event = parse_event(RAW)
    assert event is not None
    summary = summary_from_event(event)
    assert summary["labels"] == {"com.docker.compose.service": "web"}
    assert (summary["name"], summary["image"]) == ("web-1", "busybox:latest")


def test_events_without_container_or_action_are_ignored() -> None:
    """Malformed events are skipped, not errors."""
    assert parse_event({"Action": "start"}) is None
    assert parse_event({"Actor": {"ID": "x"}}) is None
