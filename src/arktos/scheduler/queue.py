"""The scheduling queue of the unified scheduler: kube-scheduler's PriorityQueue, plus fairness
between tenants.

Contract:
- Every pod the queue knows is in exactly one state (`QueueState`): active (ready to pop),
  backoff (ready once its backoff ends), unschedulable (waiting for a cluster event or for
  `unschedulable_timeout`), or in flight (popped, until `done` or a `requeue_*`).
- `pop_batch` hands out the highest priority first; among equal priority it serves tenants
  round-robin and each tenant's pods in the order they became active, so a burst of one tenant
  delays another tenant's pod by at most one round.
- An in-flight pod is never popped twice, and a pod deleted while in flight is not requeued.
- No I/O, and time comes only from the injected clock `now`, so the logic is deterministic and
  tests never sleep. `wait_ready` is the only async part (it sleeps on the event loop).

Cost: every operation is O(log n) or amortised O(1) per item: a heap of priority levels, one
deque per tenant, a heap of backoff ends, an insertion-ordered dict of unschedulable pods.
Deleting from a heap or deque is lazy: each entry carries the token its item had when pushed,
and entries whose token is no longer the item's are skipped when met; the structures are
compacted when stale entries outnumber live ones.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Generic, TypeVar

P = TypeVar("P")

DEFAULT_INITIAL_BACKOFF = 1.0
"""Seconds of backoff after the first failed attempt; doubled per further attempt."""
DEFAULT_MAX_BACKOFF = 10.0
"""Cap of the per-pod backoff, in seconds."""
DEFAULT_UNSCHEDULABLE_TIMEOUT = 60.0
"""Seconds after which an unschedulable pod is retried even if no cluster event came."""
_COMPACT_MIN = 1024
"""Stale heap/deque entries tolerated before compaction is considered."""
_IGNORED_META = frozenset({"resourceVersion", "generation", "managedFields", "finalizers"})


class ClusterEvent(StrEnum):
    """Cluster changes that may make an unschedulable pod schedulable (`move_all_on_event`)."""

    NODE_ADD = "NodeAdd"
    NODE_UPDATE = "NodeUpdate"
    POD_DELETE = "PodDelete"
    ASSIGNED_POD_ADD = "AssignedPodAdd"
    ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
    ASSIGNED_POD_DELETE = "AssignedPodDelete"


class QueueState(Enum):
    ACTIVE = "active"
    BACKOFF = "backoff"
    UNSCHEDULABLE = "unschedulable"
    IN_FLIGHT = "in_flight"


@dataclass(eq=False, slots=True)
class QueuedPod(Generic[P]):
    """One pending pod. The queue owns every field: callers only read them."""

    key: str
    """`tenant/namespace/name`."""
    tenant: str
    priority: int
    pod: P
    """The latest pod object given to `add`/`update` (opaque to the queue)."""
    added_at: float
    """Clock time when the key was first added."""
    attempts: int = 0
    """Scheduling attempts so far (counted when popped)."""
    initial_attempt_at: float | None = None
    """Clock time of the first pop (for the pod scheduling duration)."""
    reason: str = ""
    """Why the last attempt failed (from `requeue_unschedulable`)."""
    backoff_until: float = 0.0
    state: QueueState = QueueState.ACTIVE
    token: int = field(default=0, repr=False)
    """Identifies the item's one live heap/deque entry; 0 when it has none."""
    since: float = field(default=0.0, repr=False)
    """When it entered the unschedulable set."""
    events_at_pop: int = field(default=0, repr=False)
    changed_in_flight: bool = field(default=False, repr=False)


