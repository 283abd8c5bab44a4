"""The command line: `logpipe search` and `logpipe tail`, their options, help and examples."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable
from typing import NoReturn

from logpipe.client import installed_version
from logpipe.query import LEVELS, STREAMS
from logpipe.style import COLOR_MODES

DESCRIPTION = """\
logpipe: search and follow the logs your logpipe collectors indexed, from the terminal.
Lines print like `docker compose logs`: host/service | message, coloured by service and
level on a terminal, plain when piped.

examples:
  export LOGPIPE_URL=http://collector:8080 LOGPIPE_READ_TOKEN=<a read token>
  logpipe tail --service 'api*'              the last 10 lines, then every new one
  logpipe search timeout --since 2h          the newest 100 lines of 2 hours with "timeout"
  logpipe search --help                      each command's options and more examples"""

SETTINGS = """\
settings (the first place that has one wins):
  1. --url, --token / --token-file, --color
  2. LOGPIPE_URL, LOGPIPE_READ_TOKEN / LOGPIPE_READ_TOKEN_FILE
  3. the config file (--config, default $XDG_CONFIG_HOME/logpipe/config.toml, i.e.
     ~/.config/logpipe/config.toml): url = "...", token = "..." or token_file = "...",
     color = "auto"
  4. url http://localhost:8080; a read token is always needed
NO_COLOR (set and not empty) or TERM=dumb turns colour off unless --color or the config file
says."""

EXIT_STATUSES = """\
exit status:
  0    done (search printed lines; tail: its output was closed)
  1    search: no line matched
  2    bad command line, setting or config file
  3    the collector refused the token (401, 403: missing, wrong, or not a read token)
  4    the collector cannot be reached, or cannot answer now (5xx, Elasticsearch down)
  5    the collector refused the query (400; the message names the parameter)
  6    the collector refused otherwise (404: read API off, or a wrong URL; 429: a limit)
  7    the lines could not be written (stdout closed, disk full)
  130  stopped by Ctrl-C (SIGINT); 143 by SIGTERM"""

SEARCH_EXAMPLES = """\
examples:
  logpipe search timeout                     the newest 100 lines of the last 24h with "timeout"
  logpipe search '"connection refused"' --since 2h --service 'api*'
  logpipe search --level error --since 2026-12-02T09:00:00Z --until 2026-12-02T10:00:00Z
  logpipe search --host web-1 --stream stderr --limit 1000 --asc
  logpipe search oom --since 7d --json | jq -r '.container.name'

QUERY is Elasticsearch's simple_query_string on the message: words (all must match:
`disk full`), "a phrase", -excluded, a|b (either), prefix*. A QUERY that starts with -
goes after -- and the options: logpipe search --since 1h -- '-healthz'.
Closed indices of the streams searched (Elasticsearch skips them: lines may be
missing) are named in a warning on stderr, and so is a collector that could not check
for them; stdout holds only the lines."""

