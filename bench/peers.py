"""The log shippers users pick instead of logpipe, run on this machine for side by side
numbers: Fluent Bit (reads dockerd's json-file logs itself, ships to Elasticsearch) and
logspout (follows the Docker Engine API like logpipe's shipper, ships raw lines over TCP
into a sink here that counts them; it has no Elasticsearch output).

Neither is part of logpipe or installed by it. The benchmarks look for prebuilt binaries
in an optional peers directory (``--peers-dir`` or ``LOGPIPE_BENCH_PEERS``), in it or
in its ``bin/``, then on PATH, and skip a peer that is in neither place.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from bench import services

FLUENT_BIT, LOGSPOUT = "fluent-bit", "logspout"


@dataclass(frozen=True)
class Found:
    """Where each peer's binary is (None: missing) and how it was found."""

    binaries: dict[str, Path | None]
    origin: dict[str, str]

    def describe(self) -> str:
        """One line per peer: its path and origin, or that it is missing."""
        return "\n".join(
            f"  {name}: {path} ({self.origin[name]})" if path else f"  {name}: {self.origin[name]}"
            for name, path in self.binaries.items()
        )


def find(peers_dir: str | None) -> Found:
    """Look for fluent-bit and logspout: in the peers directory, if one is given, then
    on PATH. A directory given but missing is an error, since it was asked for."""
    given = peers_dir or os.environ.get("LOGPIPE_BENCH_PEERS")
    if given and not Path(given).is_dir():
        raise SystemExit(
            f"peers directory {given!r} does not exist: give a directory holding fluent-bit "
            "and logspout (or bin/ with them) with --peers-dir or LOGPIPE_BENCH_PEERS"
        )
    dirs = [Path(given)] if given else []
    binaries: dict[str, Path | None] = {}
    origin: dict[str, str] = {}
    for name in (FLUENT_BIT, LOGSPOUT):
        binaries[name], origin[name] = _locate(name, dirs)
    return Found(binaries, origin)


def _locate(name: str, dirs: list[Path]) -> tuple[Path | None, str]:
    for folder in dirs:
        for candidate in (folder / "bin" / name, folder / name):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate, f"peers directory {folder}"
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path), "PATH"
    looked = "".join(f"in {d} nor " for d in dirs)
    return None, (
        f"MISSING (not {looked}on PATH; --peers-dir or LOGPIPE_BENCH_PEERS names a "
        "directory of them): its rows are skipped"
    )


class LineSink:
    """A TCP server on 127.0.0.1 that counts the lines it receives."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._count = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1 << 16):
                with self._lock:
                    self._count += data.count(b"\n")

    def lines(self) -> int:
        """Lines received so far."""
        with self._lock:
            return self._count

    def close(self) -> None:
        """Stop accepting."""
        self._server.close()


class Logspout:
    """logspout following the containers whose names match `name_glob`, raw lines over
    TCP into a sink that counts them. `backlog` ships each container's whole log (as the
    file readers do from offset 0); without it, only what comes after it attached."""

    def __init__(self, binary: Path, name_glob: str, folder: Path, backlog: bool) -> None:
        self.sink = LineSink()
        (folder / "routes").mkdir(parents=True, exist_ok=True)
        env = {
            **services.clean_env(),
            "BACKLOG": "true" if backlog else "false",
            "HTTP_BIND_ADDRESS": "127.0.0.1",
            "PORT": str(services.free_port()),
            "ROUTESPATH": str(folder / "routes"),
            "RAW_FORMAT": "{{.Data}}\n",
        }
        route = f"raw+tcp://127.0.0.1:{self.sink.port}?filter.name={name_glob}"
        self.process = services.Child("logspout", [str(binary), route], env, folder, ours=False)

    def pids(self) -> list[int]:
        """logspout's pid (the sink is a thread of the benchmark, not measured)."""
        return [self.process.pid]

    def lines(self) -> int:
        """Lines the sink has counted."""
        return self.sink.lines()

    def stop(self) -> None:
        """Stop logspout, then the sink."""
        self.process.stop()
        self.sink.close()


# Fluent Bit's docker parser (the json-file line: log, stream, time), in its config syntax.
PARSERS = """\
[PARSER]
    Name         docker
    Format       json
    Time_Key     time
    Time_Format  %Y-%m-%dT%H:%M:%S.%L
    Time_Keep    On
"""

# Read_from_Head: the whole files, like the others. Buffer_Size False: with the default
# 512 KB answer buffer Fluent Bit cannot read a big _bulk answer, counts the request as
# failed and sends it again (duplicates). Retry_Limit False: never drop a chunk.
CONFIG = """\
[SERVICE]
    Flush            1
    Daemon           Off
    Log_Level        info
    Parsers_File     {folder}/parsers.conf
    HTTP_Server      Off

[INPUT]
    Name              tail
    Tag               docker.*
    Path              {paths}
    Parser            docker
    DB                {folder}/tail.db
    Refresh_Interval  1
    Read_from_Head    True
    Mem_Buf_Limit     64MB
    Skip_Long_Lines   On

[OUTPUT]
    Name               es
    Match              *
    Host               {host}
    Port               {port}
    Index              {index}
    Suppress_Type_Name On
    Trace_Error        On
    Retry_Limit        False
    Buffer_Size        False
"""
# With kills (bench.kills): each document gets its tag (the log's path, so its
# container's id), which tells lines of different containers apart.
TAG_KEY = """\
    Include_Tag_Key    On
    Tag_Key            tag
"""


def install_template(index: str) -> None:
    """A template for a peer's index, with the settings logpipe's streams have (1 shard, 0
    replicas, Elasticsearch's own refresh): the index itself is made by the peer's first
    write, as logpipe's data stream is by the collector's."""
    settings = {"number_of_shards": 1, "number_of_replicas": 0}
    body = {"index_patterns": [index], "priority": 500, "template": {"settings": settings}}
    services.es("PUT", f"/_index_template/{index}", body)


class FluentBit:
    """Fluent Bit tailing the given json-file logs into the Elasticsearch index `index`
    (`tag_key`: each document holds its tag, the log's path). Started again on the same
    `folder`, it reads on from the positions its `DB` file there holds."""

    def __init__(
        self, binary: Path, log_paths: list[str], index: str, folder: Path, tag_key: bool = False
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        host, _, port = services.ES_URL.removeprefix("http://").rstrip("/").rpartition(":")
        (folder / "parsers.conf").write_text(PARSERS)
        conf = CONFIG.format(
            folder=folder, paths=",".join(log_paths), host=host, port=port, index=index
        )
        if tag_key:
            conf += TAG_KEY
        (folder / "fluent-bit.conf").write_text(conf)
        args = [str(binary), "-c", str(folder / "fluent-bit.conf")]
        self.process = services.Child("fluent-bit", args, services.clean_env(), folder, ours=False)

    def pids(self) -> list[int]:
        """Fluent Bit's pid (one process, several threads)."""
        return [self.process.pid]

    def stop(self) -> None:
        """Stop Fluent Bit (its index stays until `delete_index`)."""
        self.process.stop()


def delete_index(index: str) -> None:
    """Delete a peer's index and its template (by exact names: the node refuses wildcard
    deletes)."""
    services.es("DELETE", f"/{index}?ignore_unavailable=true")
    try:
        services.es("DELETE", f"/_index_template/{index}")
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
