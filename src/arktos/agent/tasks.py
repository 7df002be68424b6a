"""Starting work in a task group that may be shutting down (the agent is stopping)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def start_soon(tg: asyncio.TaskGroup, work: Coroutine[Any, Any, None]) -> bool:
    """Run `work` in `tg`; False (and `work` is discarded) if `tg` no longer takes tasks,
    which happens when an informer event or a timer arrives while the agent stops."""
    try:
        tg.create_task(work)
    except RuntimeError:
        work.close()
        return False
    return True
