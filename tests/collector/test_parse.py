"""Unit tests of the collector's parsers: exact fields for real-world lines and edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import collector.parse as parse_module
from collector.parse import Http, Parsed, parse
from collector.parse.level import PLAIN_WINDOW

CORPUS = Path(__file__).parents[1] / "corpus"


def corpus_line(name: str, number: int) -> str:
    """Line ``number`` (1-based) of a corpus file."""
    return (CORPUS / name).read_text(encoding="utf-8").split("\n")[number - 1]


# JSON


def test_zap_error_line_maps_ids_and_keeps_the_rest() -> None:
    """A zap error line yields its msg, level and trace/span ids; other keys stay as is."""
    parsed = parse(corpus_line("json_zap.log", 4))
    assert parsed.parser == "json"
    assert parsed.message == "failed to create order"
    assert parsed.level == "error"
    assert parsed.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert parsed.span_id == "00f067aa0ba902b7"
    assert parsed.logger is None
    assert parsed.attributes is not None
    assert set(parsed.attributes) == {
        "ts",
        "caller",
        "order_id",
        "error",
        "errorVerbose",
        "stacktrace",
    }
    assert parsed.attributes["ts"] == 1704186902.77
    assert parsed.attributes["error"] == (
        'pq: duplicate key value violates unique constraint "orders_pkey"'
    )
    assert parsed.flags == []


def test_zap_logger_key_becomes_logger() -> None:
    """zap's ``logger`` key is the logger, and ``ts`` stays in attributes."""
    parsed = parse(corpus_line("json_zap.log", 2))
    assert (parsed.message, parsed.level, parsed.logger) == ("pool configured", "debug", "db")
    assert parsed.attributes == {
        "ts": 1704186843.5131,
        "caller": "db/pool.go:41",
        "max_open": 20,
        "max_idle": 5,
    }


def test_bunyan_numeric_level_and_name() -> None:
    """Bunyan's numeric level 50 is error and its ``name`` is the logger."""
    parsed = parse(corpus_line("json_bunyan.log", 3))
    assert parsed.message == "database unavailable"
    assert parsed.level == "error"
    assert parsed.logger == "checkout"
    assert parsed.attributes is not None
    assert parsed.attributes["time"] == "2024-01-02T09:14:10.002Z"
    err = parsed.attributes["err"]
    assert isinstance(err, dict)
    assert err["code"] == "ECONNREFUSED"


@pytest.mark.parametrize(
    ("level", "expected"),
    [(10, "trace"), (20, "debug"), (30, "info"), (40, "warn"), (50, "error"), (60, "fatal")],
)
def test_pino_numeric_levels(level: int, expected: str) -> None:
    """Each bunyan/pino numeric level maps to its name."""
    assert parse(f'{{"level":{level},"msg":"m"}}').level == expected


def test_pino_camel_case_trace_ids() -> None:
    """pino's ``traceId``/``spanId`` fill trace_id and span_id."""
    parsed = parse(corpus_line("json_pino.log", 4))
    assert parsed.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert parsed.span_id == "b7ad6b7169203331"
    assert parsed.logger == "mailer"
    assert parsed.level == "error"


def test_structlog_event_is_the_message() -> None:
    """structlog's ``event`` key is the message when no msg/message key exists."""
    parsed = parse(corpus_line("json_structlog.log", 3))
    assert parsed.message == "retrying webhook delivery"
    assert parsed.level == "warn"
    assert parsed.logger == "app.webhooks"
    assert parsed.attributes == {
        "attempt": 3,
        "max_attempts": 5,
        "timestamp": "2024-01-02T09:14:07.000451Z",
    }


def test_python_json_logger_keys() -> None:
    """python-json-logger's levelname, name and otelTraceID are mapped."""
    parsed = parse(corpus_line("json_python.log", 2))
    assert parsed.message == "order 8812 has no shipping address"
    assert parsed.level == "warn"
    assert parsed.logger == "app.api.orders"
    assert parsed.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert parsed.attributes == {"asctime": "2024-01-02 09:14:09,551", "order_id": 8812}


def test_python_critical_is_fatal() -> None:
    """Python's CRITICAL level is normalised to fatal."""
    assert parse(corpus_line("json_python.log", 4)).level == "fatal"


def test_ecs_dotted_keys() -> None:
    """ECS dotted keys ``log.level``, ``log.logger`` and ``trace.id`` are mapped."""
    parsed = parse(corpus_line("json_ecs.log", 2))
    assert parsed.level == "error"
    assert parsed.logger == "org.springframework.web.servlet.DispatcherServlet"
    assert parsed.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert parsed.attributes is not None
    assert parsed.attributes["transaction.id"] == "00f067aa0ba902b7"
    assert "log.level" not in parsed.attributes


def test_ecs_nested_log_object() -> None:
    """A nested ``log`` object gives level and logger, and disappears once empty."""
    parsed = parse(corpus_line("json_ecs.log", 3))
    assert (parsed.level, parsed.logger) == ("warn", "inventory.sync")
    assert parsed.attributes == {
        "@timestamp": "2024-01-02T09:14:10.000Z",
        "ecs": {"version": "8.11.0"},
    }


def test_dotnet_json_console_keys() -> None:
    """.NET's JSON console formatter names its level LogLevel, its message Message and its
    logger Category."""
    line = (
        '{"EventId":14,"LogLevel":"Warning","Category":"Microsoft.Hosting.Lifetime",'
        '"Message":"Now listening on: http://[::]:8080","State":{"address":"http://[::]:8080"}}'
    )
    parsed = parse(line)
    assert (parsed.level, parsed.message, parsed.logger) == (
        "warn",
        "Now listening on: http://[::]:8080",
        "Microsoft.Hosting.Lifetime",
    )
    assert parsed.attributes == {"EventId": 14, "State": {"address": "http://[::]:8080"}}


def test_serilog_compact_json_keys() -> None:
    """Serilog's compact JSON: level @l, message @m (else its template @mt), SourceContext."""
    line = (
        '{"@t":"2026-12-05T08:00:00Z","@mt":"Hello {User}","@l":"Error","User":"x",'
        '"SourceContext":"App"}'
    )
    parsed = parse(line)
    assert (parsed.level, parsed.message, parsed.logger) == ("error", "Hello {User}", "App")
    assert parsed.attributes == {"@t": "2026-12-05T08:00:00Z", "User": "x"}
    rendered = parse('{"@m":"Hello x","@mt":"Hello {User}","@l":"Verbose"}')
    assert (rendered.level, rendered.message) == ("trace", "Hello x")


@pytest.mark.parametrize(
    ("severity", "level"),
    [("F", "fatal"), ("E", "error"), ("W", "warn"), ("I", "info"), ("D2", "debug")],
)
def test_mongodb_severity(severity: str, level: str) -> None:
    """MongoDB's JSON log gives its severity in `s`, beside its component `c` and `ctx`."""
    record = {
        "t": {"$date": "2026-12-05T08:00:00.123+00:00"},
        "s": severity,
        "c": "NETWORK",
        "ctx": "listener",
        "msg": "Waiting for connections",
    }
    parsed = parse(json.dumps(record))
    assert (parsed.level, parsed.message) == (level, "Waiting for connections")
    assert parsed.attributes == {
        "t": {"$date": "2026-12-05T08:00:00.123+00:00"},
        "c": "NETWORK",
        "ctx": "listener",
    }


