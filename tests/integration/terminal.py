"""A real terminal for tests: a tmux session of its own, keys sent to it, and its screen
read back with colours (`capture-pane -e`) as the cells a person sees.

Each test's tmux server has a socket of its own (`tmux -L`), so nothing touches anyone
else's sessions; `close` ends that server only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field

import pytest

from tests.conftest import wait_until

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def need_tmux() -> str:
    """tmux's path; the test is skipped, saying why, where it is not installed."""
    path = shutil.which("tmux")
    if path is None:
        pytest.skip("tmux is not installed (`apt-get install tmux`, or run .ci/install)")
    return path


@dataclass(frozen=True)
class Cell:
    """One character on the screen and how it is drawn."""

    char: str
    fg: str | None  # the SGR foreground code ("31", "96"), None for the terminal's own
    bold: bool
    dim: bool


@dataclass
class Terminal:
    """A tmux session running a shell, `width` x `height`."""

    env: dict[str, str]
    width: int = 200
    height: int = 50
    socket: str = field(default_factory=lambda: "logpipe-test-" + uuid.uuid4().hex[:8])

    def tmux(self, *args: str) -> str:
        """Run a tmux command against this session's server; its stdout."""
        proc = subprocess.run(
            [need_tmux(), "-L", self.socket, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return proc.stdout

    def open(self) -> Terminal:
        """Start the session with a plain bash and a `$ ` prompt."""
        size = ["-x", str(self.width), "-y", str(self.height)]
        self.tmux("new-session", "-d", "-s", "t", *size, "bash --norc --noprofile")
        self.type("PS1='$ '; clear")
        wait_until(lambda: self.text().strip() == "$", 10)
        return self

    def type(self, line: str) -> None:
        """Type a line and press Enter."""
        self.tmux("send-keys", "-t", "t", "-l", line)
        self.tmux("send-keys", "-t", "t", "Enter")

    def key(self, name: str) -> None:
        """Press a key, e.g. `C-c`."""
        self.tmux("send-keys", "-t", "t", name)

    def screen(self) -> str:
        """The screen with its colour sequences (as tmux redraws them)."""
        return self.tmux("capture-pane", "-p", "-e", "-J", "-t", "t")

    def text(self) -> str:
        """The screen's text without colours."""
        return SGR.sub("", self.screen())

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """Wait until `text` is on the screen; the screen's text."""

        def shown() -> str:
            screen = self.text()
            return screen if text in screen else ""

        return str(wait_until(shown, timeout))

    def close(self) -> None:
        """End this session's tmux server."""
        subprocess.run(
            [need_tmux(), "-L", self.socket, "kill-server"], capture_output=True, check=False
        )


def cells(line: str) -> list[Cell]:
    """The characters of one captured line, each with its colour and weight."""
    found: list[Cell] = []
    fg: str | None = None
    bold = dim = False
    pos = 0
    for match in SGR.finditer(line + "\x1b[m"):
        found += [Cell(ch, fg, bold, dim) for ch in line[pos : match.start()]]
        pos = match.end()
        fg, bold, dim = apply_sgr(match.group(1), fg, bold, dim)
    return found


def apply_sgr(params: str, fg: str | None, bold: bool, dim: bool) -> tuple[str | None, bool, bool]:
    """The drawing state after one SGR sequence."""
    codes = [int(c) if c else 0 for c in params.split(";")]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            fg, bold, dim = None, False, False
        elif code == 1:
            bold = True
        elif code == 2:
            dim = True
        elif code == 22:
            bold = dim = False
        elif 30 <= code <= 37 or 90 <= code <= 97:
            fg = str(code)
        elif code == 39:
            fg = None
        elif code in (38, 48):  # 38;5;n or 38;2;r;g;b: skip the colour's parts
            i += 2 if codes[i + 1 : i + 2] == [5] else 4
        i += 1
    return fg, bold, dim


def styles(line: str, text: str) -> set[tuple[str | None, bool, bool]]:
    """How the characters of `text`, where it first occurs on `line`, are drawn."""
    shown = cells(line)
    plain = "".join(c.char for c in shown)
    start = plain.index(text)
    return {(c.fg, c.bold, c.dim) for c in shown[start : start + len(text)]}


def line_with(screen: str, text: str) -> str:
    """The captured line (with colours) whose text holds `text`."""
    for line in screen.splitlines():
        if text in SGR.sub("", line):
            return line
    raise AssertionError(f"{text!r} is not on the screen:\n{SGR.sub('', screen)}")
