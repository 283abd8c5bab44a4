"""`logpipe` as a user runs it: help, version, one-line errors and the exit statuses
scripts rely on (against a scripted collector; the real one is in tests/integration)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.logpipe.fake_collector import Reply, doc, error, fake_collector, line_event
from tests.programs import ROOT, clean_env, default_sigint, one_line_error


def logpipe(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m logpipe` with only `env` as its LOGPIPE_* settings."""
    settings = {"XDG_CONFIG_HOME": str(cwd)} | env
    return subprocess.run(
        [sys.executable, "-m", "logpipe", *args],
        env=clean_env(**settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def logpipe_in_bash(line: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `line` in bash, `logpipe` in it being `python -m logpipe` with the read API at
    `url` (token "t") and the settings file under `cwd`; from the checkout's root."""
    env = clean_env(LOGPIPE_URL=url, LOGPIPE_READ_TOKEN="t", XDG_CONFIG_HOME=str(cwd))
    return subprocess.run(
        line.replace("logpipe", f"{sys.executable} -m logpipe", 1),
        shell=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        executable="/bin/bash",
    )


def test_help_of_each_command_has_examples_and_exit_statuses(tmp_path: Path) -> None:
    """`--help` of both commands shows examples, the settings' order and the exit statuses."""
    for command in ("search", "tail"):
        proc = logpipe(command, "--help", cwd=tmp_path)
        assert proc.returncode == 0
        assert f"logpipe {command} " in proc.stdout.split("examples:")[1]
        assert "LOGPIPE_READ_TOKEN" in proc.stdout
        assert "3    the collector refused the token" in proc.stdout
        assert "TERM=dumb" in proc.stdout  # turns colour off as NO_COLOR does (style.py)
    top = logpipe("--help", cwd=tmp_path)
    assert "logpipe tail --service" in top.stdout.split("examples:")[1]


def test_the_help_of_since_says_what_it_does_for_each_command() -> None:
    """A tail's --since only picks the lines it starts with (new lines follow whatever
    their time); a search's is where its range begins. Both list every form of a TIME."""
    from logpipe.args import build_parser

    helps: dict[str, str] = {}
    for name, parser in build_parser().commands.items():
        text = next(a.help for a in parser._actions if "--since" in a.option_strings)
        assert text is not None, name
        helps[name] = text
    assert helps["tail"].startswith("start with lines from TIME on; new lines follow whatever")
    assert helps["search"].startswith("lines from TIME on (default: the 24 hours before --until")
    for text in helps.values():
        assert "2w" in text
        assert "local time" in text


def test_each_commands_help_tells_of_closed_indices_that_could_not_be_checked() -> None:
    """Both helps say where the closed indices are told, and that a collector that could
    not check for them is told too."""
    from logpipe.args import build_parser

    for parser in build_parser().commands.values():
        text = " ".join((parser.epilog or "").split())
        assert "Elasticsearch skips them: lines may be missing" in text
        assert "could not check for them" in text


def test_a_query_starting_with_a_dash_goes_after_the_options_and_dashes() -> None:
    """The form --help and cli.md show, options first and then `-- -word`, reads -word as
    the query and keeps the options."""
    from logpipe.args import build_parser

    args = build_parser().parse_args(["search", "--since", "1h", "--", "-healthz"])
    assert (args.query, args.since) == ("-healthz", "1h")


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (
            ["tail", "--until", "1h"],
            "--until is an option of `logpipe search`, not of `logpipe tail`",
        ),
        (
            ["tail", "--limit", "5"],
            "--limit is an option of `logpipe search`, not of `logpipe tail`",
        ),
        (
            ["search", "--lines=3"],
            "--lines is an option of `logpipe tail`, not of `logpipe search`",
        ),
        (["search", "--field", "x"], "`logpipe search` has no option --field: see `logpipe search"),
        (
            ["search", "--sevice", "api"],
            "`logpipe search` has no option --sevice (did you mean --service?): see `logpipe",
        ),
        (["tail", "--levle", "warn"], "has no option --levle (did you mean --level?): see"),
        (["search", "-zzz"], "a QUERY that starts with - goes last, after --: logpipe search"),
        (["search", "--", "-a", "--limit", "1"], "every word after -- is the QUERY: put --limit"),
        (["search", "disk", "full"], "a query of several words is one argument: quote it"),
        (["search", "-healthz"], "a QUERY that starts with - goes last, after --"),
    ],
)
def test_a_word_no_option_took_is_explained(
    capsys: pytest.CaptureFixture[str], argv: list[str], hint: str
) -> None:
    """An unknown option says whether the other command has it, instead of suggesting
    that an option was part of an unquoted query; the help named is the command's own."""
    from logpipe.args import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_command_line(argv)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("logpipe: ")
    assert error.count("\n") == 1
    assert hint in error
    assert f"logpipe {argv[0]}" in error


def test_version_and_no_command(tmp_path: Path) -> None:
    """--version prints the version; no command prints the help on stderr with status 2."""
    proc = logpipe("--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("logpipe ")
    proc = logpipe(cwd=tmp_path)
    assert proc.returncode == 2
    assert "search" in proc.stderr


@pytest.mark.parametrize(
    ("reply", "status", "said"),
    [
        (
            error(401, "no such read token"),
            3,
            "did not accept the read token from LOGPIPE_READ_TOKEN (401): no such read token",
        ),
        (
            error(403, "this is an ingest token: reading needs a read token"),
            3,
            "logpipe: the read token from LOGPIPE_READ_TOKEN may not read (403): this is an "
            "ingest token: reading needs a read token",
        ),
        (
            error(403, ""),
            3,
            "logpipe: the read token from LOGPIPE_READ_TOKEN may not read (403): use a token "
            "listed in the collector's LOGPIPE_READ_TOKENS, not an ingest token",
        ),
        (error(400, "level: 'loud' is not a level"), 5, "refused the query: level: 'loud'"),
        (
            error(404, "the read API is off: set LOGPIPE_READ_TOKENS"),
            6,
            " answered 404 (not found): the read API is off: set LOGPIPE_READ_TOKENS",
        ),
        (
            error(404, "no such endpoint: GET /x/v1/search"),
            6,
            " answered 404 (not found): no such endpoint: GET /x/v1/search: check the URL (and",
        ),
        (error(429, "query too big", **{"Retry-After": "1"}), 6, "at a limit (429): query too big"),
        (error(503, "Elasticsearch is unreachable"), 4, "cannot answer now (503)"),
        (
            Reply(200, {"Content-Type": "text/html"}, ["<html>"]),
            6,
            "is this the URL of a logpipe collector?",
        ),
        (
            Reply(400, {"X-elastic-product": "Elasticsearch"}, ['{"error": "no handler"}']),
            6,
            "is Elasticsearch, not a logpipe collector",
        ),
        (
            Reply(301, {"Location": "https://logs.example/"}, []),
            6,
            "unexpected answer from the collector (301): it points to https://logs.example/",
        ),
    ],
)
def test_each_error_answer_has_its_exit_status_and_one_line(
    tmp_path: Path, reply: Reply, status: int, said: str
) -> None:
    """Every error answer ends search with its documented status and one stderr line."""
    with fake_collector(reply) as script:
        proc = logpipe("search", "x", cwd=tmp_path, LOGPIPE_URL=script.url, LOGPIPE_READ_TOKEN="t")
    assert proc.returncode == status, proc.stderr
    line = one_line_error(proc)
    assert line.startswith("logpipe: ")
    assert said in line
    assert proc.stdout == ""


def test_a_collector_that_is_down_is_exit_status_4(tmp_path: Path) -> None:
    """Nothing listening: status 4 and a line naming the URL and where it was set."""
    url = f"http://127.0.0.1:{free_port()}"
    for command in ("search", "tail"):
        proc = logpipe(command, cwd=tmp_path, LOGPIPE_URL=url, LOGPIPE_READ_TOKEN="t")
        assert proc.returncode == 4
        assert one_line_error(proc) == (
            f"logpipe: cannot reach the collector at {url} (LOGPIPE_URL): "
            "connection refused (is the collector running?)"
        )


@pytest.mark.parametrize("cut", ["in a line", "between lines"])
def test_an_answer_cut_before_its_content_length_is_a_lost_connection(
    tmp_path: Path, cut: str
) -> None:
    """A search answer that ends before its Content-Length is exit 4 (no whole answer),
    not 6 for a line that is no JSON, nor a search that ended early with 0."""
    line = json.dumps(doc("x")) + "\n"
    body = line + (line[:10] if cut == "in a line" else "")
    headers = {"Content-Type": "application/x-ndjson", "Content-Length": "1000"}
    with fake_collector(Reply(200, headers, [body], drop=True)) as script:
        proc = logpipe("search", cwd=tmp_path, LOGPIPE_URL=script.url, LOGPIPE_READ_TOKEN="t")
    assert proc.returncode == 4, proc.stderr
    assert "lost: the answer ended" in one_line_error(proc)


def test_usage_errors_are_exit_status_2(tmp_path: Path) -> None:
    """A bad time, a missing token and a bad option all end with status 2."""
    env = {"LOGPIPE_URL": "http://127.0.0.1:1", "LOGPIPE_READ_TOKEN": "t"}
    proc = logpipe("search", "--since", "soon", cwd=tmp_path, **env)
    assert proc.returncode == 2
    assert "--since: 'soon' is not a time" in one_line_error(proc)
    proc = logpipe("tail", cwd=tmp_path, LOGPIPE_URL="http://127.0.0.1:1")
    assert proc.returncode == 2
    assert "no read token" in one_line_error(proc)
    proc = logpipe("search", "--limit", "0", cwd=tmp_path, **env)
    assert proc.returncode == 2
    assert one_line_error(proc) == (
        "logpipe: argument --limit: 0 is not between 1 and 1000000 (see `logpipe search --help`)"
    )
    proc = logpipe("search", "disk", "full", cwd=tmp_path, **env)
    assert proc.returncode == 2
    assert one_line_error(proc).startswith(
        "logpipe: unrecognized arguments: full (a query of several words is one argument: quote"
    )
    proc = logpipe("search", "--service", "", cwd=tmp_path, **env)
    assert proc.returncode == 2
    assert one_line_error(proc) == "logpipe: --service: empty: give a name or a glob ('api*')"
    proc = logpipe("search", "--since", "1000000d", cwd=tmp_path, **env)
    assert proc.returncode == 2
    assert "--since: '1000000d' is outside the times" in one_line_error(proc)


def test_a_since_in_the_future_is_refused_by_search_and_told_by_tail(tmp_path: Path) -> None:
    """`search --since <future>` could only say that no line matched: it is a usage error
    naming the option and the instant understood, and the collector is not asked; with an
    --until after it the range is the user's (lines stamped by a clock ahead). `tail`
    still follows new lines: a warning says it starts with none of the earlier ones."""
    ndjson = {"Content-Type": "application/x-ndjson"}
    env = {"LOGPIPE_READ_TOKEN": "t"}
    with fake_collector(Reply(200, ndjson, [])) as script:
        proc = logpipe("search", "--since", "2200-01-01T00:00:00Z", cwd=tmp_path,
                       LOGPIPE_URL=script.url, **env)  # fmt: skip
        assert script.requests == []
        ranged = logpipe("search", "--since", "2200-01-01T00:00:00Z", "--until", "2201-01-01",
                         cwd=tmp_path, LOGPIPE_URL=script.url, **env)  # fmt: skip
    assert proc.returncode == 2
    assert one_line_error(proc).startswith(
        "logpipe: --since 2200-01-01T00:00:00Z is in the future (this machine's clock says "
    )
    assert one_line_error(proc).endswith("): no line can match (a search ends now unless "
                                         "--until says otherwise)")  # fmt: skip
    assert (ranged.returncode, ranged.stderr) == (1, "logpipe: no line matched\n")
    with fake_collector(error(401, "no such token")) as script:
        proc = logpipe("tail", "--since", "2200-01-01", cwd=tmp_path, LOGPIPE_URL=script.url, **env)
    assert proc.returncode == 3  # the tail did ask
    warning, refused = proc.stderr.splitlines()
    assert warning.startswith("logpipe: warning: --since 2200-01-01 (2200-01-01T")
    assert warning.endswith("): tail starts with no earlier line, only new ones")
    assert refused.startswith("logpipe: the collector did not accept the read token from ")


def test_no_match_is_exit_status_1_and_lines_are_0(tmp_path: Path) -> None:
    """A search that finds nothing ends with 1 (like grep); one that finds lines with 0."""
    ndjson = {"Content-Type": "application/x-ndjson"}
    env = {"LOGPIPE_READ_TOKEN": "t"}
    with fake_collector(Reply(200, ndjson, [])) as script:
        proc = logpipe("search", "x", cwd=tmp_path, LOGPIPE_URL=script.url, **env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", "logpipe: no line matched\n")
    body = json.dumps(doc("hello", "web")) + "\n"
    with fake_collector(Reply(200, ndjson, [body])) as script:
        proc = logpipe("search", "x", cwd=tmp_path, LOGPIPE_URL=script.url, **env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "h1/web | hello\n", "")


def test_closed_indices_are_a_warning_on_stderr_and_stdout_keeps_the_lines(
    tmp_path: Path,
) -> None:
    """A page naming closed indices: the lines on stdout as ever, one warning on stderr
    naming them (and how many more), the exit status of the lines found."""
    headers = {"Content-Type": "application/x-ndjson", "Logpipe-Closed-Indices": "12 .ds-a,.ds-b"}
    body = json.dumps(doc("hello", "web")) + "\n"
    env = {"LOGPIPE_READ_TOKEN": "t"}
    with fake_collector(Reply(200, headers, [body])) as script:
        proc = logpipe("search", "x", cwd=tmp_path, LOGPIPE_URL=script.url, **env)
    assert (proc.returncode, proc.stdout) == (0, "h1/web | hello\n")
    assert proc.stderr == (
        "logpipe: warning: lines may be missing: Elasticsearch skips closed indices, and 12 "
        "indices of the streams read are closed: .ds-a, .ds-b and 10 more\n"
    )
    with fake_collector(Reply(200, headers, [])) as script:
        proc = logpipe("search", "x", cwd=tmp_path, LOGPIPE_URL=script.url, **env)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == "logpipe: no line matched"
    assert "12 indices of the streams read are closed" in proc.stderr


def test_closed_indices_not_checked_are_one_warning_and_the_status_of_the_lines(
    tmp_path: Path,
) -> None:
    """A page saying the collector could not list the closed indices: one warning saying
    the search could not check and why, however many pages said it; the lines and the
    exit status as without it."""
    unchecked = {"Logpipe-Closed-Indices-Unchecked": "Elasticsearch did not answer the collector"}
    first = {"Content-Type": "application/x-ndjson", "Logpipe-Next-Cursor": "k"} | unchecked
    last = {"Content-Type": "application/x-ndjson"} | unchecked
    env = {"LOGPIPE_READ_TOKEN": "t"}
    one, two = (json.dumps(doc(m, "web")) + "\n" for m in ("one", "two"))
    with fake_collector(Reply(200, first, [one]), Reply(200, last, [two])) as script:
        proc = logpipe("search", "--page-size", "1", cwd=tmp_path, LOGPIPE_URL=script.url, **env)
    assert (proc.returncode, proc.stdout) == (0, "h1/web | two\nh1/web | one\n")
    assert proc.stderr == (
        "logpipe: warning: lines may be missing: the search could not check for closed "
        "indices, which Elasticsearch skips: Elasticsearch did not answer the collector\n"
    )
    with fake_collector(Reply(200, last, [])) as script:
        proc = logpipe("search", "x", cwd=tmp_path, LOGPIPE_URL=script.url, **env)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "logpipe: warning: lines may be missing: the search could not check for closed "
        "indices, which Elasticsearch skips: Elasticsearch did not answer the collector",
        "logpipe: no line matched",
    ]


def test_a_field_query_that_matched_nothing_says_query_is_message_words(tmp_path: Path) -> None:
    """`user:bob` matches words of the message, not a field: when it finds nothing, the
    line says so and what to use instead; a query of plain words gets no such hint."""
    ndjson = {"Content-Type": "application/x-ndjson"}
    env = {"LOGPIPE_READ_TOKEN": "t"}
    for query in ("user:bob", "log.level=error", "timeout attributes.user:bob"):
        with fake_collector(Reply(200, ndjson, [])) as script:
            proc = logpipe("search", query, cwd=tmp_path, LOGPIPE_URL=script.url, **env)
        assert proc.returncode == 1
        assert one_line_error(proc).startswith(
            "logpipe: no line matched (QUERY matches words of the message, not field:value"
        )
    for query in ("disk full", "12:30", '"a: b"'):
        with fake_collector(Reply(200, ndjson, [])) as script:
            proc = logpipe("search", query, cwd=tmp_path, LOGPIPE_URL=script.url, **env)
        assert proc.stderr == "logpipe: no line matched\n"


def test_piped_output_is_plain_unless_colour_is_forced(tmp_path: Path) -> None:
    """A pipe gets no colour; --color=always colours it; NO_COLOR does not beat the flag."""
    ndjson = {"Content-Type": "application/x-ndjson"}
    body = json.dumps(doc("boom", "web", log={"level": "error"})) + "\n"
    with fake_collector(Reply(200, ndjson, [body])) as script:
        env = {"LOGPIPE_URL": script.url, "LOGPIPE_READ_TOKEN": "t", "NO_COLOR": "1"}
        plain = logpipe("search", cwd=tmp_path, **env)
        forced = logpipe("search", "--color=always", cwd=tmp_path, **env)
    assert plain.stdout == "h1/web | boom\n"
    assert "\x1b[31mboom\x1b[0m" in forced.stdout


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`logpipe search | head -1`: status 0, no traceback, no BrokenPipeError message."""
    ndjson = {"Content-Type": "application/x-ndjson"}
    body = "".join(json.dumps(doc(f"line {i}" + "x" * 200)) + "\n" for i in range(5000))
    with fake_collector(Reply(200, ndjson, [body])) as script:
        proc = logpipe_in_bash(
            "logpipe search --asc --limit 5000 | head -1; exit ${PIPESTATUS[0]}",
            script.url,
            tmp_path,
        )
    assert proc.stdout.startswith("h1/api | line 0x")
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.parametrize("command", ["search", "tail"])
def test_an_output_that_cannot_be_written_is_exit_status_7_in_one_line(
    tmp_path: Path, command: str
) -> None:
    """A full disk (/dev/full) or a closed stdout is one `logpipe:` line and status 7, not
    a traceback and the 1 of "no line matched"."""
    if command == "search":
        reply = Reply(200, {"Content-Type": "application/x-ndjson"}, [json.dumps(doc("x")) + "\n"])
    else:  # a tail's stream stays open after its line
        sse = {"Content-Type": "text/event-stream"}
        reply = Reply(200, sse, [line_event(doc("hello"), "c1")], hold=60)
    with fake_collector(reply) as script:
        for redirect in ("> /dev/full", ">&-"):
            proc = logpipe_in_bash(f"logpipe {command} {redirect}", script.url, tmp_path)
            assert proc.returncode == 7, proc.stderr
            assert proc.stderr.count("\n") == 1, proc.stderr
            assert proc.stderr.startswith("logpipe: "), proc.stderr


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_tail_stopped_by_a_signal_ends_with_its_status_quietly(
    tmp_path: Path, sig: int, status: int
) -> None:
    """Ctrl-C ends tail with 130, SIGTERM with 143: the lines printed, nothing on stderr."""
    sse = {"Content-Type": "text/event-stream"}
    with fake_collector(Reply(200, sse, [line_event(doc("hello"), "c1")], hold=60)) as script:
        env = clean_env(
            LOGPIPE_URL=script.url, LOGPIPE_READ_TOKEN="t", XDG_CONFIG_HOME=str(tmp_path)
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "logpipe", "tail"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "h1/api | hello\n"
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:  # a failed assertion must not leave a tail running
                proc.kill()
                proc.communicate()
    assert (proc.returncode, out, err) == (status, "", "")


def test_the_command_line_stays_light(tmp_path: Path) -> None:
    """Importing the command line pulls in neither shipper, collector, aiohttp nor the
    Elasticsearch client, so it starts fast and needs none of them."""
    probe = (
        "import sys, logpipe.__main__, logpipe.tail, logpipe.search;"
        "heavy = ('shipper', 'collector', 'aiohttp', 'elasticsearch');"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)}))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.strip() == "[]"
