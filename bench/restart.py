"""What a shipper's restart costs it: reading a container's backlog from its saved cursors.

One busybox container (``--network none``, labelled for the run) logs ``--lines`` lines
of ~90 bytes with ``--log-driver`` (``local`` by default, which rotates into compressed
files at dockerd's defaults: ``max-size`` 20m, ``max-file`` 5) and waits. A collector and a
shipper (``LOGPIPE_START_AT=end``) start; once the shipper follows the container it
stops, its position at the end of the log. The container then prints ``--tail`` more
lines and exits. Each round, for each commit in turn (``--before`` first in odd
rounds, last in even ones), the saved state is put back and a shipper of that commit
starts and reads the stopped container's log from its files, from its position: the
lines printed while it was stopped; its CPU (``utime + stime`` of ``/proc/<pid>/stat``,
its start included) is read once ``logpipe_shipper_lines_read_total`` counts them all,
beside the compressed rotated files it unpacked (``logpipe_shipper_logfile_unpacked_total``;
"-" for a commit without that metric). Usage:

    python -m bench.restart [--lines 800000] [--tail 200] [--rounds 4] [--before REV]
        [--log-driver local] [--log-opt K=V] [--append]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
from docker.models.containers import Container

from bench import logdriver, procstat, report, services, summary
from bench.containers import container_id

READ = "logpipe_shipper_lines_read_total"
UNPACKED = (logdriver.UNPACKED,)
FOLLOWED = "logpipe_shipper_containers_followed"
# The lines: 8 random bytes as hex words, then an access-log-like tail (~90 bytes).
LINES = (
    "od -An -tx4 -w8 -v /dev/urandom | head -n {n} | "
    "sed 's/$/ GET \\/api\\/v1\\/items status=200 bytes=5120 duration_ms=12 user=alice ok/'"
)
WAIT = "while [ ! -e /tmp/{name} ]; do sleep 0.1; done"
SCRIPT = (
    f"{LINES.format(n='$1')}; touch /tmp/printed; {WAIT.format(name='go')}; {LINES.format(n='$2')}"
)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.restart",
        description=summary(__doc__),
    )
    parser.add_argument("--lines", type=int, default=800_000, help="lines before the stop")
    parser.add_argument("--tail", type=int, default=200, help="lines printed while stopped")
    parser.add_argument("--rounds", type=int, default=4, help="restarts of each commit")
    parser.add_argument("--before", metavar="REV", help="a commit to restart beside HEAD")
    parser.add_argument("--append", action="store_true", help="append to docs/BENCHMARKS.md")
    logdriver.add_arguments(parser)
    parser.set_defaults(log_driver="local")
    args = parser.parse_args(argv)
    if args.lines < 1 or args.tail < 1 or args.rounds < 1:
        parser.error("--lines, --tail and --rounds take numbers above zero")
    if args.through_dockerd:
        parser.error("--through-dockerd: a restart's backlog is read from the files here")
    args.logs = logdriver.LogSetup(args.log_driver, tuple(args.log_opt), False)
    return args


class Restarts:
    """The run's container, collector and saved shipper state."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run = services.run_id()
        self.folder = services.WORK / f"restart-{self.run}"
        self.client = docker.from_env()
        self.token = uuid.uuid4().hex
        self.port = services.free_port()
        self.status = services.free_port()
        self.saved = self.folder / "saved-state"
        self.state = self.folder / "state"
        self.collector: services.Child | None = None
        self.container: Container | None = None

    def _env(self, **extra: str) -> dict[str, str]:
        return {
            **services.clean_env(),
            "LOGPIPE_COLLECTOR_URL": f"http://127.0.0.1:{self.port}",
            "LOGPIPE_TOKEN": self.token,
            "LOGPIPE_STATE_DIR": str(self.state),
            "LOGPIPE_HOST_NAME": f"bench-{self.run}",
            "LOGPIPE_HTTP_LISTEN": f"127.0.0.1:{self.status}",
            "LOGPIPE_INCLUDE_LABELS": f"logpipe.bench={self.run}",
            **{f"LOGPIPE_{k}": v for k, v in extra.items()},
        }

    def _exists(self, name: str) -> bool:
        assert self.container is not None
        return self.container.exec_run(["test", "-e", f"/tmp/{name}"]).exit_code == 0

    def _exited(self) -> bool:
        assert self.container is not None
        self.container.reload()
        return bool(self.container.status == "exited")

    def _until(self, what: str, done: Callable[[], bool], seconds: float = 600) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not happen within {seconds:.0f}s")

    def prepare(self) -> None:
        """The container's log, the collector, and a shipper's state at its end."""
        services.install_template()
        self.container = self.client.containers.run(
            "busybox",
            ["sh", "-c", SCRIPT, "sh", str(self.args.lines), str(self.args.tail)],
            detach=True,
            network_mode="none",
            labels={"logpipe.bench": self.run},
            log_config=self.args.logs.log_config(),
            name=f"bench-{self.run}",
        )
        self._until("the container's printing", lambda: self._exists("printed"))
        self.collector = services.start_collector(
            self.folder, self.port, self.token, f"bench.restart{self.run}"
        )
        first = services.Child(
            "shipper-first", services.python("shipper"), self._env(START_AT="end"), self.folder
        )
        url = f"http://127.0.0.1:{self.status}"
        try:
            services.wait_http(f"{url}/healthz")
            self._until("the first shipper's follow", lambda: _count(url, FOLLOWED) >= 1)
        finally:
            first.stop()  # it saves its cursors as it stops: the container's is at its end
        cursors = self.state / "cursors.json"
        if container_id(self.container) not in (cursors.read_text() if cursors.exists() else ""):
            raise RuntimeError(f"the first shipper saved no cursor of the container in {cursors}")
        shutil.copytree(self.state, self.saved)
        self.container.exec_run(["touch", "/tmp/go"])
        self._until("the container's exit", self._exited)

    def once(self, code: Path) -> tuple[float, str]:
        """One restart from the saved state with `code`: CPU-s until caught up, unpacked."""
        shutil.rmtree(self.state, ignore_errors=True)
        shutil.copytree(self.saved, self.state)
        url = f"http://127.0.0.1:{self.status}"
        child = services.Child(
            "shipper", services.python("shipper"), self._env(), self.folder, code=code
        )
        try:
            services.wait_http(f"{url}/healthz")
            self._until(
                "the shipper's read of the lines printed while it was stopped",
                lambda: _count(url, READ) >= self.args.tail,
                seconds=300,
            )
            cpu, _ = procstat.usage(child.pid)
            files = services.counter(url, UNPACKED)
            unpacked = "-" if files is None else str(int(files))
        finally:
            child.stop()
        return cpu, unpacked

    def close(self) -> None:
        if self.container is not None:
            self.container.remove(force=True)
        if self.collector is not None:
            self.collector.stop()
        services.free_disk(f"logs-bench.restart{self.run}*")


