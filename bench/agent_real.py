"""Real-node benchmark: pod startup and VM action latency on `arktos up`'s own node agent
(Podman containers, QEMU VMs under TCG on this machine).

One fresh `arktos up` (temp data dir, free port; API server, controller manager, scheduler and
the agent) per run. The bench waits until the Node is Ready, then:

1. containers: one warm-up pod (timed on its own), then `--containers` busybox pods
   (`sleep 3600`, requests cpu 10m / memory 16Mi) created all at once (or `--rate` per
   second; `--concurrency` POSTs in flight at most). Per pod, create -> Running is from the
   moment this script SENT the POST to its own pod watch first showing
   `status.phase=Running` (also create -> bind and bind -> Running). All are then deleted
   (delete -> gone is timed too).
2. VMs: one warm-up VM pod (the first VM pays the agent's one-off KVM probe), then `--vms`
   tinyvm pods (requests cpu 10m / memory 64Mi, limit memory 128Mi: 1 vCPU, 128 MiB each),
   create -> phase Running with `virtualMachineStatus.ready`; for the first `--boot-logs` of
   them, create -> the serial log (GET pods/{name}/log) containing `tinyvm booted`.
   All VMs but one are deleted.
3. actions: on that VM, `--actions` rounds of reboot, snapshot (a new name each round) and
   restore (that snapshot), one at a time; per action, POST sent -> the action watch showing
   phase Running (the agent's pickup) and Succeeded/Failed, and completionTime - startTime
   (the agent's own time).

Everything is deleted and the cluster stopped at the end (also on errors and Ctrl-C); the
bench then checks that no process it caused (qemu, conmon, podman service: anything whose
command line names the data dir) is left. The components' logs are all in `<data dir>/up.log`
(kept with `--keep-data`).

Each phase also reports the cores used per process group (`CpuWindow`) and the machine's.

Usage: .venv/bin/python bench/agent_real.py [--containers 100] [--vms 20] [--actions 10]
           [--rate 0] [--concurrency 0] [--out bench/results/agent_real.json] [--keep-data]
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
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arktos.api.meta import parse_time
from bench.agent_hollow import busy_cores, is_ready, pcts, session, watch
from bench.sched_cluster import Api, BenchError, Obj, Progress, Target, pool, say
from bench.scheduler import background, ms, raise_failed, stop_child
from tests.apiserver_proc import ApiServerProcess, admin_ssl_context

NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
ACTIONS = f"/api/v1/namespaces/{NS}/actions"
LABEL = "bench=agent-real"
BOOTED = "tinyvm booted"
SLO_S = 5.0
LEASES = "/apis/coordination.k8s.io/v1/tenants/system/namespaces/kube-system/leases"
LEADERS = ("arktos-scheduler", "arktos-controller-manager")


# --- objects --------------------------------------------------------------------------------

def container_pod(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"bench": "agent-real"}},
            "spec": {"terminationGracePeriodSeconds": 1, "automountServiceAccountToken": False,
                     "containers": [{"name": "main", "image": "localhost/busybox:latest",
                                     "command": ["sleep", "3600"],
                                     "resources": {"requests": {"cpu": "10m",
                                                                "memory": "16Mi"}}}]}}


def vm_pod(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"bench": "agent-real"}},
            "spec": {"terminationGracePeriodSeconds": 2, "virtualMachine": {
                "name": "vm", "image": "tinyvm", "keyPairName": "none",
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"},
                              "limits": {"memory": "128Mi"}}}}}


def vm_status(pod: Obj) -> Obj:
    return dict((pod.get("status") or {}).get("virtualMachineStatus") or {})


def pod_ready(pod: Obj) -> bool:
    """Phase Running, and for a VM pod also `virtualMachineStatus.ready`."""
    if (pod.get("status") or {}).get("phase") != "Running":
        return False
    return "virtualMachine" not in (pod.get("spec") or {}) or bool(vm_status(pod).get("ready"))


# --- what the watches saw -------------------------------------------------------------------

class PodTimes:
    """Per pod name (perf_counter): create sent/acknowledged, first seen bound, Running,
    ready (`pod_ready`), delete sent, gone; and the last version seen."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.acked: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.delete_sent: dict[str, float] = {}
        self.gone: dict[str, float] = {}
        self.last: dict[str, Obj] = {}

    def on_event(self, kind: str, pod: Obj, now: float) -> None:
        name = pod["metadata"]["name"]
        if kind == "DELETED":
            self.gone.setdefault(name, now)
            return
        self.last[name] = pod
        if (pod.get("spec") or {}).get("nodeName"):
            self.bound.setdefault(name, now)
        if (pod.get("status") or {}).get("phase") == "Running":
            self.running.setdefault(name, now)
        if pod_ready(pod):
            self.ready.setdefault(name, now)

    def between(self, start: dict[str, float], end: dict[str, float],
                names: list[str]) -> np.ndarray:
        return np.array([end[n] - start[n] if n in start and n in end else np.nan
                         for n in names])


