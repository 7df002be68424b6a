"""Fixtures for controller tests: a real API server per module, a client per test, and a
helper that runs chosen controllers in-process while a test body runs."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from arktos.client.config import load_config
from arktos.client.rest import ApiClient
from arktos.controllers.manager import ControllerManager, Factory
from arktos.controllers.settings import Settings
from tests.apiserver_proc import ApiServerProcess

_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    proc = ApiServerProcess(Path(tmp_path_factory.mktemp("cm-apiserver"))).start()
    yield proc
    proc.stop()


@pytest.fixture
async def api(server: ApiServerProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_config(server.kubeconfig)) as client:
        yield client


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique names per test (the API server is shared by a module)."""
    return lambda prefix: f"{prefix}-{next(_names)}"


@contextlib.asynccontextmanager
async def running(api: ApiClient, factories: Sequence[Factory],
                  **settings: Any) -> AsyncIterator[ControllerManager]:
    """Run `factories` (without leader election unless asked) for the body of the block."""
    settings.setdefault("leader_elect", False)
    manager = ControllerManager(api, factories, settings=Settings(**settings))
    task = asyncio.create_task(manager.run())
    try:
        yield manager
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0,
                     interval: float = 0.1) -> None:
    """Poll `check` until it returns True; fail with AssertionError after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check.__name__}")
        await asyncio.sleep(interval)
