"""The shippers bench.sidebyside compares, each as one run: started, watched for what
arrived, stopped, cleaned up. logpipe runs its real shipper and collector of the
measured commit; Fluent Bit and logspout are the prebuilt peers of bench.peers."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from docker.models.containers import Container

from bench import logdriver, peers, services
from collector.retention.rules import RetentionConfig, stream_dataset
from collector.routing import data_stream_name

LOGPIPE, FLUENT_BIT, LOGSPOUT = "logpipe", "Fluent Bit", "logspout"
ES_POLL = 0.2  # seconds between two looks at Elasticsearch's stats: the times' resolution
SINK_POLL = 0.01  # the sink counts in this process: looking is free


@dataclass
class Context:
    """What every run of one invocation shares."""

    run: str
    folder: Path
    containers: list[Container]
    total: int
    binaries: dict[str, Path | None]
    # logpipe's collector settings (field name -> value) beyond the benchmark's own.
    collector: dict[str, str] = field(default_factory=dict)
    # The containers' logs and how logpipe's shipper reads them; dockerd's data root.
    logs: logdriver.LogSetup = logdriver.DEFAULT
    root_dir: str = "/var/lib/docker"
    # Kills during each drain (bench.kills): the documents then say which line they hold.
    kills: int = 0


class Shipper(Protocol):
    """One shipper's run: started, watched and stopped by the measurement."""

    @property
    def name(self) -> str:
        """The shipper's name in the table."""
        ...

    @property
    def index(self) -> str | None:
        """The Elasticsearch index or stream pattern it writes into (None: no ES output)."""
        ...

    @property
    def poll(self) -> float:
        """Seconds between two looks at what arrived."""
        ...

    def prepare(self) -> dict[str, list[int]]:
        """Start what must run before the clock starts; pids by role."""
        ...

    def make_index(self) -> str | None:
        """Create its index (or data stream) empty, as a stream that exists before a
        catch-up does; its name (None: no ES output)."""
        ...

    def launch(self) -> dict[str, list[int]]:
        """Start the shipper's own processes (the clock runs); pids by role."""
        ...

    def arrived(self) -> int:
        """Lines that arrived so far."""
        ...

    def kill(self) -> None:
        """SIGKILL the shipper's own process (logpipe's collector keeps running); a
        `launch` after it restarts the shipper on the state it left."""
        ...

    def stop(self) -> None:
        """Stop every process this run started."""
        ...

    def unpacked(self) -> int | None:
        """Compressed rotated files it unpacked (None: it does not say)."""
        ...

    def sent_again(self) -> int | None:
        """Batches sent again (after a restart, say) that the receiver looked up before
        indexing them, once stopped (None: it does not say)."""
        ...

    def cleanup(self) -> None:
        """Free what it wrote."""
        ...


class LogpipeRun:
    """The real shipper and collector of the measured commit, into a fresh data stream."""

    name = LOGPIPE
    poll = ES_POLL

    def __init__(self, ctx: Context, tag: str) -> None:
        self.ctx = ctx
        self.tag = tag
        self.index = f"logs-bench.side{tag}*"
        self.base = 0  # index operations before the run (make_index)
        self.folder = ctx.folder / f"logpipe-{tag}"
        self.children: list[services.Child] = []
        self.status = services.free_port()
        self._unpacked: int | None = None
        self._looked: int | None = None

    def prepare(self) -> dict[str, list[int]]:
        """A collector, ready before the clock starts (a service that runs anyway: its
        start's retention run over the node's streams has ended too), and
        the measured commit's template for the run's stream alone: the node's own
        `logpipe` template is whichever `setup` ran last on it, maybe another commit's."""
        services.install_run_template(
            f"logpipe-bench-{self.tag}", self.index, self.ctx.collector.get("index")
        )
        self.token = uuid.uuid4().hex
        self.port = services.free_port()
        collector = services.start_collector(
            self.folder, self.port, self.token, f"bench.side{self.tag}", settings=self.ctx.collector
        )
        self.children.append(collector)
        return {"collector": [collector.pid]}

    def make_index(self) -> str:
        """The data stream the collector writes the lines into, made by one document
        which is then deleted (this node has no API to create a data stream empty)."""
        dataset = stream_dataset(f"bench.side{self.tag}", RetentionConfig().default)
        name = data_stream_name(dataset, "default")
        made = services.es(
            "POST",
            f"/{name}/_doc?op_type=create&refresh=true",
            {"@timestamp": "2000-01-01T00:00:00Z", "message": "made by the benchmark"},
        )
        services.es("DELETE", f"/{made['_index']}/_doc/{made['_id']}")
        self.base = services.indexed(self.index)
        return name

    def launch(self) -> dict[str, list[int]]:
        """The shipper on the run's state directory: fresh at the first launch (every
        container from its start), as the last one left it at the next (after `kill`)."""
        env = {
            **services.clean_env(),
            "LOGPIPE_COLLECTOR_URL": f"http://127.0.0.1:{self.port}",
            "LOGPIPE_TOKEN": self.token,
            "LOGPIPE_STATE_DIR": str(self.folder / "state"),
            "LOGPIPE_HOST_NAME": f"bench-{self.tag}",
            "LOGPIPE_HTTP_LISTEN": f"127.0.0.1:{self.status}",
            "LOGPIPE_INCLUDE_LABELS": f"logpipe.bench={self.ctx.run}",
        }
        command, env = self.ctx.logs.shipper(
            services.entry("shipper", False), env, self.folder, self.ctx.root_dir
        )
        shipper = services.Child("shipper", command, env, self.folder)
        self.children.append(shipper)
        return {"shipper": [shipper.pid]}

    def arrived(self) -> int:
        """Documents Elasticsearch indexed into the run's stream (the one that made it
        left out)."""
        return services.indexed(self.index) - self.base

    def kill(self) -> None:
        """SIGKILL the shipper; the collector keeps running."""
        for child in self.children:
            if child.name == "shipper":
                child.kill()

    def stop(self) -> None:
        """Shipper first, then the collector; how many batches it answered busy, and how
        many came again marked (each looked up: a search), is printed in between; the
        shipper's count of files unpacked is read before it stops."""
        if any(c.name == "shipper" and c.proc.poll() is None for c in self.children):
            try:
                found = services.counter(f"http://127.0.0.1:{self.status}", (logdriver.UNPACKED,))
                self._unpacked = int(found or 0)
            except OSError as exc:
                print(f"shipper: metrics not read ({exc})", file=sys.stderr)
        for child in reversed(self.children):
            if child.name == "collector" and child.proc.poll() is None:
                print(self.answers(), file=sys.stderr)
            child.stop()

    def answers(self) -> str:
        """What the collector answered in the run, from its metrics."""
        base = f"http://127.0.0.1:{self.port}"
        try:
            busy = services.counter(base, ('logpipe_collector_requests_total{status="503"}',))
            looked = services.counter(base, ("logpipe_collector_batches_looked_up_total",))
        except OSError as exc:
            return f"collector: metrics not read ({exc})"
        self._looked = int(looked or 0)
        return f"collector: {busy or 0:.0f} answers 503, {looked or 0:.0f} batches looked up"

    def unpacked(self) -> int | None:
        """Compressed rotated files the shipper unpacked (None: not read)."""
        return self._unpacked

    def sent_again(self) -> int | None:
        """Batches marked sent again that the collector looked up (None: not read)."""
        return self._looked

    def cleanup(self) -> None:
        """Roll the stream over and delete its backing indices, and its template."""
        services.free_disk(self.index)
        services.delete_run_template(f"logpipe-bench-{self.tag}")


