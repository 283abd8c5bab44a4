"""Busybox containers that print the corpus at a rate the benchmark sets while they run.

Every container runs the same shell loop (``--network none``): each tick it reads the
name of a chunk set from the control file, ``cat``s the next chunk of that set and
sleeps. Writing another name into the control file changes the rate of all of them
within a tick; ``idle`` prints nothing, ``stop`` ends them. What they really printed is
counted from dockerd's json-file logs, so the benchmark never trusts the plan. Logs of
another driver, or that rotate (bench.logdriver), cannot be counted there (rotation
removes the oldest files): each container then writes the name of every chunk it printed
into a ledger of its own (``/w/n<k>``, a shell builtin, no fork), and the lines of those
chunks are what it printed.

``finished`` makes the other kind: containers that print a fixed number of lines, then
sleep, so that readers which attach only to running containers can still read them all.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
from docker.models.containers import Container

from bench import corpus
from bench.logdriver import DEFAULT, LogSetup

TICK = 0.25  # seconds between chunks: fewer ticks mean fewer forks in 100 containers
CHUNKS = 8


def container_id(c: Container) -> str:
    """The id dockerd gave `c` when it made it (docker-py's type allows none)."""
    assert c.id is not None, c
    return c.id


def loop(tick: float, ledger: bool = False) -> str:
    """The shell loop every container runs: one chunk per `tick` seconds (`ledger`: the
    name of each chunk printed is appended to /w/n$N)."""
    show = "{ cat /c/$s/p$i; echo $s >> /w/n$N; }" if ledger else "cat /c/$s/p$i"
    return (
        'i=$K; while :; do read s < /c/ctl; [ "$s" = stop ] && exit 0; '
        f'[ "$s" = idle ] || {show}; i=$(( (i + 1) % {CHUNKS} )); '
        f"usleep {int(tick * 1e6)}; done"
    )


class Fleet:
    """N printing containers, labelled for one run, and their chunk sets."""

    def __init__(
        self,
        client: docker.DockerClient,
        run: str,
        count: int,
        folder: Path,
        tick: float = TICK,
        logs: LogSetup = DEFAULT,
    ) -> None:
        self.client = client
        self.tick = tick
        self.logs = logs
        self.ledger = Ledger(folder / "w") if not logs.default else None
        self.run = run
        self.count = count
        self.folder = folder
        self.lines = corpus.lines(20000)
        self.containers: list[Container] = []
        self._offsets: dict[str, int] = {}
        self._paths: dict[str, str] = {}
        folder.mkdir(parents=True, exist_ok=True)
        self.control("idle")

    def control(self, word: str) -> None:
        """Tell every container what to print from the next tick on."""
        tmp = self.folder / "ctl.tmp"
        tmp.write_text(word + "\n")
        tmp.replace(self.folder / "ctl")

    def rate_set(self, lines_per_second: float) -> tuple[str, float]:
        """Write the chunk set for a total rate; its name and the rate it really plans."""
        per_tick = max(1, round(lines_per_second * self.tick / self.count))
        name = f"r{per_tick}"
        if self.ledger is not None:
            self.ledger.sizes[name] = per_tick
        if not (self.folder / name).exists():
            marked = set(range(CHUNKS)) if self.count <= 10 else {0, CHUNKS // 2}
            corpus.write_chunks(self.folder / name, self.lines, per_tick, CHUNKS, marked)
        return name, per_tick * self.count / self.tick

    def start(self) -> None:
        """Start the containers (in parallel: dockerd takes a while per container)."""

        volumes = {str(self.folder): {"bind": "/c", "mode": "ro"}}
        if self.ledger is not None:
            volumes[str(self.ledger.folder)] = {"bind": "/w", "mode": "rw"}

        def one(k: int) -> Container:
            return self.client.containers.run(
                "busybox:latest",
                ["sh", "-c", loop(self.tick, self.ledger is not None)],
                name=f"bench-{self.run}-{k}",
                detach=True,
                network_mode="none",
                environment={"K": str(k % CHUNKS), "N": str(k)},
                labels={"logpipe.bench": self.run},
                volumes=volumes,
                log_config=self.logs.log_config(),
            )

        with ThreadPoolExecutor(8) as pool:
            self.containers = list(pool.map(one, range(self.count)))
        for c in self.containers:
            c.reload()
            self._paths[container_id(c)] = c.attrs["LogPath"]
            self._offsets[container_id(c)] = 0
        self._printed = 0

    def printed(self) -> int:
        """Lines the containers have printed so far (newlines in dockerd's json-file logs,
        or the lines of the chunks in their ledgers)."""
        if self.ledger is not None:
            return self.ledger.lines()
        for cid, path in self._paths.items():
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
                f.seek(self._offsets[cid])
                data = f.read()
                self._offsets[cid] += len(data)
                self._printed += data.count(b"\n")
        return self._printed

    def remove(self) -> None:
        """Stop and remove every container of this run."""
        self.control("stop")
        found = self.client.containers.list(
            all=True, filters={"label": f"logpipe.bench={self.run}"}
        )
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda c: c.remove(force=True), found))