def test_an_s_key_elsewhere_is_no_level() -> None:
    """Without MongoDB's `c` and `ctx` beside it, an `s` key is just a key."""
    parsed = parse('{"s":"E","msg":"x"}')
    assert (parsed.level, parsed.attributes) == (None, {"s": "E"})


def test_json_without_message_key_keeps_the_line() -> None:
    """A JSON object without a message key has the whole line as its message."""
    line = '{"level":"info","ts":1,"status":"ok"}'
    parsed = parse(line)
    assert parsed.message == line
    assert parsed.level == "info"
    assert parsed.attributes == {"ts": 1, "status": "ok"}


def test_json_non_string_message_stays_in_attributes() -> None:
    """A ``msg`` that is not a string is kept in attributes, not dropped."""
    parsed = parse('{"msg":{"text":"hi"},"message":"real"}')
    assert parsed.message == "real"
    assert parsed.attributes == {"msg": {"text": "hi"}}


def test_json_unknown_level_value_stays_in_attributes() -> None:
    """``{"level": 3}`` names no level: level is None and the value is kept."""
    parsed = parse('{"level":3,"msg":"x"}')
    assert parsed.level is None
    assert parsed.attributes == {"level": 3}


def test_json_msg_wins_over_message() -> None:
    """With both ``msg`` and ``message``, msg is the message and message is kept."""
    parsed = parse('{"message":"b","msg":"a"}')
    assert parsed.message == "a"
    assert parsed.attributes == {"message": "b"}


def test_json_numeric_trace_id_becomes_a_string() -> None:
    """A numeric Datadog trace id is turned into a string (the field is a keyword)."""
    parsed = parse('{"msg":"x","dd.trace_id":1234567890123,"dd.span_id":42}')
    assert (parsed.trace_id, parsed.span_id) == ("1234567890123", "42")


def test_empty_json_object() -> None:
    """``{}`` is a JSON record with the line as message and no attributes."""
    parsed = parse("{}")
    assert parsed == Parsed(message="{}", parser="json")


def test_json_with_leading_whitespace() -> None:
    """Indented JSON is still detected as JSON."""
    assert parse('  {"msg":"x"}').parser == "json"


@pytest.mark.parametrize("line", ["{", '{"level":"error","msg":"cut', "{not json}", '{"a":1} x'])
def test_invalid_json_stays_plain_with_flag(line: str) -> None:
    """A line that starts with ``{`` but does not decode is a plain message, flagged."""
    parsed = parse(line)
    assert parsed.parser == "plain"
    assert parsed.message == line
    assert parsed.flags == ["invalid_json"]
    assert parsed.attributes is None


def test_invalid_json_still_gets_a_level() -> None:
    """A truncated JSON line keeps plain-text level detection."""
    assert parse('{"level":"error","msg":"cut').level == "error"


@pytest.mark.parametrize("line", ["[1,2]", '"just a string"', "42", "null"])
def test_non_object_json_is_plain_in_auto_mode(line: str) -> None:
    """Valid JSON that is not an object stays a plain message without a flag."""
    parsed = parse(line)
    assert (parsed.parser, parsed.message, parsed.flags) == ("plain", line, [])


@pytest.mark.parametrize("line", ["[1,2]", "plain text", "level=info msg=x"])
def test_json_hint_on_non_object_is_flagged(line: str) -> None:
    """Under the json hint, anything but a JSON object is plain with invalid_json."""
    parsed = parse(line, "json")
    assert (parsed.parser, parsed.message, parsed.flags) == ("plain", line, ["invalid_json"])


def test_json_message_with_escaped_colours_is_stripped() -> None:
    """Colour codes inside a JSON string are stripped from the message and flagged."""
    line = '{"msg":"\\u001b[31mfailed\\u001b[0m","level":"error"}'
    parsed = parse(line, keep_original=True)
    assert parsed.message == "failed"
    assert parsed.flags == ["ansi"]
    assert parsed.original == line


# logfmt


def test_gokit_logfmt_line() -> None:
    """A Go kit line yields level, msg, and the rest (quoted values unquoted) as attributes."""
    parsed = parse(corpus_line("logfmt_gokit.log", 3))
    assert parsed.parser == "logfmt"
    assert parsed.level == "warn"
    assert parsed.message == "Append failed"
    assert parsed.attributes == {
        "ts": "2024-01-02T09:14:33.001Z",
        "caller": "scrape.go:1313",
        "component": "scrape manager",
        "scrape_pool": "node",
        "target": "http://10.42.0.5:9100/metrics",
        "err": "out of bounds",
    }


def test_logfmt_escaped_quotes() -> None:
    """Escaped quotes inside a quoted logfmt value are unescaped."""
    parsed = parse(corpus_line("logfmt_gokit.log", 4))
    assert parsed.attributes is not None
    assert parsed.attributes["err"] == (
        'Post "http://alertmanager:9093/api/v2/alerts": dial tcp 10.42.0.12:9093: '
        "connect: connection refused"
    )


def test_log15_lvl_eror() -> None:
    """log15's ``lvl=eror`` is error and its ``logger`` key is the logger."""
    parsed = parse(corpus_line("logfmt_gokit.log", 6))
    assert (parsed.level, parsed.logger) == ("error", "context")
    assert parsed.message == "Failed to look up user based on cookie"


def test_heroku_router_at_is_the_level() -> None:
    """Heroku's ``at=error`` is the level; the line is the message (no msg key)."""
    line = corpus_line("logfmt_heroku.log", 3)
    parsed = parse(line)
    assert (parsed.parser, parsed.level, parsed.message) == ("logfmt", "error", line)
    assert parsed.attributes is not None
    assert parsed.attributes["desc"] == "Request timeout"
    assert parsed.attributes["status"] == "503"


def test_logfmt_bare_keys_empty_values_and_escapes() -> None:
    """Bare keys are true, ``k=`` is empty, and Go escapes are decoded."""
    parsed = parse('msg="a\\tb\\nc \\u00e9\\x41" level=info debug retries= path=/x=y', "logfmt")
    assert parsed.message == "a\tb\nc \u00e9A"
    assert parsed.attributes == {"debug": True, "retries": "", "path": "/x=y"}


def test_logfmt_unterminated_quote_is_not_logfmt() -> None:
    """A stray quote makes the line plain in auto mode, and flagged under the hint."""
    line = 'level=error msg="unterminated value'
    assert parse(line).parser == "plain"
    assert parse(line).level == "error"
    assert parse(line, "logfmt").flags == ["parse_failed:logfmt"]


@pytest.mark.parametrize(
    "line",
    [
        "Starting server port=8080 env=prod",
        "Connecting to db host=x",
        "SELECT * FROM t WHERE a=1 AND b=2 AND c IN (1, 2, 3)",
        "x=1",
    ],
)
def test_text_with_a_few_pairs_is_not_logfmt(line: str) -> None:
    """Prose with a pair or two is plain text, not logfmt."""
    assert parse(line).parser == "plain"


def test_logfmt_hint_accepts_a_single_pair() -> None:
    """Under the logfmt hint one pair is enough."""
    parsed = parse("Starting server port=8080", "logfmt")
    assert parsed.parser == "logfmt"
    assert parsed.attributes == {"Starting": True, "server": True, "port": "8080"}


# access logs