class ActionTimes:
    """Per Action uid (perf_counter): first seen Running, first seen finished; last version."""

    def __init__(self) -> None:
        self.running: dict[str, float] = {}
        self.done: dict[str, float] = {}
        self.last: dict[str, Obj] = {}

    def on_event(self, kind: str, action: Obj, now: float) -> None:
        uid = action["metadata"]["uid"]
        self.last[uid] = action
        phase = (action.get("status") or {}).get("phase")
        if phase == "Running":
            self.running.setdefault(uid, now)
        if phase in ("Succeeded", "Failed"):
            self.done.setdefault(uid, now)


class NodeState:
    """The agent's Node as the watch last showed it; when it was first seen Ready."""

    def __init__(self) -> None:
        self.node: Obj = {}
        self.ready_at = 0.0

    def on_event(self, kind: str, node: Obj, now: float) -> None:
        if kind in ("ADDED", "MODIFIED"):
            self.node = node
            if is_ready(node) and not self.ready_at:
                self.ready_at = now

    def condition(self, kind: str) -> str:
        for cond in (self.node.get("status") or {}).get("conditions") or ():
            if cond.get("type") == kind:
                return str(cond.get("status"))
        return "Unknown"


@dataclass
class Bench:
    """One run: the cluster, the API, what the watches saw."""
    args: argparse.Namespace
    server: ApiServerProcess
    api: Api
    started: float
    pods: PodTimes = field(default_factory=PodTimes)
    actions: ActionTimes = field(default_factory=ActionTimes)
    node: NodeState = field(default_factory=NodeState)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def check(self) -> None:
        raise_failed(self.tasks)
        proc = self.server.proc
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"`arktos up` exited with {proc.returncode}; log tail:\n"
                             f"{self.server.log_tail()}")

    async def wait_until(self, done: Callable[[], bool], timeout: float,
                         status: Callable[[], str], also: list[asyncio.Task[None]]) -> bool:
        """Wait (showing `status`) until `done()`; False after `timeout` seconds."""
        progress, deadline = Progress(), time.perf_counter() + timeout
        while not done():
            self.check()
            raise_failed(also)
            if time.perf_counter() > deadline:
                progress.done(status() + " -- timed out")
                return False
            progress.show(status())
            await asyncio.sleep(0.1)
        progress.done(status())
        return True


# --- cluster --------------------------------------------------------------------------------

