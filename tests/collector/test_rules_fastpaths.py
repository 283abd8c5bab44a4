"""The rules' fast paths give exactly what the plain ways of doing the same work give."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.rules.dissect import Dissect
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


def reference_dissect(pattern: str) -> re.Pattern[str]:
    """Dissect as one regular expression of atomic groups (the cut, written another way)."""
    cut = Dissect(pattern)
    out = [re.escape(cut.prefix)]
    for key in cut.keys:
        opening = f"(?P<{key.name}>" if key.name is not None else "(?:"
        if not key.delimiter:
            out.append(opening + ".*)")
            continue
        literal = re.escape(key.delimiter)
        out.append(f"(?>{opening}.*?)" + (f"(?:{literal})+)" if key.padded else f"{literal})"))
    return re.compile("".join(out), re.DOTALL)


LITERALS = st.text(alphabet=' -[]:"|x0\n', min_size=1, max_size=3)


@st.composite
def dissect_cases(draw: st.DrawFn) -> tuple[str, str]:
    """A dissect pattern, and a text of its literals and a few other characters."""
    parts = [draw(st.sampled_from(["", "<", "- "]))]
    for n in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["k", "?k", "k->", ""]))
        parts.append("%{" + kind.replace("k", f"k{n}") + "}")
        parts.append(draw(LITERALS))
    if draw(st.booleans()):
        parts[-1] = ""  # the last key takes the rest
    bits = st.sampled_from([*parts[::2], "a", "b c", "-", " ", "\n", "é"])
    if draw(st.booleans()):  # any text
        return "".join(parts), "".join(draw(st.lists(bits, max_size=14)))
    # A text of the pattern's shape, values made of the same bits, literals repeated.
    text = [parts[0]]
    for literal in parts[2::2]:
        text.append("".join(draw(st.lists(bits, max_size=3))))
        text.append(literal * draw(st.integers(1, 3)))
    return "".join(parts), "".join(text) + draw(st.sampled_from(["", "x", parts[-1]]))


@settings(max_examples=500, deadline=None)
@given(dissect_cases())
def test_dissect_cuts_as_atomic_groups_do(case: tuple[str, str]) -> None:
    """The str.find chain cuts every text exactly as the atomic-group expression does."""
    pattern, text = case
    found = reference_dissect(pattern).match(text)
    assert Dissect(pattern)(text) == (None if found is None else found.groupdict())
