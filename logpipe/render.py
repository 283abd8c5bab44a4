"""Documents as printed lines, like `docker compose logs`: `host/service | message`.

The prefix is padded to the widest one printed so far, so messages line up; a message of
several lines (a stack trace) gets the prefix on each of them. With `--timestamps` the
document's `@timestamp` follows the bar. On a terminal, control characters in messages
are shown as `^[`-style text, so a log line cannot move the cursor or change colours;
piped output keeps them as they were logged. The prefix shows them as text always (a
service name is a label anyone who starts a container chooses, and a newline in it
would break the line in two). `--json` prints each document's JSON text
as it came, one a line (NDJSON).
"""

from __future__ import annotations

from dataclasses import dataclass

from logpipe.document import Document
from logpipe.style import Style, level_color, paint, service_color

BAR = " | "
EVENT_COLOR = "1"  # lifecycle events and gaps in bold: they stand out among the lines
# C0 controls but tab and newline, DEL, and C1 controls, shown in caret or \x notation.
VISIBLE = {c: f"^{chr(c + 64)}" for c in range(32) if c not in (9, 10)}
VISIBLE |= {127: "^?"} | {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)}
# The prefix's names: every control character, tab and newline too.
VISIBLE_IN_PREFIX = VISIBLE | {9: "^I", 10: "^J"}


def prefix_of(doc: Document) -> str:
    """`host/service`, or what of it the document has, control characters shown as text."""
    service = doc.service or "-"
    prefix = f"{doc.host}/{service}" if doc.host else service
    return prefix.translate(VISIBLE_IN_PREFIX)


def message_lines(message: str) -> list[str]:
    """The message's lines, without the newline that ends it or each line's `\\r`."""
    text = message.removesuffix("\n")
    return [line.removesuffix("\r") for line in text.split("\n")]


@dataclass
class Renderer:
    """Turns documents into the text to print, remembering the widest prefix."""

    style: Style
    json: bool = False
    width: int = 0

    def fit(self, docs: list[Document]) -> None:
        """Widen the prefix column for all of `docs` before any of them is printed."""
        self.width = max([self.width, *(len(prefix_of(doc)) for doc in docs)])

    def render(self, doc: Document) -> str:
        """The printed form of one document, ending in a newline."""
        if self.json:
            return doc.text + "\n"
        prefix = prefix_of(doc)
        self.width = max(self.width, len(prefix))
        head = prefix.ljust(self.width) + BAR
        if self.style.color:
            head = paint(head, service_color(doc.service))
        return "".join(f"{head}{body}\n" for body in self.bodies(doc))

    def bodies(self, doc: Document) -> list[str]:
        """What follows the bar on each printed line of the document."""
        lines = message_lines(doc.message)
        if self.style.visible_controls:
            lines = [line.translate(VISIBLE) for line in lines]
        if self.style.color:
            code = EVENT_COLOR if doc.event else level_color(doc.level)
            lines = [paint(line, code) for line in lines]
        if not self.style.timestamps:
            return lines
        stamp = doc.timestamp or "-"
        indent = " " * len(stamp)
        return [f"{stamp if i == 0 else indent} {line}" for i, line in enumerate(lines)]
