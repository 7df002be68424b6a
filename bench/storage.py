"""Raw storage throughput: C concurrent callers each loop create -> update -> delete.

Starts its own throw-away SQLite file or etcd server.
Usage: .venv/bin/python bench/storage.py --backend sqlite|etcd [--callers 64] [--ops 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arktos.storage.url import open_storage
from tests.etcd_server import start_etcd


async def measure(url: str, callers: int, per: int) -> float:
    store = await open_storage(url)
    value = os.urandom(100).hex().encode()

    async def worker(i: int) -> None:
        for j in range(per):
            key = f"/bench/{i}/{j}"
            rev = await store.create(key, value)
            rev = await store.update(key, value, expected_revision=rev)
            await store.delete(key, expected_revision=rev)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for i in range(callers):
            tg.create_task(worker(i))
    elapsed = time.perf_counter() - start
    await store.close()
    return callers * per * 3 / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "etcd"], default="sqlite")
    ap.add_argument("--callers", type=int, default=64)
    ap.add_argument("--ops", type=int, default=300, help="create/update/delete loops per caller")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend == "etcd":
            with start_etcd(Path(tmp)) as etcd:
                rate = asyncio.run(measure(etcd.url, args.callers, args.ops))
        else:
            rate = asyncio.run(measure(f"sqlite:///{tmp}/bench.db", args.callers, args.ops))
    print(json.dumps({"backend": args.backend, "callers": args.callers,
                      "writes_per_s": round(rate), "command": "python bench/storage.py "
                      + shlex.join(sys.argv[1:])}))


if __name__ == "__main__":
    main()
