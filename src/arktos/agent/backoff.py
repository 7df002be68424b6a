"""Per-container restart back-off, as the kubelet's: the first restart waits `initial`
seconds, each further one twice as long up to `maximum`; a container that ran for `reset`
seconds without a restart starts over. Pure: the caller passes the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 10.0
    maximum: float = 300.0
    reset: float = 600.0
    _entries: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    """(pod uid, container) -> (current delay, time until which a restart must wait)."""

    def until(self, uid: str, name: str) -> float:
        """When the next start of the container may happen (0: now)."""
        entry = self._entries.get((uid, name))
        return entry[1] if entry else 0.0

    def delay(self, uid: str, name: str) -> float:
        entry = self._entries.get((uid, name))
        return entry[0] if entry else 0.0

    def next(self, uid: str, name: str, now: float, ran_for: float = 0.0) -> float:
        """Record a restart (or a failed start) at `now`; returns the delay to wait before
        the one after. `ran_for`: how long the instance that ended had run."""
        entry = self._entries.get((uid, name))
        if entry is None or ran_for >= self.reset:
            delay = self.initial
        else:
            delay = min(entry[0] * 2, self.maximum)
        self._entries[(uid, name)] = (delay, now + delay)
        return delay

    def forget(self, uid: str) -> None:
        """The pod is gone: drop its entries."""
        for key in [k for k in self._entries if k[0] == uid]:
            del self._entries[key]
