"""Which container labels a document carries in `container.labels`.

Every key of `container.labels` (a `flattened` field) is indexed twice, keyed and plain,
with doc values, in every document of the container: labels nobody filters logs on are
what the cluster pays for without need. `LOGPIPE_DOCUMENT_LABELS` chooses which labels
documents carry; Compose's bookkeeping labels stay out unless a pattern names one.

Imports nothing of the collector but collector/keys.py, so that the config can check
the patterns at start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from collector.keys import ALL, RESERVED, KeyFilter

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


class LabelFilter(KeyFilter):
    """The labels of a container that its documents carry: the keys the patterns choose
    (KeyFilter), but Compose's bookkeeping labels only where an include pattern is their
    exact key."""

    __slots__ = ()
    noun = "label"

    def __init__(self, patterns: Iterable[str] = ALL) -> None:
        super().__init__(patterns)
        self.every = False  # the bookkeeping labels stay out even of `*`

    def included(self, key: str) -> bool:
        """Whether an include pattern matches `key` (a bookkeeping label: is it)."""
        if key in COMPOSE_BOOKKEEPING_LABELS:
            return key in self.includes
        return super().included(key)

    def __call__(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels documents carry, in the container's order; a NUL in a key (which a
        `flattened` field keeps for itself: Elasticsearch would refuse every document of
        the container) as U+FFFD, the first of two keys that are then the same kept."""
        kept = {k: v for k, v in labels.items() if self.keeps(k)}
        if any(RESERVED in k for k in kept):
            fixed: dict[str, str] = {}
            for key, value in kept.items():
                fixed.setdefault(key.replace(RESERVED, "\ufffd"), value)
            return fixed
        return kept


EVERY_LABEL = LabelFilter()