class FluentBitRun:
    """Fluent Bit reading the containers' json-file logs into an index of its own."""

    name = FLUENT_BIT
    poll = ES_POLL

    def __init__(self, ctx: Context, tag: str) -> None:
        self.ctx = ctx
        self.index = f"bench-fluentbit-{tag}"
        self.folder = ctx.folder / f"fluentbit-{tag}"
        self.peer: peers.FluentBit | None = None

    def prepare(self) -> dict[str, list[int]]:
        """The template of its index (the index is made by its first write)."""
        peers.install_template(self.index)
        return {}

    def make_index(self) -> str:
        """Its index, created empty (its template applies)."""
        services.es("PUT", f"/{self.index}")
        return self.index

    def launch(self) -> dict[str, list[int]]:
        """fluent-bit."""
        binary = self.ctx.binaries[peers.FLUENT_BIT]
        assert binary is not None  # runs are only made for peers that were found
        paths = [str(c.attrs["LogPath"]) for c in self.ctx.containers]
        self.peer = peers.FluentBit(
            binary, paths, self.index, self.folder, tag_key=self.ctx.kills > 0
        )
        return {"shipper": self.peer.pids()}

    def arrived(self) -> int:
        """Documents Elasticsearch indexed into its index."""
        return services.indexed(self.index)

    def kill(self) -> None:
        """SIGKILL fluent-bit; a `launch` after it reads on from its position file."""
        if self.peer is not None:
            self.peer.process.kill()

    def stop(self) -> None:
        """Stop fluent-bit."""
        if self.peer is not None:
            self.peer.stop()

    def unpacked(self) -> None:
        """It reads no compressed files."""
        return None

    def sent_again(self) -> None:
        """It does not say."""
        return None

    def cleanup(self) -> None:
        """Delete its index and template."""
        peers.delete_index(self.index)


class LogspoutRun:
    """logspout following the containers by name, into a sink here that counts lines."""

    name = LOGSPOUT
    index = None
    poll = SINK_POLL

    def __init__(self, ctx: Context, tag: str) -> None:
        self.ctx = ctx
        self.folder = ctx.folder / f"logspout-{tag}"
        self.peer: peers.Logspout | None = None

    def prepare(self) -> dict[str, list[int]]:
        """Nothing runs before it."""
        return {}

    def make_index(self) -> None:
        """No Elasticsearch output."""
        return None

    def launch(self) -> dict[str, list[int]]:
        """logspout, with each container's whole log (BACKLOG)."""
        binary = self.ctx.binaries[peers.LOGSPOUT]
        assert binary is not None
        glob = f"bench-{self.ctx.run}-*"
        self.peer = peers.Logspout(binary, glob, self.folder, backlog=True)
        return {"shipper": self.peer.pids()}

    def arrived(self) -> int:
        """Lines the sink counted."""
        return self.peer.lines() if self.peer else 0

    def kill(self) -> None:
        """SIGKILL logspout (it keeps no position: a restart ships every log again)."""
        if self.peer is not None:
            self.peer.process.kill()

    def stop(self) -> None:
        """Stop logspout and the sink."""
        if self.peer is not None:
            self.peer.stop()

    def unpacked(self) -> None:
        """dockerd reads its files for it."""
        return None

    def sent_again(self) -> None:
        """It does not say."""
        return None

    def cleanup(self) -> None:
        """Nothing stays."""


RUNS: dict[str, Callable[[Context, str], Shipper]] = {
    LOGPIPE: LogpipeRun,
    FLUENT_BIT: FluentBitRun,
    LOGSPOUT: LogspoutRun,
}
NEEDS = {FLUENT_BIT: peers.FLUENT_BIT, LOGSPOUT: peers.LOGSPOUT}
