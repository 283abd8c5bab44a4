"""The benchmarks' handles on the real services: Elasticsearch, a collector process, runs.

Data streams cannot be deleted on the test node, so every run writes into data streams
of its own (dataset ``bench.<kind><run>``) and frees the disk afterwards by rolling them
over and deleting the backing indices that are no longer written to.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import procstat

ES_URL = os.environ.get("LOGPIPE_BENCH_ES_URL", "http://127.0.0.1:9200")
WORK = Path(os.environ.get("LOGPIPE_BENCH_DIR", "/tmp/logpipe-bench"))
ROOT = Path(__file__).parents[1]
# Others edit the shared checkout while benchmarks run: by default the processes under
# test run the committed code (HEAD, exported once), so a run measures one commit. Any
# other commit can be named (a "before" next to an "after" in the same minutes).
CODE = os.environ.get("LOGPIPE_BENCH_CODE", "head")
# Folders of packages logpipe's processes import besides its code, e.g. a build of the
# shipper's compiled extension (`pip install --target DIR ./native/shipper`) that is not
# installed where Python looks; none by default.
SITE = [p for p in os.environ.get("LOGPIPE_BENCH_SITE", "").split(os.pathsep) if p]


def measured_commit() -> str:
    """The full sha of the commit the processes under test run (HEAD for the work tree)."""
    return sha_of("HEAD" if CODE in ("head", "worktree") else CODE)


def sha_of(rev: str) -> str:
    """The full sha of commit `rev`."""
    return subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


@functools.cache
def code_dir() -> Path:
    """Where the collector, shipper, load generator and `logpipe` are run from, their
    bytecode compiled as an installation (the image runs `compileall`) has it: without
    it, each start compiles some 60 modules again where bytecode is not written
    (PYTHONDONTWRITEBYTECODE), 60-80 CPU-ms a process. Made once per benchmark run,
    before any clock starts (the first call)."""
    if CODE == "worktree":
        _compiled(ROOT)
        return ROOT
    return exported(measured_commit())


def exported(rev: str) -> Path:
    """The code of commit `rev` (collector, shipper, logpipe, bench), exported once under
    WORK and compiled, for a benchmark that runs two commits side by side."""
    sha = sha_of(rev)
    dest = WORK / f"src-{sha[:12]}"
    if not dest.exists():
        tmp = WORK / f"src-{sha[:12]}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "collector", "shipper", "logpipe", "bench"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        tmp.rename(dest)
    _compiled(dest)
    return dest


def _compiled(root: Path) -> None:
    """Write the bytecode of the code the benchmarks run (only what changed)."""
    folders = [str(root / package) for package in ("collector", "shipper", "logpipe", "bench")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], check=True)


def entry(package: str, uvloop: bool) -> list[str]:
    """`python -m collector|shipper`, on uvloop's event loop if asked (bench.uvloop_run)."""
    return python("bench.uvloop_run", package) if uvloop else python(package)


def python(module: str, *args: str) -> list[str]:
    """The command line of `python -m module` (run it with `child_env()` and cwd=code_dir())."""
    return [sys.executable, "-m", module, *args]


def run_id() -> str:
    """A short unique name for one benchmark run."""
    return uuid.uuid4().hex[:8]