def _count(url: str, name: str) -> float:
    """The shipper's unlabelled series `name` (0 while it has none)."""
    return services.counter(url, (name,)) or 0.0


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    codes = {services.measured_commit()[:7]: services.code_dir()}
    if args.before:
        codes = {services.sha_of(args.before)[:7]: services.exported(args.before), **codes}
    bench = Restarts(args)
    cpu: dict[str, list[float]] = {name: [] for name in codes}
    unpacked: dict[str, set[str]] = {name: set() for name in codes}
    try:
        bench.prepare()
        for round_ in range(args.rounds):
            order = list(codes.items())
            for name, code in order if round_ % 2 == 0 else order[::-1]:
                seconds, files = bench.once(code)
                cpu[name].append(seconds)
                unpacked[name].add(files)
    finally:
        bench.close()
    rows = [
        [
            f"`{name}`",
            ", ".join(f"{s:.2f}" for s in cpu[name]),
            f"{statistics.median(cpu[name]):.2f}",
            ", ".join(sorted(unpacked[name])),
        ]
        for name in codes
    ]
    report.publish(
        "A shipper's restart: the backlog from saved cursors",
        [
            "code",
            "shipper CPU-s, start to the lines printed while stopped read, per round",
            "median",
            ".gz files unpacked",
        ],
        rows,
        [
            f"one container, {args.lines:,} lines of ~90 bytes before the stop and "
            f"{args.tail:,} while stopped; {args.logs.describe()}",
            "CPU: utime + stime of the shipper's /proc/<pid>/stat once "
            "logpipe_shipper_lines_read_total counts the lines printed while it was stopped, "
            "start-up included",
        ],
        args.append,
    )


if __name__ == "__main__":
    main()
