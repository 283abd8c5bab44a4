"""Peers that follow the same containers as the shipper, for CPU per line side by side.

logspout cannot be built on this machine (the Go module proxy refuses the module, see
bench/README.md), so the Docker CLI stands in for a Go follower: one
``docker logs -f -t <id>`` per container (the same `GET /containers/{id}/logs` stream,
demultiplexed in Go) writing into a TCP sink on loopback that counts lines.
"""

from __future__ import annotations

import socket
import subprocess
import threading


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


class CliFollowers:
    """One `docker logs -f -t` per container, each writing into the sink."""

    def __init__(self, container_ids: list[str]) -> None:
        self.sink = LineSink()
        self._procs: list[subprocess.Popen[bytes]] = []
        for cid in container_ids:
            with socket.create_connection(("127.0.0.1", self.sink.port)) as conn:
                self._procs.append(
                    subprocess.Popen(
                        ["docker", "logs", "-f", "-t", cid],
                        stdout=conn.fileno(),
                        stderr=conn.fileno(),
                    )
                )

    def pids(self) -> list[int]:
        """The followers' pids."""
        return [p.pid for p in self._procs]

    def lines(self) -> int:
        """Lines the sink has counted."""
        return self.sink.lines()

    def stop(self) -> None:
        """Terminate the followers (by their own pids) and close the sink."""
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            proc.wait(10)
        self.sink.close()
