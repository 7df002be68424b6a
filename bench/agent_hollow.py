"""Hollow-node benchmark: what hollow nodes cost, and how fast pods start on them.

Two parts, each on a fresh cluster (API server on SQLite in a temp dir) per run:

- cost (`--cost-nodes`, default 1000,5000): `arktos agent --hollow --count N`; the time from
  starting the agent until the watch has seen all N Nodes, and all N with Ready=True; then,
  after `--settle` seconds, a steady window of `--window` seconds (default 60: six Lease
  renewals at the default 10 s interval) over which the agent's RSS is sampled every 0.5 s
  (steady = median, peak = max over the whole run) and its CPU seconds read (cores = CPU-s /
  wall-s). Lease freshness is checked by listing the Leases every 15 s (max age of
  `renewTime`), and the Node watch counts Ready flaps.
- latency (`--nodes`, default 1000; `--pods`, default 30000; `--rate`, default 0,1000,500):
  the agent with N hollow nodes and `arktos scheduler` (no controller manager), then P bare
  pods (a `--vm-fraction` of them VM pods, default 0.2) spread over `--namespaces`
  namespaces, created at `--rate` pods/s (0: as fast as `--concurrency` clients go), with a
  watch on the bench's pods (all namespaces) opened before the first create. Per pod:

  - create -> Running: from the moment its POST was SENT by this script (not the
    creationTimestamp, which has one-second resolution) to the watch first showing
    `status.phase=Running`; so it includes the create request itself and any queueing;
  - create -> bind: sent -> the watch first showing `spec.nodeName`;
  - bind -> Running: both seen by the same watch: the agent's part (its watch, the hollow
    start, the status write) plus the API server's fan-out;
  - throughput: pods Running / (last Running seen - first create sent).

  Each rate is a separate run (fresh cluster). The agent's, scheduler's and API server's CPU
  seconds and the agent's peak RSS over the run are reported too.

`--kubeconfig FILE` runs against an already running Arktos-compatible cluster instead: the
agent is still started here (with that kubeconfig, node names `--name-prefix`), nothing else is;
the cluster's scheduler binds. The bench's pods, namespaces, Nodes and Leases are deleted at
the end unless `--keep`.

Usage: .venv/bin/python bench/agent_hollow.py [--cost-nodes 1000,5000] [--nodes 1000]
           [--pods 30000] [--rate 0,1000,500] [--skip-cost] [--skip-latency]
           [--out bench/results/agent_hollow.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sched_cluster import (
    DEFAULT_SCHEDULER,
    Api,
    BenchError,
    Obj,
    Progress,
    Target,
    is_vm,
    load_kubeconfig,
    pool,
    say,
    watch,
)
from bench.scheduler import background, ms, raise_failed, stop_child
from tests.apiserver_proc import ApiServerProcess, ComponentProcess, admin_ssl_context

HOLLOW_LABEL = "arktos.io/hollow"
POD_LABEL = "app=bench-hollow"
LEASES = "/apis/coordination.k8s.io/v1/tenants/system/namespaces/kube-node-lease/leases"


# --- processes ------------------------------------------------------------------------------

class Sampler(threading.Thread):
    """Samples (perf_counter, RSS bytes, CPU seconds) of some processes every 0.5 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.procs: dict[str, psutil.Process] = {}
        self.samples: dict[str, list[tuple[float, int, float]]] = {}
        self.max_conns: dict[str, int] = {}
        self.running = True

    def watch(self, name: str, pid: int) -> None:
        self.procs[name] = psutil.Process(pid)
        self.samples[name] = []
        self.sample(name)

    def sample(self, name: str) -> tuple[float, int, float]:
        try:
            proc = self.procs[name]
            with proc.oneshot():
                cpu = proc.cpu_times()
                point = (time.perf_counter(), proc.memory_info().rss, cpu.user + cpu.system)
        except psutil.Error:
            return (time.perf_counter(), 0, float("nan"))
        self.samples[name].append(point)
        return point

    def run(self) -> None:
        tick = 0
        while self.running:
            for name in list(self.procs):
                self.sample(name)
                if tick % 4 == 0:
                    self.count_connections(name)
            tick += 1
            time.sleep(0.5)

    def count_connections(self, name: str) -> None:
        """The peak number of TCP connections of `name` (sampled every 2 s)."""
        with contextlib.suppress(psutil.Error):
            count = len(self.procs[name].net_connections(kind="tcp"))
            self.max_conns[name] = max(self.max_conns.get(name, 0), count)

    def cpu(self, name: str) -> float:
        return self.sample(name)[2] if name in self.procs else float("nan")

    def rss(self, name: str, since: float = 0.0, until: float = float("inf")) -> list[int]:
        return [r for t, r, _ in self.samples.get(name, []) if since <= t <= until and r]


