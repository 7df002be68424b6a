"""Scheduler benchmark, end to end: pods bound per second and per-pod scheduling latency.

For each node count it creates N plain Node objects (no node agent; capacity cpu 32, memory
128Gi, pods 110; Ready and ContainerRuntimeReady on every node, VmRuntimeReady on every other
node; 3 zones), then P pods (default 10,000; `--vm-fraction` of them VM pods, the rest container
pods requesting 100m/128Mi) in a fresh namespace `bench-sched-<N>`, with a watch on that
namespace opened before the first create. It reports:

- e2e_pods_per_s: P / (last bind seen by the watch - first create sent);
- p50_ms / p99_ms: per pod, bind seen by the watch - create acknowledged;
- create_pods_per_s: P / (last create acknowledged - first create sent), to show whether
  creating or scheduling was the bottleneck;
- the scheduler's peak RSS and CPU seconds (pod phase) when this script started it, and where
  the pods went (VM pods on nodes without VmRuntimeReady are counted as misplaced).

Two modes:

- default (this project): per node count, a fresh `arktos apiserver` (SQLite, temp dir) and
  `arktos scheduler --kubeconfig DATA/admin.kubeconfig --no-leader-elect --kube-api-qps 5000
  --kube-api-burst 10000` as child processes (`--scheduler-cmd` changes the latter; '' starts
  none); everything is stopped and removed at the end, on timeout and on Ctrl-C too.
- `--kubeconfig FILE`: an already running Kubernetes-compatible cluster (e.g. kube-apiserver +
  kube-scheduler), one node count per run, only standard API calls with the kubeconfig's
  credentials (client certificate or token), VM pods off by default (`spec.virtualMachine` is
  an Arktos field). The bench's pods (force-deleted), namespace and nodes (label
  bench=scheduler) are deleted at the end unless `--keep`. Run it without a node lifecycle
  controller (or with one tolerant of missing heartbeats): the fake nodes never renew a Lease.

`--fake-bind` (test only) starts no scheduler and binds pods itself, round-robin over the nodes
(VM pods on VmRuntimeReady nodes), from a watch of its own: it checks the measurement, not a
scheduler. The in-process throughput of the algorithm alone comes from bench/scheduler_algo.py.

Usage: .venv/bin/python bench/scheduler.py [--nodes 500,1000,5000] [--pods 10000]
           [--vm-fraction 0.2] [--timeout 300] [--out bench/results/scheduler.json]
       .venv/bin/python bench/scheduler.py --kubeconfig ~/.kube/config --nodes 5000 [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api import RssSampler
from bench.sched_cluster import (
    DEFAULT_SCHEDULER,
    NODE_LABEL,
    Api,
    BenchError,
    BindRecorder,
    FakeBinder,
    Obj,
    Progress,
    Target,
    check_leftover_nodes,
    create_nodes,
    is_vm,
    load_kubeconfig,
    pod,
    pod_name,
    pool,
    say,
    vm_ready,
    watch_pods,
)
from tests.apiserver_proc import ApiServerProcess, ComponentProcess, admin_ssl_context

# --- one measurement ------------------------------------------------------------------------

@dataclass
class Scheduler:
    """The scheduler process we started (None: someone else schedules)."""
    proc: ComponentProcess | None = None
    sampler: RssSampler | None = None

    def check_alive(self) -> None:
        if self.proc is None or self.proc.proc is None:
            return
        if self.proc.proc.poll() is not None:
            raise BenchError(f"the scheduler exited with {self.proc.proc.returncode}; "
                             f"log tail:\n{self.proc.log_text()[-3000:]}")

    def cpu_s(self) -> float:
        if self.proc is None or self.proc.proc is None:
            return 0.0
        try:
            times = psutil.Process(self.proc.proc.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)


@contextlib.asynccontextmanager
async def background(*coros: Awaitable[None]) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run `coros` as tasks for the duration of the block, then cancel them; a task that
    fails makes the block's caller see its error at the next `raise_failed`."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        yield tasks
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def raise_failed(tasks: Iterable[asyncio.Task[None]]) -> None:
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def measure(args: argparse.Namespace, target: Target, nodes: int,
                  scheduler: Scheduler) -> Obj:
    """Nodes, namespace, watch, pods; then wait for every bind (or the timeout)."""
    conn = aiohttp.TCPConnector(limit=0, ssl=target.ssl)
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               **target.headers}
    async with aiohttp.ClientSession(connector=conn, headers=headers,
                                     read_bufsize=2**20) as http:
        api = Api(target, http)
        if args.kubeconfig:
            await check_leftover_nodes(api, nodes)
        ns, created_ns = args.namespace or f"bench-sched-{nodes}", False
        try:
            node_s = await create_nodes(api, nodes, args.concurrency)
            status, _ = await api.must("POST", "/api/v1/namespaces",
                                       {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": ns}}, ok=(201, 409))
            if status == 409:
                raise BenchError(f"namespace {ns} already exists (an earlier run?); delete "
                                 f"it (kubectl delete namespace {ns}) or pass --namespace")
            created_ns = True
            return await measure_pods(args, api, ns, nodes, node_s, scheduler)
        finally:
            if args.kubeconfig and not args.keep:
                await cleanup(api, ns if created_ns else "")


async def measure_pods(args: argparse.Namespace, api: Api, ns: str, nodes: int,
                       node_s: float, scheduler: Scheduler) -> Obj:
    # Pods need the namespace's default ServiceAccount on Kubernetes (its controller may be
    # slow or absent); creating it is harmless elsewhere.
    status, _ = await api.call("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                               {"apiVersion": "v1", "kind": "ServiceAccount",
                                "metadata": {"name": "default"}})
    if status not in (201, 409):
        say(f"note: could not create serviceaccount {ns}/default: {status}")
    await asyncio.sleep(args.settle)
    scheduler.check_alive()

    count = args.pods
    vm = [is_vm(i, args.vm_fraction) for i in range(count)]
    names = [pod_name(i) for i in range(count)]
    recorder = BindRecorder(set(names))
    acked = np.full(count, np.nan)
    created = 0
    watch_ready = asyncio.Event()
    coros: list[Awaitable[None]] = [watch_pods(api, ns, recorder.on_pod, watch_ready)]
    if args.fake_bind:
        coros.append(FakeBinder(api, ns, nodes).run())
    async with background(*coros) as tasks:
        while not watch_ready.is_set():
            raise_failed(tasks)
            await asyncio.sleep(0.01)

        async def create(i: int) -> None:
            nonlocal created
            await api.must("POST", f"/api/v1/namespaces/{ns}/pods", pod(i, vm[i]), ok=(201,),
                           parse=False)
            acked[i] = time.perf_counter()
            created += 1

        cpu_before = scheduler.cpu_s()
        first_sent = time.perf_counter()
        deadline = first_sent + args.timeout
        creating = asyncio.ensure_future(pool(count, args.concurrency, create))
        progress = Progress()
        timed_out = False
        try:
            while not recorder.all_bound.is_set():
                raise_failed([*tasks, creating])
                scheduler.check_alive()
                now = time.perf_counter()
                progress.show(f"[{nodes} nodes] pods created {created}/{count}, bound "
                              f"{len(recorder.bound)}, {now - first_sent:.1f} s")
                if now >= deadline:
                    timed_out = True
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(recorder.all_bound.wait(),
                                           min(0.25, deadline - now))
        finally:
            if not creating.done():
                creating.cancel()
            await asyncio.gather(creating, return_exceptions=True)
        cpu = scheduler.cpu_s() - cpu_before
    raise_failed([creating])
    bound = len(recorder.bound)
    progress.done(f"[{nodes} nodes] pods created {created}/{count}, bound {bound}"
                  + (f" -- TIMED OUT after {args.timeout:g} s" if timed_out else ""))

    index = {n: i for i, n in enumerate(names)}
    bound_at = np.array(list(recorder.bound.values()))
    lat = np.array([max(t - acked[index[n]], 0.0) for n, t in recorder.bound.items()
                    if not np.isnan(acked[index[n]])])
    last_bind = float(bound_at.max()) if bound else float("nan")
    per_node = Counter(recorder.node_of.values())
    vm_names = {names[i] for i in range(count) if vm[i]}
    misplaced = sum(1 for n, where in recorder.node_of.items()
                    if n in vm_names and not (where.startswith("bench-node-")
                                              and vm_ready(int(where.rsplit("-", 1)[1]))))
    result: Obj = {
        "nodes": nodes, "pods": count, "vm_fraction": args.vm_fraction,
        "vm_pods": len(vm_names), "bound": bound, "timed_out": timed_out,
        "e2e_pods_per_s": round(count / (last_bind - first_sent), 1) if not timed_out else None,
        "e2e_seconds": round(last_bind - first_sent, 3) if not timed_out else None,
        "p50_ms": ms(float(np.percentile(lat, 50))) if lat.size else None,
        "p99_ms": ms(float(np.percentile(lat, 99))) if lat.size else None,
        "max_ms": ms(float(lat.max())) if lat.size else None,
        "create_pods_per_s": round(created / (float(np.nanmax(acked)) - first_sent), 1)
        if created else None,
        "node_setup_s": round(node_s, 2),
        "placement": {"nodes_used": len(per_node),
                      "max_pods_per_node": max(per_node.values(), default=0),
                      "vm_pods_on_nodes_without_vm_runtime": misplaced},
        "client_retries_429_503": api.retries,
    }
    if timed_out:
        result["bound_per_s_until_timeout"] = round(bound / args.timeout, 1)
    if scheduler.proc is not None:
        result["scheduler_cpu_s"] = round(cpu, 2)
    return result


async def cleanup(api: Api, ns: str) -> None:
    """Force-delete the bench's pods (no kubelet will confirm) and namespace (when `ns`),
    then its nodes."""
    say(f"cleaning up: {f'pods and namespace {ns}, ' if ns else ''}nodes -l {NODE_LABEL}")
    steps: list[tuple[str, dict[str, str]]] = [
        (f"/api/v1/namespaces/{ns}/pods", {"gracePeriodSeconds": "0"}),
        (f"/api/v1/namespaces/{ns}", {}),
    ] if ns else []
    steps.append(("/api/v1/nodes", {"labelSelector": NODE_LABEL}))
    for path, params in steps:
        try:
            status, out = await api.call("DELETE", path, params=params or None, parse=False)
        except aiohttp.ClientError as err:
            say(f"cleanup: DELETE {path}: {err!r}")
            continue
        if status >= 300 and status != 404:
            say(f"cleanup: DELETE {path}: {status} {str(out)[:200]}")


# --- modes ----------------------------------------------------------------------------------

def stop_child(proc: ApiServerProcess | ComponentProcess | None) -> bool:
    """Stop and reap a child (SIGTERM; SIGKILL after 20 s or on Ctrl-C meanwhile), so that
    none outlives this script. Returns whether a Ctrl-C came in while waiting."""
    if proc is None or proc.proc is None:
        return False
    interrupted, sig = False, signal.SIGTERM
    while True:
        try:
            proc.stop(sig)
            return interrupted
        except subprocess.TimeoutExpired:
            sig = signal.SIGKILL
        except KeyboardInterrupt:
            interrupted, sig = True, signal.SIGKILL


def run_ours(args: argparse.Namespace, nodes: int) -> Obj:
    """A fresh API server (+ scheduler) in a temp dir, measured, then stopped and removed."""
    with tempfile.TemporaryDirectory(prefix="bench-sched-") as tmp:
        server = ApiServerProcess(Path(tmp) / "api")
        scheduler = Scheduler()
        api_rss: RssSampler | None = None
        try:
            server.start()
            assert server.proc is not None
            api_rss = RssSampler(server.proc.pid)
            api_rss.start()
            cmd = "" if args.fake_bind else args.scheduler_cmd
            if cmd:
                argv = shlex.split(cmd.format(kubeconfig=server.kubeconfig))
                scheduler.proc = ComponentProcess("scheduler", argv, Path(tmp)).start()
                assert scheduler.proc.proc is not None
                scheduler.sampler = RssSampler(scheduler.proc.proc.pid)
                scheduler.sampler.start()
            target = Target(server.url, admin_ssl_context(server.url))
            result = asyncio.run(measure(args, target, nodes, scheduler))
        finally:
            for sampler in (api_rss, scheduler.sampler):
                if sampler is not None:
                    sampler.running = False
            interrupted = stop_child(scheduler.proc)
            if stop_child(server) or interrupted:
                raise KeyboardInterrupt
        if scheduler.sampler is not None:
            result["scheduler_peak_rss_mb"] = round(scheduler.sampler.peak / 2**20, 1)
        if api_rss is not None:
            result["apiserver_peak_rss_mb"] = round(api_rss.peak / 2**20, 1)
        result["scheduler"] = ("fake-bind (test only)" if args.fake_bind
                               else args.scheduler_cmd or "none")
        return result


def run_external(args: argparse.Namespace, nodes: int) -> Obj:
    target = load_kubeconfig(args.kubeconfig, args.context)
    say(f"against {target.server} (context {args.context or 'current'})")
    result = asyncio.run(measure(args, target, nodes, Scheduler()))
    result["scheduler"] = "fake-bind (test only)" if args.fake_bind else "external"
    return result


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--nodes", default="",
                    help="node counts, comma-separated (default 500,1000,5000; with "
                         "--kubeconfig one count, default 5000)")
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--vm-fraction", type=float, default=None,
                    help="share of VM pods (default 0.2; 0 with --kubeconfig)")
    ap.add_argument("--concurrency", type=int, default=64, help="concurrent creates")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds from the first pod create to give up waiting for binds")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds between the last node and the first pod (scheduler catch-up)")
    ap.add_argument("--scheduler-cmd", default=DEFAULT_SCHEDULER,
                    help="arguments of `python -m arktos.cli.main` that start the scheduler "
                         "({kubeconfig} is replaced); '' starts none")
    ap.add_argument("--kubeconfig", type=Path,
                    help="run against this cluster instead (starts nothing)")
    ap.add_argument("--context", default="", help="kubeconfig context (default: current)")
    ap.add_argument("--namespace", default="",
                    help="namespace of the pods, created by the run (default bench-sched-N)")
    ap.add_argument("--keep", action="store_true",
                    help="with --kubeconfig: leave the nodes, namespace and pods")
    ap.add_argument("--fake-bind", action="store_true",
                    help="TEST ONLY: bind pods round-robin from this script, start no scheduler")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()
    try:
        counts = [int(n) for n in args.nodes.split(",") if n.strip()] if args.nodes else (
            [5000] if args.kubeconfig else [500, 1000, 5000])
    except ValueError:
        ap.error("--nodes: comma-separated integers")
    if args.kubeconfig and len(counts) != 1:
        ap.error("--kubeconfig runs one node count: --nodes N")
    if args.vm_fraction is None:
        args.vm_fraction = 0.0 if args.kubeconfig else 0.2
    if not 0 <= args.vm_fraction <= 1 or args.pods < 1 or min(counts) < 1:
        ap.error("need 0 <= --vm-fraction <= 1, --pods >= 1, node counts >= 1")
    signal.signal(signal.SIGTERM, _interrupt)

    runs: list[Obj] = []
    try:
        for n in counts:
            say(f"== {n} nodes, {args.pods} pods (vm fraction {args.vm_fraction:g})")
            runs.append(run_external(args, n) if args.kubeconfig else run_ours(args, n))
            say(json.dumps(runs[-1]))
    except BenchError as err:
        say(f"error: {err}")
        sys.exit(2)
    except KeyboardInterrupt:
        say("\ninterrupted; cleaned up")
        sys.exit(130)
    result: Obj = {"system": "kubeconfig" if args.kubeconfig else "arktos",
                   "cpus": os.cpu_count(), "runs": runs,
                   "command": "python bench/scheduler.py " + shlex.join(sys.argv[1:])}
    if args.fake_bind:
        result["note"] = "FAKE: pods bound by the benchmark itself; not a scheduler figure"
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if any(r["timed_out"] for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
