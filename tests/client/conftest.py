"""Fixtures for client-library tests: a real API server per module, a client per test, and
helpers to make tenants and to restart a server with history it did not serve."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from arktos.client.config import load_config
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient
from tests.apiserver_proc import ApiServerProcess

__all__ = ["configmap", "eventually", "make_tenant", "rewrite_history"]

_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    proc = ApiServerProcess(Path(tmp_path_factory.mktemp("client-apiserver"))).start()
    yield proc
    proc.stop()


@pytest.fixture
async def api(server: ApiServerProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_config(server.kubeconfig)) as client:
        yield client


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique names per test (servers are shared by a module)."""
    return lambda prefix: f"{prefix}-{next(_names)}"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0,
                     interval: float = 0.05) -> None:
    """Poll `check` until it returns True; fail with AssertionError after `timeout`. (As
    tests.controllers.conftest's, kept here so these tests do not import the controllers.)"""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check.__name__}")
        await asyncio.sleep(interval)


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
