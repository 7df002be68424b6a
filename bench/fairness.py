"""Fairness between tenants: tenant B's create latency while tenant A floods the API server.

Starts its own API server (HTTPS, static tokens for the admins of tenants `flood` and `calm`,
the fair shares of `arktos up`), then alternates idle and flooded phases (A: many concurrent
writers with a bounded number of creates each, in a process of its own) while B creates one
object at a time, and reports B's p50/p99 in both and the ratio flooded/idle, with A's
response codes. A's excess requests wait in A's queue, paced to A's rate share.

Usage: .venv/bin/python bench/fairness.py [--rounds 6] [--samples 100] [--flood-writers 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.apiserver_proc import ApiServerProcess
from tests.flood import TOKENS, measure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--samples", type=int, default=100, help="calm creates per phase")
    ap.add_argument("--flood-writers", type=int, default=64)
    ap.add_argument("--flood-per-writer", type=int, default=200)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tokens.csv").write_text(TOKENS)
        server = ApiServerProcess(Path(tmp) / "api", extra_args=(
            "--token-auth-file", str(Path(tmp) / "tokens.csv"))).start()
        try:
            result = asyncio.run(measure(server, rounds=args.rounds, samples=args.samples,
                                         writers=args.flood_writers,
                                         per_writer=args.flood_per_writer))
        finally:
            server.stop()
    result["command"] = "python bench/fairness.py " + shlex.join(sys.argv[1:])
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
