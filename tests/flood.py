"""Fairness between tenants, measured: tenant `calm`'s create latency while tenant `flood`
floods the API server with writes (used by the fairness test and `bench/fairness.py`).

The flood runs in a process of its own (its client work must not slow the calm tenant's
client: only the server is shared, as in production) with a bounded number of requests per
writer. Idle and flooded phases alternate (the flooder is paused with SIGSTOP in between), so
that background noise on the machine falls on both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import ssl
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np

from arktos.api.rbac_policy import tenant_policy
from tests.apiserver_proc import CREDENTIALS, ApiServerProcess, admin_ssl_context

TOKENS = "tok-flood,admin,u1,,,flood\ntok-calm,admin,u2,,,calm\n"
"""The `--token-auth-file` the server must run with: an admin for each of the two tenants."""
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
ROOT = Path(__file__).resolve().parent.parent


def configmap(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "data": {"k": "v" * 64}}


def session(url: str, token: str, ca: str) -> aiohttp.ClientSession:
    tls = ssl.create_default_context(cafile=ca)
    return aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=0, ssl=tls),
                                 headers={"Authorization": f"Bearer {token}"})


async def create_tenants(url: str) -> None:
    """Tenants `flood` and `calm` with a default namespace and the tenant's default roles
    (what the tenant controller would create)."""
    admin = aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(
        ssl=admin_ssl_context(url)))
    async with admin:
        for t in ("flood", "calm"):
            await admin.post("/api/v1/tenants", json={"metadata": {"name": t}, "spec": {}})
            await admin.post(f"/api/v1/tenants/{t}/namespaces",
                             json={"metadata": {"name": "default"}})
            for obj in tenant_policy(t):
                plural = "clusterroles" if obj["kind"] == "ClusterRole" else \
                    "clusterrolebindings"
                await admin.post(f"/apis/rbac.authorization.k8s.io/v1/tenants/{t}/{plural}",
                                 json=obj)
    await asyncio.sleep(0.5)  # the authorizer's index follows the watch cache


async def latencies(http: aiohttp.ClientSession, prefix: str, n: int) -> list[float]:
    """`n` sequential creates, 5 ms apart; their latencies in seconds (all must be 201)."""
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        async with http.post(CONFIGMAPS, json=configmap(f"{prefix}-{i}")) as resp:
            await resp.read()
            assert resp.status == 201, (resp.status, await resp.text())
        out.append(time.perf_counter() - t0)
        await asyncio.sleep(0.005)
    return out


async def measure(server: ApiServerProcess, *, rounds: int, samples: int, writers: int,
                  per_writer: int) -> dict[str, object]:
    """Alternate `rounds` idle and flooded phases of `samples` calm creates each."""
    ca, _ = CREDENTIALS[server.url]
    await create_tenants(server.url)
    idle: list[float] = []
    busy: list[float] = []
    async with session(server.url, "tok-calm", ca) as calm:
        await latencies(calm, "warm", 50)
        flooder = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.flood", server.url, ca, str(writers),
            str(per_writer), stdout=asyncio.subprocess.PIPE, cwd=ROOT)

        def tell(sig: int) -> None:
            with contextlib.suppress(ProcessLookupError):
                flooder.send_signal(sig)

        try:
            for r in range(rounds):
                await asyncio.sleep(0.5)  # the flood ramps up
                busy += await latencies(calm, f"busy{r}", samples)
                tell(signal.SIGSTOP)
                await asyncio.sleep(0.5)  # the flood's queued requests drain
                idle += await latencies(calm, f"idle{r}", samples)
                tell(signal.SIGCONT)
            flooding = flooder.returncode is None
        finally:
            tell(signal.SIGCONT)
            tell(signal.SIGTERM)
            out, _ = await flooder.communicate()
    return summary(idle, busy, flooding, json.loads(out or b"{}"))


def summary(idle: list[float], busy: list[float], flooding: bool,
            codes: dict[str, int]) -> dict[str, object]:
    def ms(values: list[float], q: int) -> float:
        return round(float(np.percentile(values, q)) * 1000, 2)

    return {"calm_p50_idle_ms": ms(idle, 50), "calm_p99_idle_ms": ms(idle, 99),
            "calm_p50_flood_ms": ms(busy, 50), "calm_p99_flood_ms": ms(busy, 99),
            "p99_ratio": round(ms(busy, 99) / ms(idle, 99), 2),
            "flood_still_running": flooding, "flood_responses": codes}


async def flood(url: str, ca: str, writers: int, per_writer: int) -> None:
    """`writers` concurrent writers of `per_writer` creates each; prints the response codes
    (also when stopped early by SIGTERM)."""
    codes: dict[str, int] = {}

    async def writer(http: aiohttp.ClientSession, w: int) -> None:
        for i in range(per_writer):
            async with http.post(CONFIGMAPS, json=configmap(f"f{w}-{i}")) as resp:
                await resp.read()
                codes[str(resp.status)] = codes.get(str(resp.status), 0) + 1

    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        async with session(url, "tok-flood", ca) as http, asyncio.TaskGroup() as tg:
            for w in range(writers):
                tg.create_task(writer(http, w))
    except asyncio.CancelledError:
        pass
    print(json.dumps(codes), flush=True)


if __name__ == "__main__":
    asyncio.run(flood(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
