"""Every line of the committed corpus parses with the parser, level and flags annotated."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from collector.parse import parse
from collector.parse.ansi import strip_ansi
from collector.wire import ParserName

CORPUS = Path(__file__).parents[1] / "corpus"


@dataclass(frozen=True)
class Case:
    """One corpus line with what it must parse to."""

    file: str
    number: int
    line: str
    hint: ParserName
    parser: str
    level: str | None
    flags: list[str]


def read_records(name: str) -> list[str]:
    """The records of a corpus file: one per line, JSON-decoded for .jsonl files."""
    lines = (CORPUS / name).read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", f"{name} must end with a newline"
    if name.endswith(".jsonl"):
        return [cast(str, json.loads(line)) for line in lines[:-1]]
    return lines[:-1]


def per_line(value: Any, count: int, what: str) -> list[Any]:
    """An annotation spread over ``count`` lines, checking a list has one per line."""
    if isinstance(value, list) and (what != "flags" or (value and isinstance(value[0], list))):
        assert len(value) == count, f"{what}: {len(value)} values for {count} lines"
        return value
    return [value] * count


def load_cases() -> list[Case]:
    """All annotated corpus lines."""
    entries = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
    cases = []
    for entry in entries:
        records = read_records(entry["file"])
        n = len(records)
        parsers = per_line(entry["parser"], n, "parser")
        levels = per_line(entry["level"], n, "level")
        flags = per_line(entry.get("flags", []), n, "flags")
        hint = entry.get("hint", "auto")
        for i, line in enumerate(records):
            cases.append(Case(entry["file"], i + 1, line, hint, parsers[i], levels[i], flags[i]))
    return cases


CASES = load_cases()


def test_every_corpus_file_is_annotated() -> None:
    """No corpus file is left out of expected.yaml."""
    annotated = {case.file for case in CASES}
    files = {p.name for p in CORPUS.iterdir() if p.suffix in (".log", ".jsonl")}
    assert files == annotated


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file}:{c.number}:{c.hint}" for c in CASES])
def test_corpus_line(case: Case) -> None:
    """The line parses to its annotated parser, level and flags, and keeps its text."""
    parsed = parse(case.line, case.hint)
    assert (parsed.parser, parsed.level, parsed.flags) == (case.parser, case.level, case.flags)
    if parsed.parser not in ("json", "logfmt"):
        assert parsed.message == strip_ansi(case.line)
    assert "\x1b" not in parsed.message