class CpuWindow:
    """CPU seconds per process group (arktos components by subcommand, qemu ours/others,
    podman, conmon, ...) between creation and `cores()`. A process's reaped children count as
    its own (podman's netavark, conmon's runc), except for PID 1 and `arktos up`: they reap
    long-lived processes (daemonized ones; a crashed component) whose whole life would land
    in the window. So a process that exits and is reaped by one of those two is missed."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.t0 = str(data_dir), time.perf_counter()
        self.sys0, self.before = psutil.cpu_times(), self.snapshot()

    def snapshot(self) -> dict[int, tuple[str, float]]:
        out = {}
        for proc in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            t = proc.info.get("cpu_times")
            if t is not None:
                group = self.group(proc.pid, proc.info)
                cpu = t.user + t.system
                if proc.pid != 1 and group != "apiserver (up)":
                    cpu += t.children_user + t.children_system
                out[proc.pid] = (group, cpu)
        return out

    def group(self, pid: int, info: dict[str, Any]) -> str:
        argv = [str(a) for a in info.get("cmdline") or ()]
        name = str(info.get("name") or "?")
        if "arktos.cli.main" in argv[:-1]:
            sub = argv[argv.index("arktos.cli.main") + 1]
            return "apiserver (up)" if sub == "up" else sub
        if pid == os.getpid():
            return "bench"
        if name.startswith("qemu-system"):
            return "qemu (ours)" if any(self.data_dir in a for a in argv) else "qemu (others)"
        return name

    def cores(self) -> dict[str, float]:
        """Cores per group (>= 0.01), and all cores' busy time (everything)."""
        wall, sums = time.perf_counter() - self.t0, dict[str, float]()
        for pid, (group, cpu) in self.snapshot().items():
            prev = self.before.get(pid)  # an exiting process may no longer show its argv
            group, cpu = (prev[0], cpu - prev[1]) if prev else (group, cpu)
            sums[group] = sums.get(group, 0.0) + cpu
        out = {g: round(c / wall, 2) for g, c in sorted(sums.items(), key=lambda x: -x[1])
               if c / wall >= 0.01}
        out["machine_busy"] = round(busy_cores(self.sys0, psutil.cpu_times(), wall), 2)
        return out


async def wait_node(b: Bench) -> Obj:
    """Wait until the agent's Node is Ready with both runtimes ready."""
    def ok() -> bool:
        return bool(b.node.ready_at) and all(b.node.condition(c) == "True" for c in (
            "ContainerRuntimeReady", "VmRuntimeReady"))

    def status() -> str:
        conds = ", ".join(f"{c} {b.node.condition(c)}" for c in (
            "Ready", "ContainerRuntimeReady", "VmRuntimeReady"))
        return f"node {b.node.node.get('metadata', {}).get('name', '?')}: {conds}"

    if not await b.wait_until(ok, b.args.ready_timeout, status, []):
        raise BenchError(f"the node was not ready after {b.args.ready_timeout:g} s: "
                         f"{status()}; see {b.server.data_dir / 'up.log'}")
    alloc = (b.node.node.get("status") or {}).get("allocatable") or {}
    return {"name": b.node.node["metadata"]["name"], "allocatable": alloc,
            "up_to_node_ready_s": round(b.node.ready_at - b.started, 2),
            "up_to_runtimes_ready_s": round(time.perf_counter() - b.started, 2)}


async def wait_leaders(b: Bench) -> Obj:
    """Wait until the scheduler and the controller manager hold their leader Leases (a
    component that crash-loops in `up` shows here, not as slow pods)."""
    held: dict[str, float] = {}
    deadline = time.perf_counter() + b.args.ready_timeout
    while len(held) < len(LEADERS):
        b.check()
        for name in set(LEADERS) - set(held):
            status, lease = await b.api.call("GET", f"{LEASES}/{name}")
            if status == 200 and (lease.get("spec") or {}).get("holderIdentity"):
                held[name] = time.perf_counter()
        if time.perf_counter() > deadline:
            raise BenchError(f"no leader after {b.args.ready_timeout:g} s for "
                             f"{sorted(set(LEADERS) - set(held))}; see "
                             f"{b.server.data_dir / 'up.log'} (e.g. `address already in use`)")
        await asyncio.sleep(0.2)
    return {f"up_to_{name.removeprefix('arktos-')}_leader_s": round(t - b.started, 2)
            for name, t in held.items()}


# --- creating and deleting pods -------------------------------------------------------------

async def create_pods(b: Bench, names: list[str], make: Callable[[str], Obj]) -> None:
    """Create the pods: all at once, `--concurrency` in flight, or at `--rate` per second."""
    t0 = time.perf_counter()

    async def one(i: int) -> None:
        if b.args.rate > 0:
            await asyncio.sleep(max(0.0, t0 + i / b.args.rate - time.perf_counter()))
        name = names[i]
        b.pods.sent[name] = time.perf_counter()
        await b.api.must("POST", PODS, make(name), ok=(201,), parse=False)
        b.pods.acked[name] = time.perf_counter()

    await pool(len(names), b.args.concurrency or len(names), one)


