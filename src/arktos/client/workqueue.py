"""A work queue for controllers, shaped like client-go's rate-limited queue.

Contract:
- A key is queued at most once (de-duplication) and handed to one worker at a time: a key
  added while being processed is queued again only after `done(key)`.
- `add_rate_limited(key)` delays by the key's exponential backoff (base * 2^failures, capped)
  and an overall token bucket; `forget(key)` resets the key's failures.
- `get()` waits for a key; after `shutdown()` it raises `QueueShutDown`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from typing import Generic, TypeVar

from arktos.client.ratelimit import TokenBucket

K = TypeVar("K")


class QueueShutDown(Exception):
    """The queue was shut down."""


class WorkQueue(Generic[K]):
    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 300.0,
                 qps: float = 50.0, burst: int = 300) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._bucket = TokenBucket(qps, burst)
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._delayed: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._shut = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: K) -> None:
        """Queue `key` now (no-op if already queued)."""
        if self._shut or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._wakeup.set()

    def add_after(self, key: K, delay: float) -> None:
        """Queue `key` after `delay` seconds."""
        if delay <= 0:
            self.add(key)
            return
        heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._seq), key))
        self._arm_timer()

    def add_rate_limited(self, key: K) -> None:
        """Queue `key` again after its backoff (it failed)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self.max_delay, self.base_delay * 2.0**min(failures, 64))
        self.add_after(key, max(delay, self._bucket.reserve()))

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> K:
        """The next key; the caller must call `done(key)` when finished with it."""
        while not self._queue:
            if self._shut:
                raise QueueShutDown
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wakeup.set()

    def shutdown(self) -> None:
        self._shut = True
        if self._timer is not None:
            self._timer.cancel()
        self._wakeup.set()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self._delayed or self._shut:
            return
        delay = max(0.0, self._delayed[0][0] - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._release_due)

    def _release_due(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            self.add(key)
        self._timer = None
        self._arm_timer()