@dataclass
class Cluster:
    """The processes of one run (those we started) and how to reach the API server."""
    target: Target
    kubeconfig: Path
    workdir: Path
    server: ApiServerProcess | None = None
    agent: ComponentProcess | None = None
    scheduler: ComponentProcess | None = None
    sampler: Sampler = field(default_factory=Sampler)
    agent_started: float = 0.0

    def check_alive(self) -> None:
        for proc in (self.agent, self.scheduler):
            if proc is not None and proc.proc is not None and proc.proc.poll() is not None:
                raise BenchError(f"the {proc.name} exited with {proc.proc.returncode}; log "
                                 f"tail:\n{proc.log_text()[-3000:]}")

    def start_agent(self, args: argparse.Namespace, count: int) -> None:
        argv = ["agent", "--kubeconfig", str(self.kubeconfig), "--hollow", "--count",
                str(count), "--name-prefix", args.name_prefix, *shlex.split(args.agent_args)]
        self.agent_started = time.perf_counter()
        self.agent = ComponentProcess("agent", argv, self.workdir).start()
        assert self.agent.proc is not None
        self.sampler.watch("agent", self.agent.proc.pid)

    def start_scheduler(self, cmd: str) -> None:
        argv = shlex.split(cmd.format(kubeconfig=self.kubeconfig))
        self.scheduler = ComponentProcess("scheduler", argv, self.workdir).start()
        assert self.scheduler.proc is not None
        self.sampler.watch("scheduler", self.scheduler.proc.pid)


@contextlib.contextmanager
def cluster(args: argparse.Namespace, label: str) -> Iterator[Cluster]:
    """A fresh API server in a temp dir (or the --kubeconfig cluster); every child we start
    is stopped (SIGTERM, SIGKILL after 20 s) at the end, on errors and on Ctrl-C; their
    logs are copied to `--logs`/`label` if asked."""
    with tempfile.TemporaryDirectory(prefix="bench-hollow-") as tmp:
        if args.kubeconfig:
            c = Cluster(load_kubeconfig(args.kubeconfig, ""), args.kubeconfig, Path(tmp))
        else:
            server = ApiServerProcess(Path(tmp) / "api")
            c = Cluster(Target(server.url, False), server.kubeconfig, Path(tmp), server=server)
        try:
            if c.server is not None:
                c.server.start()
                assert c.server.proc is not None
                c.target.ssl = admin_ssl_context(c.server.url)
                c.sampler.watch("apiserver", c.server.proc.pid)
            c.sampler.start()
            yield c
        finally:
            c.sampler.running = False
            interrupted = False
            for proc in (c.agent, c.scheduler, c.server):
                interrupted = stop_child(proc) or interrupted
            if args.logs:
                save_logs(Path(tmp), args.logs / label)
            if interrupted:
                raise KeyboardInterrupt


def save_logs(workdir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for log in workdir.rglob("*.log"):
        shutil.copy(log, dest / log.name)


@contextlib.asynccontextmanager
async def session(target: Target) -> AsyncIterator[Api]:
    conn = aiohttp.TCPConnector(limit=0, ssl=target.ssl)
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               **target.headers}
    async with aiohttp.ClientSession(connector=conn, headers=headers,
                                     read_bufsize=2**22) as http:
        yield Api(target, http)


# --- watching -------------------------------------------------------------------------------

def is_ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())


