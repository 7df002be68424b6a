"""`arktos up` runs each component beside the API server as a child process (one core each)
and restarts a child that dies, with backoff; on shutdown children get SIGTERM, then SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time

log = logging.getLogger(__name__)
_STOP_GRACE = 10.0
_HEALTHY_RUN = 60.0
"""Seconds a child must have run for its restart back-off to start over."""


async def supervise(name: str, args: list[str]) -> None:
    """Run `python -m arktos.cli.main *args` until cancelled, restarting it when it exits."""
    failures = 0
    while True:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "arktos.cli.main",
                                                    *args)
        try:
            code = await proc.wait()
        except asyncio.CancelledError:
            await _stop(proc)
            raise
        if time.monotonic() - started > _HEALTHY_RUN:
            failures = 0  # it ran fine for a while: back-off starts over
        failures += 1
        delay = min(30.0, 0.5 * 2 ** min(failures, 6))
        log.warning("%s exited with %s; restarting in %.1fs", name, code, delay)
        await asyncio.sleep(delay)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), _STOP_GRACE)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
