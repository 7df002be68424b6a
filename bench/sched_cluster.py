"""Cluster side of `bench/scheduler.py`: the bench's Node and Pod objects, API access
(our cluster or any kubeconfig), node creation and the pod watch that records binds."""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from arktos.client.config import ConfigError, load_config

Obj = dict[str, Any]
DEFAULT_SCHEDULER = ("scheduler --kubeconfig {kubeconfig} --no-leader-elect "
                     "--kube-api-qps 5000 --kube-api-burst 10000")
ZONES = ("zone-a", "zone-b", "zone-c")
NODE_LABEL = "bench=scheduler"
RETRY_STATUSES = (429, 503)


class BenchError(Exception):
    """A failure that ends the run with a message (not a traceback)."""


# --- objects --------------------------------------------------------------------------------

def node_name(i: int) -> str:
    return f"bench-node-{i}"


def vm_ready(i: int) -> bool:
    """VmRuntimeReady=True on every other node."""
    return i % 2 == 0


def node(i: int) -> Obj:
    name = node_name(i)
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": ZONES[i % 3],
                "bench": "scheduler"}},
            "spec": {}, "status": node_status(i)}


def node_status(i: int) -> Obj:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    resources = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "500Gi"}

    def cond(kind: str, ok: bool) -> Obj:
        return {"type": kind, "status": "True" if ok else "False", "reason": f"Bench{kind}",
                "message": "set by bench/scheduler.py", "lastHeartbeatTime": now,
                "lastTransitionTime": now}

    return {"capacity": resources, "allocatable": dict(resources),
            "conditions": [cond("Ready", True), cond("ContainerRuntimeReady", True),
                           cond("VmRuntimeReady", vm_ready(i))],
            "addresses": [{"type": "InternalIP", "address": f"10.{i >> 16 & 255}."
                           f"{i >> 8 & 255}.{i & 255}"},
                          {"type": "Hostname", "address": node_name(i)}]}


def pod_name(i: int) -> str:
    return f"bench-pod-{i}"


def is_vm(i: int, vm_fraction: float) -> bool:
    """Spread the VM pods evenly through the sequence (not all at the end)."""
    return int((i + 1) * vm_fraction) > int(i * vm_fraction)


def pod(i: int, vm: bool) -> bytes:
    spec: Obj = {"terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False}
    if vm:
        spec["virtualMachine"] = {"name": "vm", "image": "tinyvm", "keyPairName": "bench",
                                  "resources": {"requests": {"cpu": "1", "memory": "512Mi"}}}
    else:
        spec["containers"] = [{"name": "app", "image": "localhost/busybox:latest",
                               "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": pod_name(i), "labels": {
                             "app": "bench-sched", "workload": "vm" if vm else "container"}},
                         "spec": spec})


# --- API access -----------------------------------------------------------------------------

@dataclass
class Target:
    """Where and how to reach an API server: base URL, TLS context, extra headers."""
    server: str
    ssl: ssl.SSLContext | bool
    headers: dict[str, str] = field(default_factory=dict)


def load_kubeconfig(path: Path, context: str) -> Target:
    """The server and credentials of `context` (default: current-context), read by the
    project's kubeconfig loader (inline `*-data` entries become files)."""
    try:
        config = load_config(path, context=context)
    except ConfigError as exc:
        raise BenchError(str(exc)) from None
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    if not config.server.startswith("https://"):
        return Target(config.server, False, headers)
    tls = ssl.create_default_context(cafile=config.ca_file or None)
    if config.insecure:
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    if config.cert_file:
        tls.load_cert_chain(config.cert_file, config.key_file or None)
    return Target(config.server, tls, headers)


