"""The command line's exceptions, one tree, each with the exit status it ends with::

    LogpipeError                 exit
    ├── UsageError                  2  bad option, time, config file or missing setting
    ├── CollectorError                 the collector answered, but not with lines
    │   ├── AuthError               3  401/403: a missing, wrong or ingest-only token
    │   ├── BadQuery                5  400: a filter the collector refuses (it names it)
    │   ├── Refused                 6  404 (read API off), 429, other answers
    │   └── Unavailable             4  503 / 5xx: try again later (tail does, by itself)
    └── Unreachable                 4  no connection, refused, reset, timed out, TLS

``NoMatch`` (exit 1, search only) is not an error: the query ran and found nothing.
Only ``client.py`` converts foreign exceptions (http.client, socket, ssl) into these,
with ``raise ... from exc``; ``__main__.py`` turns each into its message and status.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NO_MATCH = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4
EXIT_BAD_QUERY = 5
EXIT_REFUSED = 6
EXIT_OUTPUT = 7  # the lines could not be written: a full disk, an I/O error, no stdout
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a program stopped by Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM


class LogpipeError(Exception):
    """Base of every error the command line raises on purpose."""

    exit_status = 1


class UsageError(LogpipeError):
    """The command line, a setting or the config file must change; the message says how."""

    exit_status = EXIT_USAGE


class CollectorError(LogpipeError):
    """The collector answered with an error; `status` is its HTTP status."""

    exit_status = EXIT_REFUSED

    def __init__(self, message: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class AuthError(CollectorError):
    """401 or 403: the token is missing, wrong, or not a read token."""

    exit_status = EXIT_AUTH


class BadQuery(CollectorError):
    """400: the collector refused a filter; its message names the parameter."""

    exit_status = EXIT_BAD_QUERY


class Refused(CollectorError):
    """404 (read API off), 429 (a limit) or an answer the command line does not expect."""

    exit_status = EXIT_REFUSED


class Unavailable(CollectorError):
    """503 or another 5xx: the collector or its Elasticsearch cannot answer now."""

    exit_status = EXIT_UNREACHABLE


class OutputError(LogpipeError):
    """Standard output cannot take the lines (a full disk, an I/O error, closed)."""

    exit_status = EXIT_OUTPUT


class Unreachable(LogpipeError):
    """No answer: connection refused or reset, name not found, timed out, TLS failed."""

    exit_status = EXIT_UNREACHABLE
