"""Access log lines (nginx and Apache combined/common) mapped to ECS HTTP fields.

``client - user [time] "METHOD url HTTP/x" status bytes ["referrer" "agent"] [extra]``

Python's logging in its default format puts ``LEVEL:logger:`` before the client (Flask's
development server: ``INFO:werkzeug:127.0.0.1 - - [...] "GET / HTTP/1.1" 200 -``): the
client is then the address after it, the logger's name is the document's logger, and
the parser ``access`` (neither server wrote it).

Which server wrote a line is told by what only one of them writes: Apache logs ``-``
for zero bytes and its images default to the common format (no referrer and agent);
nginx's image adds ``"$http_x_forwarded_for"``, and nginx setups add
``$request_time`` (seconds with a fraction). A plain combined line could be either and
is reported as parser ``access``; a container's ``logpipe.parser`` hint names the
server for sure.

The message stays the whole line; the level follows the status (5xx ``error``, 4xx
``warn``, else ``info``). Quoted values are kept as the server escaped them.
"""

from __future__ import annotations

import re

from collector.parse.http import QUOTED, client_ip, parse_request, seconds_to_ns
from collector.parse.result import Http, JSONValue, Parsed

# Groups: client, ident, user, time, request, status, bytes, referrer, agent, rest.
_ACCESS = re.compile(
    rf'(\S+) (\S+) (\S+) \[([^\]]*)\] "({QUOTED})" (\d{{3}}) (\d{{1,18}}|-)(?!\S)'
    rf'(?: "({QUOTED})" "({QUOTED})")?(.*)',
    re.DOTALL,
)
# Python logging's BASIC_FORMAT before the client: `INFO:werkzeug:127.0.0.1`.
_LOGGED = re.compile(r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):([^:]+):(.+)")
_FORWARDED = re.compile(rf'\s+"({QUOTED})"')
# nginx's $request_time, bare or as `rt=` / `request_time=`; never an upstream time.
_DURATION = re.compile(r"(?<!\S)(?:rt=|request_time=)?(\d{1,9}\.\d{1,9})(?!\S)")


def parse_access(line: str, parser: str | None = None) -> Parsed | None:
    """The HTTP fields of an access log line, or None if it is not one.

    ``parser`` names the server when a hint said so; None detects it.
    """
    m = _ACCESS.fullmatch(line)
    if m is None:
        return None
    client, user, request, status, size, referrer, agent, rest = m.group(1, 3, 5, 6, 7, 8, 9, 10)
    http = Http(status_code=int(status), body_bytes=None if size == "-" else int(size))
    parse_request(http, request)
    if agent is not None:
        http.referrer = _dash_none(referrer)
        http.user_agent = _dash_none(agent)
    attributes: dict[str, JSONValue] = {}
    http.client_ip = client_ip(client)
    logger = None
    if http.client_ip is None and (logged := _LOGGED.fullmatch(client)) is not None:
        http.client_ip = client_ip(logged.group(2))
        logger = logged.group(1) if http.client_ip is not None else None
    if http.client_ip is None:
        attributes["client"] = client
    if user != "-":
        attributes["user"] = user
    nginx_sign = _extras(http, attributes, rest) if rest else False
    if parser is None:  # nginx's and Apache's own lines have no logging prefix
        parser = "access" if logger else _which_server(size, agent is not None, nginx_sign)
    return Parsed(
        message=line,
        parser=parser,
        level=_level(http.status_code),
        logger=logger,
        attributes=attributes or None,
        http=http,
    )


def _extras(http: Http, attributes: dict[str, JSONValue], rest: str) -> bool:
    """Read what nginx formats append; True if something nginx-only was there."""
    found = False
    fwd = _FORWARDED.match(rest)
    if fwd is not None:
        found = True
        if fwd.group(1) not in ("-", ""):
            attributes["forwarded_for"] = fwd.group(1)
    duration = _DURATION.search(rest)
    if duration is not None:
        found = True
        http.duration_ns = seconds_to_ns(duration.group(1))
    return found


def _which_server(size: str, combined: bool, nginx_sign: bool) -> str:
    if size == "-" or not combined:
        return "apache"
    return "nginx" if nginx_sign else "access"


def _level(status: int | None) -> str:
    if status is None or status < 400:
        return "info"
    return "error" if status >= 500 else "warn"


def _dash_none(value: str) -> str | None:
    return None if value in ("-", "") else value