def test_nginx_access_line_with_timings() -> None:
    """An nginx line with forwarded-for and rt= yields every HTTP field and the duration."""
    line = corpus_line("nginx_access.log", 10)
    parsed = parse(line)
    assert parsed.parser == "nginx"
    assert parsed.message == line
    assert parsed.level == "info"
    assert parsed.http == Http(
        method="POST",
        url="/graphql",
        path="/graphql",
        version="1.1",
        status_code=200,
        body_bytes=2311,
        referrer="https://shop.example.com/cart",
        user_agent=(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
        ),
        client_ip="10.42.0.9",
        duration_ns=184_000_000,
    )
    assert parsed.attributes == {"forwarded_for": "198.51.100.7"}


def test_nginx_query_string_and_bare_request_time() -> None:
    """The path drops the query, and a bare trailing request time is read."""
    parsed = parse(corpus_line("nginx_access.log", 11))
    assert parsed.http is not None
    assert parsed.http.url == "/api/v2/search?q=caf%C3%A9+cr%C3%A8me"
    assert parsed.http.path == "/api/v2/search"
    assert parsed.http.duration_ns == 60_002_000_000
    assert parsed.level == "error"


def test_ipv6_client() -> None:
    """An IPv6 client address is the client ip."""
    parsed = parse(corpus_line("nginx_access.log", 5))
    assert parsed.http is not None
    assert parsed.http.client_ip == "2001:db8:4006:812::200e"
    assert parsed.http.method == "HEAD"


def test_tls_bytes_on_plain_port() -> None:
    """A TLS handshake logged as the request gives no method or url, but status 400."""
    parsed = parse(corpus_line("nginx_access.log", 6))
    assert parsed.http is not None
    assert (parsed.http.method, parsed.http.url, parsed.http.status_code) == (None, None, 400)
    assert parsed.http.user_agent is None
    assert parsed.level == "warn"


def test_dash_request() -> None:
    """A ``"-"`` request (client closed early) gives no method or url."""
    parsed = parse(corpus_line("nginx_access.log", 7))
    assert parsed.http == Http(status_code=408, body_bytes=0, client_ip="192.0.2.44")


def test_absolute_url_and_connect() -> None:
    """An absolute-form url has its path; CONNECT's authority-form has none."""
    absolute = parse(corpus_line("nginx_access.log", 12)).http
    connect = parse(corpus_line("nginx_access.log", 13)).http
    assert absolute is not None
    assert connect is not None
    assert (absolute.url, absolute.path) == ("http://example.com/proxy/check", "/proxy/check")
    assert (connect.method, connect.url, connect.path) == (
        "CONNECT",
        "www.example.com:443",
        None,
    )


def test_apache_common_line_with_user_and_no_body() -> None:
    """Apache's common format: ``-`` bytes is None, the user goes into attributes."""
    parsed = parse(corpus_line("apache_access.log", 4))
    assert parsed.parser == "apache"
    assert parsed.http == Http(
        method="PUT",
        url="/dav/notes/todo.txt",
        path="/dav/notes/todo.txt",
        version="1.1",
        status_code=201,
        body_bytes=None,
        client_ip="10.1.2.3",
    )
    assert parsed.attributes == {"user": "bob"}


@pytest.mark.parametrize(
    ("client", "ip"),
    [
        ("255.255.255.255", "255.255.255.255"),
        ("0.0.0.0", "0.0.0.0"),
        ("10.01.2.3", None),
        ("256.1.2.3", None),
        ("1.2.3", None),
        ("1.2.3.4.5", None),
    ],
)
def test_dotted_quad_clients_are_ips_only_when_elasticsearch_takes_them(
    client: str, ip: str | None
) -> None:
    """A dotted quad is an ip unless an octet is over 255 or has a leading zero."""
    line = f'{client} - - [27/Nov/2026:20:18:05 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"'
    parsed = parse(line)
    assert parsed.http is not None
    assert parsed.http.client_ip == ip


def test_hostname_client_is_not_an_ip() -> None:
    """A host name in the client position is kept in attributes, not as an ip."""
    parsed = parse(corpus_line("apache_access.log", 6))
    assert parsed.http is not None
    assert parsed.http.client_ip is None
    assert parsed.attributes == {"client": "ops-laptop.internal"}
    assert parsed.parser == "access"


@pytest.mark.parametrize(
    ("client", "ip", "status", "level"),
    [("127.0.0.1", "127.0.0.1", 200, "info"), ("::1", "::1", 404, "warn")],
)
def test_flask_s_access_line_through_python_logging(
    client: str, ip: str, status: int, level: str
) -> None:
    """werkzeug's `INFO:werkzeug:` before the client: the client's address, the logger,
    the level of the status, parser `access`."""
    line = f'INFO:werkzeug:{client} - - [05/Dec/2026 08:00:00] "GET / HTTP/1.1" {status} -'
    parsed = parse(line)
    assert (parsed.parser, parsed.level, parsed.logger, parsed.message) == (
        "access",
        level,
        "werkzeug",
        line,
    )
    assert parsed.attributes is None
    assert parsed.http == Http(
        method="GET", url="/", path="/", version="1.1", status_code=status, client_ip=ip
    )


def test_a_logging_prefix_before_a_host_name_is_kept_as_the_client() -> None:
    """`INFO:werkzeug:` before no address leaves the client as it was written."""
    line = 'INFO:werkzeug:web - - [05/Dec/2026 08:00:00] "GET / HTTP/1.1" 200 -'
    parsed = parse(line)
    assert (parsed.logger, parsed.attributes) == (None, {"client": "INFO:werkzeug:web"})
    assert parsed.http is not None
    assert parsed.http.client_ip is None


def test_apache_hint_names_the_parser() -> None:
    """Under the apache hint an ambiguous combined line is reported as apache."""
    assert parse(corpus_line("access_combined.log", 1), "apache").parser == "apache"


def test_oversized_byte_count_is_not_an_access_line() -> None:
    """A byte count too large for a long is not taken as an access line."""
    line = '1.2.3.4 - - [02/Jan/2024:09:14:03 +0000] "GET / HTTP/1.1" 200 99999999999999999999'
    parsed = parse(line)
    assert (parsed.parser, parsed.http) == ("plain", None)


@pytest.mark.parametrize("hint", ["nginx", "apache"])
def test_server_hint_on_other_line_is_flagged(hint: str) -> None:
    """A server hint on a line it cannot parse keeps the line as plain with a flag."""
    parsed = parse("WARN something else", hint)  # type: ignore[arg-type]
    assert (parsed.parser, parsed.level) == ("plain", "warn")
    assert parsed.flags == [f"parse_failed:{hint}"]


# error logs


def test_nginx_error_line_context() -> None:
    """An nginx error line yields level, client, request, referrer and its context."""
    line = corpus_line("nginx_error.log", 7)
    parsed = parse(line)
    assert (parsed.parser, parsed.level, parsed.message) == ("nginx", "error", line)
    assert parsed.http == Http(
        method="GET",
        url="/favicon.ico",
        path="/favicon.ico",
        version="1.1",
        referrer="http://localhost:8080/",
        client_ip="172.18.0.1",
    )
    assert parsed.attributes == {
        "pid": 29,
        "tid": 29,
        "connection": 1,
        "server": "localhost",
        "host": "localhost:8080",
    }


