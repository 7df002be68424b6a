"""API server benchmark: pod creates, a 10k-pod list, and watch fan-out.

Starts its own `arktos apiserver` (and etcd for `--backend etcd`) on loopback, then:
1. creates N pods with C concurrent clients (creates/s, p50/p99 latency);
2. lists all pods (seconds, best of 3);
3. opens W watchers on the namespace and creates M more pods at a steady rate, measuring
   the delay from each create's acknowledgement to its ADDED event at every watcher (p50/p99);
and samples the API server's peak RSS throughout.

Usage: .venv/bin/python bench/api.py --backend sqlite [--pods 10000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.apiserver_proc import ApiServerProcess, admin_ssl_context
from tests.etcd_server import start_etcd

NS = "bench"
_NAME = re.compile(rb'"name":"(w-\d+)"')


def pod(name: str) -> bytes:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.25",
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
    }).encode()


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.1)


async def create_all(http: aiohttp.ClientSession, url: str, names: list[str],
                     concurrency: int) -> tuple[float, np.ndarray]:
    latencies = np.zeros(len(names))
    it = iter(enumerate(names))

    async def worker() -> None:
        for i, name in it:
            t0 = time.perf_counter()
            async with http.post(url, data=pod(name),
                                 headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                assert resp.status == 201, resp.status
            latencies[i] = time.perf_counter() - t0

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    return time.perf_counter() - start, latencies


async def list_time(http: aiohttp.ClientSession, url: str, expect: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        async with http.get(url) as resp:
            body = await resp.read()
        best = min(best, time.perf_counter() - t0)
        assert len(json.loads(body)["items"]) >= expect
    return best


async def watch_fanout(http: aiohttp.ClientSession, base: str, watchers: int,
                       events: int, rate: float) -> np.ndarray:
    """Delay from create acknowledgement to delivery, for every (watcher, event)."""
    acked: dict[str, float] = {}
    received: list[list[tuple[str, float]]] = [[] for _ in range(watchers)]
    async with http.get(f"{base}/pods") as resp:
        rv = json.loads(await resp.read())["metadata"]["resourceVersion"]
    ready = asyncio.Event()
    opened = 0

    async def watch(idx: int) -> None:
        nonlocal opened
        params = {"watch": "1", "resourceVersion": rv, "labelSelector": "tier=watched"}
        async with http.get(f"{base}/pods", params=params,
                            timeout=aiohttp.ClientTimeout(total=None)) as resp:
            opened += 1
            if opened == watchers:
                ready.set()
            async for line in resp.content:
                m = _NAME.search(line)
                if m:
                    received[idx].append((m.group(1).decode(), time.perf_counter()))
                    if len(received[idx]) == events:
                        return

    async def produce() -> None:
        await ready.wait()
        for i in range(events):
            name = f"w-{i}"
            body = json.loads(pod(name))
            body["metadata"]["labels"]["tier"] = "watched"
            async with http.post(f"{base}/pods", json=body) as resp:
                await resp.read()
            acked[name] = time.perf_counter()
            await asyncio.sleep(1 / rate)

    async with asyncio.timeout(300):
        async with asyncio.TaskGroup() as tg:
            for i in range(watchers):
                tg.create_task(watch(i))
            tg.create_task(produce())
    return np.array([max(t - acked[n], 0.0) for r in received for n, t in r])


async def run(args: argparse.Namespace, server: ApiServerProcess) -> dict[str, Any]:
    conn = aiohttp.TCPConnector(limit=0, ssl=admin_ssl_context(server.url))
    async with aiohttp.ClientSession(server.url, connector=conn) as http:
        await http.post("/api/v1/namespaces", json={"metadata": {"name": NS}})
        base = f"/api/v1/namespaces/{NS}"
        names = [f"p-{i}" for i in range(args.pods)]
        elapsed, lat = await create_all(http, f"{base}/pods", names, args.concurrency)
        listed = await list_time(http, f"{base}/pods", args.pods)
        delays = await watch_fanout(http, base, args.watchers, args.watch_events, args.rate)
    return {
        "backend": args.backend, "pods": args.pods, "concurrency": args.concurrency,
        "creates_per_s": round(args.pods / elapsed, 1),
        "create_p50_ms": round(float(np.percentile(lat, 50)) * 1000, 2),
        "create_p99_ms": round(float(np.percentile(lat, 99)) * 1000, 2),
        "list_s": round(listed, 3),
        "watchers": args.watchers, "watch_events": args.watch_events,
        "watch_deliveries": int(delays.size),
        "watch_p50_ms": round(float(np.percentile(delays, 50)) * 1000, 2),
        "watch_p99_ms": round(float(np.percentile(delays, 99)) * 1000, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "etcd"], default="sqlite")
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--watch-events", type=int, default=500)
    ap.add_argument("--rate", type=float, default=200.0, help="watched creates per second")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        etcd = start_etcd(Path(tmp) / "etcd") if args.backend == "etcd" else None
        server = ApiServerProcess(Path(tmp) / "api", etcd.url if etcd else "").start()
        assert server.proc is not None
        sampler = RssSampler(server.proc.pid)
        sampler.start()
        try:
            result = asyncio.run(run(args, server))
        finally:
            sampler.running = False
            server.stop()
            if etcd:
                etcd.stop()
    result["apiserver_peak_rss_mb"] = round(sampler.peak / 2**20, 1)
    result["command"] = "python bench/api.py " + shlex.join(sys.argv[1:])
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
