"""What a ReplicaSet controller decides, without I/O: which pods count, which to adopt or
release, which to delete first, how creations are batched, what the status says, and the
expectations that keep informer lag from causing duplicate creations or deletions.

Pod helpers (`is_active`, `is_ready`, `is_available`) are shared with the Deployment
controller; so is `claim` (it applies to ReplicaSets owned by Deployments too).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from arktos.api import meta
from arktos.api.selectors import LabelSelector
from arktos.client.store import Obj, key_of
from arktos.controllers.podtemplate import controller_of

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}
_NEVER = math.inf


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp (None when missing or malformed)."""
    when = meta.parse_time(value)
    return when.timestamp() if when is not None else None


def _md(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def labels_of(obj: Obj) -> dict[str, str]:
    return _md(obj).get("labels") or {}


def terminating(obj: Obj) -> bool:
    return bool(_md(obj).get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    """Not being deleted and not finished (Succeeded/Failed): counts toward replicas."""
    phase = (pod.get("status") or {}).get("phase")
    return not terminating(pod) and phase not in ("Succeeded", "Failed")


def _ready_condition(pod: Obj) -> dict[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond
    return None


def is_ready(pod: Obj) -> bool:
    cond = _ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: Obj) -> float | None:
    """When a ready pod's Ready condition last turned True (None: not ready or unknown)."""
    cond = _ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime"))


def available_after(pod: Obj, min_ready_seconds: int, now: float) -> float | None:
    """Seconds until `pod` counts as available (0: it is; None: not ready, so unknown).

    Available = ready for at least `min_ready_seconds` (as kube: with a positive
    minReadySeconds, a Ready condition without lastTransitionTime never becomes available)."""
    if not is_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = ready_since(pod)
    if since is None:
        return None
    return max(0.0, since + min_ready_seconds - now)


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    return available_after(pod, min_ready_seconds, now) == 0.0


# --- claiming ------------------------------------------------------------------------------

@dataclass
class Claim:
    """Candidates split by what their would-be controller must do with them."""

    owned: list[Obj] = field(default_factory=list)
    """Controlled by the owner and matching its selector."""
    adopt: list[Obj] = field(default_factory=list)
    """Orphans (no controller) matching the selector, not being deleted."""
    release: list[Obj] = field(default_factory=list)
    """Controlled by the owner but no longer matching."""


def claim(owner_uid: str, selector: LabelSelector, candidates: Iterable[Obj], *,
          owner_deleting: bool = False) -> Claim:
    """kube's `ClaimObject` over candidates of the owner's tenant and namespace: objects of
    other controllers are ignored; a deleting owner neither adopts nor releases."""
    out = Claim()
    for obj in candidates:
        ref = controller_of(obj)
        matches = selector.matches(labels_of(obj))
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches:
                out.owned.append(obj)
            elif not owner_deleting:
                out.release.append(obj)
        elif matches and not owner_deleting and not terminating(obj):
            out.adopt.append(obj)
    return out


# --- scaling -------------------------------------------------------------------------------

def slow_start_batches(count: int, initial: int = 1) -> list[int]:
    """Batch sizes for `count` creations: initial, then doubling, the last one trimmed."""
    sizes: list[int] = []
    size = min(count, initial)
    while size > 0:
        sizes.append(size)
        count -= size
        size = min(2 * size, count)
    return sizes


def _deletion_cost(pod: Obj) -> int:
    try:
        return int((_md(pod).get("annotations") or {}).get(DELETION_COST, 0))
    except (TypeError, ValueError):
        return 0


def _restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses if isinstance(s, dict))


def _later_first(t: float | None) -> float:
    """Sort key putting a missing time first, then later times before earlier ones."""
    return -(t if t is not None else _NEVER)


def pods_to_delete(pods: list[Obj], count: int) -> list[Obj]:
    """The `count` pods kube would delete first: unscheduled, then pending < unknown <
    running, not ready, lower deletion cost, doubled up on a node, ready for less time, more
    restarts, newer."""
    per_node: dict[str, int] = {}
    for pod in pods:
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        per_node[node] = per_node.get(node, 0) + 1

    def rank(pod: Obj) -> tuple[Any, ...]:
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        phase = (pod.get("status") or {}).get("phase", "")
        return (bool(node), _PHASE_ORDER.get(phase, 0), is_ready(pod), _deletion_cost(pod),
                -per_node[node] if node else 0, _later_first(ready_since(pod)),
                -_restarts(pod), _later_first(parse_time(_md(pod).get("creationTimestamp"))))

    return sorted(pods, key=rank)[:max(count, 0)]


# --- status --------------------------------------------------------------------------------

def replicaset_status(rs: Obj, pods: list[Obj], now: float,
                      failure: tuple[str, str] | None = None) -> dict[str, Any]:
    """The status of `rs` given its active claimed pods; `failure` (reason, message) from the
    last create/delete pass sets the ReplicaFailure condition, None clears it."""
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    old = rs.get("status") or {}
    conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    if failure is not None:
        previous = [c for c in old.get("conditions") or [] if c.get("type") == "ReplicaFailure"]
        conditions.append(previous[0] if previous else {
            "type": "ReplicaFailure", "status": "True", "reason": failure[0],
            "message": failure[1], "lastTransitionTime": rfc3339(now)})
    status: dict[str, Any] = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(1 for p in pods
                                    if template_labels.items() <= labels_of(p).items()),
        "readyReplicas": sum(1 for p in pods if is_ready(p)),
        "availableReplicas": sum(1 for p in pods if is_available(p, min_ready, now)),
        "observedGeneration": int(_md(rs).get("generation") or 0),
    }
    if conditions:
        status["conditions"] = conditions
    return status