class NodeTracker:
    """Which of the bench's nodes the watch has seen, and seen Ready; Ready flaps after all
    were Ready once."""

    def __init__(self, prefix: str, count: int) -> None:
        self.prefix, self.count = prefix, count
        self.seen: set[str] = set()
        self.ready: set[str] = set()
        self.all_seen_at = self.all_ready_at = 0.0
        self.not_ready_events = 0

    def on_event(self, kind: str, node: Obj, now: float) -> None:
        name = node["metadata"]["name"]
        if kind not in ("ADDED", "MODIFIED") or not name.startswith(self.prefix):
            return
        self.seen.add(name)
        if len(self.seen) == self.count and not self.all_seen_at:
            self.all_seen_at = now
        if is_ready(node):
            self.ready.add(name)
            if len(self.ready) == self.count and not self.all_ready_at:
                self.all_ready_at = now
        elif name in self.ready:
            self.ready.discard(name)
            self.not_ready_events += 1


async def wait_nodes_ready(c: Cluster, tracker: NodeTracker, timeout: float) -> None:
    progress = Progress()
    deadline = time.perf_counter() + timeout
    while not tracker.all_ready_at:
        c.check_alive()
        now = time.perf_counter()
        if now > deadline:
            raise BenchError(f"only {len(tracker.ready)}/{tracker.count} nodes Ready after "
                             f"{timeout:g} s")
        progress.show(f"[{tracker.count} nodes] seen {len(tracker.seen)}, Ready "
                      f"{len(tracker.ready)}, {now - c.agent_started:.1f} s")
        await asyncio.sleep(0.1)
    progress.done(f"[{tracker.count} nodes] all Ready after "
                  f"{tracker.all_ready_at - c.agent_started:.1f} s")


async def lease_ages(api: Api, prefix: str) -> list[float]:
    """Seconds since each of the bench's Leases was last renewed."""
    _, out = await api.must("GET", LEASES)
    now = datetime.now(UTC)
    ages = []
    for lease in out.get("items") or []:
        spec = lease.get("spec") or {}
        if lease["metadata"]["name"].startswith(prefix) and spec.get("renewTime"):
            renewed = datetime.fromisoformat(spec["renewTime"])
            ages.append((now - renewed).total_seconds())
    return ages


# --- part 1: cost ---------------------------------------------------------------------------

def round_mb(rss: float) -> float:
    return round(rss / 2**20, 1)


async def measure_cost(args: argparse.Namespace, c: Cluster, count: int) -> Obj:
    tracker = NodeTracker(args.name_prefix, count)
    async with session(c.target) as api:
        ready = asyncio.Event()
        params = {"labelSelector": f"{HOLLOW_LABEL}=true"}
        async with background(watch(api, "/api/v1/nodes", params, tracker.on_event,
                                    ready)) as tasks:
            await asyncio.wait_for(ready.wait(), 30)
            c.start_agent(args, count)
            await wait_nodes_ready(c, tracker, args.ready_timeout)
            registration = {name: round(c.sampler.cpu(name), 2) for name in c.sampler.procs}
            await asyncio.sleep(args.settle)
            raise_failed(tasks)
            window = await steady_window(args, c, api, tracker)
    return {"nodes": count,
            "all_nodes_seen_s": round(tracker.all_seen_at - c.agent_started, 2),
            "all_nodes_ready_s": round(tracker.all_ready_at - c.agent_started, 2),
            "cpu_s_until_all_ready": registration,
            "agent_peak_rss_mb": round_mb(max(c.sampler.rss("agent"))), **window}


async def steady_window(args: argparse.Namespace, c: Cluster, api: Api,
                        tracker: NodeTracker) -> Obj:
    """RSS, CPU and Lease freshness over `--window` seconds; Ready flaps seen meanwhile."""
    flaps, t0 = tracker.not_ready_events, time.perf_counter()
    cpu0 = {name: c.sampler.cpu(name) for name in ("agent", "apiserver")}
    sys0 = psutil.cpu_times()
    max_age, stale = 0.0, 0
    while (left := t0 + args.window - time.perf_counter()) > 0:
        await asyncio.sleep(min(15.0, left))
        c.check_alive()
        ages = await lease_ages(api, args.name_prefix)
        max_age = max([max_age, *ages])
        stale += sum(1 for a in ages if a > args.lease_duration)
        if len(ages) < tracker.count:
            stale += tracker.count - len(ages)
    wall = time.perf_counter() - t0
    agent_cpu = c.sampler.cpu("agent") - cpu0["agent"]
    steady = c.sampler.rss("agent", t0, t0 + wall)
    n = tracker.count / 1000
    return {"window_s": round(wall, 1),
            "agent_steady_rss_mb": round_mb(statistics.median(steady)),
            "agent_window_peak_rss_mb": round_mb(max(steady)),
            "agent_cpu_s": round(agent_cpu, 2),
            "agent_cores": round(agent_cpu / wall, 3),
            "agent_rss_mb_per_1000_nodes": round_mb(statistics.median(steady) / n),
            "agent_cores_per_1000_nodes": round(agent_cpu / wall / n, 4),
            "apiserver_cores": round((c.sampler.cpu("apiserver") - cpu0["apiserver"]) / wall,
                                     3),
            "machine_busy_cores": round(busy_cores(sys0, psutil.cpu_times(), wall), 2),
            "lease_max_age_s": round(max_age, 1),
            "stale_or_missing_lease_checks": stale,
            "ready_flaps_in_window": tracker.not_ready_events - flaps}


