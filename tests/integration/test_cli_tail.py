"""`logpipe tail` as a subprocess against real collectors and the node: it follows new
lines, and a collector killed with SIGKILL under it and started again costs no line and
repeats none."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import wait_until
from tests.integration.readers import READ, Collector, Source, collectors, indexed, post
from tests.programs import ROOT, clean_env, default_sigint

# The read API searches every logpipe stream on the node: a stream another test creates
# meanwhile, its shard not yet started, fails part of the read (no_shard_available).
pytestmark = [pytest.mark.integration, pytest.mark.alone]
__all__ = ["collectors"]  # the fixture


class TailProcess:
    """A running `logpipe tail`, its stdout and stderr kept in files."""

    def __init__(self, tmp: Path, url: str, *args: str) -> None:
        self.out, self.err = tmp / "tail.out", tmp / "tail.err"
        env = clean_env(LOGPIPE_URL=url, LOGPIPE_READ_TOKEN=READ, XDG_CONFIG_HOME=str(tmp))
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logpipe", "tail", *args],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=err,
                preexec_fn=default_sigint,  # it is stopped by Ctrl-C
            )

    def lines(self) -> list[str]:
        """The messages printed so far (the text after the bar)."""
        return [line.split(" | ", 1)[1] for line in self.out.read_text().splitlines()]

    def stderr(self) -> str:
        """What it said on stderr so far."""
        return self.err.read_text()

    def wait_lines(self, n: int, timeout: float = 60) -> list[str]:
        """Wait until at least `n` lines are printed; all of them."""

        def enough() -> list[str]:
            got = self.lines()
            return got if len(got) >= n else []

        return list(wait_until(enough, timeout))

    def interrupt(self) -> int:
        """Ctrl-C (SIGINT); the exit status."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(30)

    def kill(self) -> None:
        """Make sure it is gone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def tail(tmp: Path, url: str, *args: str) -> Iterator[TailProcess]:
    """A `logpipe tail` running for the block."""
    process = TailProcess(tmp, url, *args)
    try:
        yield process
    finally:
        process.kill()


def test_tail_prints_the_last_lines_then_follows(
    collectors: Callable[..., Collector], es: Elasticsearch, tmp_path: Path
) -> None:
    """-n 2 prints the two newest lines, then each new line as it is sent; Ctrl-C ends it
    with 130."""
    c = collectors()
    src = Source()
    t = time.time_ns()
    assert post(c, src.batch(("one", t), ("two", t + 1), ("three", t + 2))) == 200
    indexed(es, src.host, 3)
    time.sleep(3)  # past the collector's settle delay (2 s): the three lines are the past
    with tail(tmp_path, c.url, "--host", src.host, "-n", "2") as running:
        assert running.wait_lines(2) == ["two", "three"]
        assert post(c, src.batch(("four", time.time_ns()))) == 200
        assert running.wait_lines(3) == ["two", "three", "four"]
        assert running.interrupt() == 130
    assert running.stderr() == ""


def write_lines(c: Collector, src: Source, first: int, count: int, stop: threading.Event) -> None:
    """Send lines `first`..`first+count-1`, 5 a batch, each batch until it is taken."""
    for start in range(first, first + count, 5):
        batch = [(f"line {i:05d}", time.time_ns() + i - start) for i in range(start, start + 5)]
        while post(c, src.batch(*batch)) != 200:
            if stop.wait(0.2):
                return
        time.sleep(0.05)


def test_a_collector_killed_under_a_tail_loses_and_repeats_no_line(
    collectors: Callable[..., Collector], tmp_path: Path
) -> None:
    """kill -9 of the collector a tail reads from, while lines flow in through another
    collector, then a restart: every line is printed once, in order."""
    reader, writer = collectors(), collectors()
    src = Source()
    stop = threading.Event()
    with tail(tmp_path, reader.url, "--host", src.host, "-n", "0") as running:
        write_lines(writer, src, 0, 5, stop)  # the tail is following once it shows them
        running.wait_lines(5)
        flow = threading.Thread(target=write_lines, args=(writer, src, 5, 395, stop))
        flow.start()
        running.wait_lines(60)
        reader.process.kill()  # SIGKILL, in the middle of the flow
        wait_until(lambda: "reconnecting" in running.stderr(), 30)
        time.sleep(2)
        reader.process.start()
        flow.join(120)
        got = running.wait_lines(400, timeout=90)
        time.sleep(3)  # anything printed twice would come now
        got = running.lines()
        assert running.interrupt() == 130
    stop.set()
    assert len(got) == len(set(got)), "a line was printed twice"
    assert got == [f"line {i:05d}" for i in range(400)]
    said = running.stderr()
    assert "reconnecting" in said
    assert "reconnected after" in said


def test_a_tail_that_reads_too_slowly_is_told_what_it_missed(
    collectors: Callable[..., Collector], tmp_path: Path
) -> None:
    """A tail whose output nobody reads for a while falls behind; the collector skips lines
    for it, and the tail says how many on stderr: printed plus missed is every line."""
    c = collectors(read_tail_buffer="10")
    src = Source()
    n, filler = 3000, "x" * 8000
    env = clean_env(LOGPIPE_URL=c.url, LOGPIPE_READ_TOKEN=READ, XDG_CONFIG_HOME=str(tmp_path))
    err = tmp_path / "tail.err"
    with err.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "logpipe", "tail", "--host", src.host, "-n", "0"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
        )
    printed: list[str] = []
    reading = threading.Thread(target=lambda: printed.extend(proc.stdout or []), daemon=True)
    try:
        time.sleep(3)  # connected and following before the lines come
        for start in range(0, n, 500):
            t = time.time_ns()
            lines = [(f"{i:05d} {filler}", t + i) for i in range(start, start + 500)]
            assert post(c, src.batch(*lines)) == 200
        time.sleep(8)  # the collector reads them all while nobody reads the tail's output

        def missed() -> int:
            said = re.findall(r"missed (\d+) lines", err.read_text())
            return sum(int(m) for m in said)

        reading.start()  # a reader at last: the tail catches up
        wait_until(lambda: len(printed) + missed() >= n, 60)
        time.sleep(1)  # anything more (a line twice) would come now
    finally:
        proc.kill()
        proc.wait(10)
        if reading.is_alive():
            reading.join(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert missed() > 0
    numbers = [int(line.split(" | ")[1][:5]) for line in printed]
    assert numbers == sorted(set(numbers))  # in order, none twice
    assert len(printed) + missed() == n