async def delete_pods(b: Bench, names: list[str]) -> Obj:
    """Delete the pods (their own grace period) and wait until the watch saw them go."""
    t0, cpu = time.perf_counter(), CpuWindow(b.server.data_dir)

    async def one(i: int) -> None:
        b.pods.delete_sent[names[i]] = time.perf_counter()
        await b.api.must("DELETE", f"{PODS}/{names[i]}", ok=(200, 202, 404), parse=False)

    await pool(len(names), b.args.concurrency or len(names), one)
    left = [n for n in names if n in b.pods.last]

    def status() -> str:
        return f"deleting: {sum(n in b.pods.gone for n in left)}/{len(left)} gone"

    await b.wait_until(lambda: all(n in b.pods.gone for n in left), b.args.timeout, status, [])
    gone = [b.pods.gone[n] for n in left if n in b.pods.gone]
    return {"deleted": len(names), "gone": len(gone),
            "delete_to_gone": pcts(b.pods.between(b.pods.delete_sent, b.pods.gone, names)),
            "all_gone_s": round(max(gone, default=t0) - t0, 2), "cores": cpu.cores()}


def stuck(b: Bench, names: list[str]) -> list[Obj]:
    """Why pods are not ready yet (first ten): phase, node, condition and runtime messages."""
    out = []
    for name in [n for n in names if n not in b.pods.ready][:10]:
        pod = b.pods.last.get(name) or {}
        status = pod.get("status") or {}
        waiting = [c.get("state", {}).get("waiting") for c in
                   status.get("containerStatuses") or ()]
        out.append({"pod": name, "phase": status.get("phase"),
                    "node": (pod.get("spec") or {}).get("nodeName"),
                    "conditions": [{k: c.get(k) for k in ("type", "status", "reason",
                                                           "message")}
                                   for c in status.get("conditions") or ()],
                    "waiting": [w for w in waiting if w], "vm": vm_status(pod) or None})
    return out


# --- startup phases -------------------------------------------------------------------------

async def warm_up(b: Bench, name: str, make: Callable[[str], Obj]) -> Obj:
    """One pod alone: create -> ready (the first of its kind pays one-off costs), deleted."""
    await create_pods(b, [name], make)
    ok = await b.wait_until(lambda: name in b.pods.ready, b.args.timeout,
                            lambda: f"warm-up {name}", [])
    result: Obj = {"pod": name, "create_to_ready_ms": ms(b.pods.ready[name] - b.pods.sent[name])
              if ok else None}
    if not ok:
        result["stuck"] = stuck(b, [name])
    await delete_pods(b, [name])
    return result


async def startup(b: Bench, kind: str, names: list[str], make: Callable[[str], Obj],
                  boot_logs: int = 0) -> Obj:
    """Create the pods, wait until all are ready; the figures of the phase."""
    cpu, t0 = CpuWindow(b.server.data_dir), time.perf_counter()
    booting = [asyncio.ensure_future(boot_time(b, n)) for n in names[:boot_logs]]
    creating = asyncio.ensure_future(create_pods(b, names, make))

    def status() -> str:
        return (f"[{kind}] created {len([n for n in names if n in b.pods.acked])}, bound "
                f"{sum(n in b.pods.bound for n in names)}, ready "
                f"{sum(n in b.pods.ready for n in names)}/{len(names)}, "
                f"{time.perf_counter() - t0:.1f} s")

    try:
        done = await b.wait_until(lambda: all(n in b.pods.ready for n in names),
                                  b.args.timeout, status, [creating])
        result = {**startup_figures(b, kind, names, t0), "cores": cpu.cores()}
        if booting:
            result["boot_log"] = boot_figures(await asyncio.gather(*booting), names)
    finally:
        for task in (creating, *booting):
            task.cancel()
    if not done:
        result["stuck"] = stuck(b, names)
    return result


def creates(args: argparse.Namespace) -> str:
    how = f"at {args.rate:g}/s" if args.rate > 0 else "all at once"
    return f"{how}, {args.concurrency or 'no limit of'} POSTs in flight"


