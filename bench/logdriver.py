"""How the benchmarks' containers log (dockerd's log driver and its options) and whether
logpipe's shipper may read their files or must take every line through dockerd.

By default the containers log with dockerd's own default, ``json-file`` without rotation,
and the shipper reads what it can from the files. ``--log-driver local`` and
``--log-opt KEY=VALUE`` (``max-size``, ``max-file``, ``compress``) make logs that
rotate, compressed or not; ``--through-dockerd`` makes the shipper read every line
through dockerd, as one that cannot see dockerd's files does: the same commit, the
before and the after of reading the files, one command each.

``LOGPIPE_FOLLOW_FILES=false`` covers running containers' live lines only: a backlog is
read from the files wherever the shipper sees them. So the shipper also runs in a mount
namespace of its own (``unshare``, as root) where dockerd's ``containers`` folder is an
empty one: it then reads nothing from the files, as when that folder is not mounted.
"""

from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import docker.types

DRIVERS = ("json-file", "local")
OPTIONS = ("max-size", "max-file", "compress")  # what rotates the logs of both drivers
UNPACKED = "logpipe_shipper_logfile_unpacked_total"
# Mount an empty folder over dockerd's containers folder, then run the shipper in place
# of this shell (same pid: its CPU is the process the benchmark measures).
HIDE = 'mount --bind "$1" "$2" || exit 1; shift 2; exec "$@"'


@dataclass(frozen=True)
class LogSetup:
    """The containers' log driver and options, and how the shipper reads them."""

    driver: str = "json-file"
    options: tuple[tuple[str, str], ...] = ()
    through_dockerd: bool = False

    @property
    def default(self) -> bool:
        """dockerd's default logs: one json-file per container that never rotates, which
        the benchmarks count lines in."""
        return self.driver == "json-file" and not self.options

    def log_config(self) -> docker.types.LogConfig | None:
        """What `containers.run(log_config=...)` takes (None: dockerd's default)."""
        if self.default:
            return None
        return docker.types.LogConfig(type=self.driver, config=dict(self.options))

    def describe(self) -> str:
        """The containers' logs and the shipper's way of reading them, for a table's notes."""
        flags = " ".join(
            [f"--log-driver {self.driver}"] + [f"--log-opt {k}={v}" for k, v in self.options]
        )
        how = (
            "logpipe's shipper read every line through dockerd (--through-dockerd: "
            "LOGPIPE_FOLLOW_FILES=false, and dockerd's containers folder hidden from it by an "
            "empty one in a mount namespace of its own)"
            if self.through_dockerd
            else "logpipe's shipper read the log files where it could (the default)"
        )
        return f"containers ran with `{flags}`; {how}"

    def shipper(
        self, command: list[str], env: dict[str, str], folder: Path, root_dir: str
    ) -> tuple[list[str], dict[str, str]]:
        """The shipper's command line and environment: as given, or, through dockerd,
        with file following off and `root_dir`/containers hidden behind an empty folder
        made under `folder`."""
        if not self.through_dockerd:
            return command, env
        empty = folder / "no-log-files"
        empty.mkdir(parents=True, exist_ok=True)
        hidden = os.path.join(root_dir, "containers")
        wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c", HIDE, "sh"]
        return [*wrap, str(empty), hidden, *command], {**env, "LOGPIPE_FOLLOW_FILES": "false"}


DEFAULT = LogSetup()  # dockerd's default logs, read the default way


def option(text: str) -> tuple[str, str]:
    """An argparse type: one `--log-opt KEY=VALUE` of the options that rotate logs."""
    key, equals, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not equals or not value or key not in OPTIONS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give KEY=VALUE, KEY one of {', '.join(OPTIONS)} (dockerd checks the value)"
        )
    return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--log-driver, --log-opt and --through-dockerd."""
    parser.add_argument(
        "--log-driver",
        choices=DRIVERS,
        default="json-file",
        help="the containers' log driver (default json-file, dockerd's default)",
    )
    parser.add_argument(
        "--log-opt",
        action="append",
        type=option,
        default=[],
        metavar="KEY=VALUE",
        help="a log option of the containers, repeatable: max-size=1m, max-file=20, "
        "compress=true (the local driver compresses by default)",
    )
    parser.add_argument(
        "--through-dockerd",
        action="store_true",
        help="logpipe's shipper reads every line through dockerd, as one that cannot see "
        "dockerd's files (LOGPIPE_FOLLOW_FILES=false, and the containers folder hidden "
        "from it; needs root and unshare)",
    )


def from_args(args: argparse.Namespace) -> LogSetup:
    """The setup the command line asks for; SystemExit when the shipper cannot be kept
    from dockerd's files here."""
    keys = [k for k, _ in args.log_opt]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise SystemExit(f"--log-opt {', '.join(twice)} given more than once")
    if args.through_dockerd and (os.geteuid() != 0 or shutil.which("unshare") is None):
        raise SystemExit(
            "--through-dockerd runs the shipper in a mount namespace of its own: it needs "
            "root and unshare (util-linux)"
        )
    return LogSetup(args.log_driver, tuple(args.log_opt), args.through_dockerd)
