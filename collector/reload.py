"""The collector's config file, re-read on SIGHUP or when it changes.

Retention rules and parsing rules follow the same file: each subscribes a listener,
and every good read of the file is handed to all of them. A file that does not load
(bad YAML, a rule that does not compile, two types for one field) changes nothing: the
rules in force stay, and the log says why, naming the rule and the key. Every other
setting is read once, at start: a file that changes one is followed by a warning that
names it (`RestartNeeded`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from collector.config import CollectorConfig, config_path, load_config
from collector.errors import ConfigError

log = logging.getLogger("logpipe.collector.reload")

Listener = Callable[[CollectorConfig], None]
# The settings a reload applies: the retention rules, and the parsing rules with what
# their engine is made of (rules/engine.py, engine_of).
RELOADED = frozenset({"retention", "rules", "timestamp_max_skew", "redact"})
# How often `watch` looks at the file: cheap (one stat), and edits apply within seconds.
WATCH_SECONDS = 2.0


class ConfigFile:
    """The config file and who follows it; `reload` hands a good read to every listener."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = config_path(path)
        self._stamp = _stamp(path)
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with each configuration read after this."""
        self._listeners.append(listener)

    def reload(self) -> bool:
        """Re-read and validate the file; on error log why and change nothing."""
        self._stamp = _stamp(self.path)
        try:
            config = load_config(self.path)
        except ConfigError as exc:
            log.error(
                "config not reloaded, the previous rules stay in force: %s",
                exc,
                extra={"config_file": str(self.path)},
            )
            return False
        for listener in self._listeners:
            listener(config)
        return True

    def reload_if_changed(self) -> bool:
        """Reload if the file changed since the last look; False if that failed."""
        if self.path is None or _stamp(self.path) == self._stamp:
            return True
        return self.reload()


def restart_needed(running: CollectorConfig, read: CollectorConfig) -> list[str]:
    """The settings (their keys in the file) whose value in `read` differs from the one
    in force, of those a reload does not apply."""
    before = running.model_dump(exclude=set(RELOADED))
    after = read.model_dump(exclude=set(RELOADED))
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


class RestartNeeded:
    """A listener that warns, on each good read, of the settings read that differ from
    those the collector started with (their values unsaid: some are secrets)."""

    def __init__(self, running: CollectorConfig, path: Path | None) -> None:
        self.running = running
        self.path = path

    def __call__(self, read: CollectorConfig) -> None:
        changed = restart_needed(self.running, read)
        if changed:
            log.warning(
                "the config file changes settings a reload does not apply: %s; they take "
                "effect when the collector restarts (`index` ones when setup runs again); "
                "only the retention and parsing rules are reloaded",
                ", ".join(changed),
                extra={"config_file": str(self.path), "settings": changed},
            )


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    """Identity of the file's content: editors replace files, so the inode counts too."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@contextmanager
def reload_on_sighup(file: ConfigFile) -> Iterator[None]:
    """While inside, SIGHUP reloads `file` at once (where this loop can take signals)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, file.reload)
    except (NotImplementedError, RuntimeError, ValueError):
        yield  # not the main thread, or no signals here: the file watch still works
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


async def watch(file: ConfigFile, interval: float = WATCH_SECONDS) -> None:
    """Reload `file` whenever it changes, forever."""
    while True:
        await asyncio.sleep(interval)
        file.reload_if_changed()