def startup_figures(b: Bench, kind: str, names: list[str], t0: float) -> Obj:
    p = b.pods
    ready = p.between(p.sent, p.ready, names)
    last = max((p.ready[n] for n in names if n in p.ready), default=t0)
    p99 = float(np.nanpercentile(ready, 99)) if np.any(~np.isnan(ready)) else float("inf")
    return {"kind": kind, "pods": len(names),
            "creates": creates(b.args),
            "created": sum(n in p.acked for n in names),
            "bound": sum(n in p.bound for n in names),
            "ready": sum(n in p.ready for n in names),
            "timed_out": any(n not in p.ready for n in names),
            "create_to_ready": pcts(ready),
            "create_to_phase_running": pcts(p.between(p.sent, p.running, names)),
            "create_to_bind": pcts(p.between(p.sent, p.bound, names)),
            "bind_to_ready": pcts(p.between(p.bound, p.ready, names)),
            "create_request": pcts(p.between(p.sent, p.acked, names)),
            "total_s": round(last - t0, 2),
            "ready_per_s": round(sum(n in p.ready for n in names) / max(last - t0, 1e-9), 2),
            "slo_p99_5s_met": p99 <= SLO_S}


async def boot_time(b: Bench, name: str) -> float | None:
    """Seconds from the pod's create to its serial log showing `tinyvm booted`."""
    deadline = time.perf_counter() + b.args.timeout
    while time.perf_counter() < deadline:
        if name in b.pods.sent:
            async with b.api.http.get(b.api.url(f"{PODS}/{name}/log")) as resp:
                text = await resp.text(errors="replace")
                now = time.perf_counter()
            if resp.status == 200 and BOOTED in text:
                return now - b.pods.sent[name]
        await asyncio.sleep(0.25)
    return None


def boot_figures(times: list[float | None], names: list[str]) -> Obj:
    values = np.array([np.nan if t is None else t for t in times])
    return {"pods": names[:len(times)], "poll_interval_s": 0.25,
            "create_to_booted_ms": [None if t is None else ms(t) for t in times],
            **pcts(values)}


# --- VM actions -----------------------------------------------------------------------------

def action_body(op: str, snapshot: str) -> Obj:
    params = {"reboot": ("rebootParams", {"delayInSeconds": 0}),
              "snapshot": ("snapshotParams", {"snapshotName": snapshot}),
              "restore": ("restoreParams", {"snapshotID": snapshot})}[op]
    return {"apiVersion": "v1", "kind": "CustomAction", "operation": op, params[0]: params[1]}


async def one_action(b: Bench, pod: str, op: str, snapshot: str) -> Obj:
    """POST one action and wait until the watch shows it finished."""
    sent = time.perf_counter()
    _, out = await b.api.must("POST", f"{PODS}/{pod}/action", action_body(op, snapshot),
                              ok=(200, 201))
    uid = str(((out or {}).get("details") or {}).get("uid", ""))
    a = b.actions
    if not await b.wait_until(lambda: uid in a.done, b.args.action_timeout,
                              lambda: f"[actions] {op} {snapshot}", []):
        return {"op": op, "phase": "timed out", "post_to_done_s": None}
    status = (a.last[uid].get("status") or {})
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    return {"op": op, "snapshot": snapshot or None, "phase": status.get("phase"),
            "error": status.get("error"),
            "post_to_running_s": a.running[uid] - sent if uid in a.running else None,
            "post_to_done_s": a.done[uid] - sent,
            "agent_s": (end - start).total_seconds() if start and end else None}


async def action_phase(b: Bench, pod: str) -> Obj:
    """`--actions` rounds of reboot, snapshot, restore on one VM, one action at a time."""
    records = []
    for i in range(b.args.actions):
        for op in ("reboot", "snapshot", "restore"):
            records.append(await one_action(b, pod, op, "" if op == "reboot" else f"snap-{i}"))
    _, final = await b.api.must("GET", f"{PODS}/{pod}")
    figures: Obj = {"pod": pod, "rounds": b.args.actions,
                    "order": "reboot, snapshot snap-i, restore snap-i; one at a time"}
    for op in ("reboot", "snapshot", "restore"):
        mine = [r for r in records if r["op"] == op]
        figures[op] = {"n": len(mine),
                       "succeeded": sum(r["phase"] == "Succeeded" for r in mine),
                       "errors": sorted({str(r["error"]) for r in mine if r.get("error")}),
                       "post_to_succeeded": seconds_pcts(mine, "post_to_done_s"),
                       "post_to_running": seconds_pcts(mine, "post_to_running_s"),
                       "agent_completion_minus_start": seconds_pcts(mine, "agent_s")}
    vm = vm_status(final)
    figures["vm_after"] = {"restartCount": vm.get("restartCount"),
                           "snapshots": len(vm.get("snapshots") or ()), "ready": vm.get("ready")}
    return figures


