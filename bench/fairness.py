"""Fairness between tenants: tenant B's create latency while tenant A floods the API server.

Starts its own API server (HTTPS, static tokens for the admins of tenants `flood` and `calm`),
measures B's p50/p99 create latency idle, then again while A runs many concurrent writers
(bounded: each writer sends a fixed number of creates, honouring 429 by counting and moving
on), and reports the ratio B-under-flood / B-idle and how many of A's requests were turned
away with 429.

Usage: .venv/bin/python bench/fairness.py [--flood-writers 64] [--flood-requests 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import ssl
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arktos.api.rbac_policy import tenant_policy
from tests.apiserver_proc import CREDENTIALS, ApiServerProcess, admin_ssl_context

TOKENS = "tok-flood,admin,u1,,,flood\ntok-calm,admin,u2,,,calm\n"


def configmap(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "data": {"k": "v" * 64}}


async def calm_latencies(http: aiohttp.ClientSession, prefix: str, n: int) -> np.ndarray:
    out = np.zeros(n)
    for i in range(n):
        t0 = time.perf_counter()
        async with http.post("/api/v1/namespaces/default/configmaps",
                             json=configmap(f"{prefix}-{i}")) as resp:
            await resp.read()
            assert resp.status == 201, resp.status
        out[i] = time.perf_counter() - t0
        await asyncio.sleep(0.005)
    return out


async def flood(http: aiohttp.ClientSession, writers: int, total: int) -> dict[str, int]:
    codes: dict[str, int] = {}
    per = total // writers

    async def writer(w: int) -> None:
        for i in range(per):
            async with http.post("/api/v1/namespaces/default/configmaps",
                                 json=configmap(f"f{w}-{i}")) as resp:
                await resp.read()
                codes[str(resp.status)] = codes.get(str(resp.status), 0) + 1

    async with asyncio.TaskGroup() as tg:
        for w in range(writers):
            tg.create_task(writer(w))
    return codes


def session(url: str, token: str, ctx: ssl.SSLContext) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=0, ssl=ctx),
                                 headers={"Authorization": f"Bearer {token}"})


async def run(server: ApiServerProcess, args: argparse.Namespace) -> dict[str, object]:
    ca, _ = CREDENTIALS[server.url]
    tls = ssl.create_default_context(cafile=ca)
    admin = aiohttp.ClientSession(server.url, connector=aiohttp.TCPConnector(
        ssl=admin_ssl_context(server.url)))
    async with admin:
        for t in ("flood", "calm"):
            await admin.post("/api/v1/tenants", json={"metadata": {"name": t}, "spec": {}})
            await admin.post(f"/api/v1/tenants/{t}/namespaces",
                             json={"metadata": {"name": "default"}})
            for obj in tenant_policy(t):  # what the tenant controller would create
                plural = "clusterroles" if obj["kind"] == "ClusterRole" else \
                    "clusterrolebindings"
                await admin.post(f"/apis/rbac.authorization.k8s.io/v1/tenants/{t}/{plural}",
                                 json=obj)
        await asyncio.sleep(0.5)
    async with session(server.url, "tok-calm", tls) as calm:
        await calm_latencies(calm, "warm", 50)
        idle = await calm_latencies(calm, "idle", args.samples)
        # The flood runs in a process of its own, so that its client work does not slow the
        # calm tenant's client (only the server is shared, as it would be in production).
        flooder = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--flood-only", server.url, ca,
            "--flood-writers", str(args.flood_writers),
            "--flood-requests", str(args.flood_requests), stdout=asyncio.subprocess.PIPE)
        await asyncio.sleep(1.0)
        busy = await calm_latencies(calm, "busy", args.samples)
        out, _ = await flooder.communicate()
        codes = json.loads(out)
    p99_idle, p99_busy = (float(np.percentile(x, 99)) * 1000 for x in (idle, busy))
    return {"calm_p50_idle_ms": round(float(np.percentile(idle, 50)) * 1000, 2),
            "calm_p99_idle_ms": round(p99_idle, 2),
            "calm_p50_flood_ms": round(float(np.percentile(busy, 50)) * 1000, 2),
            "calm_p99_flood_ms": round(p99_busy, 2),
            "p99_ratio": round(p99_busy / p99_idle, 2), "flood_responses": codes}


async def flood_only(url: str, ca: str, writers: int, total: int) -> None:
    tls = ssl.create_default_context(cafile=ca)
    async with session(url, "tok-flood", tls) as noisy:
        print(json.dumps(await flood(noisy, writers, total)))


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--flood-only":
        asyncio.run(flood_only(sys.argv[2], sys.argv[3], int(sys.argv[5]), int(sys.argv[7])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flood-writers", type=int, default=64)
    ap.add_argument("--flood-requests", type=int, default=20000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tokens.csv").write_text(TOKENS)
        server = ApiServerProcess(Path(tmp) / "api", extra_args=(
            "--token-auth-file", str(Path(tmp) / "tokens.csv"))).start()
        try:
            result = asyncio.run(run(server, args))
        finally:
            server.stop()
    result["command"] = "python bench/fairness.py " + shlex.join(sys.argv[1:])
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