def test_nginx_error_without_context() -> None:
    """An nginx notice without a client has no http fields."""
    parsed = parse(corpus_line("nginx_error.log", 5))
    assert (parsed.level, parsed.http, parsed.attributes) == ("info", None, {"pid": 1, "tid": 1})


def test_apache_error_line() -> None:
    """An Apache error line yields level, module, code and the client's ip without port."""
    parsed = parse(corpus_line("apache_error.log", 3))
    assert (parsed.parser, parsed.level) == ("apache", "error")
    assert parsed.http == Http(client_ip="172.17.0.1")
    assert parsed.attributes == {
        "module": "authz_core",
        "tid": "140093170661056",
        "code": "AH01630",
        "pid": 9,
    }


def test_apache_error_ipv6_client_and_referer() -> None:
    """An IPv6 client with port and a trailing referer are read."""
    parsed = parse(corpus_line("apache_error.log", 4))
    assert parsed.http == Http(client_ip="::1", referrer="http://localhost/reports")


def test_bracketed_date_and_level_is_not_apache() -> None:
    """``[date] [info] text`` without pid or client is plain text, not Apache's."""
    parsed = parse("[Tue Jan 02 11:29:58 2024] [info] cache primed")
    assert (parsed.parser, parsed.level) == ("plain", "info")


# plain text levels


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("error connecting to db", "error"),
        ("Err: timeout", "error"),
        ("[WARNING] disk", "warn"),
        ("level=debug something", "debug"),
        ("2024-01-02 [crit] boom", "fatal"),
        ("emerg: kernel", "fatal"),
        ("notice: hi", "info"),
        ("[2024-01-02 09:14:09,001: INFO/MainProcess] Connected", "info"),
        ("panic: oh no", "fatal"),
        ('Exception in thread "main" java.lang.Error', "error"),
        ("Unhandled exception. System.InvalidOperationException: boom", "error"),
        ("Caused by: x", "error"),
        ("RuntimeError: info missing", "error"),
        ("<7>debug message", "debug"),
        ("<0>kernel panic", "fatal"),
        ("V/Tag: verbose", "trace"),
        ("A/libc: Fatal signal 11", "fatal"),
    ],
)
def test_plain_levels(line: str, level: str) -> None:
    """Level words and shapes near the start of a plain line give its level."""
    parsed = parse(line)
    assert (parsed.parser, parsed.level) == ("plain", level)


# Node.js errors whose names end in neither Error nor Exception, joined by the shipper's
# rule `node` with their frames, and pm2's report of a rejected promise; shapes near them.
NODE_ERRORS_OF_ANY_NAME = [
    ("Timeout: took too long\n    at f (/app/x.js:1:2)", "error"),
    ("Timeout\n    at f (/app/x.js:1:2)", "error"),
    ("Timeout:\n    at f", "error"),
    ("Timeout [ETIMEDOUT]: x\n    at f", "error"),
    ("Time$out_1: x\r\n    at f", "error"),
    ("Timeout: x\n" + "more\n" * 20 + "    at f", "error"),
    ("Timeout: x\n" + "more\n" * 21 + "    at f", None),
    ("Timeout [E T]: x\n    at f", None),
    ("Timeout []: x\n    at f", None),
    ("Timeout:x\n    at f", None),
    ("timeout: x\n    at f", None),
    ("Timeout: x\n    at ", None),
    ("Timeout: x\n     at f", None),
    ("Timeout: x\n    at\tf", None),
    ("Timeout x\n    at f", None),
    ("Timeout: took too long", None),
    ("INFO: x\n    at f", "info"),
    (
        "You have triggered an unhandledRejection, you may have forgotten to catch a Promise "
        "rejection:\nboom",
        "error",
    ),
    ("You have triggered an unhandledRejection", None),
]


@pytest.mark.parametrize(("text", "level"), NODE_ERRORS_OF_ANY_NAME)
def test_a_node_error_of_any_name_with_its_frames_is_an_error(text: str, level: str | None) -> None:
    """`Timeout: took too long` with a frame within 21 lines under it (a Node.js error the
    shipper joined) is `error`, unless its first line names a level; so is pm2's report
    of a rejected promise."""
    parsed = parse(text)
    assert (parsed.parser, parsed.level) == ("plain", level)


@pytest.mark.parametrize(
    "line",
    [
        "processed 3 errors",
        "error=nil result=ok",
        "opened /var/log/nginx/error.log",
        "at com.acme.error.Handler.run(Handler.java:1)",
        "loading error-pages",
        "wrote info.log",
        "no_error here",
        "I/O completed",
        "<i>italic</i> tag",
        "",
        "   ",
    ],
)
def test_plain_lines_without_a_level(line: str) -> None:
    """Level words inside names, paths, plurals or keys do not count."""
    assert parse(line).level is None


@pytest.mark.parametrize(
    "line",
    [
        "connection closed after the trace completed",
        "Trace completed in 5ms",
        "Debug mode enabled",
        "GET /orders 500 Internal Server Error",
        "retrying after an error in the upstream",
        "worker saw a fatal signal and restarted",
        "    raise ValueError('error in config')",
        "see std::error::Error for details",
        "status=error code=3 means a bad request",
        "panic({0x4b2f40?, 0x4f1a30?})",
        "2024/01/02 09:14:03 http: TLS handshake error from 10.42.0.17:51544: EOF",
    ],
)
def test_level_words_in_prose_do_not_count(line: str) -> None:
    """A level word inside a sentence, a quote or a call is part of the story, not a level."""
    assert parse(line).level is None


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("trace: entering reconcile", "trace"),
        ("2024-01-02T09:14:03.120Z\tinfo\tapp/main.go:12\tstarted", "info"),
        ("2024/01/02 15:04:05 Error connecting to db: dial tcp", "error"),
        ("2024/01/02 15:04:05 Warning: cache cold", "warn"),
        ("[09:14:07] error  TypeError: x is undefined", "error"),
        ("app | warn | disk at 91%", "warn"),
        ("worker-3|debug|tick", "debug"),
        ("job done (debug) queue empty", "debug"),
        ("2026-12-05T08:00:00.123Z [info     ] user logged in    user_id=3", "info"),
        ("2026-12-05 08:00:00 [warning  ] cache miss", "warn"),
        ("[2026-12-05T08:00:00,123][INFO ][logstash.runner] Starting Logstash", "info"),
        ("request failed, error: timeout", "error"),
        ("Sending report, severity: warning", "warn"),
        ('audit "level":"error" user=bob', "error"),
        ("reloaded with LogLevel=debug", "debug"),
        ("the scheduler says ERROR for job 7", "error"),
    ],
)
def test_level_words_marked_as_levels_count(line: str, level: str) -> None:
    """At the header's end, in upper case, in brackets, before a colon or pipe, after a
    pipe or as a level key's value, a level word is the line's level."""
    assert parse(line).level == level


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("2026-12-05 08:00:00.123 UTC [1] LOG:  database system is ready", "info"),
        ("2026-12-05 08:00:00.123 UTC [9] DEBUG2:  checkpoint starting", "debug"),
        ("[Nest] 1  - 12/05/2026, 8:00:00 AM     LOG [NestFactory] Starting Nest", "info"),
        ("2026-12-05  8:00:00 0 [Note] InnoDB: Buffer pool(s) load completed", "info"),
        ('{"level":"log","context":"Bootstrap","msg":"listening"}', "info"),
    ],
)
def test_postgres_nest_and_mysql_level_names(line: str, level: str) -> None:
    """PostgreSQL's LOG and DEBUG1-5, NestJS's LOG and MySQL's Note are levels."""
    assert parse(line).level == level


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("1:M 05 Dec 2026 08:00:00.123 * Ready to accept connections tcp", "info"),
        ("1:C 05 Dec 2026 08:00:00.123 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo", "warn"),
        ("1:M 05 Dec 2026 08:00:00.123 - Accepted 172.18.0.1:5555", "debug"),
        ("12:S 05 Dec 2026 08:00:00.123 . DB 0: 1 keys (0 volatile) in 4 slots", "debug"),
        ("1:M 05 Dec 2026 08:00:00.123 ? unknown mark", None),
    ],
)
def test_redis_level_marks(line: str, level: str | None) -> None:
    """Redis's mark after its time (`.` `-` `*` `#`) is its level."""
    assert parse(line).level == level


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("trce: Microsoft.AspNetCore.Routing.Matching.DfaMatcher[1001]", "trace"),
        ("dbug: Microsoft.Extensions.Hosting.Internal.Host[1]", "debug"),
        ("info: Microsoft.Hosting.Lifetime[14]", "info"),
        ("warn: Microsoft.AspNetCore.DataProtection.Repositories[60]", "warn"),
        ("fail: Microsoft.AspNetCore.Server.Kestrel[13]", "error"),
        ("crit: Microsoft.AspNetCore.Hosting.Diagnostics[6]", "fatal"),
        ('{"level":"fail","msg":"x"}', "error"),
    ],
)
def test_dotnet_console_levels(line: str, level: str | None) -> None:
    """.NET's console logger writes trce, dbug, info, warn, fail and crit."""
    assert parse(line).level == level


