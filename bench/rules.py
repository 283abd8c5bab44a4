"""What parsing rules cost the collector per record: CPU µs per line with 0, 1 and 20 rules.

Each variant decodes the same batch of corpus lines (collector/batch.py: validate, parse,
rules, enrich) and encodes its documents for ``_bulk`` (collector/bulk.py): the
collector's work per record short of HTTP and gzip. The access lines carry the time
Docker got them (to the second), as a container's log does. CPU time (process time), best of 15,
the variants interleaved so that load from others hits all alike; that round is repeated
(``--rounds``, 5 by default) and each variant's ratio to ``none`` of the same round is
reported as the median and the range over the rounds, with the load average.

Variants:
- ``none``: no rules (the collector as before rules existed);
- ``1 rule``: the access-log rule of docs/examples/rules.yaml (typed status, bytes and
  client, the line's own time), tried on every line, fitting the access lines;
- ``1 rule, bytes a double``: that rule with its ``bytes`` a double (as the docs' example
  rule types its request time): what a double field costs beside a long;
- ``2 rules for the container``: a dissect rule for the corpus' Spring Boot lines (typed
  pid, the line's own time), then that access rule, both for service ``web``: each
  line tries the first and, when it does not fit, the second;
- ``20 rules, none for it``: 20 rules for other services: what having rules costs a
  container none of them is for;
- ``20 rules, 1 per service``: 19 rules for other services and that rule: the usual
  shape of a config, where the first (and only) rule matching the container applies;
- ``20 rules, all match``: all 20 match the container and 19 patterns (RE2) are tried
  and fail on every line before the last fits: the worst case of a config;
- ``redaction``: no rules, four built-in redactions on every line.

Every variant decodes the same batch (the same lines, one batch of ``--lines``), so
that the ratios compare the same work with and without rules. Then the example rule of
docs/examples/rules.yaml (``nginx_timed``: the access rule with a ``"%{forwarded}"`` and
a double ``request_time`` at the end) is timed on a batch of such lines alone (the
corpus' access lines with ``"-"`` and a request time appended), against no rules on the
same batch: what a line that rule shapes costs.

Usage:
    python -m bench.rules [--lines 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from collections.abc import Callable

import orjson

from bench import corpus, summary
from collector import native
from collector.batch import decode
from collector.bulk import encode_all
from collector.enrich import Context
from collector.rules.config import ParseRule
from collector.rules.engine import Engine, ParsingRules
from collector.rules.masking import RedactConfig

DAY_NS = 1795737600 * 10**9  # 2026-11-27T00:00:00Z
STEP_NS = 1_000_000  # a busy container: 1000 lines a second
_ACCESS_TIME = re.compile(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\]")
ACCESS_DISSECT = (
    '%{client} - %{user} [%{time}] "%{method} %{path} %{protocol}" %{status} %{bytes} '
    '"%{referrer}" "%{agent}"'
)
ACCESS_TIMESTAMP = {"field": "time", "format": "%d/%b/%Y:%H:%M:%S %z"}
# Rules as a user writes them in YAML: checked by ParseRule when an engine is made.
Rule = dict[str, object]
ACCESS: Rule = {
    "name": "access",
    "match": {"service": "web"},
    "dissect": ACCESS_DISSECT,
    "fields": {"client": "ip", "status": "long", "bytes": "long"},
    "timestamp": ACCESS_TIMESTAMP,
}


# The access rule with a double field (as docs/rules.md's example types `request_time`).
ACCESS_DOUBLE: Rule = {**ACCESS, "fields": {"client": "ip", "status": "long", "bytes": "double"}}


# docs/examples/rules.yaml's nginx_timed rule.
EXAMPLE: Rule = {
    "name": "nginx_timed",
    "match": {"service": "web"},
    "dissect": ACCESS_DISSECT + ' "%{forwarded}" %{request_time}',
    "fields": {"client": "ip", "status": "long", "bytes": "long", "request_time": "double"},
    "timestamp": ACCESS_TIMESTAMP,
}


# A rule for the corpus' other line shape of service web (Spring Boot's), tried before
# ACCESS: its first literal (" ") is in every line, its pattern fits none of the others.
SPRING: Rule = {
    "name": "spring",
    "match": {"service": "web"},
    "dissect": "%{time} %{severity} %{pid} --- [%{thread}] %{logger} : %{msg}",
    "fields": {"pid": "long"},
    "timestamp": {"field": "time", "format": "rfc3339"},
}


def _other(n: int, service: str) -> Rule:
    return {
        "name": f"other_{n}",
        "match": {"service": service},
        "regex": rf"^job=(?P<job_{n}>\d+) took (?P<ms_{n}>\d+)ms",
        "fields": {f"job_{n}": "long", f"ms_{n}": "long"},
    }


def engines() -> dict[str, Engine]:
    """The variants, by name."""

    def make(rules: list[Rule], redact: RedactConfig | None = None) -> Engine:
        return Engine([ParseRule.model_validate(r) for r in rules], "1d", redact)

    return {
        "none": make([]),
        "1 rule": make([ACCESS]),
        "1 rule, bytes a double": make([ACCESS_DOUBLE]),
        "2 rules for the container": make([SPRING, ACCESS]),
        "20 rules, none for it": make([_other(n, f"svc{n}") for n in range(20)]),
        "20 rules, 1 per service": make([*(_other(n, f"svc{n}") for n in range(19)), ACCESS]),
        "20 rules, all match": make([*(_other(n, "web") for n in range(19)), ACCESS]),
        "redaction (4 built-ins)": make(
            [], RedactConfig(builtins=["bearer", "api_key", "url_password", "password_pair"])
        ),
    }


def batch(count: int, timed: bool = False) -> bytes:
    """One wire batch: a container of service `web` printing `count` corpus lines (with
    `timed`: only its access lines, each with `"-"` and a request time appended)."""
    source = {
        "kind": "source",
        "src": 0,
        "host": "bench",
        "container_id": "b" * 64,
        "container_name": "web-1",
        "image": "nginx:1.27",
        "labels": {"com.docker.compose.service": "web"},
    }
    lines = [orjson.dumps(source)]
    texts = corpus.lines(count)
    if timed:
        access = [t for t in corpus.lines(count * 8) if _ACCESS_TIME.search(t)][:count]
        texts = [f'{t} "-" 0.{n % 1000:03d}' for n, t in enumerate(access)]
    for i, text in enumerate(texts):
        ts = DAY_NS + i * STEP_NS
        # An access line's own time is when Docker got it (to the second), as in real logs;
        # the corpus dates them at random in the day.
        text = _ACCESS_TIME.sub(
            time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", time.gmtime(ts // 10**9)), text
        )
        line = {"kind": "log", "src": 0, "stream": "stdout", "ts": ts, "message": text}
        lines.append(orjson.dumps(line))
    return b"\n".join(lines) + b"\n"


def _work(body: bytes, engine: Engine) -> Callable[[], object]:
    ctx = Context(parsing=ParsingRules(engine))

    def run() -> object:
        return encode_all(decode(body, ctx, "2026-11-27T12:00:00.000Z").docs)

    return run


def _once(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def measure(count: int, tries: int = 15, example: bool = False) -> dict[str, float]:
    """CPU µs per line of each variant, best of `tries`, interleaved (with `example`: no
    rules and the docs' example rule, on the batch of timed access lines)."""
    if example:
        body = batch(count, timed=True)
        rules = {"none": [], "example rule": [EXAMPLE]}
        chosen = {
            name: Engine([ParseRule.model_validate(r) for r in rs], "1d")
            for name, rs in rules.items()
        }
    else:
        body = batch(count)
        chosen = engines()
    works = {name: _work(body, engine) for name, engine in chosen.items()}
    for work in works.values():
        work()  # warm the caches (routes, rule choices, strftime) as a running collector has
    best = dict.fromkeys(works, float("inf"))
    for _ in range(tries):
        for name, work in works.items():
            best[name] = min(best[name], _once(work))
    return {name: seconds / count * 1e6 for name, seconds in best.items()}


def main() -> None:
    """Print µs per line of each variant and its ratio to no rules (median of rounds)."""
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--lines", type=int, default=2000, help="lines in the batch")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of best-of-15")
    args = parser.parse_args()
    load = os.getloadavg()
    rounds = [measure(args.lines) for _ in range(max(1, args.rounds))]
    ratios = {name: [r[name] / r["none"] for r in rounds] for name in rounds[0]}
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (at start), {len(rounds)} rounds"
    )
    # With the compiled path installed (LOGPIPE_NATIVE=0: Python), it makes the lines of
    # a container no rule is for, and applies a container's written-out dissect rules
    # itself (one or several, in order); other rules, and redaction, take the Python path.
    print(f"hot path: {native.describe()}")
    print(f"{'variant':<28} {'CPU-µs/line':>12} {'vs none':>8} {'range':>11}")
    for name, values in ratios.items():
        us = statistics.median(r[name] for r in rounds)
        spread = f"{min(values):.2f}-{max(values):.2f}"
        print(f"{name:<28} {us:>12.2f} {statistics.median(values):>8.2f} {spread:>11}")
    ratio = statistics.median(ratios["20 rules, 1 per service"])
    print(f"20 rules (1 per service) vs none: {ratio:.2f} (target: at most 1.25)")
    timed = [measure(args.lines, example=True) for _ in range(max(1, args.rounds))]
    example = {name: statistics.median(r[name] for r in timed) for name in timed[0]}
    print(
        f"docs' example rule (nginx_timed, a double) on its access lines alone: "
        f"{example['example rule']:.2f} CPU-µs/line, {example['none']:.2f} without rules"
    )


if __name__ == "__main__":
    main()
