"""Fair sharing between tenants: while tenant `flood` floods the API server with writes,
tenant `calm`'s p99 create latency stays within 2x its idle p99 (issue 4's acceptance).

Marked `quiet`: `make test` runs it after the parallel suite, alone, because it compares
latencies and another test's load on the same two cores would be measured too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apiserver_proc import ApiServerProcess
from tests.flood import TOKENS, measure


@pytest.mark.quiet
async def test_a_flooding_tenant_does_not_slow_another(tmp_path: Path) -> None:
    (tmp_path / "tokens.csv").write_text(TOKENS)
    server = ApiServerProcess(tmp_path / "api", extra_args=(
        "--token-auth-file", str(tmp_path / "tokens.csv"))).start()
    try:
        result = await measure(server, rounds=4, samples=75, writers=32, per_writer=100)
    finally:
        server.stop()
    assert result["flood_still_running"], f"the flood ended before the measurement: {result}"
    codes = result["flood_responses"]
    assert isinstance(codes, dict) and codes.get("201", 0) > 500, result
    assert isinstance(result["p99_ratio"], float) and result["p99_ratio"] <= 2.0, result