def next_available_check(pods: list[Obj], min_ready_seconds: int, now: float) -> float | None:
    """Seconds until the next ready-but-not-yet-available pod becomes available."""
    waits = [w for p in pods if (w := available_after(p, min_ready_seconds, now))]
    return min(waits) + 0.01 if waits else None


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# --- expectations --------------------------------------------------------------------------

@dataclass
class _Expect:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    stamp: float = 0.0


class Expectations:
    """Creations and deletions an owner (by key) asked for that its informer has not shown
    yet, as kube's `ControllerExpectations`: an owner with pending expectations must not
    create or delete again; expectations older than `ttl` seconds count as met."""

    def __init__(self, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._by_key: dict[str, _Expect] = {}

    def expect_creations(self, key: str, count: int) -> None:
        self._by_key[key] = _Expect(adds=count, stamp=self.clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._by_key[key] = _Expect(deletes=set(pod_keys), stamp=self.clock())

    def creation_observed(self, key: str, count: int = 1) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.adds -= count

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.deletes.discard(pod_key)

    def satisfied(self, key: str) -> bool:
        exp = self._by_key.get(key)
        if exp is None:
            return True
        return (exp.adds <= 0 and not exp.deletes) or self.clock() - exp.stamp > self.ttl

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


def pod_keys(pods: Iterable[Obj]) -> list[str]:
    return [key_of(p) for p in pods]


class WriteTracker:
    """The resourceVersions of a controller's own latest writes, by key: an informer copy
    older than what the controller wrote is stale, and acting on it would undo or repeat the
    write. Entries go once the informer caught up, or after `ttl` seconds (the object may
    have been deleted meanwhile)."""

    def __init__(self, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._written: dict[str, tuple[int, float]] = {}

    def wrote(self, obj: Obj) -> None:
        rv = _rv(obj)
        if rv is None:
            return
        now = self.clock()
        if len(self._written) > 1000:
            self._written = {k: e for k, e in self._written.items() if now - e[1] <= self.ttl}
        self._written[key_of(obj)] = (rv, now)

    def stale(self, key: str, cached: Obj | None) -> bool:
        """Whether `cached` (the informer's copy of `key`, None if absent) predates our
        latest write of it."""
        entry = self._written.get(key)
        if entry is None:
            return False
        have = _rv(cached) if cached is not None else None
        if (have is not None and have >= entry[0]) or self.clock() - entry[1] > self.ttl:
            del self._written[key]
            return False
        return True


def _rv(obj: Obj) -> int | None:
    try:
        return int(_md(obj).get("resourceVersion") or "")
    except (TypeError, ValueError):
        return None