TAIL_EXAMPLES = """\
examples:
  logpipe tail                               the last 10 lines of every service, then new ones
  logpipe tail -n 100 --service api --level warn
  logpipe tail --host 'web-*' --timestamps
  logpipe tail error --json | jq .message

tail reconnects by itself when the connection or the collector fails, and goes on
exactly after the last line it printed (no line twice, none left out); lines the
collector had to skip because this tail read too slowly are told on stderr, and so
are closed indices of the streams read (Elasticsearch skips them: lines may be missing),
or the collector's word that it could not check for them."""


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one `logpipe:` line (exit 2) as every other
    failure's, pointing at the command's help instead of printing its usage."""

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        """Exit 2 with one line naming what is wrong."""
        hint = f"see `{self.prog} --help`"
        if "ignored explicit argument" in message:  # -healthz read as -h and "ealthz"
            hint = f"a QUERY that starts with - goes last, after --: {self.prog} -- '-word'; {hint}"
        self.exit(2, f"logpipe: {message} ({hint})\n")

    def parse_command_line(self, argv: list[str] | None) -> argparse.Namespace:
        """The parsed command line; words left over exit 2 with what they may have meant."""
        args, extras = self.parse_known_args(argv)
        if extras:
            hint = unrecognized(extras[0], args.command, self.commands)
            self.exit(2, f"logpipe: unrecognized arguments: {' '.join(extras)} ({hint})\n")
        return args


def unrecognized(
    word: str, command: str | None, commands: dict[str, argparse.ArgumentParser]
) -> str:
    """What a word no option took may have meant: an option after --, an option of the
    other command, a misspelt option (and the command's option closest to it), a query
    that starts with -, or the rest of an unquoted query."""
    prog = "logpipe" if command is None else f"logpipe {command}"
    hint = f"see `{prog} --help`"
    option = word.split("=", 1)[0]
    if not option.startswith("-") or option == "-":
        return f"a query of several words is one argument: quote it, or {hint}"
    owners = [name for name, parser in commands.items() if option in parser._option_string_actions]
    if command in owners:  # an option of its own, so it came after --
        return f"every word after -- is the QUERY: put {option} before --, or {hint}"
    if command is not None and owners:
        return f"{option} is an option of `logpipe {owners[0]}`, not of `{prog}`: {hint}"
    if option.startswith("--"):
        known = commands[command]._option_string_actions if command is not None else {}
        named = [o for o in known if o.startswith("--") and o not in ("--help", "--version")]
        close = difflib.get_close_matches(option, named, 1, cutoff=0.75)
        meant = f" (did you mean {close[0]}?)" if close else ""
        return f"`{prog}` has no option {option}{meant}: {hint}"
    query = f"{prog} [options] -- '{word}'"
    return (
        f"`{prog}` has no option {option}; a QUERY that starts with - goes last, after --: {query}"
    )


def build_parser() -> Parser:
    """The whole command line."""
    fmt = argparse.RawDescriptionHelpFormatter
    top = Parser(
        prog="logpipe", description=DESCRIPTION, epilog=f"{SETTINGS}\n\n{EXIT_STATUSES}",
        formatter_class=fmt,
    )  # fmt: skip
    version = f"logpipe {installed_version()}"
    top.add_argument("--version", action="version", version=version)
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    search = add_command(
        commands, common_options("search"), "search", "print the lines that match, newest last",
        "Print indexed log lines that match QUERY and the filters.", SEARCH_EXAMPLES,
    )  # fmt: skip
    add_search_options(search)
    tail = add_command(
        commands, common_options("tail"), "tail",
        "print the last lines, then follow new ones until Ctrl-C",
        "Print the last lines that match, then every new one, until Ctrl-C.", TAIL_EXAMPLES,
    )  # fmt: skip
    tail.add_argument(
        "-n", "--lines", type=count(0, 10_000), default=10, metavar="N",
        help="start with the last N lines (0-10000, default 10)",
    )  # fmt: skip
    top.commands = {"search": search, "tail": tail}
    return top


def add_command(
    commands: argparse._SubParsersAction[Parser],
    common: Parser,
    name: str,
    summary: str,
    description: str,
    examples: str,
) -> argparse.ArgumentParser:
    """A command taking the common options and a QUERY, its help ending in `examples`,
    the settings and the exit statuses."""
    command = commands.add_parser(
        name,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help=summary,
        description=description,
        epilog=f"{examples}\n\n{SETTINGS}\n\n{EXIT_STATUSES}",
    )
    command.add_argument("query", nargs="?", metavar="QUERY", help="free text on the message")
    return command


SINCE_HELP = {
    "search": "lines from TIME on (default: the 24 hours before --until, or now)",
    "tail": "start with lines from TIME on; new lines follow whatever their time",
}
TIME_FORMS = (
    "TIME: 30s, 15m, 2h, 7d, 2w, 1h30m ago, or 2026-12-02T10:00:00Z (without an offset: "
    "this machine's local time)"
)


def common_options(command: str) -> Parser:
    """Filters, output and connection options, the same for both commands (the help of
    --since says what it does for `command`)."""
    common = Parser(add_help=False)
    common.add_argument("--version", action="version", version=f"logpipe {installed_version()}")
    filters = common.add_argument_group("filters")
    filters.add_argument("--since", metavar="TIME", help=f"{SINCE_HELP[command]}. {TIME_FORMS}")
    filters.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="GLOB",
        help="host.name (globs like 'web-*'; repeat or a,b for any of)",
    )
    filters.add_argument(
        "-s",
        "--service",
        action="append",
        default=[],
        metavar="GLOB",
        help="service.name: the compose service, else the container name",
    )
    filters.add_argument(
        "--name", action="append", default=[], metavar="GLOB", help="container.name"
    )
    filters.add_argument(
        "--dataset", action="append", default=[], metavar="GLOB", help="event.dataset"
    )
    filters.add_argument("-l", "--level", choices=LEVELS, type=str.lower, metavar="LEVEL",
                         help="this level and above: trace < debug < info < warn < error < "
                              "fatal (lines without a level are left out)")  # fmt: skip
    filters.add_argument("--stream", choices=STREAMS, help="stdout or stderr")
    filters.add_argument("--events", action="store_true",
                         help="also containers' lifecycle events (start, die, OOM, ...) and "
                              "gaps (lines logpipe could not read)")  # fmt: skip
    output = common.add_argument_group("output")
    output.add_argument(
        "--json", action="store_true", help="print each document as a JSON line (NDJSON), for jq"
    )
    output.add_argument(
        "-t", "--timestamps", action="store_true", help="show each line's @timestamp after the bar"
    )
    output.add_argument("--color", choices=COLOR_MODES, default=None,
                        help="colour by service and level: auto (a terminal without "
                             "NO_COLOR), always, never")  # fmt: skip
    conn = common.add_argument_group("connection")
    conn.add_argument("--url", help="the collector, e.g. https://logs.example:8080")
    conn.add_argument("--token", help="a read token (prefer LOGPIPE_READ_TOKEN: "
                                      "arguments show in `ps`)")  # fmt: skip
    conn.add_argument("--token-file", metavar="PATH", help="a file holding the read token")
    conn.add_argument("--config", metavar="PATH", help="the config file (TOML)")
    return common


def add_search_options(search: argparse.ArgumentParser) -> None:
    """Options only `search` has."""
    search.add_argument("--until", metavar="TIME", help="lines before TIME (default: now)")
    search.add_argument(
        "--limit",
        type=count(1, 1_000_000),
        default=100,
        metavar="N",
        help="print at most N lines (default 100, at most 1000000)",
    )
    search.add_argument(
        "--asc",
        action="store_true",
        help="the oldest lines of the range first, printed as they come",
    )
    search.add_argument(
        "--page-size",
        type=count(1, 10_000),
        default=1000,
        metavar="N",
        help="lines asked for per request (default 1000, at most 10000)",
    )


def count(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    parse.__name__ = "number"
    return parse
