"""A realistic log corpus for the benchmarks: the shapes containers really print.

Deterministic for a seed. The mix (by line): JSON of several loggers' shapes, access
logs, plain text with a level, logfmt, and Java stack traces (a header line, then
``\\tat`` frames, as a container prints them: one Docker line each). Every line is
100-500 bytes of ASCII and ends without a newline. Marker lines carry a token the
latency probe searches for.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

MIN_BYTES, MAX_BYTES = 100, 500
MARKER = "lpmark"

_WORDS = [
    "order",
    "payment",
    "cart",
    "session",
    "user",
    "cache",
    "request",
    "upstream",
    "worker",
    "queue",
    "retry",
    "timeout",
    "connection",
    "pool",
    "database",
    "index",
    "shard",
    "replica",
    "token",
    "account",
    "invoice",
    "shipment",
    "stock",
    "price",
    "customer",
    "report",
    "export",
    "import",
    "batch",
    "job",
    "schedule",
    "lock",
    "lease",
    "leader",
    "follower",
]
_LEVELS_PLAIN = ["INFO"] * 6 + ["DEBUG"] * 2 + ["WARN", "ERROR"]
_LEVELS_JSON = ["info"] * 6 + ["debug"] * 2 + ["warn", "error"]
_PATHS = ["/", "/api/v1/orders", "/api/v1/cart/items", "/static/app.js", "/login", "/healthz"]
_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "curl/8.5.0",
    "Go-http-client/1.1",
]
_FRAMES = [
    "com.acme.inventory.StockService.reserve(StockService.java:88)",
    "com.acme.inventory.web.ReservationController.create(ReservationController.java:41)",
    "org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:1014)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1144)",
]


def _words(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choice(_WORDS) for _ in range(n))


def _ts(rnd: random.Random) -> str:
    return f"2026-11-27T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}"


def _json_line(rnd: random.Random, pad: int) -> str:
    level = rnd.choice(_LEVELS_JSON)
    msg = _words(rnd, rnd.randrange(4, 12) + pad)
    shape = rnd.randrange(3)
    if shape == 0:  # zap
        return (
            f'{{"level":"{level}","ts":{1795000000 + rnd.random():.6f},'
            f'"caller":"server/handler.go:{rnd.randrange(900)}","msg":"{msg}",'
            f'"request_id":"{rnd.getrandbits(64):016x}","latency_ms":{rnd.randrange(2000)}}}'
        )
    if shape == 1:  # logrus / structlog
        return (
            f'{{"time":"{_ts(rnd)}Z","level":"{level}","msg":"{msg}",'
            f'"component":"{rnd.choice(_WORDS)}","user_id":{rnd.randrange(100000)}}}'
        )
    return (  # ECS-style
        f'{{"@timestamp":"{_ts(rnd)}.{rnd.randrange(1000):03d}Z","log.level":"{level}",'
        f'"message":"{msg}","service.name":"{rnd.choice(_WORDS)}",'
        f'"trace.id":"{rnd.getrandbits(128):032x}"}}'
    )


def _access_line(rnd: random.Random, pad: int) -> str:
    ip = f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
    path = rnd.choice(_PATHS)
    if pad or rnd.random() < 0.5:
        path += f"?id={rnd.randrange(10**6)}&q=" + "+".join(rnd.choice(_WORDS) for _ in range(pad))
    status = rnd.choice([200] * 8 + [201, 304, 404, 500])
    return (
        f"{ip} - - [27/Nov/2026:{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:"
        f'{rnd.randrange(60):02d} +0000] "{rnd.choice(["GET"] * 4 + ["POST"])} {path} HTTP/1.1" '
        f'{status} {rnd.randrange(50, 90000)} "-" "{rnd.choice(_AGENTS)}"'
    )


def _plain_line(rnd: random.Random, pad: int) -> str:
    return (
        f"{_ts(rnd).replace('T', ' ')}.{rnd.randrange(1000):03d} {rnd.choice(_LEVELS_PLAIN)} "
        f"[{rnd.choice(_WORDS)}-{rnd.randrange(16)}] {_words(rnd, rnd.randrange(8, 16) + pad)}"
    )


def _logfmt_line(rnd: random.Random, pad: int) -> str:
    return (
        f"level={rnd.choice(_LEVELS_JSON)} ts={_ts(rnd)}Z caller=main.go:{rnd.randrange(300)} "
        f'msg="{_words(rnd, rnd.randrange(3, 8) + pad)}" duration_ms={rnd.randrange(5000)} '
        f"{rnd.choice(_WORDS)}={rnd.choice(_WORDS)}"
    )


def _stack_trace(rnd: random.Random) -> list[str]:
    head = (
        f"{_ts(rnd)}.{rnd.randrange(1000):03d}Z ERROR 1 --- [nio-8080-exec-{rnd.randrange(9)}] "
        f"c.a.i.StockService : {_words(rnd, 6)} failed; java.lang.IllegalStateException: "
        f"stock below zero for sku {rnd.randrange(10000)}"
    )
    frames = [f"\tat {rnd.choice(_FRAMES)}" for _ in range(rnd.randrange(3, 8))]
    return [head, *frames]


_KINDS: list[tuple[float, Callable[[random.Random, int], str]]] = [
    (0.35, _json_line),
    (0.30, _access_line),
    (0.22, _plain_line),
    (0.08, _logfmt_line),
]


def _pad(rnd: random.Random) -> int:
    """Extra words for a line: most lines stay short, one in six grows long."""
    return rnd.randrange(0, 8) if rnd.random() < 0.83 else rnd.randrange(20, 50)


def _make(make: Callable[[random.Random, int], str], rnd: random.Random) -> str:
    """A line of MIN_BYTES..MAX_BYTES: padded inside its message, so it still parses."""
    pad = _pad(rnd)
    state = rnd.getstate()
    line = make(rnd, pad)
    while len(line) < MIN_BYTES or len(line) > MAX_BYTES:
        pad = pad + 4 if len(line) < MIN_BYTES else pad // 2
        rnd.setstate(state)
        line = make(rnd, pad)
    return line


def _fit(line: str, rnd: random.Random) -> str:
    """Pad a plain line with words (or cut it) into MIN_BYTES..MAX_BYTES."""
    while len(line) < MIN_BYTES:
        line += " " + rnd.choice(_WORDS)
    return line[:MAX_BYTES]


def lines(count: int, seed: int = 8) -> list[str]:
    """`count` corpus lines (stack traces take several), deterministic for `seed`."""
    rnd = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        pick = rnd.random()
        if pick >= sum(w for w, _ in _KINDS):
            out += [_fit(line, rnd) for line in _stack_trace(rnd)]
            continue
        for weight, make in _KINDS:
            if pick < weight:
                out.append(_make(make, rnd))
                break
            pick -= weight
    return out[:count]


def marker(tag: str, number: int) -> str:
    """A plain line the latency probe can find: ``lpmark`` and a unique tag."""
    return _fit(f"INFO {MARKER} {tag}-{number} latency probe line", random.Random(number))


def write_chunks(
    folder: Path, corpus: list[str], lines_per_chunk: int, chunks: int, marked: set[int]
) -> None:
    """Files p0..pN of `lines_per_chunk` lines each, cycling through `corpus`.

    The chunks numbered in `marked` start with a marker line (which counts as one of
    their lines), so the latency probe has samples at a known rate.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pos = 0
    for k in range(chunks):
        part: list[str] = []
        if k in marked:
            part.append(marker(folder.name, k))
        while len(part) < lines_per_chunk:
            part.append(corpus[pos % len(corpus)])
            pos += 1
        (folder / f"p{k}").write_text("\n".join(part) + "\n", encoding="ascii")


if __name__ == "__main__":
    sample = lines(2000)
    sizes = [len(x) for x in sample]
    print(f"{len(sample)} lines, {min(sizes)}-{max(sizes)} bytes, mean {sum(sizes) / 2000:.0f}")
    for line in sample[:12]:
        print(line)
