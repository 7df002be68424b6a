"""Fixtures for client-library tests: a real API server per module, a client per test, and
helpers to make tenants and to restart a server with history it did not serve."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from arktos.client.config import load_config
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient
from tests.apiserver_proc import ApiServerProcess
from tests.waiting import eventually

__all__ = ["configmap", "eventually", "make_tenant", "rewrite_history"]











def configmap(name: str, namespace: str = "default", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, **meta}, "data": {"k": "v"}}


async def make_tenant(api: ApiClient, name: str) -> None:
    """A tenant with its `default` namespace (no tenant controller runs in these tests)."""
    await ResourceClient(api, "tenants").create(
        {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": name},
         "spec": {"storageClusterId": "1"}})
    await ResourceClient(api, "namespaces").create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
        tenant=name)


async def rewrite_history(server: ApiServerProcess,
                          change: Callable[[ApiClient], Any]) -> None:
    """Stop `server`, run `change` against another server process on the same data, then start
    `server` again on its port: its watch window now starts after those changes, so a client
    resuming from before them gets 410 Gone (and never saw the changes as events)."""
    await asyncio.to_thread(server.stop)
    other = await asyncio.to_thread(ApiServerProcess(server.data_dir, server.storage).start)
    try:
        async with ApiClient(load_config(other.kubeconfig)) as client:
            await change(client)
    finally:
        await asyncio.to_thread(other.stop)
    await asyncio.to_thread(server.start)
