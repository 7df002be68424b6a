"""kill -9 of a process writing to a SQLite store loses no acknowledged write."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from arktos.storage.sqlite import SqliteStorage

# Writes keys from 32 concurrent tasks; prints "key revision" once each create returned.
_WRITER = """
import asyncio, sys
from arktos.storage.sqlite import SqliteStorage

async def main(path: str) -> None:
    store = await SqliteStorage.open(path)

    async def worker(w: int) -> None:
        for i in range(10**9):
            key = f"/crash/{w}/{i}"
            rev = await store.create(key, b"x" * 200)
            sys.stdout.write(f"{key} {rev}\\n")
            sys.stdout.flush()

    await asyncio.gather(*(worker(w) for w in range(32)))

asyncio.run(main(sys.argv[1]))
"""


async def _acknowledged_then_kill(path: Path, run_for: float) -> dict[str, int]:
    """Run the writer until `run_for` s after its first acknowledgement, kill -9 it, and
    return every key it acknowledged, with its revision."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _WRITER, str(path),
                                                stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    acked: dict[str, int] = {}

    async def read_all() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            if line.endswith(b"\n"):  # a line cut by the kill was not fully acknowledged
                key, rev = line.decode().split()
                acked[key] = int(rev)

    reader = asyncio.create_task(read_all())
    async with asyncio.timeout(20):
        while not acked:
            assert not reader.done(), f"the writer exited early ({await proc.wait()})"
            await asyncio.sleep(0.01)
    await asyncio.sleep(run_for)
    proc.kill()  # SIGKILL
    await proc.wait()
    await reader
    return acked


async def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    acked = await _acknowledged_then_kill(path, run_for=1.0)
    assert len(acked) > 100

    store = await SqliteStorage.open(path)
    try:
        items, rev, _ = await store.range("/crash/")
        stored = {kv.key: kv.mod_revision for kv in items}
        missing = [key for key in acked if key not in stored]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged keys lost"
        assert all(stored[key] == r for key, r in acked.items())
        assert rev == await store.current_revision() >= max(acked.values())
        assert await store.create("/after-crash", b"") == rev + 1
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