# Level shapes of common software, each in its own place on the line.
NAME_THREAD_KLOG_MYSQL_LEVELS = [
    ("prisma:warn Prisma schema changed", "warn"),
    ("prisma:info Starting a postgresql pool with 9 connections.", "info"),
    ("prisma:error Invalid `prisma.user.findMany()` invocation", "error"),
    ("app:warning slow", "warn"),
    ("prisma:query SELECT 1", None),
    ("Prisma:warn x", None),
    ("[main/INFO]: Loading 3 plugins", "info"),
    ("[08:00:00] [Server thread/WARN]: Can't keep up!", "warn"),
    ("[08:00:00] [main/ERROR] x", "error"),
    ("[08:00:00] [main/error] x", None),
    ("[08:00:00] [a/b/INFO] x", None),
    ("I241205 08:00:00.123456 1 util/log/file_sync_buffer.go:238 [config] file created", "info"),
    ("W241205 08:00:00.123456 1 server/server.go:1 slow", "warn"),
    ("E241205 08:00:00.123456 1 x", "error"),
    ("F241205 08:00:00.123456 1 x", "fatal"),
    ("I12345 08:00:00 x", None),
    (
        "2026-12-05T08:00:00.123456Z 0 [System] [MY-010116] [Server] /usr/sbin/mysqld starting",
        "info",
    ),
    ("2026-12-05T08:00:00.123456Z 0 [system] x", None),
    ("x [System]: y", None),
    ("Dec 05, 2026 8:00:00 AM com.acme.Foo bar\nSEVERE: Request failed", "error"),
    ("Dec 5, 2026 11:00:00 PM com.acme.Foo bar\nWARNING: slow\njava.lang.X: y", "warn"),
    ("Jan 05, 2026 8:00:00 AM org.apache.catalina.startup.Catalina start\nINFO: up", "info"),
    ("Dec 05, 2026 8:00:00 AM com.acme.Foo bar\nCONFIG: x", "info"),
    ("Dec 05, 2026 8:00:00 AM com.acme.Foo bar\nFINER: x", "trace"),
    ("Dec 05, 2026 8:00:00 AM com.acme.Foo bar\nNOTE: x", None),
    ("Dec 05, 2026 8:00:00 AM com.acme.Foo bar", None),
]