def es(method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
    """One JSON request to Elasticsearch; the parsed answer."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(ES_URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def count(index: str, query: dict[str, Any] | None = None) -> int:
    """Documents searchable now in `index` (matching `query`)."""
    body = {"query": query} if query else None
    try:
        return int(es("POST", f"/{index}/_count?ignore_unavailable=true", body)["count"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return 0
        raise


def gap_documents(index: str) -> int:
    """The shipper's gap documents (lines it could not read) in `index`, refreshed first."""
    refresh(index)
    return count(index, {"term": {"event.action": "gap"}})


def refresh(index: str) -> None:
    """Make everything indexed so far searchable."""
    es("POST", f"/{index}/_refresh?ignore_unavailable=true&allow_no_indices=true")


def search_idle(index: str) -> bool:
    """Whether every shard of `index` is search-idle: nobody has searched it for
    `index.search.idle.after` (30 s by default), so Elasticsearch no longer refreshes it
    every second, only when a search comes or its indexing buffer fills."""
    stats = es("GET", f"/{index}/_stats?level=shards&filter_path=indices.*.shards.*.search_idle")
    shards = [
        copy
        for found in (stats or {}).get("indices", {}).values()
        for copies in found.get("shards", {}).values()
        for copy in copies
    ]
    return bool(shards) and all(copy.get("search_idle") for copy in shards)


def wait_search_idle(index: str, limit: float = 120) -> None:
    """Return once `index` is search-idle; TimeoutError after `limit` seconds."""
    began = time.monotonic()
    while not search_idle(index):
        if time.monotonic() - began > limit:
            raise TimeoutError(f"{index} was not search-idle after {limit:.0f} s")
        time.sleep(1)


def indexed(pattern: str) -> int:
    """Index operations Elasticsearch has done on the primaries of `pattern`: what it
    accepted so far, without forcing a refresh."""
    stats = es("GET", f"/{pattern}/_stats/indexing?ignore_unavailable=true&allow_no_indices=true")
    return int(stats.get("_all", {}).get("primaries", {}).get("indexing", {}).get("index_total", 0))


def merging(pattern: str) -> int:
    """Merges running now in `pattern`."""
    stats = es("GET", f"/{pattern}/_stats/merge?ignore_unavailable=true&allow_no_indices=true")
    return int(stats.get("_all", {}).get("total", {}).get("merges", {}).get("current", 0))


# Where Elasticsearch's own stats count the time its threads spent on an index's shards:
# (stats group, total time, time of it spent waiting that is not work).
_THREAD_TIMES = {
    "indexing": ("indexing", "index_time_in_millis", None),
    "merges": ("merges", "total_time_in_millis", "total_throttled_time_in_millis"),
    "refreshes": ("refresh", "total_time_in_millis", None),
}


def thread_times(pattern: str) -> dict[str, float]:
    """Seconds Elasticsearch's threads have spent on the shards of `pattern` so far, by
    kind (indexing, merges less their throttled waits, refreshes), as its index stats
    count them: wall time of those threads, and requests to other indices do not count
    (unlike the process's CPU). Zeros while `pattern` matches nothing."""
    stats = es(
        "GET",
        f"/{pattern}/_stats/indexing,merge,refresh?ignore_unavailable=true&allow_no_indices=true",
    )
    total = stats.get("_all", {}).get("total", {})
    out = {}
    for kind, (group, spent, waited) in _THREAD_TIMES.items():
        got = total.get(group, {})
        out[kind] = (got.get(spent, 0) - (got.get(waited, 0) if waited else 0)) / 1000
    return out


def node_indexed() -> int:
    """Documents the local node has indexed since it started (every index, every shard)."""
    stats = es("GET", "/_nodes/_local/stats/indices/indexing?filter_path=nodes.*.indices")
    nodes = stats.get("nodes", {}).values()
    return sum(n["indices"]["indexing"]["index_total"] for n in nodes)


def disk_per_doc(pattern: str) -> float | None:
    """Bytes on disk per document of `pattern`'s primaries once merged into one segment
    each (flushed, then force-merged: what a day's index holds after Elasticsearch's own
    merges, without the noise of how far they had got). None while it holds nothing.

    The merge costs the node CPU: call it after a run's windows have closed."""
    where = f"/{pattern}/"
    opts = "ignore_unavailable=true&allow_no_indices=true"
    es("POST", f"{where}_flush?{opts}", timeout=600)
    es("POST", f"{where}_forcemerge?max_num_segments=1&{opts}", timeout=600)
    # The merged-away segments leave the searcher at a refresh.
    es("POST", f"{where}_refresh?{opts}", timeout=600)
    return live_bytes_per_doc(pattern)


def live_bytes_per_doc(pattern: str) -> float | None:
    """Bytes of `pattern`'s primaries' live segments per document; None while it holds none.

    The live segments' own sizes: the store's figure is cached by the node for
    `index.store.stats_refresh_interval` (10 s), so right after a merge it still counts
    the files of up to 10 s before (read here: 1.5 MB for an index of 7.6 MB merged)."""
    opts = "ignore_unavailable=true&allow_no_indices=true"
    stats = es("GET", f"/{pattern}/_stats/docs?{opts}")
    docs = stats.get("_all", {}).get("primaries", {}).get("docs", {})
    count = docs.get("count", 0)
    return docs.get("total_size_in_bytes", 0) / count if count else None


def install_run_template(name: str, pattern: str, index: str | None = None) -> None:
    """The collector's index template (this checkout's, as `setup` makes it) for
    `pattern` alone, above the node's own `logpipe` template; `index` is the config's
    `index` section as LOGPIPE_INDEX takes it (JSON), None for the defaults."""
    from collector.config import IndexSettings
    from collector.templates import index_template, probe_template

    chosen = IndexSettings.model_validate_json(index) if index else IndexSettings()

    try:
        es("POST", "/_index_template/_simulate", probe_template())
        constant = True
    except urllib.error.HTTPError:
        constant = False
    body = index_template(
        shards=chosen.shards,
        replicas=chosen.replicas,
        refresh_interval=chosen.refresh_interval,
        constant_keyword=constant,
        codec=chosen.codec,
    )
    body |= {"index_patterns": [pattern], "priority": 1000, "_meta": {"managed_by": "bench"}}
    es("PUT", f"/_index_template/{name}", body)


def delete_run_template(name: str) -> None:
    """Remove what install_run_template put (gone already: nothing to do)."""
    try:
        es("DELETE", f"/_index_template/{name}")
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise


def es_pids() -> list[int]:
    """The pid of the Elasticsearch node at ES_URL (not of any other node on the machine)."""
    nodes = es("GET", "/_nodes/_local/process?filter_path=nodes.*.process.id")["nodes"]
    return [int(node["process"]["id"]) for node in nodes.values()]


def dockerd_pids() -> list[int]:
    """dockerd on the default socket (its pid file)."""
    return procstat.pid_file("/var/run/docker.pid", "dockerd")


def containerd_pids() -> list[int]:
    """containerd (started by dockerd) and the runc shims of running containers."""
    own = procstat.pid_file("/var/run/docker/containerd/containerd.pid", "containerd")
    return own + procstat.pids_named("containerd-shim-runc-v2")


def data_streams(pattern: str) -> list[dict[str, Any]]:
    """Data streams matching `pattern`, with their backing indices (no _data_stream API)."""
    try:
        resolved = es("GET", f"/_resolve/index/{pattern}")
    except urllib.error.HTTPError:
        return []
    return list(resolved.get("data_streams", []))


def free_disk(pattern: str) -> int:
    """Roll the matching data streams over and delete their old backing indices."""
    deleted = 0
    for stream in data_streams(pattern):
        es("POST", f"/{stream['name']}/_rollover")
        for index in stream["backing_indices"]:
            es("DELETE", f"/{index}")
            deleted += 1
    return deleted


def install_template() -> None:
    """`logpipe-collector setup`: the index template every logpipe stream uses."""
    code = code_dir()
    subprocess.run(
        python("collector", "setup", "--wait", "30"),
        env={**clean_env(), "LOGPIPE_ES_URL": ES_URL, "PYTHONPATH": str(code)},
        cwd=code,
        check=True,
        capture_output=True,
    )


def wait_http(url: str, seconds: float = 30) -> None:
    """Wait until `url` answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (OSError, ValueError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds}s")


def counter(base: str, names: tuple[str, ...]) -> float | None:
    """The sum of the unlabelled Prometheus series `names` served at `base`/metrics; None
    when none of them is there."""
    with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values = [
        float(v) for n, _, v in (line.partition(" ") for line in text.splitlines()) if n in names
    ]
    return sum(values) if values else None


def get_json(url: str) -> Any:
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


class Child:
    """A process the benchmark started, its output in a file: logpipe's from `code_dir()`,
    a peer's (`ours=False`) as it is."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        folder: Path,
        ours: bool = True,
        code: Path | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = folder / f"{name}.log"
        if ours and code is None:
            code = code_dir()
        if code is not None:
            env = {**env, "PYTHONPATH": os.pathsep.join([str(code), *SITE])}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                args, env=env, cwd=code, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer ends a process (nothing of it runs after);
        waited for, so that a restart finds its files and locks released."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def clean_env() -> dict[str, str]:
    """This environment without LOGPIPE_* settings that could leak into a child."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}


def start_collector(
    folder: Path,
    port: int,
    token: str,
    dataset: str,
    wrap: list[str] | None = None,
    uvloop: bool = False,
    settings: Mapping[str, str] | None = None,
    **extra: str,
) -> Child:
    """A real `logpipe-collector serve` on 127.0.0.1:`port`, ready to take batches.

    `wrap` goes before the command (a profiler); `settings` and `extra` are LOGPIPE_*
    settings (`settings` for names chosen at run time: spread as keywords, one could land
    on `wrap` or `uvloop`).
    """
    extra = {**(settings or {}), **extra}
    env = {
        **clean_env(),
        "LOGPIPE_ES_URL": ES_URL,
        "LOGPIPE_LISTEN": f"127.0.0.1:{port}",
        "LOGPIPE_TOKENS": token,
        "LOGPIPE_ROUTING__DATASET": dataset,
        **{f"LOGPIPE_{k.upper()}": v for k, v in extra.items()},
    }
    child = Child("collector", [*(wrap or []), *entry("collector", uvloop), "serve"], env, folder)
    wait_http(f"http://127.0.0.1:{port}/readyz")
    wait_retention_run(f"http://127.0.0.1:{port}")
    return child


def wait_retention_run(base: str, seconds: float = 120) -> None:
    """Until the collector at `base` ended the retention run every start makes, over every
    logpipe stream on the node (a service that runs anyway has made it before any
    measurement: on the shared node, with 1,600 streams, it cost the node and the
    collector 1-2 CPU-s together).
    A commit without the metric (before `logpipe_retention_runs_total`) is not waited for."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runs = counter(base, ("logpipe_retention_runs_total",))
        if runs is None or runs >= 1:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the collector at {base} ended no retention run within {seconds}s")


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
