"""`logpipe` tried as a person would: typed into a real terminal (tmux) against a real
collector, the screen read back, colours included."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from elasticsearch import Elasticsearch

from logpipe.style import service_color
from tests.integration.readers import READ, Collector, Source, collectors, indexed, post
from tests.integration.terminal import Terminal, line_with, styles
from tests.programs import clean_env

# The read API searches every logpipe stream on the node: a stream another test creates
# meanwhile, its shard not yet started, fails part of the read (no_shard_available).
pytestmark = [pytest.mark.integration, pytest.mark.alone]
__all__ = ["collectors"]  # the fixture

LOGPIPE = f"{sys.executable} -m logpipe"


@pytest.fixture
def terminal(collectors: Callable[..., Collector]) -> Iterator[tuple[Terminal, Collector]]:
    """A tmux terminal whose shell is set up for a collector with the read API on."""
    c = collectors()
    env = clean_env(LOGPIPE_URL=c.url, LOGPIPE_READ_TOKEN=READ, TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    env["HOME"] = os.environ.get("HOME", "/root")
    term = Terminal(env)
    try:
        yield term.open(), c
    finally:
        term.close()


def load(c: Collector, es: Elasticsearch) -> tuple[Source, Source]:
    """Lines of two services, at four levels, indexed."""
    api = Source(service="api", name="api-1")
    worker = Source(host=api.host, service="worker", name="worker-1", container_id="c" * 64)
    t = time.time_ns() - 30 * 10**9
    assert post(c, api.batch(("INFO started", t), ("ERROR db down", t + 1))) == 200
    assert post(c, worker.batch(("WARN queue slow", t + 2), ("FATAL out of memory", t + 3))) == 200
    indexed(es, api.host, 4)
    return api, worker


def test_search_on_a_terminal_is_coloured_by_service_and_level(
    terminal: tuple[Terminal, Collector], es: Elasticsearch
) -> None:
    """Each prefix in its service's colour, messages in their level's; piped, no colour."""
    term, c = terminal
    api, _ = load(c, es)
    term.type(f"{LOGPIPE} search --host {api.host}; echo status=$?")
    term.wait_for("status=0")
    screen = term.screen()
    api_colour, worker_colour = service_color("api"), service_color("worker")
    started = line_with(screen, "INFO started")
    assert styles(started, f"{api.host}/api    | ") == {(api_colour, False, False)}
    assert styles(started, "INFO started") == {(None, False, False)}
    assert styles(line_with(screen, "ERROR db down"), "ERROR db down") == {("31", False, False)}
    warn = line_with(screen, "WARN queue slow")
    assert styles(warn, f"{api.host}/worker | ") == {(worker_colour, False, False)}
    assert styles(warn, "WARN queue slow") == {("33", False, False)}
    assert styles(line_with(screen, "FATAL out"), "FATAL out of memory") == {("31", True, False)}

    # A marker of its own: the first command's "status=0" may still be on the screen
    # until `clear` has run.
    term.type("clear")
    term.type(f"{LOGPIPE} search --host {api.host} | cat; echo piped-status=$?")
    term.wait_for("piped-status=0")
    piped = term.screen()
    assert styles(line_with(piped, "ERROR db down"), f"{api.host}/api    | ERROR db down") == {
        (None, False, False)
    }


def test_tail_on_a_terminal_follows_and_stops_on_ctrl_c(
    terminal: tuple[Terminal, Collector], es: Elasticsearch
) -> None:
    """tail shows the last lines in colour, then a new one as it comes; Ctrl-C gives the
    prompt back with status 130 and no traceback on the screen."""
    term, c = terminal
    api, _ = load(c, es)
    time.sleep(3)  # past the collector's settle delay (2 s): the four lines are the past
    term.type(f"{LOGPIPE} tail --host {api.host} -n 2")
    term.wait_for("FATAL out of memory")
    assert post(c, api.batch(("ERROR retry failed\n  caused by: timeout", time.time_ns()))) == 200
    term.wait_for("caused by: timeout")
    screen = term.screen()
    assert "INFO started" not in term.text()  # -n 2: only the two newest before following
    failed = line_with(screen, "ERROR retry failed")
    assert styles(failed, "ERROR retry failed") == {("31", False, False)}
    assert styles(line_with(screen, "caused by"), f"{api.host}/api    | ") == {
        (service_color("api"), False, False)
    }
    term.key("C-c")
    term.type("echo status=$?")
    shown = term.wait_for("status=130")
    assert "Traceback" not in shown
    assert "KeyboardInterrupt" not in shown