def seconds_pcts(records: list[Obj], key: str) -> Obj:
    values = np.array([np.nan if r.get(key) is None else r[key] for r in records], float)
    out = pcts(values)
    return {k: v for k, v in out.items() if k != "p90_ms"}


# --- one run --------------------------------------------------------------------------------

async def measure(args: argparse.Namespace, server: ApiServerProcess, started: float,
                  result: Obj) -> None:
    """Fill `result` phase by phase (so that a failure keeps what was measured)."""
    target = Target(server.url, admin_ssl_context(server.url))
    async with session(target) as api:
        b = Bench(args, server, api, started)
        ready = [asyncio.Event() for _ in range(3)]
        watches = (watch(api, "/api/v1/nodes", {}, b.node.on_event, ready[0]),
                   watch(api, PODS, {"labelSelector": LABEL}, b.pods.on_event, ready[1]),
                   watch(api, ACTIONS, {}, b.actions.on_event, ready[2]))
        async with background(*watches) as tasks:
            b.tasks = tasks
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 30)
            try:
                await phases(b, result)
            finally:
                result["cleanup"] = await cleanup_pods(b)


async def phases(b: Bench, result: Obj) -> None:
    args = b.args
    result["node"] = await wait_node(b)
    result["node"].update(await wait_leaders(b))
    boxes = [f"box-{i}" for i in range(args.containers)]
    vms = [f"vm-{i}" for i in range(args.vms)]
    if boxes:
        result["container_warmup"] = await warm_up(b, "box-warm", container_pod)
        result["containers"] = await startup(b, "containers", boxes, container_pod)
        result["containers"]["deletion"] = await delete_pods(b, boxes)
    if vms:
        result["vm_warmup"] = await warm_up(b, "vm-warm", vm_pod)
        result["vms"] = await startup(b, "vms", vms, vm_pod, args.boot_logs)
        result["vms"]["deletion_of_all_but_one"] = await delete_pods(b, vms[1:])
        if args.actions and vms[0] in b.pods.ready:
            result["actions"] = await action_phase(b, vms[0])


async def cleanup_pods(b: Bench) -> Obj:
    """Delete every bench pod left and wait until they are gone."""
    with contextlib.suppress(BenchError):
        b.check()
        _, listed = await b.api.must("GET", PODS, params={"labelSelector": LABEL})
        names = [p["metadata"]["name"] for p in listed.get("items") or ()]
        return {"pods_left": names, **(await delete_pods(b, names) if names else {})}
    return {"pods_left": "unknown: the cluster is down"}


