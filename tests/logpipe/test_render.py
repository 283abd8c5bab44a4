"""Printed lines: `host/service | message`, aligned, one prefix per message line,
timestamps, colours by service and level, control characters, and JSON as received."""

from __future__ import annotations

import json
import re

from logpipe.document import Document, parse_document
from logpipe.render import Renderer
from logpipe.style import SERVICE_COLORS, Style, service_color, wants_color
from tests.logpipe.fake_collector import doc

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def document(message: str, service: str = "api", host: str = "h1", **more: object) -> Document:
    """A parsed document of the usual shape."""
    return parse_document(json.dumps(doc(message, service, host, **more)))


def test_plain_lines_are_prefixed_and_aligned_to_the_widest_prefix_so_far() -> None:
    """Without colour: `host/service | message`, the bar moving right as wider ones come."""
    r = Renderer(Style())
    assert r.render(document("one", "db")) == "h1/db | one\n"
    assert r.render(document("two", "api-gateway")) == "h1/api-gateway | two\n"
    assert r.render(document("three", "db")) == "h1/db          | three\n"


def test_a_page_is_lined_up_before_it_is_printed() -> None:
    """`fit` widens the column for a whole page, so its first line lines up too."""
    r = Renderer(Style())
    page = [document("one", "db"), document("two", "api-gateway")]
    r.fit(page)
    assert [r.render(d) for d in page] == ["h1/db          | one\n", "h1/api-gateway | two\n"]


def test_a_message_of_several_lines_gets_the_prefix_on_each() -> None:
    """A stack trace prints one prefixed line per line, without \\r or a last empty line."""
    trace = 'Traceback (most recent call last):\r\n  File "x.py", line 1\nValueError: no\n'
    out = Renderer(Style()).render(document(trace))
    assert out == (
        "h1/api | Traceback (most recent call last):\n"
        'h1/api |   File "x.py", line 1\n'
        "h1/api | ValueError: no\n"
    )


def test_timestamps_follow_the_bar_and_continuation_lines_are_indented() -> None:
    """--timestamps shows @timestamp once per message; later lines line up under the text."""
    out = Renderer(Style(timestamps=True)).render(document("a\nb"))
    stamp = "2026-12-02T10:00:00.000000001Z"
    assert out == f"h1/api | {stamp} a\nh1/api | {' ' * len(stamp)} b\n"


def test_a_document_without_host_or_service_still_prints() -> None:
    """The container name stands in for the service; without any, a dash."""
    bare = parse_document('{"message": "x", "container": {"name": "web-1"}}')
    assert Renderer(Style()).render(bare) == "web-1 | x\n"
    assert Renderer(Style()).render(parse_document('{"message": "y"}')) == "- | y\n"


def test_colour_paints_the_prefix_by_service_and_the_message_by_level() -> None:
    """The prefix gets its service's colour; warn is yellow, error red, info plain."""
    r = Renderer(Style(color=True))
    code = service_color("api")
    warn = r.render(document("slow", log={"level": "WARN"}))
    assert warn == f"\x1b[{code}mh1/api | \x1b[0m\x1b[33mslow\x1b[0m\n"
    error = r.render(document("boom", log={"level": "error"}))
    assert error.endswith("\x1b[31mboom\x1b[0m\n")
    info = r.render(document("fine", log={"level": "info"}))
    assert info.endswith(" | \x1b[0mfine\n")
    assert ANSI.sub("", warn) == "h1/api | slow\n"


def test_lifecycle_events_are_bold() -> None:
    """A container event (with --events) prints in bold among the lines."""
    event = document("container api-1 die (exit code 1)", event={"kind": "event"})
    out = Renderer(Style(color=True)).render(event)
    assert out.endswith(" | \x1b[0m\x1b[1mcontainer api-1 die (exit code 1)\x1b[0m\n")


def test_a_service_has_the_same_colour_in_every_run() -> None:
    """The colour comes from a fixed hash of the name, not Python's per-run hash."""
    assert service_color("api") == SERVICE_COLORS[9]  # crc32("api") % 10
    assert service_color("api") == service_color("api")
    colours = {service_color(f"svc-{i}") for i in range(50)}
    assert len(colours) == len(SERVICE_COLORS)  # spread over the whole palette
    assert "31" not in colours  # red is for errors


def test_control_characters_are_made_visible_on_a_terminal_only() -> None:
    """Escape and carriage return inside a message print as ^[ and ^M when asked; a pipe
    gets them as logged."""
    msg = "red \x1b[31mtext\x1b[0m\rover\x07"
    shown = Renderer(Style(visible_controls=True)).render(document(msg))
    assert shown == "h1/api | red ^[[31mtext^[[0m^Mover^G\n"
    assert Renderer(Style()).render(document(msg)) == f"h1/api | {msg}\n"


def test_control_characters_of_the_prefix_are_text_on_a_terminal_and_in_a_pipe() -> None:
    """A service name (a label anyone starting a container chooses) cannot clear the
    screen, change colours or break a line in two, wherever the output goes; the column
    is as wide as what is shown."""
    service = "svc\x1b[2J\x1b[31mX\nY\tZ"
    shown = "h1/svc^[[2J^[[31mX^JY^IZ"
    for style in (Style(visible_controls=True), Style()):
        r = Renderer(style)
        assert r.render(document("line", service)) == f"{shown} | line\n"
        assert r.render(document("next", "db")) == "h1/db".ljust(len(shown)) + " | next\n"


def test_json_prints_the_document_as_it_came() -> None:
    """--json prints the received JSON text, one document a line, whatever the style."""
    text = json.dumps(doc("x\ny", _id="abc", _index="logs-x"))
    assert Renderer(Style(color=True), json=True).render(parse_document(text)) == text + "\n"


def test_colour_is_automatic_on_a_terminal_without_no_color() -> None:
    """auto colours a terminal only; NO_COLOR (not empty) and TERM=dumb turn it off;
    always and never win over both."""
    assert wants_color("auto", True, {})
    assert not wants_color("auto", False, {})
    assert not wants_color("auto", True, {"NO_COLOR": "1"})
    assert wants_color("auto", True, {"NO_COLOR": ""})
    assert not wants_color("auto", True, {"TERM": "dumb"})
    assert wants_color("always", False, {"NO_COLOR": "1"})
    assert not wants_color("never", True, {})