def pod_changed(old: object, new: object) -> bool:
    """Whether an update may make a pod schedulable (kube's isPodUpdated): any change except to
    `status` and to bookkeeping metadata (resourceVersion, generation, managedFields,
    finalizers). Objects that are not mappings are compared whole."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return _strip(old) != _strip(new)
    return old != new


def _strip(pod: Mapping[str, Any]) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    body = {k: v for k, v in pod.items() if k != "status"}
    body["metadata"] = {k: v for k, v in meta.items() if k not in _IGNORED_META}
    return body


class _Level:
    """The active entries of one priority: tenants in round-robin order, each a FIFO.

    A tenant is in `rotation` if and only if it has a deque in `fifos`, and that deque is not
    empty. Entries may be stale; `pop` skips them.
    """

    __slots__ = ("fifos", "rotation")

    def __init__(self) -> None:
        self.rotation: deque[str] = deque()
        self.fifos: dict[str, deque[tuple[str, int]]] = {}

    def push(self, tenant: str, key: str, token: int) -> None:
        fifo = self.fifos.get(tenant)
        if fifo is None:
            fifo = self.fifos[tenant] = deque()
            self.rotation.append(tenant)
        fifo.append((key, token))

    def pop(self, live: Callable[[str, int], bool]) -> tuple[str | None, int]:
        """The key of the next live entry (None if there is none left) and how many entries
        were consumed. The served tenant goes to the back of the rotation."""
        consumed = 0
        while self.rotation:
            tenant = self.rotation.popleft()
            fifo = self.fifos[tenant]
            found: str | None = None
            while fifo and found is None:
                key, token = fifo.popleft()
                consumed += 1
                found = key if live(key, token) else None
            if fifo:
                self.rotation.append(tenant)
            else:
                del self.fifos[tenant]
            if found is not None:
                return found, consumed
        return None, consumed

    def retain(self, live: Callable[[str, int], bool]) -> int:
        """Drop the stale entries, keeping the order; returns how many entries remain."""
        kept = 0
        for tenant in list(self.rotation):
            fifo = deque(e for e in self.fifos[tenant] if live(*e))
            if fifo:
                self.fifos[tenant] = fifo
                kept += len(fifo)
            else:
                del self.fifos[tenant]
        self.rotation = deque(t for t in self.rotation if t in self.fifos)
        return kept


class SchedulingQueue(Generic[P]):
    """The pending pods of a scheduler, keyed by `tenant/namespace/name` (see module doc).

    `update_may_help(old, new)` decides whether an update sends an unschedulable pod back
    (default `pod_changed`).
    """

    def __init__(self, *, now: Callable[[], float] = time.monotonic,
                 initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
                 max_backoff: float = DEFAULT_MAX_BACKOFF,
                 unschedulable_timeout: float = DEFAULT_UNSCHEDULABLE_TIMEOUT,
                 update_may_help: Callable[[P, P], bool] = pod_changed) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self._now = now
        self._may_help = update_may_help
        self._items: dict[str, QueuedPod[P]] = {}
        # Active: `_levels` and `_level_heap` (negated priorities) hold the same priorities.
        self._levels: dict[int, _Level] = {}
        self._level_heap: list[int] = []
        self._active = 0
        self._active_entries = 0
        # Backoff: (backoff_until, token, key); tokens are unique so the order is total.
        self._backoff: list[tuple[float, int, str]] = []
        self._backoff_count = 0
        # Unschedulable: in order of entry, so the oldest is first (for the timeout).
        self._unschedulable: OrderedDict[str, QueuedPod[P]] = OrderedDict()
        self._in_flight = 0
        self._tokens = itertools.count(1)
        self._events = 0
        self._ready = asyncio.Event()

    # --- sizes --------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Pending pods, in flight excluded."""
        return self._active + self._backoff_count + len(self._unschedulable)

    def __contains__(self, key: object) -> bool:
        """Whether the queue knows `key`, in any state (in flight included)."""
        return key in self._items

    def lengths(self) -> dict[str, int]:
        """Pending pods per queue: `active`, `backoff`, `unschedulable` (the pending metric)."""
        return {"active": self._active, "backoff": self._backoff_count,
                "unschedulable": len(self._unschedulable)}

    def in_flight(self) -> int:
        """Pods popped and not yet `done` or requeued."""
        return self._in_flight

    def pending_keys(self) -> list[str]:
        """The keys of the pending pods (in flight excluded), in no particular order."""
        return [k for k, it in self._items.items() if it.state is not QueueState.IN_FLIGHT]

    def get(self, key: str) -> QueuedPod[P] | None:
        return self._items.get(key)

    # --- changes from the informers ----------------------------------------------------------

    def add(self, key: str, *, tenant: str, priority: int, pod: P) -> None:
        """Queue a new pod as active; a key already known is an `update`."""
        if key in self._items:
            self.update(key, tenant=tenant, priority=priority, pod=pod)
            return
        item = QueuedPod(key=key, tenant=tenant, priority=priority, pod=pod,
                         added_at=self._now())
        self._items[key] = item
        self._to_active(item)

    def update(self, key: str, *, tenant: str, priority: int, pod: P) -> None:
        """Replace the pod where it is (an unknown key is added). An active pod keeps its place
        unless its priority changed; an unschedulable pod whose change may help
        (`update_may_help`) goes to backoff, or active if its backoff is over; a change to an
        in-flight pod that may help sends it to backoff if that attempt fails."""
        item = self._items.get(key)
        if item is None:
            self.add(key, tenant=tenant, priority=priority, pod=pod)
            return
        old, item.pod = item.pod, pod
        moved = (tenant, priority) != (item.tenant, item.priority)
        item.tenant, item.priority = tenant, priority
        if item.state is QueueState.ACTIVE and moved:
            self._active -= 1
            self._to_active(item)
            self._maybe_compact()
        elif item.state is QueueState.UNSCHEDULABLE and self._may_help(old, pod):
            del self._unschedulable[key]
            self._release(item, self._now())
        elif item.state is QueueState.IN_FLIGHT and self._may_help(old, pod):
            item.changed_in_flight = True

    def delete(self, key: str) -> bool:
        """Forget `key` in any state; an in-flight pod then is not requeued. False if unknown."""
        item = self._items.pop(key, None)
        if item is None:
            return False
        if item.state is QueueState.ACTIVE:
            self._active -= 1
        elif item.state is QueueState.BACKOFF:
            self._backoff_count -= 1
        elif item.state is QueueState.UNSCHEDULABLE:
            del self._unschedulable[key]
        else:
            self._in_flight -= 1
        item.token = 0
        self._maybe_compact()
        return True

    # --- the scheduling loop -----------------------------------------------------------------

    def pop_batch(self, max_n: int) -> list[QueuedPod[P]]:
        """Up to `max_n` ready pods (after a `flush`), in the order of the module doc; each is
        in flight until `done(key)` or a `requeue_*`."""
        now = self._now()
        self.flush(now)
        out: list[QueuedPod[P]] = []
        while len(out) < max_n:
            item = self._pop_active()
            if item is None:
                break
            item.state, item.token = QueueState.IN_FLIGHT, 0
            item.attempts += 1
            if item.initial_attempt_at is None:
                item.initial_attempt_at = now
            item.events_at_pop, item.changed_in_flight = self._events, False
            self._in_flight += 1
            out.append(item)
        self._maybe_compact()
        return out

    def done(self, key: str) -> bool:
        """End a successful attempt: an in-flight pod leaves the queue. False (and nothing
        changes) if `key` is not in flight, e.g. it was requeued or deleted."""
        item = self._items.get(key)
        if item is None or item.state is not QueueState.IN_FLIGHT:
            return False
        del self._items[key]
        self._in_flight -= 1
        return True

    def requeue_unschedulable(self, item: QueuedPod[P], reason: str = "") -> bool:
        """After an attempt that found no node: the pod waits in the unschedulable set with a
        backoff of `backoff_duration(attempts)`. If a cluster event came or the pod changed
        while it was in flight, it goes to backoff instead (that change may help). False (and
        nothing changes) if the item is no longer in flight, e.g. deleted."""
        if not self._take_in_flight(item):
            return False
        now = self._now()
        item.reason = reason
        item.backoff_until = now + self.backoff_duration(item.attempts)
        if item.changed_in_flight or item.events_at_pop != self._events:
            self._to_backoff(item)
        else:
            item.state, item.since = QueueState.UNSCHEDULABLE, now
            self._unschedulable[item.key] = item
        return True

    def requeue_error(self, item: QueuedPod[P]) -> bool:
        """After an attempt that failed for another reason (e.g. a binding conflict): the pod
        goes straight to backoff. False if the item is no longer in flight."""
        if not self._take_in_flight(item):
            return False
        item.backoff_until = self._now() + self.backoff_duration(item.attempts)
        self._to_backoff(item)
        return True

    def backoff_duration(self, attempts: int) -> float:
        """`initial_backoff` doubled per attempt after the first, capped at `max_backoff`."""
        if attempts <= 0:
            return 0.0
        return min(self.max_backoff, self.initial_backoff * 2.0 ** min(attempts - 1, 64))

    # --- time and events ---------------------------------------------------------------------

    def move_all_on_event(self, event: str) -> int:
        """A cluster change (`ClusterEvent`) may help: every unschedulable pod goes to backoff,
        or active if its backoff is over. Pods in flight now will go to backoff if their attempt
        fails. Returns how many pods moved."""
        self._events += 1
        now = self._now()
        moved = len(self._unschedulable)
        while self._unschedulable:
            _, item = self._unschedulable.popitem(last=False)
            self._release(item, now)
        return moved

    def flush(self, now: float | None = None) -> int:
        """Move the pods unschedulable for `unschedulable_timeout` or more back (to backoff or
        active), then the pods whose backoff ended to active. Returns how many moved."""
        now = self._now() if now is None else now
        return self._flush_unschedulable(now) + self._flush_backoff(now)

    def _flush_unschedulable(self, now: float) -> int:
        moved = 0
        while self._unschedulable:
            key, item = next(iter(self._unschedulable.items()))
            if item.since + self.unschedulable_timeout > now:
                break
            del self._unschedulable[key]
            self._release(item, now)
            moved += 1
        return moved

    def _flush_backoff(self, now: float) -> int:
        moved = 0
        while self._backoff and self._backoff[0][0] <= now:
            _, token, key = heapq.heappop(self._backoff)
            item = self._live(key, token, QueueState.BACKOFF)
            if item is not None:
                self._backoff_count -= 1
                self._to_active(item)
                moved += 1
        return moved

    def next_wakeup(self) -> float | None:
        """The clock time of the next `flush` that would move something (the earliest backoff
        end or unschedulable timeout), None if nothing waits on time."""
        while self._backoff and not self._live(self._backoff[0][2], self._backoff[0][1],
                                               QueueState.BACKOFF):
            heapq.heappop(self._backoff)
        times = [self._backoff[0][0]] if self._backoff else []
        if self._unschedulable:
            oldest = next(iter(self._unschedulable.values()))
            times.append(oldest.since + self.unschedulable_timeout)
        return min(times, default=None)

    async def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until `pop_batch` would return a pod: True then, False after `timeout` seconds
        of the event loop. Backoff ends are awaited as `next_wakeup() - now()` loop seconds,
        so use it with a clock that runs in real time."""
        try:
            async with asyncio.timeout(timeout):
                await self._wait_ready()
        except TimeoutError:
            return False
        return True

    async def _wait_ready(self) -> None:
        while True:
            now = self._now()
            self.flush(now)
            if self._active:
                return
            self._ready.clear()
            wake = self.next_wakeup()
            delay = None if wake is None else max(0.0, wake - now)
            try:
                async with asyncio.timeout(delay):
                    await self._ready.wait()
            except TimeoutError:
                pass

    # --- internals ---------------------------------------------------------------------------

    def _live(self, key: str, token: int, state: QueueState) -> QueuedPod[P] | None:
        item = self._items.get(key)
        if item is None or item.token != token or item.state is not state:
            return None
        return item

    def _is_live_active(self, key: str, token: int) -> bool:
        return self._live(key, token, QueueState.ACTIVE) is not None

    def _to_active(self, item: QueuedPod[P]) -> None:
        item.state, item.token = QueueState.ACTIVE, next(self._tokens)
        level = self._levels.get(item.priority)
        if level is None:
            level = self._levels[item.priority] = _Level()
            heapq.heappush(self._level_heap, -item.priority)
        level.push(item.tenant, item.key, item.token)
        self._active += 1
        self._active_entries += 1
        self._ready.set()

    def _to_backoff(self, item: QueuedPod[P]) -> None:
        item.state, item.token = QueueState.BACKOFF, next(self._tokens)
        heapq.heappush(self._backoff, (item.backoff_until, item.token, item.key))
        self._backoff_count += 1
        self._ready.set()  # a waiter recomputes its wake-up time: this backoff may end first

    def _release(self, item: QueuedPod[P], now: float) -> None:
        """An item that left the unschedulable set: to backoff while backing off, else active."""
        if item.backoff_until > now:
            self._to_backoff(item)
        else:
            self._to_active(item)

    def _take_in_flight(self, item: QueuedPod[P]) -> bool:
        if self._items.get(item.key) is not item or item.state is not QueueState.IN_FLIGHT:
            return False
        self._in_flight -= 1
        return True

    def _pop_active(self) -> QueuedPod[P] | None:
        while self._level_heap:
            priority = -self._level_heap[0]
            key, consumed = self._levels[priority].pop(self._is_live_active)
            self._active_entries -= consumed
            if key is not None:
                self._active -= 1
                return self._items[key]
            heapq.heappop(self._level_heap)
            del self._levels[priority]
        return None

    def _maybe_compact(self) -> None:
        """Rebuild a structure once its stale entries outnumber its live ones (amortised O(1)
        per stale entry, since each rebuild removes at least as many as it keeps)."""
        if self._active_entries - self._active > max(_COMPACT_MIN, self._active):
            self._active_entries = 0
            for priority, level in list(self._levels.items()):
                kept = level.retain(self._is_live_active)
                self._active_entries += kept
                if not kept:
                    del self._levels[priority]
            self._level_heap = [-p for p in self._levels]
            heapq.heapify(self._level_heap)
        if len(self._backoff) - self._backoff_count > max(_COMPACT_MIN, self._backoff_count):
            self._backoff = [e for e in self._backoff
                             if self._live(e[2], e[1], QueueState.BACKOFF) is not None]
            heapq.heapify(self._backoff)