class Api:
    """Thin JSON calls over one aiohttp session; 429/503 answers are retried."""

    def __init__(self, target: Target, http: aiohttp.ClientSession) -> None:
        self.target = target
        self.http = http
        self.retries = 0

    def url(self, path: str) -> str:
        return self.target.server + path

    async def call(self, method: str, path: str, body: Obj | bytes | None = None,
                   params: dict[str, str] | None = None, parse: bool = True) -> tuple[int, Any]:
        data = body if isinstance(body, bytes | None) else orjson.dumps(body)
        for attempt in range(40):
            async with self.http.request(method, self.url(path), data=data,
                                         params=params) as resp:
                raw = await resp.read()
                if resp.status in RETRY_STATUSES and attempt < 39:
                    self.retries += 1
                    try:
                        wait = float(resp.headers.get("Retry-After") or 0)
                    except ValueError:
                        wait = 0.0
                    await asyncio.sleep(min(max(wait, 0.02 * 2 ** min(attempt, 5)), 1.0))
                    continue
                if not parse and resp.status < 300:
                    return resp.status, None
                try:
                    return resp.status, orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    return resp.status, raw.decode(errors="replace")
        raise AssertionError("unreachable")

    async def must(self, method: str, path: str, body: Obj | bytes | None = None,
                   params: dict[str, str] | None = None, ok: Iterable[int] = (200, 201),
                   parse: bool = True) -> tuple[int, Any]:
        status, out = await self.call(method, path, body, params, parse)
        if status not in tuple(ok):
            message = out.get("message", out) if isinstance(out, dict) else out
            raise BenchError(f"{method} {path}: {status} {str(message)[:300]}")
        return status, out


async def pool(count: int, concurrency: int, work: Callable[[int], Awaitable[None]]) -> None:
    """Run `work(0..count-1)` with at most `concurrency` in flight."""
    it = iter(range(count))

    async def worker() -> None:
        for i in it:
            await work(i)

    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(concurrency, count)):
                tg.create_task(worker())
    except ExceptionGroup as group:
        raise group.exceptions[0] from None


# --- progress -------------------------------------------------------------------------------

