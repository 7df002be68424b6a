"""Controller manager benchmark: 100 Deployments x 10 replicas (1,000 pods).

Starts its own API server and `arktos controller-manager`, creates the Deployments, and
measures the time until every ReplicaSet reports all its replicas created
(`status.replicas == spec.replicas`), plus the controller manager's CPU seconds and peak RSS.

Usage: .venv/bin/python bench/controllers.py [--deployments 100] [--replicas 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api import RssSampler
from tests.apiserver_proc import ApiServerProcess, admin_ssl_context

NS = "bench"


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app",
                                                           "image": "nginx:1.25"}]}}}}


async def replicas_done(http: aiohttp.ClientSession, expect: int, want: int) -> bool:
    async with http.get(f"/apis/apps/v1/namespaces/{NS}/replicasets") as resp:
        items = (await resp.json())["items"]
    done = [rs for rs in items if (rs.get("status") or {}).get("replicas") == want]
    return len(done) >= expect


async def run(server: ApiServerProcess, args: argparse.Namespace) -> float:
    conn = aiohttp.TCPConnector(ssl=admin_ssl_context(server.url))
    async with aiohttp.ClientSession(server.url, connector=conn) as http:
        await http.post("/api/v1/namespaces", json={"metadata": {"name": NS}})
        start = time.perf_counter()
        sem = asyncio.Semaphore(16)

        async def create(i: int) -> None:
            async with sem, http.post(f"/apis/apps/v1/namespaces/{NS}/deployments",
                                      json=deployment(f"d{i}", args.replicas)) as resp:
                assert resp.status == 201, await resp.text()

        await asyncio.gather(*(create(i) for i in range(args.deployments)))
        while not await replicas_done(http, args.deployments, args.replicas):
            await asyncio.sleep(0.1)
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deployments", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ApiServerProcess(Path(tmp)).start()
        cm = subprocess.Popen([sys.executable, "-m", "arktos.cli.main", "controller-manager",
                               "--kubeconfig", str(server.kubeconfig), "--no-leader-elect"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sampler = RssSampler(cm.pid)
        sampler.start()
        try:
            time.sleep(2)
            cpu_before = sum(psutil.Process(cm.pid).cpu_times()[:2])
            elapsed = asyncio.run(run(server, args))
            cpu = sum(psutil.Process(cm.pid).cpu_times()[:2]) - cpu_before
        finally:
            sampler.running = False
            cm.terminate()
            cm.wait(timeout=20)
            server.stop()
    result = {"deployments": args.deployments, "replicas": args.replicas,
              "pods": args.deployments * args.replicas, "seconds": round(elapsed, 2),
              "controller_manager_cpu_s": round(cpu, 2),
              "controller_manager_peak_rss_mb": round(sampler.peak / 2**20, 1),
              "command": "python bench/controllers.py " + shlex.join(sys.argv[1:])}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
