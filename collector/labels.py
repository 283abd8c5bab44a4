"""Which container labels a document carries in `container.labels`.

Every key of `container.labels` (a `flattened` field) is indexed twice, keyed and plain,
with doc values, in every document of the container: labels nobody filters logs on are
what the cluster pays for without need. `LOGPIPE_DOCUMENT_LABELS` chooses which labels
documents carry; Compose's bookkeeping labels stay out unless a pattern names one.

Imports nothing of the collector, so that the config can check the patterns at start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

# Labels Docker Compose puts on every container for its own bookkeeping. Nobody filters
# logs on them (the container's name tells replicas apart), and with them every document
# cost Elasticsearch about a third more CPU (docs/documents.md): documents leave them out
# unless a pattern names one exactly.
COMPOSE_BOOKKEEPING_LABELS = frozenset(
    f"com.docker.compose.{name}"
    for name in (
        "config-hash",
        "container-number",
        "depends_on",
        "image",
        "oneoff",
        "project.config_files",
        "project.environment_file",
        "project.working_dir",
        "replace",
        "version",
    )
)

ALL = ("*",)


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """The patterns as the setting takes them, or ValueError saying what is wrong."""
    checked = []
    for pattern in patterns:
        text = pattern.strip()
        key = text.removeprefix("!")
        if not key:
            raise ValueError(
                f"{pattern!r} names no label: write a key or a glob pattern after the '!' "
                "(e.g. '!traefik.*')"
            )
        if "=" in key:
            raise ValueError(
                f"{pattern!r}: the patterns match label keys, not key=value (write "
                f"{text.split('=', 1)[0]!r})"
            )
        checked.append(text)
    return checked


class LabelFilter:
    """The labels of a container that its documents carry.

    A key is kept when an include pattern matches it and no `!` pattern does (glob
    patterns, case-sensitive: `*` matches any text, dots too, `?` one character).
    Without include patterns but with `!` ones, every key is included first; without
    any pattern, no label is kept. Compose's bookkeeping labels are kept only where an
    include pattern is their exact key.
    """

    __slots__ = ("excludes", "includes", "patterns")

    def __init__(self, patterns: Iterable[str] = ALL) -> None:
        self.patterns = tuple(check_patterns(patterns))
        includes = [p for p in self.patterns if not p.startswith("!")]
        excludes = [p[1:] for p in self.patterns if p.startswith("!")]
        self.includes = tuple(includes or (ALL if excludes else ()))
        self.excludes = tuple(excludes)

    def keeps(self, key: str) -> bool:
        """Whether documents carry the label `key`."""
        if key in COMPOSE_BOOKKEEPING_LABELS:
            included = key in self.includes
        else:
            included = any(fnmatchcase(key, p) for p in self.includes)
        return included and not any(fnmatchcase(key, p) for p in self.excludes)

    def __call__(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels documents carry, in the container's order."""
        return {k: v for k, v in labels.items() if self.keeps(k)}

    def __repr__(self) -> str:
        return f"LabelFilter({list(self.patterns)!r})"


EVERY_LABEL = LabelFilter()