def busy_cores(before: Any, after: Any, wall: float) -> float:
    """All cores' non-idle time over `wall` seconds, in cores (everything on the machine)."""
    def idle(t: Any) -> float:
        return float(t.idle + getattr(t, "iowait", 0.0))

    return (float(sum(after) - sum(before)) - (idle(after) - idle(before))) / wall


def run_cost(args: argparse.Namespace, count: int) -> Obj:
    load = os.getloadavg()
    with cluster(args, f"cost-{count}") as c:
        try:
            result = asyncio.run(measure_cost(args, c, count))
        finally:
            if args.kubeconfig and not args.keep:
                asyncio.run(cleanup(args, c, count, []))
    result["loadavg_before"] = [round(x, 2) for x in load]
    return result


# --- part 2: pod startup latency ------------------------------------------------------------

def pod_name(i: int) -> str:
    return f"bench-hollow-{i}"


def hollow_pod(i: int, vm: bool) -> bytes:
    spec: Obj = {"terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                 "nodeSelector": {HOLLOW_LABEL: "true"}}
    if vm:
        spec["virtualMachine"] = {"name": "vm", "image": "tinyvm", "keyPairName": "bench",
                                  "resources": {"requests": {"cpu": "1", "memory": "512Mi"}}}
    else:
        spec["containers"] = [{"name": "app", "image": "localhost/busybox:latest",
                               "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": pod_name(i), "labels": {
                             "app": "bench-hollow", "workload": "vm" if vm else "container"}},
                         "spec": spec})


