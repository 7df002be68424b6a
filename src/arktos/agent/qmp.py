"""QMP calls to one QEMU through its Unix socket, with the `qemu.qmp` library (PyPI
`qemu.qmp`). One connection per call: a call connects, negotiates, runs its command and
disconnects. That costs a few milliseconds, but holds no state, so it works the same for
a VM this process booted and one it adopted, and a QEMU that exits mid-call (`quit`, guest
power-off) leaves nothing behind. QEMU serves one QMP client at a time: callers serialize
their calls per VM (the runtime holds a lock per VM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from qemu.qmp import ExecuteError, QMPClient, QMPError

logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


class QmpUnavailable(ConnectionError):
    """No QEMU answers on the socket (not running, or gone mid-call)."""


class QmpCommandError(RuntimeError):
    """QEMU answered with an error (`error_class`, e.g. `GenericError`)."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


async def call(socket: Path, command: str, arguments: dict[str, Any] | None = None,
               timeout: float = 10.0) -> Any:
    """Run one QMP command; its `return` value. Raises QmpUnavailable, QmpCommandError or
    TimeoutError."""
    client = QMPClient(f"arktos-{socket.parent.name}")
    try:
        async with asyncio.timeout(timeout):
            try:
                await client.connect(str(socket))
            except (OSError, QMPError) as e:
                raise QmpUnavailable(f"QMP {socket}: {e}") from e
            try:
                return await client.execute(command, arguments)
            except ExecuteError as e:
                raise QmpCommandError(e.error_class, e.error.error.desc) from e
            except (OSError, EOFError, QMPError) as e:
                raise QmpUnavailable(f"QMP {command}: {e}") from e
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()


async def hmp(socket: Path, line: str, timeout: float = 60.0) -> str:
    """Run a human monitor command (`savevm x`, `info snapshots`); its output text."""
    out = await call(socket, "human-monitor-command", {"command-line": line}, timeout)
    return str(out or "")


async def status(socket: Path, timeout: float = 5.0) -> str:
    """QEMU's run state: `running`, `paused`, `shutdown`, `guest-panicked`, ..."""
    return str((await call(socket, "query-status", timeout=timeout))["status"])
