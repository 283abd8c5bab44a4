"""Micro-benchmark of collector.rules.redact: microseconds per line, with and without secrets.

Not a test: it asserts nothing and times one run on this machine, in CPU time (process
time), so that other load on a shared machine distorts it less. Rows: no rules; every
built-in over the test corpus (typical log lines, almost none holding a secret); every
built-in plus 10 user rules over the same lines; a 16 KiB JSON line with nothing to mask;
short strings such as parsed fields; lines holding one secret each (one row per
built-in); and `parse` over the corpus for scale. Usage:
    python -m bench.redact [--seconds 0.3]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from bench import summary
from collector.parse import parse
from collector.rules.redact import BUILTIN_NAMES, Redactor, RedactSpec

CORPUS = Path(__file__).parents[1] / "tests" / "corpus"
WITH_SECRET = {
    "card": "2024-01-02T10:00:00Z INFO payments charge ok card=4111111111111111 amount=12.50",
    "bearer": '10.0.0.7 - - [02/Jan/2024:10:00:00 +0000] "GET /api/me HTTP/1.1" 200 512 "-" '
    '"curl/8.5" Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig',
    "api_key": 'level=info msg="calling upstream" url=https://api.example.com/v1/items '
    "api_key=9f8e7d6c5b4a3210 duration_ms=42",
    "url_password": "2024-01-02 10:00:00,123 INFO sqlalchemy.engine connecting to "
    "postgresql://app:s3cr3t@db.internal:5432/orders",
    "password_pair": '{"level":"warn","ts":1704189600.123,"msg":"login failed","user":"bob",'
    '"password":"hunter2","ip":"10.1.2.3"}',
    "email": "2024-01-02T10:00:00Z INFO mailer sent welcome mail to alice.smith@example.com",
}
# Strings parsed out of lines, redacted one by one after the line itself.
FIELDS = [
    "info",
    "GET",
    "/api/v1/orders/123",
    "Mozilla/5.0 (X11; Linux x86_64)",
    "main.go:42",
    "ok",
]
# Users' rules of the kinds people write: ids, session cookies, internal host names...
CUSTOM = [
    RedactSpec(name=f"rule{i}", pattern=pattern)
    for i, pattern in enumerate(
        [
            r"\b\d{3}-\d{2}-\d{4}\b",
            r"session=(?P<secret>[0-9a-f]{32})",
            r"\bIBAN[: ]?[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b",
            r"(?i)x-internal-signature: \S+",
            r"\bcust_[0-9]{8}\b",
            r"(?i)\bssn[=:]\s*\S+",
            r"\b[a-z]+\.corp\.internal\b",
            r"phone=\+?[0-9 ]{8,}",
            r"(?i)\bpin[=:]\d{4,6}\b",
            r"\bacct-[A-Z0-9]{12}\b",
        ]
    )
]


def corpus_lines() -> list[str]:
    """Every line of the test corpus (the records of .jsonl files)."""
    lines: list[str] = []
    for path in sorted(CORPUS.glob("*.log")) + sorted(CORPUS.glob("*.jsonl")):
        text = path.read_text(encoding="utf-8").split("\n")[:-1]
        lines += [json.loads(line) for line in text] if path.suffix == ".jsonl" else text
    return lines


def per_line_us(work: Callable[[str], object], lines: list[str], seconds: float) -> float:
    """Best-of-5 mean CPU time of `work` per line, in microseconds."""
    rounds = 1
    while True:  # grow the round count until one batch takes a measurable time
        elapsed = _timed(work, lines, rounds)
        if elapsed >= seconds / 5:
            break
        rounds *= 2
    best = min([elapsed] + [_timed(work, lines, rounds) for _ in range(4)])
    return best / (rounds * len(lines)) * 1e6


def _timed(work: Callable[[str], object], lines: list[str], rounds: int) -> float:
    start = time.process_time()
    for _ in range(rounds):
        for line in lines:
            work(line)
    return time.process_time() - start


def main() -> None:
    """Print one Markdown table: a row per case, µs per line."""
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--seconds", type=float, default=0.3, help="time budget per row")
    args = parser.parse_args()
    lines = corpus_lines()
    builtins = Redactor(BUILTIN_NAMES, [])
    masked = sum(1 for line in lines if builtins.redact(line)[1])
    big = json.dumps({"msg": "x" * 16000, "level": "info", "took_ms": 12.5})
    rows: list[tuple[str, int, Callable[[str], object], list[str]]] = [
        ("no rules", len(lines), Redactor([], []).redact, lines),
        (f"built-ins, corpus ({masked} masked)", len(lines), builtins.redact, lines),
        (
            "built-ins + 10 user rules, corpus",
            len(lines),
            Redactor(BUILTIN_NAMES, CUSTOM).redact,
            lines,
        ),
        ("built-ins, 16 KiB JSON line, nothing to mask", 1, builtins.redact, [big]),
        ("built-ins, short strings (parsed fields)", len(FIELDS), builtins.redact, FIELDS),
    ]
    rows += [
        (f"built-ins, one {name} to mask", 1, builtins.redact, [line])
        for name, line in WITH_SECRET.items()
    ]
    rows.append(("(parse, corpus, for scale)", len(lines), parse, lines))
    print("| case | lines | µs per line |\n| --- | ---: | ---: |")
    for label, count, work, sample in rows:
        print(f"| {label} | {count} | {per_line_us(work, sample, args.seconds):.2f} |")


if __name__ == "__main__":
    main()
