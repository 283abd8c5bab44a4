"""The rules' fast paths give exactly what the plain ways of doing the same work give."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.rules.masking import Masking
from collector.rules.redact import BUILTIN_NAMES, Redactor, RedactSpec

CUSTOM = [RedactSpec(name="session", pattern=r"session=(?P<secret>[0-9a-f]+)")]
PIECES = st.sampled_from(
    [
        "password=hunter2",
        "a@b.io",
        "4111 1111 1111 1111",
        "session=ab12",
        "Bearer abcdefgh1",
        "redis://u:pw@h",
        "info",
        "GET",
        " ",
        "x" * 130,
    ]
)
TEXTS = st.one_of(st.text(max_size=40), st.lists(PIECES, max_size=4).map("".join))


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXTS, max_size=12))
def test_masking_remembering_clean_texts_masks_and_counts_as_the_redactor(
    texts: list[str],
) -> None:
    """A Masking that skips texts it found clean masks and counts each as a fresh search."""
    masking = Masking(BUILTIN_NAMES, CUSTOM)
    reference = Redactor(BUILTIN_NAMES, CUSTOM)
    for text in [*texts, *texts]:  # each seen again, once remembered
        counts: dict[str, int] = {}
        masked, found = reference.redact(text)
        assert masking.text(text, counts) == masked
        assert counts == found