# What java.util.logging's SimpleFormatter prints (two lines, joined by the shipper's
# rule `java`) in the languages whose level names the JDK translates, as JDK 17 and 25
# print them (`java -Duser.language=de -Duser.country=DE ...`), and the JUL level logged.
JUL_LOCALIZED = [
    ("Dez. 05, 2026 8:00:00 AM com.acme.Foo bar\nSCHWERWIEGEND: Request failed", "SEVERE"),
    ("März 05, 2026 8:00:00 PM com.acme.Foo bar\nWARNUNG: Request failed", "WARNING"),
    ("Feb. 05, 2026 8:00:00 AM com.acme.Foo bar\nINFORMATION: Request failed", "INFO"),
    ("Aug. 05, 2026 8:00:00 PM com.acme.Foo bar\nKONFIGURATION: Request failed", "CONFIG"),
    ("Dez. 05, 2026 8:00:00 AM com.acme.Foo bar\nFEIN: Request failed", "FINE"),
    ("März 05, 2026 8:00:00 PM com.acme.Foo bar\nFEINER: Request failed", "FINER"),
    ("Feb. 05, 2026 8:00:00 AM com.acme.Foo bar\nAM FEINSTEN: Request failed", "FINEST"),
    ("dic 05, 2026 8:00:00 A.\xa0M. com.acme.Foo bar\nGRAVE: Request failed", "SEVERE"),
    ("mar 05, 2026 8:00:00 P.\xa0M. com.acme.Foo bar\nADVERTENCIA: Request failed", "WARNING"),
    ("feb 05, 2026 8:00:00 A.\xa0M. com.acme.Foo bar\nINFORMACIÓN: Request failed", "INFO"),
    ("ago 05, 2026 8:00:00 P.\xa0M. com.acme.Foo bar\nCONFIGURAR: Request failed", "CONFIG"),
    ("dic 05, 2026 8:00:00 A.\xa0M. com.acme.Foo bar\nDETALLADO: Request failed", "FINE"),
    ("mar 05, 2026 8:00:00 P.\xa0M. com.acme.Foo bar\nMUY DETALLADO: Request failed", "FINER"),
    ("feb 05, 2026 8:00:00 A.\xa0M. com.acme.Foo bar\nMÁS DETALLADO: Request failed", "FINEST"),
    ("déc. 05, 2026 8:00:00 AM com.acme.Foo bar\nGRAVE: Request failed", "SEVERE"),
    ("mars 05, 2026 8:00:00 PM com.acme.Foo bar\nAVERTISSEMENT: Request failed", "WARNING"),
    ("févr. 05, 2026 8:00:00 AM com.acme.Foo bar\nINFOS: Request failed", "INFO"),
    ("août 05, 2026 8:00:00 PM com.acme.Foo bar\nCONFIG: Request failed", "CONFIG"),
    ("déc. 05, 2026 8:00:00 AM com.acme.Foo bar\nPRÉCIS: Request failed", "FINE"),
    ("mars 05, 2026 8:00:00 PM com.acme.Foo bar\nPLUS PRÉCIS: Request failed", "FINER"),
    ("févr. 05, 2026 8:00:00 AM com.acme.Foo bar\nLE PLUS PRÉCIS: Request failed", "FINEST"),
    ("dic 05, 2026 8:00:00 AM com.acme.Foo bar\nGRAVE: Request failed", "SEVERE"),
    ("mar 05, 2026 8:00:00 PM com.acme.Foo bar\nAVVERTENZA: Request failed", "WARNING"),
    ("feb 05, 2026 8:00:00 AM com.acme.Foo bar\nINFORMAZIONI: Request failed", "INFO"),
    ("ago 05, 2026 8:00:00 PM com.acme.Foo bar\nCONFIGURAZIONE: Request failed", "CONFIG"),
    ("dic 05, 2026 8:00:00 AM com.acme.Foo bar\nBUONO: Request failed", "FINE"),
    ("mar 05, 2026 8:00:00 PM com.acme.Foo bar\nMIGLIORE: Request failed", "FINER"),
    ("feb 05, 2026 8:00:00 AM com.acme.Foo bar\nOTTIMALE: Request failed", "FINEST"),
    ("12月 05, 2026 8:00:00 午前 com.acme.Foo bar\n重大: Request failed", "SEVERE"),
    ("3月 05, 2026 8:00:00 午後 com.acme.Foo bar\n警告: Request failed", "WARNING"),
    ("2月 05, 2026 8:00:00 午前 com.acme.Foo bar\n情報: Request failed", "INFO"),
    ("8月 05, 2026 8:00:00 午後 com.acme.Foo bar\n構成: Request failed", "CONFIG"),
    ("12月 05, 2026 8:00:00 午前 com.acme.Foo bar\n普通: Request failed", "FINE"),
    ("3月 05, 2026 8:00:00 午後 com.acme.Foo bar\n詳細: Request failed", "FINER"),
    ("2月 05, 2026 8:00:00 午前 com.acme.Foo bar\n最も詳細: Request failed", "FINEST"),
    ("12월 05, 2026 8:00:00 오전 com.acme.Foo bar\n심각: Request failed", "SEVERE"),
    ("3월 05, 2026 8:00:00 오후 com.acme.Foo bar\n경고: Request failed", "WARNING"),
    ("2월 05, 2026 8:00:00 오전 com.acme.Foo bar\n정보: Request failed", "INFO"),
    ("8월 05, 2026 8:00:00 오후 com.acme.Foo bar\n구성: Request failed", "CONFIG"),
    ("12월 05, 2026 8:00:00 오전 com.acme.Foo bar\n미세: Request failed", "FINE"),
    ("3월 05, 2026 8:00:00 오후 com.acme.Foo bar\n보다 미세: Request failed", "FINER"),
    ("2월 05, 2026 8:00:00 오전 com.acme.Foo bar\n가장 미세: Request failed", "FINEST"),
    ("dez. 05, 2026 8:00:00 AM com.acme.Foo bar\nGRAVE: Request failed", "SEVERE"),
    ("mar. 05, 2026 8:00:00 PM com.acme.Foo bar\nADVERTÊNCIA: Request failed", "WARNING"),
    ("fev. 05, 2026 8:00:00 AM com.acme.Foo bar\nINFORMAÇÕES: Request failed", "INFO"),
    ("ago. 05, 2026 8:00:00 PM com.acme.Foo bar\nCONFIGURAÇÃO: Request failed", "CONFIG"),
    ("dez. 05, 2026 8:00:00 AM com.acme.Foo bar\nDETALHADO: Request failed", "FINE"),
    ("mar. 05, 2026 8:00:00 PM com.acme.Foo bar\nMAIS DETALHADO: Request failed", "FINER"),
    ("fev. 05, 2026 8:00:00 AM com.acme.Foo bar\nO MAIS DETALHADO: Request failed", "FINEST"),
    ("dec. 05, 2026 8:00:00 FM com.acme.Foo bar\nALLVARLIG: Request failed", "SEVERE"),
    ("mars 05, 2026 8:00:00 EM com.acme.Foo bar\nVARNING: Request failed", "WARNING"),
    ("feb. 05, 2026 8:00:00 FM com.acme.Foo bar\nINFO: Request failed", "INFO"),
    ("aug. 05, 2026 8:00:00 EM com.acme.Foo bar\nKONFIG: Request failed", "CONFIG"),
    ("dec. 05, 2026 8:00:00 FM com.acme.Foo bar\nFIN: Request failed", "FINE"),
    ("mars 05, 2026 8:00:00 EM com.acme.Foo bar\nFINARE: Request failed", "FINER"),
    ("feb. 05, 2026 8:00:00 FM com.acme.Foo bar\nFINASTE: Request failed", "FINEST"),
    ("12月 05, 2026 8:00:00 上午 com.acme.Foo bar\n严重: Request failed", "SEVERE"),
    ("3月 05, 2026 8:00:00 下午 com.acme.Foo bar\n警告: Request failed", "WARNING"),
    ("2月 05, 2026 8:00:00 上午 com.acme.Foo bar\n信息: Request failed", "INFO"),
    ("8月 05, 2026 8:00:00 下午 com.acme.Foo bar\n配置: Request failed", "CONFIG"),
    ("12月 05, 2026 8:00:00 上午 com.acme.Foo bar\n详细: Request failed", "FINE"),
    ("3月 05, 2026 8:00:00 下午 com.acme.Foo bar\n较详细: Request failed", "FINER"),
    ("2月 05, 2026 8:00:00 上午 com.acme.Foo bar\n非常详细: Request failed", "FINEST"),
    ("12月 05, 2026 8:00:00 上午 com.acme.Foo bar\n嚴重: Request failed", "SEVERE"),
    ("3月 05, 2026 8:00:00 下午 com.acme.Foo bar\n警告: Request failed", "WARNING"),
    ("2月 05, 2026 8:00:00 上午 com.acme.Foo bar\n資訊: Request failed", "INFO"),
    ("8月 05, 2026 8:00:00 下午 com.acme.Foo bar\n組態: Request failed", "CONFIG"),
    ("12月 05, 2026 8:00:00 上午 com.acme.Foo bar\n詳細: Request failed", "FINE"),
    ("3月 05, 2026 8:00:00 下午 com.acme.Foo bar\n較詳細: Request failed", "FINER"),
    ("2月 05, 2026 8:00:00 上午 com.acme.Foo bar\n最詳細: Request failed", "FINEST"),
]
JUL_TO_LEVEL = {"SEVERE": "error", "WARNING": "warn", "INFO": "info", "CONFIG": "info"}
JUL_TO_LEVEL |= {"FINE": "debug", "FINER": "trace", "FINEST": "trace"}


@pytest.mark.parametrize(("line", "logged"), JUL_LOCALIZED)
def test_java_util_logging_in_the_jdk_s_languages_has_its_level(line: str, logged: str) -> None:
    """JUL's two lines have their level whatever language the JDK printed them in: the
    localized month (`Dez.`, `févr.`, `12月`), AM/PM marker (`A. M.`, `午前`) and level name
    (`SCHWERWIEGEND`, `AVERTISSEMENT`, `情報`; Japanese `詳細` is FINER, Chinese FINE)."""
    assert parse(line).level == JUL_TO_LEVEL[logged]


