"""Web server error log lines (nginx, Apache httpd) mapped to a level and HTTP context.

nginx:  ``2024/01/02 03:04:05 [error] 29#29: *1 message, client: ip, request: "..."``
Apache: ``[Tue Jan 02 03:04:05 2024] [core:error] [pid 7:tid 9] [client ip:port] AH00037: msg``

The message stays the whole line; the server's level word becomes the level
(``notice`` is ``info``; ``crit``, ``alert`` and ``emerg`` are ``fatal``). Process,
thread, connection, and the context nginx appends (server, upstream, host) go into
``attributes``; client, request and referrer into ``http``.
"""

from __future__ import annotations

import re

from collector.parse.http import QUOTED, client_ip, client_ip_port, parse_request
from collector.parse.level import normalise_level
from collector.parse.result import Http, JSONValue, Parsed

_NGINX = re.compile(
    r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[([a-z]+)\] (\d{1,10})#(\d{1,10}): (?:\*(\d{1,18}) )?",
)
_NGINX_CONTEXT = re.compile(
    rf', (client|server|request|subrequest|upstream|host|referrer): ("{QUOTED}"|[^,]*)'
)
_APACHE = re.compile(
    r"\[[^\]]+\] \[(?:([^\]:\s]+):)?([a-z]+\d?)\]"
    r"(?: \[pid (\d{1,10})(?::tid (\d{1,24}))?\])?(?: \[client ([^\]\s]+)\])? ?"
    r"(?:(AH\d{5}): )?"
)
_APACHE_REFERER = re.compile(r", referer: (\S+)\Z")


def looks_like_nginx_error(line: str) -> bool:
    """A cheap test before the regex: ``YYYY/MM/DD HH:MM:SS [``."""
    return line[4:5] == "/" and line[7:8] == "/" and line[19:21] == " ["


def parse_nginx_error(line: str) -> Parsed | None:
    """The level and context of an nginx error log line, or None if it is not one."""
    m = _NGINX.match(line)
    if m is None:
        return None
    level, pid, tid, connection = m.groups()
    attributes: dict[str, JSONValue] = {"pid": int(pid), "tid": int(tid)}
    if connection is not None:
        attributes["connection"] = int(connection)
    http = _nginx_context(line, m.end(), attributes)
    return Parsed(
        message=line,
        parser="nginx",
        level=normalise_level(level),
        attributes=attributes,
        http=http,
    )


def _nginx_context(line: str, start: int, attributes: dict[str, JSONValue]) -> Http | None:
    at = line.find(", client: ", start)
    if at < 0:
        return None
    http = Http()
    for key, raw in _NGINX_CONTEXT.findall(line, at):
        value = raw[1:-1] if raw[:1] == '"' else raw
        if key == "client":
            http.client_ip = client_ip(value)
        elif key == "request":
            parse_request(http, value)
        elif key == "referrer":
            http.referrer = value
        else:
            attributes[key] = value
    return http


def parse_apache_error(line: str) -> Parsed | None:
    """The level and context of an Apache httpd error log line, or None if it is not one."""
    m = _APACHE.match(line)
    if m is None:
        return None
    module, level, pid, tid, client, code = m.groups()
    if pid is None and client is None:
        return None  # `[date] [info] text` is too common a shape to call it Apache's
    attributes: dict[str, JSONValue] = {}
    for key, value in (("module", module), ("tid", tid), ("code", code)):
        if value is not None:
            attributes[key] = value
    if pid is not None:
        attributes["pid"] = int(pid)
    http = None
    if client is not None:
        http = Http(client_ip=client_ip_port(client))
        referer = _APACHE_REFERER.search(line)
        if referer is not None:
            http.referrer = referer.group(1)
    return Parsed(
        message=line,
        parser="apache",
        level=normalise_level(level),
        attributes=attributes or None,
        http=http,
    )
