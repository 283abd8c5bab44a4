"""Pieces of HTTP traffic as servers log them: client addresses, request lines, times."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from collector.parse.result import Http

# A double-quoted value as nginx and Apache write it: Apache escapes quotes with `\"`.
QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'
_MAX_LONG = 2**63 - 1
# A dotted quad ipaddress accepts (no leading zeros): most clients, without its parser.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


@lru_cache(maxsize=4096)
def client_ip(text: str) -> str | None:
    """``text`` if it is an IPv4 or IPv6 address Elasticsearch's ``ip`` type takes."""
    # Clients repeat, hence the cache; a zone (`fe80::1%eth0`) is not an `ip` value.
    if _IPV4.fullmatch(text) is not None:
        return text
    if "%" in text:
        return None
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    return text


def client_ip_port(text: str) -> str | None:
    """The address of ``ip:port``, ``[ip6]:port`` or a bare address, if it is one."""
    ip = client_ip(text)
    if ip is not None or ":" not in text:
        return ip
    host = text.rsplit(":", 1)[0]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return client_ip(host)


def parse_request(http: Http, request: str) -> None:
    """Fill method, url, path and version from ``GET /a?b HTTP/1.1``, if it is one."""
    parts = request.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/"):
        http.version = parts[2][5:] or None
    elif len(parts) != 2:
        return  # `-`, or bytes of a TLS handshake sent to a plain-text port
    method, url = parts[0], parts[1]
    if not (method.isascii() and method.isupper()) or not url:
        return
    http.method = method
    http.url = url
    http.path = url_path(url)


def url_path(url: str) -> str | None:
    """The path of an origin-form (``/a?b``) or absolute-form (``http://h/a``) target."""
    if url.startswith("/"):
        return url.partition("?")[0]
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.isalpha():
        return None  # `*`, or `host:443` of CONNECT
    slash = rest.find("/")
    return "/" if slash < 0 else rest[slash:].partition("?")[0]


_SECONDS = re.compile(r"(\d{1,9})\.(\d{1,9})")


def seconds_to_ns(text: str) -> int | None:
    """Nanoseconds in ``12.345`` seconds, exactly (no float rounding)."""
    m = _SECONDS.fullmatch(text)
    if m is None:
        return None
    ns = int(m.group(1)) * 1_000_000_000 + int(m.group(2).ljust(9, "0"))
    return ns if ns <= _MAX_LONG else None
