"""The filters both commands send, as the collector's query parameters.

Globs (`api*`) and comma-separated alternatives in `--host`, `--service`, `--name` and
`--dataset` are the collector's to match; an option given several times means any of
its values (`--service api --service web` is `service=api,web`). Times are absolute by
now (see timespec.py), so every request of one command asks for the same range.
"""

from __future__ import annotations

from dataclasses import dataclass

from logpipe.errors import UsageError
from logpipe.timespec import rfc3339

LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal")
STREAMS = ("stdout", "stderr")


@dataclass(frozen=True)
class Filters:
    """Which log lines a command asks for."""

    text: str | None = None
    since: int | None = None  # ns since the epoch
    until: int | None = None
    host: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    name: tuple[str, ...] = ()
    dataset: tuple[str, ...] = ()
    level: str | None = None
    stream: str | None = None
    events: bool = False  # container lifecycle events and gaps too

    def check(self) -> Filters:
        """Itself; a UsageError for an empty filter (`--service ''` would match every one)."""
        for option, values in (("--host", self.host), ("--service", self.service),
                               ("--name", self.name), ("--dataset", self.dataset)):  # fmt: skip
            if any(not value.strip(" ,") for value in values):
                raise UsageError(f"{option}: empty: give a name or a glob ('api*')")
        return self

    def params(self) -> list[tuple[str, str]]:
        """The query parameters, in a fixed order, the ones not set left out."""
        pairs = [
            ("q", self.text or ""),
            ("since", rfc3339(self.since) if self.since is not None else ""),
            ("until", rfc3339(self.until) if self.until is not None else ""),
            ("host", ",".join(self.host)),
            ("service", ",".join(self.service)),
            ("name", ",".join(self.name)),
            ("dataset", ",".join(self.dataset)),
            ("level", self.level or ""),
            ("stream", self.stream or ""),
            ("kind", "all" if self.events else ""),
        ]
        return [(key, value) for key, value in pairs if value]
