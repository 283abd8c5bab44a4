"""`logpipe`: search and tail the collector's read API from a terminal.

Runs one command and turns its outcome into the exit status that errors.py lists:
Ctrl-C ends with 130 and SIGTERM with 143, without a traceback; a closed output (a
pipe into `head`) ends quietly with 0.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import TextIO

from logpipe.args import build_parser
from logpipe.client import Endpoint
from logpipe.closed import unchecked_warning
from logpipe.config import Flags, Settings, resolve
from logpipe.document import Document
from logpipe.errors import (
    EXIT_INTERRUPTED,
    EXIT_NO_MATCH,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    LogpipeError,
    OutputError,
    UsageError,
)
from logpipe.query import Filters
from logpipe.render import Renderer
from logpipe.search import SearchRequest, search
from logpipe.style import Style, paint, wants_color
from logpipe.tail import READ_TIMEOUT, Tail, TailRequest
from logpipe.timespec import in_future, time_range


class Terminated(Exception):
    """SIGTERM arrived."""


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Stop the command as Ctrl-C does, with SIGTERM's status."""
    raise Terminated


def filters_of(args: argparse.Namespace, now: datetime, warn: Callable[[str], None]) -> Filters:
    """The filters the options ask for, times made absolute. A `--since` in the future
    is a UsageError for a search that ends now (no line can match); a tail is warned
    through `warn` (it starts with no earlier line, new lines follow)."""
    since, until = time_range(args.since, getattr(args, "until", None), now)
    ahead = in_future(args.since, since, now)
    if ahead is not None and args.command == "search" and until is None:
        raise UsageError(
            f"{ahead}: no line can match (a search ends now unless --until says otherwise)"
        )
    if ahead is not None and args.command == "tail":
        warn(f"warning: {ahead}: tail starts with no earlier line, only new ones")
    return Filters(
        text=args.query, since=since, until=until, host=tuple(args.host),
        service=tuple(args.service), name=tuple(args.name), dataset=tuple(args.dataset),
        level=args.level, stream=args.stream, events=args.events,
    ).check()  # fmt: skip


def renderer_for(args: argparse.Namespace, settings: Settings, out: TextIO) -> Renderer:
    """What turns documents into the text `out` gets (colours for a terminal)."""
    color = wants_color(settings.color, out.isatty(), os.environ)
    style = Style(color=color, visible_controls=out.isatty(), timestamps=args.timestamps)
    return Renderer(style, json=args.json)


def write(out: TextIO, text: str, flush: bool = False) -> None:
    """Write (and flush) `text`; OutputError when the output cannot take it (a closed pipe
    stays BrokenPipeError, the quiet end of `| head`)."""
    try:
        out.write(text)
        if flush:
            out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None


def page_printer(renderer: Renderer, out: TextIO) -> Callable[[list[Document]], None]:
    """What prints a page of documents, their prefixes lined up."""

    def emit(docs: list[Document]) -> None:
        renderer.fit(docs)
        write(out, "".join(renderer.render(doc) for doc in docs))

    return emit


def line_printer(renderer: Renderer, out: TextIO) -> Callable[[Document], None]:
    """What prints one document at once."""

    def emit(doc: Document) -> None:
        write(out, renderer.render(doc), flush=True)

    return emit


def notifier(settings: Settings, err: TextIO) -> Callable[[str], None]:
    """What tells the user something on stderr (yellow on a terminal)."""
    color = wants_color(settings.color, err.isatty(), os.environ)

    def notice(text: str) -> None:
        print(paint(f"logpipe: {text}", "33" if color else None), file=err, flush=True)

    return notice


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the command `args` names; its exit status."""
    flags = Flags(args.url, args.token, args.token_file, args.color, args.config)
    settings = resolve(flags, os.environ)
    filters = filters_of(args, datetime.now(UTC), notifier(settings, err))
    renderer = renderer_for(args, settings, out)
    if args.command == "search":
        return run_search(args, settings, filters, page_printer(renderer, out), err)
    endpoint = Endpoint(
        settings.url, settings.token, settings.url_source, READ_TIMEOUT, settings.token_source
    )
    emit, notice = line_printer(renderer, out), notifier(settings, err)
    Tail(endpoint, TailRequest(filters, args.lines), emit, notice).run()
    return EXIT_OK  # not reached: a tail ends by a signal, a closed output or an error


def run_search(args: argparse.Namespace, settings: Settings, filters: Filters,
               emit: Callable[[list[Document]], None], err: TextIO) -> int:  # fmt: skip
    """`logpipe search`: 0 when it printed lines, 1 when none matched (the statuses stay
    when closed indices may hide lines: that is a warning on stderr)."""
    endpoint = Endpoint(
        settings.url, settings.token, settings.url_source, token_source=settings.token_source
    )
    request = SearchRequest(filters, args.limit, args.asc, args.page_size)
    searched = search(endpoint, request, emit)
    if searched.closed is not None:
        notifier(settings, err)(searched.closed.warning())
    if searched.unchecked is not None:
        notifier(settings, err)(unchecked_warning("the search", searched.unchecked))
    if searched.count:
        return EXIT_OK
    print(f"logpipe: no line matched{field_query_hint(args.query)}", file=err)
    return EXIT_NO_MATCH


# `user:bob`, `log.level=error`: how other tools write a field query.
FIELD_QUERY = re.compile(r"(?:^|\s)[-+]?[A-Za-z_@][\w.@]*[:=][^\s:=]")


def field_query_hint(query: str | None) -> str:
    """What to do instead when a QUERY that matched nothing looks like field:value, which
    it is not: QUERY is only words of the message."""
    if query is None or FIELD_QUERY.search(query) is None:
        return ""
    return (
        " (QUERY matches words of the message, not field:value: filter with --service, "
        "--host, --level, --stream..., or search the value and select with --json | jq)"
    )


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises nothing more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `logpipe` console script; the exit status."""
    parser = build_parser()
    args = parser.parse_command_line(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, on_sigterm)
    if sys.stdout is None:  # started with stdout closed (>&-)
        print("logpipe: standard output is closed: nothing to print the lines to", file=sys.stderr)
        return OutputError.exit_status
    sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    try:
        status = run(args, sys.stdout, sys.stderr)
        write(sys.stdout, "", flush=True)
        return status
    except LogpipeError as exc:
        if isinstance(exc, OutputError):
            silence_stdout()  # what is still buffered would fail again at exit
        print(f"logpipe: {exc}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:
        silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Terminated:
        return EXIT_TERMINATED


if __name__ == "__main__":
    sys.exit(main())
