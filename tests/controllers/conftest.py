"""Fixtures for controller tests: a real API server per module, a client per test, and a
helper that runs chosen controllers in-process while a test body runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from arktos.client.rest import ApiClient
from arktos.controllers.manager import ControllerManager, Factory
from arktos.controllers.settings import Settings


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


