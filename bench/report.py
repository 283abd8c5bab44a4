"""Print a result table and append it to docs/BENCHMARKS.md with the commit and machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import services

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "docs" / "BENCHMARKS.md"

Row = list[str]


def commit() -> str:
    """The short commit measured; '+dirty' when the work tree was and had changes."""
    head = services.measured_commit()[:7]
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "collector", "shipper"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    worktree = os.environ.get("LOGPIPE_BENCH_CODE", "head") == "worktree"
    return head + ("+dirty" if dirty and worktree else "")


def machine() -> str:
    """nproc, memory, CPU model and the load average when the run started."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem_kb / 1024 / 1024:.1f} GiB, "
        f"Python {platform.python_version()}, load average {load}"
    )


def table(header: Row, rows: list[Row]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def publish(
    title: str,
    header: Row,
    rows: list[Row],
    notes: list[str],
    append: bool,
    section: str | None = None,
    measured: str | None = None,
) -> None:
    """Print the table; append it (with commit, machine, command, notes) to BENCHMARKS.md:
    at the end (under Runs), or at the end of its own `## section`, made before Runs.

    `measured` is the commit as `commit()` named it when the run began (a run that builds
    its documents in process measures the code of that moment, not of its end)."""
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    module = sys.argv[0].removeprefix(str(ROOT) + "/").removesuffix(".py").replace("/", ".")
    command = " ".join(["python -m", module, *sys.argv[1:]])
    text = "\n".join(
        [
            f"### {title} ({started})",
            "",
            f"commit `{measured or commit()}`; {machine()}",
            f"command: `{command}`",
            "",
            table(header, rows),
            "",
            *[f"- {note}" for note in notes],
            "",
        ]
    )
    print(text)
    if append and section:
        RESULTS.write_text(into_section(_existing(), section, text), encoding="utf-8")
    elif append:
        RESULTS.parent.mkdir(exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write("\n" + text)


def _existing() -> str:
    return RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmarks\n"


def into_section(doc: str, section: str, text: str) -> str:
    """`doc` with `text` at the end of its `## section`; a missing section is made just
    before `## Runs` (or at the end), so the runs of other benchmarks stay apart."""
    lines = doc.splitlines(keepends=True)
    heading = f"## {section}\n"
    if heading in lines:
        start = lines.index(heading) + 1
        ends = [i for i in range(start, len(lines)) if lines[i].startswith("## ")]
        at, new = (ends[0] if ends else len(lines)), [text]
    else:
        runs = [i for i, line in enumerate(lines) if line == "## Runs\n"]
        at, new = (runs[0] if runs else len(lines)), [heading, "\n", text]
    if at and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    if at and lines[at - 1] != "\n":
        new.insert(0, "\n")
    block = "".join(new)
    if at < len(lines) and not block.endswith("\n\n"):
        block += "\n"
    return "".join(lines[:at]) + block + "".join(lines[at:])


def fmt(value: float, digits: int = 0) -> str:
    """A number with thousands separators."""
    return f"{value:,.{digits}f}"