_ARABIC_DIGITS = str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10)))
# The header as other locales print it, their level names English: en_GB's `Sept`, a
# month of two words (Catalan `de des.`, Vietnamese `thg 12`), Cyrillic, Arabic digits.
JUL_OTHER_LOCALES = [
    ("Sept 05, 2026 8:00:00 AM com.acme.Foo bar\nWARNING: x", "warn"),
    ("de des. 05, 2026 8:00:00 A. M. com.acme.Foo bar\nSEVERE: x", "error"),
    ("thg 12 05, 2026 8:00:00 SA com.acme.Foo bar\nINFO: x", "info"),
    ("дек. 05, 2026 8:00:00 AM com.acme.Foo bar\nFINE: x", "debug"),
    (
        "ديسمبر 05, 2026 8:00:00 ص com.acme.Foo bar\nSEVERE: x".translate(_ARABIC_DIGITS),
        "error",
    ),
    ("jan. 05, 2026 8:00:00 DA MANHÃ com.acme.Foo bar\nFINEST: x", "trace"),
    ("12 05, 2026 8:00:00 AM com.acme.Foo bar\nCONFIG: x", "info"),
    # not JUL's header: a month word of 9 letters, three words, no year, no marker
    ("September 05, 2026 8:00:00 AM com.acme.Foo bar\nGRAVE: x", None),
    ("a b c 05, 2026 8:00:00 AM com.acme.Foo bar\nGRAVE: x", None),
    ("Dez. 05, 8:00:00 AM com.acme.Foo bar\nWARNUNG: x", None),
    ("Dez. 05, 2026 8:00:00 \nWARNUNG: x", None),
    ("Dez. 05, 2026 8:00:00 AM com.acme.Foo bar\nWARNUNG x", None),
]


@pytest.mark.parametrize(("line", "level"), JUL_OTHER_LOCALES)
def test_java_util_logging_s_header_in_other_locales(line: str, level: str | None) -> None:
    """The header is told by its shape (a month of one or two words of up to 8 characters,
    day, year, 12-hour time, a marker), not by English month names."""
    assert parse(line).level == level


@pytest.mark.parametrize(("line", "level"), NAME_THREAD_KLOG_MYSQL_LEVELS)
def test_name_thread_klog_mysql_and_java_util_logging_levels(line: str, level: str | None) -> None:
    """Prisma's `name:level`, log4j's `[thread/LEVEL]`, CockroachDB's klog header with its
    year, MySQL's `[System]`, and java.util.logging's two lines joined have their levels."""
    assert parse(line).level == level


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("npm error code ERESOLVE", "error"),
        ("npm warn deprecated inflight@1.0.6: This module is not supported", "warn"),
        ("npm notice New major version of npm available! 10.2.4 -> 11.0.0", "info"),
        ("npm run build finished without error", None),
    ],
)
def test_npm_s_lower_case_levels(line: str, level: str | None) -> None:
    """npm 10 writes its level in lower case after its name: `npm error`, `npm warn`."""
    assert parse(line).level == level


@pytest.mark.parametrize(
    "line",
    [
        "thread 'main' panicked at src/main.rs:2:5:",
        "thread 'tokio-runtime-worker' panicked at 'called `Option::unwrap()` on a `None`",
    ],
)
def test_a_rust_panic_is_fatal(line: str) -> None:
    """Rust's `thread '...' panicked at` is a crash, as Go's `panic:` is."""
    assert parse(line).level == "fatal"


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("[2026-12-05 08:00:00] production.ERROR: SQLSTATE[HY000] Connection refused", "error"),
        ("[2026-12-05T08:00:00.123456+00:00] request.CRITICAL: Uncaught PHP Exception", "fatal"),
        ("[2026-12-05 08:00:00] local.INFO: User logged in", "info"),
        ("at com.acme.ERROR.Handler.run(Handler.java:1)", None),
    ],
)
def test_monolog_channel_levels(line: str, level: str | None) -> None:
    """Monolog's (Laravel's, Symfony's) `channel.LEVEL:` gives the level."""
    assert parse(line).level == level


def test_level_word_beyond_the_window_does_not_count() -> None:
    """A level word in text past the first PLAIN_WINDOW characters is part of the story."""
    assert parse("x" * PLAIN_WINDOW + " ERROR late").level is None
    assert parse("x" * (PLAIN_WINDOW - 10) + " ERROR late").level == "error"


def test_word_cut_by_the_window_does_not_count() -> None:
    """A longer word cut in two by the window edge is not a level word."""
    line = "x" * (PLAIN_WINDOW - 5) + " INFORMATION"
    assert parse(line).level is None


BGL_HEADER = (
    "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 "
    "R02-M1-N0-C:J12-U11 RAS KERNEL"
)


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("05-14 09:12:03.512  1234  1290 E ActivityManager: ANR in com.example", "error"),
        ("05-14 09:12:03.512  1234  1290 I OkHttp  : ERROR 503 from upstream", "info"),
        ("05-14 09:12:03.512   612   640 V WindowManager: error=none", "trace"),
        ("05-14 09:12:03.512  5288  5288 F libc    : Fatal signal 11 (SIGSEGV)", "fatal"),
        ("05-14 09:12:03.512  5341  5341 A libc    : assertion failed", "fatal"),
        ("2024-05-14 09:12:03.512  1234  1290 W Tag: slow", "warn"),
        ("05-14 09:12:03.512 D/OkHttp  ( 5210): <-- HTTP FAILED: timeout", "debug"),
        ("05-14 09:12:03.512 I/WifiService(  612): startScan E/W filter disabled", "info"),
    ],
)
def test_logcat_level_column(line: str, level: str) -> None:
    """Logcat's threadtime and time formats take the level from the letter's column."""
    assert parse(line).level == level


@pytest.mark.parametrize(
    "line",
    [
        "2024-05-14 09:12:03 E coli count above limit",
        "05-14 09:12:03.512 E coli count above limit",
        "05-14 09:12:03.512  1234 E Tag: one number is no pid and tid",
        "05-14 09:12:03.512  1234  1290 X Tag: E",
        "12:00:01 reading 3.2 E field strength",
    ],
)
def test_stray_capital_letter_is_no_level(line: str) -> None:
    """A single capital outside logcat's level column names no level."""
    assert parse(line).level is None


@pytest.mark.parametrize(
    ("line", "level"),
    [
        (f"{BGL_HEADER} INFO instruction cache parity error corrected", "info"),
        (f"{BGL_HEADER} FATAL data TLB error interrupt", "fatal"),
        (f"{BGL_HEADER} SEVERE machine check interrupt", "error"),
        (f"{BGL_HEADER} INFO ERROR: correctable ECC reported and cleared", "info"),
        (
            "neutron-openvswitch-agent.log.1.2017-05-16_13:55:31 2017-05-16 00:02:05.118 2087"
            " INFO neutron.agent.securitygroups_rpc [req-7ec0ec7a - - - - -] refresh failed",
            "info",
        ),
        (
            "May 14 09:12:04 hadoop-dn-17.prod.example.internal hadoop-hdfs-datanode[4123]: "
            "2024-05-14 09:12:04,006 WARN org.apache.hadoop.hdfs.server.datanode.DataNode: x",
            "warn",
        ),
        (
            "2024-05-14T09:12:04.250113+00:00 zk-2.zk-hs.kafka.svc.cluster.local zookeeper[1]:"
            " 2024-05-14 09:12:04,250 [myid:3] - ERROR [ListenerHandler@1099] - info lost",
            "error",
        ),
    ],
)
def test_header_level_field_beyond_the_window(line: str, level: str) -> None:
    """A level field after a header longer than PLAIN_WINDOW is the line's level."""
    assert parse(line[:PLAIN_WINDOW]).level is None  # the field stands past the window
    assert parse(line).level == level


