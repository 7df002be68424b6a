"""When each node's next heartbeat is due: one schedule for all the nodes of a process, so
one loop renews every Lease (no task per node). No I/O; time is passed in.

The first renewals are spread evenly over one period, so N nodes make N/period requests per
second instead of N at once.
"""

from __future__ import annotations

import heapq
import itertools


class RenewalSchedule:
    """Names with due times; `pop_due(now)` hands out those whose time has come.

    Invariant: every name added and not removed is in the heap exactly once, except while
    handed out by `pop_due` (until `push` puts it back)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._removed: set[str] = set()

    def __len__(self) -> int:
        return len(self._heap)

    def add_spread(self, names: list[str], now: float) -> None:
        """Schedule `names` for their first renewal, spread over one period from `now`."""
        step = self.period / max(1, len(names))
        for i, name in enumerate(names):
            self.push(name, now + i * step)

    def push(self, name: str, due: float) -> None:
        self._removed.discard(name)
        heapq.heappush(self._heap, (due, next(self._seq), name))

    def remove(self, name: str) -> None:
        self._removed.add(name)

    def pop_due(self, now: float) -> list[str]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            _, _, name = heapq.heappop(self._heap)
            if name not in self._removed:
                due.append(name)
        return due

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None