class Progress:
    """One status line on stderr (rewritten in place on a terminal, every 5 s otherwise)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.width = 0

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.25 if self.tty else 5.0):
            return
        self.last = now
        if self.tty:
            sys.stderr.write("\r" + text.ljust(self.width))
            self.width = len(text)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def done(self, text: str) -> None:
        self.show(text, force=True)
        if self.tty:
            sys.stderr.write("\n")
        self.width = 0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- nodes ----------------------------------------------------------------------------------

async def create_nodes(api: Api, count: int, concurrency: int) -> float:
    """Create (or reuse) bench-node-0..count-1 and PUT their status; returns seconds."""
    progress = Progress()
    done = 0
    start = time.perf_counter()

    async def one(i: int) -> None:
        nonlocal done
        name = node_name(i)
        status, obj = await api.must("POST", "/api/v1/nodes", node(i), ok=(201, 409))
        for _ in range(10):
            if status == 409:
                _, obj = await api.must("GET", f"/api/v1/nodes/{name}")
            obj["status"] = node_status(i)
            status, _ = await api.must("PUT", f"/api/v1/nodes/{name}/status", obj,
                                       ok=(200, 201, 409), parse=False)
            if status != 409:
                break
        else:
            raise BenchError(f"node {name}: status update kept conflicting")
        done += 1
        progress.show(f"[{count} nodes] nodes {done}/{count}")

    await pool(count, concurrency, one)
    elapsed = time.perf_counter() - start
    progress.done(f"[{count} nodes] nodes {count}/{count} in {elapsed:.1f} s")
    return elapsed


async def check_leftover_nodes(api: Api, count: int) -> None:
    _, out = await api.must("GET", "/api/v1/nodes", params={"labelSelector": NODE_LABEL})
    extra = sorted(n["metadata"]["name"] for n in out.get("items") or []
                   if n["metadata"]["name"] not in {node_name(i) for i in range(count)})
    if extra:
        raise BenchError(f"{len(extra)} bench nodes from an earlier run are beyond --nodes "
                         f"{count} (e.g. {extra[0]}); delete them first: "
                         f"kubectl delete nodes -l {NODE_LABEL}")


# --- watching pods --------------------------------------------------------------------------

Event = Callable[[str, Obj, float], None]
"""(watch event type, object, perf_counter when it arrived)."""


async def watch_pods(api: Api, ns: str, on_pod: Callable[[Obj, float], None],
                     ready: asyncio.Event) -> None:
    """`watch` the namespace's pods; `on_pod(pod, perf_counter)` for every listed pod and
    every ADDED/MODIFIED event."""
    def on_event(kind: str, obj: Obj, now: float) -> None:
        if kind in ("ADDED", "MODIFIED"):
            on_pod(obj, now)
    await watch(api, f"/api/v1/namespaces/{ns}/pods", {}, on_event, ready)


async def watch(api: Api, path: str, params: dict[str, str], on_event: Event,
                ready: asyncio.Event) -> None:
    """List `path`, then watch from that list forever (relisting on 410 Gone);
    `on_event(type, obj, perf_counter)` for every listed object (as ADDED) and event."""
    rv = ""
    while True:
        if not rv:
            _, listed = await api.must("GET", path, params=params)
            now = time.perf_counter()
            for obj in listed.get("items") or []:
                on_event("ADDED", obj, now)
            rv = listed["metadata"]["resourceVersion"]
            ready.set()
        query = {**params, "watch": "1", "allowWatchBookmarks": "true",
                 "resourceVersion": rv, "timeoutSeconds": "1800"}
        try:
            rv = await _stream(api, path, query, on_event, rv)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as err:
            say(f"watch {path} broke ({err!r}); reconnecting")
            await asyncio.sleep(0.2)


async def _stream(api: Api, path: str, query: dict[str, str], on_event: Event,
                  rv: str) -> str:
    """One watch connection; returns the resourceVersion to go on from ('' to relist)."""
    async with api.http.get(api.url(path), params=query,
                            timeout=aiohttp.ClientTimeout(total=None)) as resp:
        if resp.status == 410:
            return ""
        if resp.status != 200:
            raise BenchError(f"watch {path}: {resp.status} {await resp.text()}")
        async for line in resp.content:
            now = time.perf_counter()
            if not line.strip():
                continue
            event = orjson.loads(line)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return ""
                raise BenchError(f"watch {path}: {obj.get('message', obj)}")
            rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
            if kind != "BOOKMARK":
                on_event(kind, obj, now)
    return rv


class BindRecorder:
    """Per pod, when a watch first showed `spec.nodeName` set, and on which node."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.bound: dict[str, float] = {}
        self.node_of: dict[str, str] = {}
        self.all_bound = asyncio.Event()

    def on_pod(self, obj: Obj, now: float) -> None:
        node_name_ = (obj.get("spec") or {}).get("nodeName")
        name = obj["metadata"]["name"]
        if node_name_ and name not in self.bound and name in self.names:
            self.bound[name] = now
            self.node_of[name] = node_name_
            if len(self.bound) == len(self.names):
                self.all_bound.set()


class FakeBinder:
    """Test only: bind each new pod round-robin (VM pods to VmRuntimeReady nodes)."""

    def __init__(self, api: Api, ns: str, nodes: int, concurrency: int = 32) -> None:
        self.api = api
        self.ns = ns
        self.nodes = nodes
        self.concurrency = concurrency
        self.queue: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
        self.seen: set[str] = set()
        self.next = [0, 0]

    def on_pod(self, obj: Obj, now: float) -> None:
        name, spec = obj["metadata"]["name"], obj.get("spec") or {}
        if not spec.get("nodeName") and name not in self.seen:
            self.seen.add(name)
            self.queue.put_nowait((name, spec.get("virtualMachine") is not None))

    def pick(self, vm: bool) -> str:
        if vm:
            choices = (self.nodes + 1) // 2
            i = 2 * (self.next[1] % choices)
            self.next[1] += 1
        else:
            i = self.next[0] % self.nodes
            self.next[0] += 1
        return node_name(i)

    async def run(self) -> None:
        async def worker() -> None:
            while True:
                name, vm = await self.queue.get()
                body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": self.pick(vm)}}
                await self.api.must("POST", f"/api/v1/namespaces/{self.ns}/pods/{name}/binding",
                                    body, ok=(200, 201, 409), parse=False)

        ready = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(watch_pods(self.api, self.ns, self.on_pod, ready))
                for _ in range(self.concurrency):
                    tg.create_task(worker())
        except ExceptionGroup as group:
            raise group.exceptions[0] from None