def test_bracketed_header_field_starting_with_a_digit() -> None:
    """A bracketed field such as `[00 A]` is one header field, so the level after it counts."""
    header = "0 0 0 0 0 0 0 0 0 0 2005.06.03 2005-06-03-15.42.50.675872 R00-M0-N0-C:J00-U01"
    line = f"{header} [00 A] INFO aa"
    assert parse(line[:PLAIN_WINDOW]).level is None  # the field stands past the window
    assert parse(line).level == "info"


@pytest.mark.parametrize(
    "line",
    [
        f"{BGL_HEADER} instruction cache parity error corrected",
        f"{BGL_HEADER} failed, ERROR count 3",
        f"{BGL_HEADER} ciodb: exited WARN FATAL",
        "- 1131570322 2005.11.09 an430 Nov 9 13:05:22 an430/an430 kernel: task abort! ERROR",
    ],
)
def test_level_word_in_the_message_beyond_the_window_does_not_count(line: str) -> None:
    """Past the window, a level word after the first prose-like token is message text."""
    assert parse(line).level is None


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("Mon May 13 09:12:02 2024 daemon.err odhcpd[1456]: Failed to send", "error"),
        ("Mon May 13 09:12:02 2024 kern.warn kernel: [  412.118822] table full", "warn"),
        ("May 13 09:12:08 rt-lab local0.info hostapd: wl0.1: error 3", "info"),
        ("May 13 09:12:09 rt-lab kern.emerg kernel: Kernel panic - not syncing", "fatal"),
        ("Jan 17 12:35:09 router kern.err kernel: timeout, WARN: no firmware", "error"),
        ("Jan 17 12:35:01 openwrt daemon.notice netifd: Interface 'lan' is now up", "info"),
    ],
)
def test_syslog_facility_severity_field(line: str, level: str) -> None:
    """A syslog ``facility.severity`` header field gives the level."""
    assert parse(line).level == level


# ANSI


def test_ansi_stripped_and_original_kept_on_request() -> None:
    """Colour codes are stripped; the raw line is kept only when asked."""
    raw = corpus_line("ansi.log", 4)
    parsed = parse(raw, keep_original=True)
    assert parsed.message == (
        "2024-01-02T09:14:05.001Z\tERROR\tapi/orders.go:214\tfailed to create order\t"
        '{"order_id": "ord_8812"}'
    )
    assert parsed.original == raw
    assert parsed.flags == ["ansi"]
    assert parse(raw).original is None


def test_osc_title_and_cursor_sequences_stripped() -> None:
    """OSC titles, cursor moves and charset switches are stripped too."""
    raw = "\x1b]0;build\x07\x1b[2K\x1b[1Gdone \x1b(Bnow\x1b[?25h"
    assert parse(raw).message == "done now"


def test_no_original_without_escapes() -> None:
    """Without escape sequences the original is never duplicated."""
    parsed = parse("INFO plain", keep_original=True)
    assert (parsed.original, parsed.flags) == (None, [])


def test_ansi_stripped_before_json_detection() -> None:
    """A coloured JSON line is parsed as JSON once its escapes are gone."""
    parsed = parse('\x1b[0m{"msg":"x","level":"info"}\x1b[0m')
    assert (parsed.parser, parsed.message, parsed.flags) == ("json", "x", ["ansi"])


# robustness


def test_a_parser_bug_keeps_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a parser raises, the line is kept as plain text flagged parse_error."""

    def broken(text: str) -> Parsed:
        raise RuntimeError("bug")

    monkeypatch.setitem(parse_module._PARSERS, "json", broken)
    parsed = parse("ERROR x", "json")
    assert (parsed.message, parsed.level, parsed.flags) == ("ERROR x", "error", ["parse_error"])


def test_unknown_parser_name_falls_back_to_auto() -> None:
    """A parser name outside ParserName is treated as auto rather than failing."""
    assert parse('{"msg":"x"}', "nope").parser == "json"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "event",
    [
        'Traceback (most recent call last):\n  File "/app/w.py", line 3, in <module>\n'
        "KeyboardInterrupt",
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "/app/w.py", line 12, in run\n'
        "  | ExceptionGroup: sync failed (1 sub-exception)",
        'Exception in thread "main" java.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)',
        "java.net.ConnectException: Connection refused\n\tat a.B.c(B.java:1)",
    ],
)
def test_a_joined_python_or_java_trace_is_an_error(event: str) -> None:
    """A joined traceback or Java exception event, exception groups included, has level error."""
    assert parse(event).level == "error"


# Node.js's report of an uncaught exception, joined by the shipper's rule `node`: where it
# was thrown, the source line (long lines push the error past any level word's window),
# the caret, then whatever was thrown.
NODE_CRASHES = [
    "/app/dist/server/controllers/orders.controller.js:142\n"
    + "            throw new OrderError(`order ${order.id} of ${order.customer.name} failed`);"
    + "\n            ^\n\nOrderError: order 1042 of Ann failed\n    at placeOrder (/app/x.js:1:1)",
    "node:internal/process/promises:289\n"
    "            triggerUncaughtException(err, true /* fromPromise */);\n            ^\n\n"
    '[UnhandledPromiseRejection: The promise rejected with the reason "timeout".] {\n'
    "  code: 'ERR_UNHANDLED_REJECTION'\n}\n\nNode.js v18.19.0",
    "/app/index.js:1\nthrow 'boom';\n^\nboom\n"
    "(Use `node --trace-uncaught ...` to show where the exception was thrown)",
    "file:///app/index.mjs:2\n  const total = ;\n                ^^^\n\n"
    "SyntaxError: Unexpected token",
    "events.js:377\n      throw er; // Unhandled 'error' event\n      ^",
]


@pytest.mark.parametrize("event", NODE_CRASHES)
def test_a_joined_node_crash_is_an_error(event: str) -> None:
    """Node's report of an uncaught exception (place, source line, caret) has level error,
    whatever was thrown and however long the source line."""
    assert parse(event).level == "error"


@pytest.mark.parametrize(
    "line",
    [
        'TypeError [ERR_INVALID_ARG_TYPE]: The "path" argument must be of type string',
        "DOMException [AbortError]: This operation was aborted",
        "RangeError [ERR_OUT_OF_RANGE]",
    ],
)
def test_a_node_error_with_its_code_is_an_error(line: str) -> None:
    """A Node.js error's first line with the error's code after its name has level error."""
    assert parse(line).level == "error"


@pytest.mark.parametrize(
    "text",
    [
        "/app/index.js:3",  # the place alone: no caret under it
        "/app/index.js:3\n  foo();\nnext",  # no caret line
        "/app/my app.js:3\n  foo();\n  ^",  # a space: no place Node prints
        ":3\n  foo();\n  ^",
        "/app/index.js:3x\n  foo();\n  ^",
        "/app/index.js:3\n  foo();\n  ^ here",
        "TypeError [ERR_X] without a colon",
        "TypeError [] no code",
        "TypeError[ERR_X]: no space",
        "Typo [ERR_X]: no error's name",
    ],
)
def test_shapes_near_a_node_error_are_not_taken_for_one(text: str) -> None:
    """Only the place, the source line and a caret line alone make a crash report; only
    `[CODE]` right before the colon or the end is an error's code."""
    assert parse(text).level is None
