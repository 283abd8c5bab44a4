"""What numbering looks at of a read's first lines before it numbers them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shipper.cursor import Position
from shipper.demux import STREAM_NAMES
from shipper.follow.numbering import firsts
from shipper.follow.reread import late_start
from shipper.rejoin import Line

LINES = st.lists(
    st.builds(Line, st.sampled_from([1, 2]), st.integers(0, 20), st.just(b"x")), max_size=8
)
EXPECT = st.dictionaries(
    st.sampled_from(["stdout", "stderr"]), st.builds(Position, st.integers(0, 20), st.just(1))
)


@given(LINES, EXPECT)
def test_each_streams_first_line_tells_a_late_start_as_all_lines_do(
    lines: list[Line], expect: dict[str, Position]
) -> None:
    """Only each stream's first line is kept, in the order the lines come, and a late
    start is told of them as of every line of the read."""
    every = [(STREAM_NAMES[line.stream], line.ts) for line in lines]
    kept = firsts(lines)
    assert kept == [pair for n, pair in enumerate(every) if pair[0] not in dict(every[:n])]
    assert late_start(kept, expect) == late_start(every, expect)
