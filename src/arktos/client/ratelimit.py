"""Token-bucket rate limiting (client-side QPS/burst, work-queue overall limits)."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """`qps` tokens per second, at most `burst` saved up; qps <= 0 means unlimited."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.burst = max(burst, 1)
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.qps)
        self._stamp = now

    def reserve(self) -> float:
        """Take a token now; returns how long the caller must wait before using it."""
        if self.qps <= 0:
            return 0.0
        self._refill()
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def refund(self) -> None:
        """Give back the token of a `reserve` whose caller did not go ahead."""
        if self.qps > 0:
            self._tokens = min(self.burst, self._tokens + 1)

    async def acquire(self) -> None:
        """Wait until a token is available and take it (fair: first come, first served)."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