class PodTracker:
    """Per pod index: when its create was sent and acknowledged, and when the watch first
    showed it bound and Running (perf_counter; NaN: not yet)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.sent, self.acked, self.bound, self.running = (np.full(count, np.nan)
                                                           for _ in range(4))
        self.n_bound = self.n_running = 0
        self.all_running = asyncio.Event()

    def on_event(self, kind: str, pod: Obj, now: float) -> None:
        name = pod["metadata"]["name"]
        if kind not in ("ADDED", "MODIFIED") or not name.startswith("bench-hollow-"):
            return
        i = int(name.rsplit("-", 1)[1])
        if i >= self.count:
            return
        if np.isnan(self.bound[i]) and (pod.get("spec") or {}).get("nodeName"):
            self.bound[i] = now
            self.n_bound += 1
        if np.isnan(self.running[i]) and (pod.get("status") or {}).get("phase") == "Running":
            self.running[i] = now
            self.n_running += 1
            if self.n_running == self.count:
                self.all_running.set()


async def create_pods(api: Api, args: argparse.Namespace, rate: float,
                      tracker: PodTracker) -> None:
    """Create the pods round-robin over the namespaces; at `rate` per second (each create
    starts at its due time, at most `--concurrency` in flight), or as fast as possible."""
    vm_fraction, spaces = args.vm_fraction, namespaces(args)
    slots = asyncio.Semaphore(args.concurrency)

    async def create(i: int) -> None:
        try:
            tracker.sent[i] = time.perf_counter()
            await api.must("POST", f"/api/v1/namespaces/{spaces[i % len(spaces)]}/pods",
                           hollow_pod(i, is_vm(i, vm_fraction)), ok=(201,), parse=False)
            tracker.acked[i] = time.perf_counter()
        finally:
            slots.release()

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for i in range(tracker.count):
            if rate > 0 and (delay := start + i / rate - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            tg.create_task(create(i))


def namespaces(args: argparse.Namespace) -> list[str]:
    return [f"bench-hollow-{i}" for i in range(args.namespaces)]


async def measure_latency(args: argparse.Namespace, c: Cluster, rate: float) -> Obj:
    nodes = NodeTracker(args.name_prefix, args.nodes)
    pods = PodTracker(args.pods)
    async with session(c.target) as api:
        ready = [asyncio.Event(), asyncio.Event()]
        node_watch = watch(api, "/api/v1/nodes", {"labelSelector": f"{HOLLOW_LABEL}=true"},
                           nodes.on_event, ready[0])
        pod_watch = watch(api, "/api/v1/pods", {"labelSelector": POD_LABEL}, pods.on_event,
                          ready[1])
        async with background(node_watch, pod_watch) as tasks:
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 30)
            c.start_agent(args, args.nodes)
            await wait_nodes_ready(c, nodes, args.ready_timeout)
            await make_namespaces(api, args)
            await asyncio.sleep(args.settle)
            result = await run_pods(args, c, api, rate, pods, tasks)
        result["node_ready_flaps"] = nodes.not_ready_events
    return result


async def make_namespaces(api: Api, args: argparse.Namespace) -> None:
    for ns in namespaces(args):
        status, _ = await api.must("POST", "/api/v1/namespaces",
                                   {"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": ns}}, ok=(201, 409))
        if status == 409:
            raise BenchError(f"namespace {ns} already exists (an earlier run?); delete it")


async def run_pods(args: argparse.Namespace, c: Cluster, api: Api, rate: float,
                   pods: PodTracker, tasks: list[asyncio.Task[None]]) -> Obj:
    cpu0 = {name: c.sampler.cpu(name) for name in ("agent", "scheduler", "apiserver")}
    sys0, t0 = psutil.cpu_times(), time.perf_counter()
    creating = asyncio.ensure_future(create_pods(api, args, rate, pods))
    progress, deadline = Progress(), t0 + args.timeout
    try:
        while not pods.all_running.is_set() and time.perf_counter() < deadline:
            raise_failed([*tasks, creating])
            c.check_alive()
            progress.show(f"[rate {rate:g}] created {np.count_nonzero(~np.isnan(pods.acked))}"
                          f", bound {pods.n_bound}, Running {pods.n_running}, "
                          f"{time.perf_counter() - t0:.1f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pods.all_running.wait(), 0.25)
    finally:
        creating.cancel()
        await asyncio.gather(creating, return_exceptions=True)
    wall = time.perf_counter() - t0
    progress.done(f"[rate {rate:g}] Running {pods.n_running}/{pods.count} in {wall:.1f} s")
    result = latency_figures(args, rate, pods)
    result["cores"] = {name: round((c.sampler.cpu(name) - cpu0[name]) / wall, 3)
                       for name in cpu0 if name in c.sampler.procs}
    result["cores"]["machine_busy"] = round(busy_cores(sys0, psutil.cpu_times(), wall), 2)
    result["agent_peak_rss_mb"] = round_mb(max(c.sampler.rss("agent", t0)))
    result["agent_rss_at_end_mb"] = round_mb(c.sampler.rss("agent")[-1])
    result["peak_tcp_connections"] = dict(c.sampler.max_conns)
    result["client_retries_429_503"] = api.retries
    return result


def pcts(values: np.ndarray) -> Obj:
    values = values[~np.isnan(values)]
    if not values.size:
        return {"n": 0}
    return {"n": int(values.size), "p50_ms": ms(float(np.percentile(values, 50))),
            "p90_ms": ms(float(np.percentile(values, 90))),
            "p99_ms": ms(float(np.percentile(values, 99))), "max_ms": ms(float(values.max()))}


def latency_figures(args: argparse.Namespace, rate: float, pods: PodTracker) -> Obj:
    first_sent = float(np.nanmin(pods.sent))
    created = int(np.count_nonzero(~np.isnan(pods.acked)))
    last_ack = float(np.nanmax(pods.acked)) if created else first_sent
    last_running = float(np.nanmax(pods.running)) if pods.n_running else first_sent
    return {"nodes": args.nodes, "pods": pods.count, "vm_fraction": args.vm_fraction,
            "namespaces": args.namespaces, "rate_asked": rate or "max",
            "concurrency": args.concurrency, "created": created,
            "creates_per_s": round(created / max(last_ack - first_sent, 1e-9), 1),
            "bound": pods.n_bound, "running": pods.n_running,
            "timed_out": pods.n_running < pods.count,
            "running_per_s": round(pods.n_running / max(last_running - first_sent, 1e-9), 1),
            "create_to_running": pcts(pods.running - pods.sent),
            "create_to_bind": pcts(pods.bound - pods.sent),
            "bind_to_running": pcts(pods.running - pods.bound),
            "create_request": pcts(pods.acked - pods.sent),
            "latency_origin": "create request sent by the bench (perf_counter), to the "
                              "bench's own watch seeing the pod bound / Running"}


def run_latency(args: argparse.Namespace, rate: float) -> Obj:
    load = os.getloadavg()
    with cluster(args, f"latency-{rate:g}") as c:
        if not args.kubeconfig and args.scheduler_cmd:
            c.start_scheduler(args.scheduler_cmd)
        try:
            result = asyncio.run(measure_latency(args, c, rate))
        finally:
            if args.kubeconfig and not args.keep:
                asyncio.run(cleanup(args, c, args.nodes, namespaces(args)))
    result["loadavg_before"] = [round(x, 2) for x in load]
    return result


# --- cleanup (--kubeconfig) -----------------------------------------------------------------

async def cleanup(args: argparse.Namespace, c: Cluster, count: int,
                  spaces: list[str]) -> None:
    """Force-delete the bench's pods and namespaces, stop the agent, then delete its Nodes
    and Leases one by one (other hollow nodes may share the label)."""
    say("cleaning up the bench's pods, namespaces, nodes and leases")
    async with session(c.target) as api:
        for ns in spaces:
            await api.call("DELETE", f"/api/v1/namespaces/{ns}/pods",
                           params={"gracePeriodSeconds": "0"}, parse=False)
            await api.call("DELETE", f"/api/v1/namespaces/{ns}", parse=False)
        stop_child(c.agent)

        async def one(i: int) -> None:
            name = f"{args.name_prefix}{i}"
            await api.call("DELETE", f"/api/v1/nodes/{name}", parse=False)
            await api.call("DELETE", f"{LEASES}/{name}", parse=False)

        await pool(count, 32, one)


# --- main -----------------------------------------------------------------------------------

def add_timing_flags(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--window", type=float, default=60.0, help="steady window, seconds")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds between all nodes Ready and measuring")
    ap.add_argument("--ready-timeout", type=float, default=600.0)
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds from the first create to give up waiting for Running")
    ap.add_argument("--lease-duration", type=float, default=40.0,
                    help="a Lease older than this counts as stale (the agent's default)")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cost-nodes", default="1000,5000",
                    help="node counts of the cost part, comma-separated (one run each)")
    ap.add_argument("--nodes", type=int, default=1000, help="hollow nodes, latency part")
    ap.add_argument("--pods", type=int, default=30_000)
    ap.add_argument("--rate", default="0,1000,500",
                    help="pod creates per second, comma-separated (one run each); 0: as "
                         "fast as --concurrency clients go")
    ap.add_argument("--concurrency", type=int, default=64, help="creates in flight, at most")
    ap.add_argument("--vm-fraction", type=float, default=0.2, help="share of VM pods")
    ap.add_argument("--namespaces", type=int, default=3)
    add_timing_flags(ap)
    ap.add_argument("--name-prefix", default="hollow-bench-")
    ap.add_argument("--agent-args", default="", help="extra `arktos agent` arguments")
    ap.add_argument("--scheduler-cmd", default=DEFAULT_SCHEDULER,
                    help="`arktos` arguments starting the scheduler ({kubeconfig} replaced)")
    ap.add_argument("--kubeconfig", type=Path,
                    help="run against this cluster (starts only the agent)")
    ap.add_argument("--keep", action="store_true",
                    help="with --kubeconfig: leave the pods, namespaces, nodes, leases")
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    ap.add_argument("--append", action="store_true",
                    help="add this invocation's runs to the existing --out file")
    ap.add_argument("--logs", type=Path, help="copy the components' logs here, per run")
    args = ap.parse_args()
    try:
        args.cost_counts = [int(n) for n in args.cost_nodes.split(",") if n.strip()]
        args.rates = [float(r) for r in args.rate.split(",") if r.strip()]
    except ValueError:
        ap.error("--cost-nodes and --rate take comma-separated numbers")
    if not 0 <= args.vm_fraction <= 1 or args.pods < 1 or args.nodes < 1:
        ap.error("need 0 <= --vm-fraction <= 1, --pods >= 1, --nodes >= 1")
    return args


def marginal(runs: list[Obj]) -> Obj | None:
    """RSS and cores per 1,000 more nodes, between the smallest and the largest cost run (the
    interpreter's own base RSS cancels out)."""
    if len(runs) < 2:
        return None
    a, b = min(runs, key=lambda r: r["nodes"]), max(runs, key=lambda r: r["nodes"])
    k = (b["nodes"] - a["nodes"]) / 1000
    return {"between": [a["nodes"], b["nodes"]],
            "rss_mb_per_1000_nodes": round((b["agent_steady_rss_mb"]
                                            - a["agent_steady_rss_mb"]) / k, 1),
            "cores_per_1000_nodes": round((b["agent_cores"] - a["agent_cores"]) / k, 4)}


def merge(old: Obj, new: Obj) -> Obj:
    """`old`'s runs followed by `new`'s; each run keeps the command that made it."""
    for part in ("cost", "latency"):
        for run in old[part]:
            run.setdefault("command", old.get("command"))
        for run in new[part]:
            run["command"] = new["command"]
    merged = {**new, "cost": old["cost"] + new["cost"],
              "latency": old["latency"] + new["latency"],
              "command": [*([old["command"]] if isinstance(old["command"], str)
                            else old["command"]), new["command"]]}
    merged["cost_marginal"] = marginal(merged["cost"])
    return merged


def summary(result: Obj) -> list[str]:
    lines = []
    if m := result.get("cost_marginal"):
        lines.append(f"cost, marginal between {m['between'][0]} and {m['between'][1]} nodes: "
                     f"{m['rss_mb_per_1000_nodes']} MB and {m['cores_per_1000_nodes']} cores "
                     f"per 1,000 nodes")
    for r in result["cost"]:
        lines.append(
            f"cost {r['nodes']:>5} nodes: all Ready in {r['all_nodes_ready_s']} s; agent RSS "
            f"{r['agent_steady_rss_mb']} MB steady (peak {r['agent_peak_rss_mb']}), "
            f"{r['agent_cores']} cores -> {r['agent_rss_mb_per_1000_nodes']} MB and "
            f"{r['agent_cores_per_1000_nodes']} cores per 1,000 nodes; lease max age "
            f"{r['lease_max_age_s']} s, stale {r['stale_or_missing_lease_checks']}")
    for r in result["latency"]:
        cr, br = r["create_to_running"], r["bind_to_running"]
        lines.append(
            f"latency rate {r['rate_asked']}: {r['running']}/{r['pods']} Running, "
            f"{r['running_per_s']}/s (creates {r['creates_per_s']}/s); create->Running "
            f"p50/p99/max {cr.get('p50_ms')}/{cr.get('p99_ms')}/{cr.get('max_ms')} ms; "
            f"bind->Running p50/p99 {br.get('p50_ms')}/{br.get('p99_ms')} ms")
    return lines


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    result: Obj = {"system": "kubeconfig" if args.kubeconfig else "arktos (SQLite)",
                   "cpus": os.cpu_count(), "cost": [], "latency": [],
                   "command": "python bench/agent_hollow.py " + shlex.join(sys.argv[1:])}
    try:
        for n in [] if args.skip_cost else args.cost_counts:
            say(f"== cost: {n} hollow nodes")
            result["cost"].append(run_cost(args, n))
            say(json.dumps(result["cost"][-1]))
        for rate in [] if args.skip_latency else args.rates:
            say(f"== latency: {args.nodes} nodes, {args.pods} pods, rate {rate:g}")
            result["latency"].append(run_latency(args, rate))
            say(json.dumps(result["latency"][-1]))
    except BenchError as err:
        say(f"error: {err}")
        sys.exit(2)
    except KeyboardInterrupt:
        say("\ninterrupted; cleaned up")
        sys.exit(130)
    result["cost_marginal"] = marginal(result["cost"])
    if args.out and args.append and args.out.exists():
        result = merge(json.loads(args.out.read_text()), result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(summary(result)))
    if any(r["timed_out"] for r in result["latency"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