class Ledger:
    """The chunks printing containers wrote down, one name a line per container file
    (`n<k>`), counted as the lines of those chunks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sizes: dict[str, int] = {}  # chunk set name -> lines in each of its chunks
        self._offsets: dict[str, int] = {}
        self._lines = 0
        folder.mkdir(parents=True, exist_ok=True)

    def lines(self) -> int:
        """Lines of every chunk written down so far (a name still being written waits)."""
        for path in sorted(self.folder.glob("n*")):
            with path.open("rb") as f:
                f.seek(self._offsets.get(path.name, 0))
                data = f.read()
            whole = data[: data.rfind(b"\n") + 1]
            self._offsets[path.name] = self._offsets.get(path.name, 0) + len(whole)
            for name in whole.decode("ascii").split():
                if name not in self.sizes:
                    raise RuntimeError(f"{path} names a chunk set never written: {name!r}")
                self._lines += self.sizes[name]
        return self._lines


def read_ceiling(
    client: docker.DockerClient, run: str, count: int, lines: int, folder: Path
) -> float:
    """dockerd's read ceiling: lines/s served by `GET /logs` of finished containers.

    `count` containers each print `lines` corpus lines and exit; then as many
    `docker logs -t` (Go, demultiplexing only) read them all at once into /dev/null.
    """
    folder.mkdir(parents=True, exist_ok=True)
    text = corpus.lines(lines)
    (folder / "all").write_text("\n".join(text) + "\n", encoding="ascii")
    made = []
    for k in range(count):
        made.append(
            client.containers.run(
                "busybox:latest",
                ["cat", "/c/all"],
                name=f"bench-{run}-read{k}",
                detach=True,
                network_mode="none",
                labels={"logpipe.bench": run + "-read"},
                volumes={str(folder): {"bind": "/c", "mode": "ro"}},
            )
        )
    for c in made:
        c.wait(timeout=120)
    began = time.monotonic()
    readers = [
        subprocess.Popen(["docker", "logs", "-t", container_id(c)], stdout=subprocess.DEVNULL)
        for c in made
    ]
    for reader in readers:
        reader.wait(300)
    elapsed = time.monotonic() - began
    for c in made:
        c.remove(force=True)
    return count * lines / elapsed


def finished(
    client: docker.DockerClient,
    run: str,
    count: int,
    lines: int,
    folder: Path,
    logs: LogSetup = DEFAULT,
) -> tuple[list[Container], float]:
    """Containers that print `lines` corpus lines each, then sleep; once dockerd has
    every line (logs other than dockerd's default: once each container said it printed
    them, see wait_said). Each starts at another place in the corpus. Also the mean line
    bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    said = folder / "w"
    said.mkdir(exist_ok=True)
    text = corpus.lines(lines)
    for k in range(count):
        shift = k * lines // count
        (folder / f"p{k}").write_text("\n".join(text[shift:] + text[:shift]) + "\n")

    def one(k: int) -> Container:
        return client.containers.run(
            "busybox:latest",
            ["sh", "-c", f"cat /c/p{k}; : > /w/done{k}; exec sleep 100000"],
            name=f"bench-{run}-{k}",
            detach=True,
            network_mode="none",
            labels={"logpipe.bench": run},
            volumes={
                str(folder): {"bind": "/c", "mode": "ro"},
                str(said): {"bind": "/w", "mode": "rw"},
            },
            log_config=logs.log_config(),
        )

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(one, range(count)))
    for c in made:
        c.reload()
    if logs.default:
        wait_printed(made, lines)
    else:
        wait_said(said, count)
    return made, sum(len(t) for t in text) / len(text)


def wait_said(folder: Path, count: int, seconds: float = 300) -> None:
    """Wait until each of `count` containers wrote `done<k>` into `folder`: its `cat`
    ended, so dockerd has had every line from the pipe (its log files cannot say so once
    they rotate: the oldest are removed, the rest compressed or in the local format)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all((folder / f"done{k}").exists() for k in range(count)):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the containers did not all print their lines in {seconds:.0f} s")


def wait_printed(made: list[Container], lines: int, seconds: float = 300) -> None:
    """Wait until dockerd's json-file log of each container holds all its lines."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        counts = [_newlines(str(c.attrs["LogPath"])) for c in made]
        if all(n >= lines for n in counts):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the containers did not print {lines:,} lines each in {seconds:.0f} s")


def _newlines(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def remove_run(client: docker.DockerClient, run: str) -> None:
    """Every container labelled with this run."""
    found = client.containers.list(all=True, filters={"label": f"logpipe.bench={run}"})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: c.remove(force=True), found))