def leftovers(data_dir: Path) -> list[str]:
    """Processes whose command line names the data dir (qemu, conmon, podman, ...)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        argv = proc.info.get("cmdline") or []
        if proc.pid != os.getpid() and any(str(data_dir) in a for a in argv):
            found.append(f"{proc.pid} {shlex.join(argv)[:200]}")
    return found


def run(args: argparse.Namespace, data_dir: Path, result: Obj) -> None:
    """Start `arktos up`, measure, stop it; then look for processes left behind."""
    server = ApiServerProcess(data_dir, command="up")
    started = time.perf_counter()
    try:
        server.start()
        asyncio.run(measure(args, server, started, result))
    finally:
        interrupted = stop_child(server) if server.proc is not None else False
        time.sleep(2)
        mine = leftovers(data_dir)
        result["left_behind"] = {"processes": mine, "qemu_of_others_running": len(
            qemu_pids()) - sum("qemu-system" in p for p in mine)}
        result["up_log"] = up_log_facts(data_dir)
        if interrupted:
            raise KeyboardInterrupt


def qemu_pids() -> list[str]:
    return [str(p.pid) for p in psutil.process_iter(["name"])
            if (p.info.get("name") or "").startswith("qemu-system")]


def up_log_facts(data_dir: Path) -> Obj:
    """The accelerator the agent chose; restarts and error lines in `up.log`."""
    log = data_dir / "up.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    accel = next(iter(data_dir.glob("agent/**/accel")), None)
    return {"accel": accel.read_text().strip() if accel else None,
            "component_restarts": [ln for ln in lines if "exited with" in ln][:10],
            "error_lines": sum(" ERROR " in ln or "Traceback" in ln for ln in lines),
            "warning_lines": sum(" WARNING " in ln for ln in lines)}


# --- main -----------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--containers", type=int, default=100, help="busybox pods (<= 109)")
    ap.add_argument("--vms", type=int, default=20, help="tinyvm pods")
    ap.add_argument("--actions", type=int, default=10,
                    help="rounds of reboot, snapshot, restore on one VM")
    ap.add_argument("--boot-logs", type=int, default=3,
                    help="VMs whose serial log is polled for `tinyvm booted`")
    ap.add_argument("--concurrency", type=int, default=0,
                    help="creates/deletes in flight (0: all at once)")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="pod creates per second (0: as fast as --concurrency allows)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds a phase may take until all its pods are ready / gone")
    ap.add_argument("--ready-timeout", type=float, default=180.0,
                    help="seconds from starting `arktos up` to its Node being ready")
    ap.add_argument("--action-timeout", type=float, default=120.0)
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    ap.add_argument("--keep-data", action="store_true",
                    help="keep the data dir (its up.log has every component's log)")
    args = ap.parse_args()
    if not 0 <= args.containers <= 109 or not 0 <= args.vms <= 109:
        ap.error("the node takes 110 pods: --containers and --vms must be 0..109")
    return args


def summary(r: Obj) -> list[str]:
    node, log = r.get("node") or {}, r.get("up_log") or {}
    first = (f"node ready {node.get('up_to_node_ready_s')} s after `arktos up` (accel "
             f"{log.get('accel')}; {len(log.get('component_restarts') or ())} component "
             f"restarts, {log.get('error_lines')} error lines in up.log)")
    lines = [first]
    for kind in ("containers", "vms"):
        if p := r.get(kind):
            c, w = p["create_to_ready"], r.get(f"{kind[:-1]}_warmup", {})
            lines.append(
                f"{kind}: {p['ready']}/{p['pods']} ready in {p['total_s']} s "
                f"({p['ready_per_s']}/s); create->ready p50/p99/max {c.get('p50_ms')}/"
                f"{c.get('p99_ms')}/{c.get('max_ms')} ms (SLO p99 <= 5 s "
                f"{'met' if p['slo_p99_5s_met'] else 'MISSED'}); warm-up pod "
                f"{w.get('create_to_ready_ms')} ms")
            if boot := p.get("boot_log"):
                lines.append(f"  create->'{BOOTED}' in the serial log: "
                             f"{boot['create_to_booted_ms']} ms")
    for op, a in (r.get("actions") or {}).items():
        if isinstance(a, dict) and "post_to_succeeded" in a:
            s, g = a["post_to_succeeded"], a["agent_completion_minus_start"]
            lines.append(f"action {op}: {a['succeeded']}/{a['n']} succeeded; POST->Succeeded "
                         f"p50/max {s.get('p50_ms')}/{s.get('max_ms')} ms; agent's own "
                         f"p50/max {g.get('p50_ms')}/{g.get('max_ms')} ms")
    lines.append(f"left behind: {r.get('left_behind', {}).get('processes')}")
    return lines


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-agent-real-"))
    result: Obj = {"system": "arktos up (SQLite), real agent: Podman + QEMU",
                   "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(),
                   "command": "python bench/agent_real.py " + shlex.join(sys.argv[1:]),
                   "latency_origin": "the bench's POST sent (perf_counter) to its own watch "
                                     "seeing the state", "slo_p99_s": SLO_S}
    code = 0
    try:
        run(args, data_dir, result)
    except BenchError as err:
        say(f"error: {err}")
        result["error"], code = str(err), 2
    except KeyboardInterrupt:
        say("\ninterrupted; cleaned up")
        code = 130
    finally:
        if args.keep_data:
            say(f"data dir kept: {data_dir} (logs: {data_dir / 'up.log'})")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(summary(result)))
    sys.exit(code)


if __name__ == "__main__":
    main()
