"""Pure decisions of the node lifecycle controller (no I/O): given a node, its heartbeat Lease
and the time, what its conditions and taints must become and when its pods are evicted.

Times are aware UTC datetimes; objects are plain dicts as the API serves them and are never
changed in place (every function returns new lists/dicts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from arktos.api.meta import parse_time

Obj = dict[str, Any]

NODE_LEASE_TENANT = "system"
NODE_LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
MONITORED_CONDITIONS = ("Ready", "ContainerRuntimeReady", "VmRuntimeReady", "MemoryPressure",
                        "DiskPressure", "PIDPressure")
"""Conditions the node agent owns; they go Unknown when it stops posting."""
STATUS_UNKNOWN_REASON = "NodeStatusUnknown"
STATUS_UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NEVER_UPDATED_REASON = "NodeStatusNeverUpdated"
NEVER_UPDATED_MESSAGE = "Kubelet never posted node status."

TaintId = tuple[str, str]
MANAGED_TAINTS: frozenset[TaintId] = frozenset(
    {(UNREACHABLE, NO_SCHEDULE), (UNREACHABLE, NO_EXECUTE), (NOT_READY, NO_SCHEDULE)})
"""The taints this controller adds and removes; others on the node are left alone."""
_WANTED_TAINTS: Mapping[str, frozenset[TaintId]] = {
    "True": frozenset(),
    "False": frozenset({(NOT_READY, NO_SCHEDULE)}),
    "Unknown": frozenset({(UNREACHABLE, NO_SCHEDULE), (UNREACHABLE, NO_EXECUTE)}),
}


# --- time -----------------------------------------------------------------------------------

def format_time(when: datetime) -> str:
    """Kubernetes' second-precision `Time` form (conditions, taints)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(when: datetime) -> str:
    """Kubernetes' `MicroTime` form (Lease renewTime)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- reading a node -------------------------------------------------------------------------

def _section(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = obj.get(name)
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def conditions(node: Obj) -> list[Obj]:
    return _dicts(_section(node, "status").get("conditions"))


def condition(node: Obj, type_: str) -> Obj | None:
    """The node's condition of `type_`, if it reports one."""
    return next((c for c in conditions(node) if c.get("type") == type_), None)


def taints(node: Obj) -> list[Obj]:
    return _dicts(_section(node, "spec").get("taints"))


def last_heartbeat(node: Obj, lease: Obj | None) -> datetime | None:
    """The newest sign of life: the Lease's renewTime or the Ready condition's
    lastHeartbeatTime; lacking both, the node's creation (so a new node gets a grace period)."""
    ready = condition(node, "Ready") or {}
    signs = [parse_time(_section(lease or {}, "spec").get("renewTime")),
             parse_time(ready.get("lastHeartbeatTime"))]
    known = [t for t in signs if t is not None]
    if known:
        return max(known)
    return parse_time(_section(node, "metadata").get("creationTimestamp"))


def is_stale(node: Obj, lease: Obj | None, now: datetime, grace: float) -> bool:
    """Whether the node's agent has been silent for longer than `grace` seconds."""
    beat = last_heartbeat(node, lease)
    return beat is None or now - beat > timedelta(seconds=grace)


def effective_ready(node: Obj, lease: Obj | None, now: datetime, grace: float) -> str | None:
    """The Ready status the node should have now: "Unknown" when stale, else the reported
    one ("True"/"False"/"Unknown"), or None when it has reported none yet."""
    if is_stale(node, lease, now, grace):
        return "Unknown"
    ready = condition(node, "Ready")
    status = ready.get("status") if ready else None
    return status if status in _WANTED_TAINTS else None


# --- decisions ------------------------------------------------------------------------------

def unknown_conditions(node: Obj, now: datetime) -> list[Obj] | None:
    """The conditions of a silent node: every monitored condition it reports set to Unknown
    (reason NodeStatusUnknown), a missing Ready added as Unknown (NodeStatusNeverUpdated),
    other conditions kept. None when nothing changes."""
    stamp = format_time(now)
    out: list[Obj] = []
    changed = False
    for cond in conditions(node):
        if cond.get("type") in MONITORED_CONDITIONS and cond.get("status") != "Unknown":
            cond = {**cond, "status": "Unknown", "reason": STATUS_UNKNOWN_REASON,
                    "message": STATUS_UNKNOWN_MESSAGE, "lastTransitionTime": stamp}
            changed = True
        out.append(cond)
    if condition(node, "Ready") is None:
        out.insert(0, {"type": "Ready", "status": "Unknown", "reason": NEVER_UPDATED_REASON,
                       "message": NEVER_UPDATED_MESSAGE, "lastHeartbeatTime": stamp,
                       "lastTransitionTime": stamp})
        changed = True
    return out if changed else None


def planned_taints(current: list[Obj], ready: str | None, now: datetime) -> list[Obj] | None:
    """The node's taints for Ready status `ready`: none of ours when True, not-ready
    (NoSchedule) when False, unreachable (NoSchedule + NoExecute) when Unknown. Foreign taints
    and kept ones (with their timeAdded) stay. None when nothing changes or `ready` is None."""
    if ready is None or ready not in _WANTED_TAINTS:
        return None
    wanted = _WANTED_TAINTS[ready]
    kept = [t for t in current if _taint_id(t) not in MANAGED_TAINTS or _taint_id(t) in wanted]
    have = {_taint_id(t) for t in kept}
    added = [{"key": key, "effect": effect, "timeAdded": format_time(now)}
             for key, effect in sorted(wanted - have)]
    new = kept + added
    return None if new == current else new


def _taint_id(taint: Obj) -> TaintId:
    return str(taint.get("key", "")), str(taint.get("effect", ""))


@dataclass(frozen=True)
class NodeVerdict:
    """What to write for one node: new `status.conditions` / `spec.taints` (None: keep), and
    whether Ready just went Unknown (worth a NodeNotReady event)."""

    conditions: list[Obj] | None
    taints: list[Obj] | None
    went_unknown: bool = False


def assess(node: Obj, lease: Obj | None, now: datetime, grace: float) -> NodeVerdict:
    """The writes that bring `node` in line with its heartbeat at `now`."""
    new_conditions = unknown_conditions(node, now) if is_stale(node, lease, now, grace) else None
    was = (condition(node, "Ready") or {}).get("status")
    ready = effective_ready(node, lease, now, grace)
    return NodeVerdict(new_conditions, planned_taints(taints(node), ready, now),
                       went_unknown=new_conditions is not None and was != "Unknown")


def unreachable_since(node: Obj) -> datetime | None:
    """When the node got its unreachable NoExecute taint (None: it has none)."""
    for taint in taints(node):
        if _taint_id(taint) == (UNREACHABLE, NO_EXECUTE):
            return parse_time(taint.get("timeAdded")) or datetime.min.replace(tzinfo=UTC)
    return None


# --- eviction -------------------------------------------------------------------------------

def tolerates(toleration: Obj, key: str, effect: str, value: str = "") -> bool:
    """Kubernetes' toleration matching for one taint."""
    if toleration.get("effect") not in (None, "", effect):
        return False
    tkey = toleration.get("key") or ""
    if toleration.get("operator") == "Exists":
        return tkey in ("", key)
    return tkey == key and (toleration.get("value") or "") == value


def eviction_delay(pod: Obj, timeout: float) -> float | None:
    """Seconds a pod may stay on an unreachable node. A pod tolerating unreachable:NoExecute
    gets the smallest tolerationSeconds of its matching tolerations (None, forever, when none
    sets one); any other pod gets `timeout`, the pod_eviction_timeout, which stands in for the
    300 s toleration kube's DefaultTolerationSeconds admission adds to every pod."""
    matching = [t for t in _dicts(_section(pod, "spec").get("tolerations"))
                if tolerates(t, UNREACHABLE, NO_EXECUTE)]
    if not matching:
        return timeout
    seconds = [s for t in matching if isinstance(s := t.get("tolerationSeconds"), int)
               and not isinstance(s, bool)]
    return float(max(0, min(seconds))) if seconds else None


def eviction_due(pod: Obj, since: datetime, now: datetime, timeout: float) -> bool:
    """Whether a pod on a node unreachable since `since` must be evicted at `now`."""
    delay = eviction_delay(pod, timeout)
    return delay is not None and now - since >= timedelta(seconds=delay)


def full_disruption(readiness: Iterable[str | None]) -> bool:
    """Whether no node at all is Ready while some are not: then the fault is more likely the
    control plane's network than every node, and evictions pause (kube's FullDisruption,
    applied to the whole cluster rather than per zone)."""
    states = list(readiness)
    return bool(states) and "True" not in states and any(s is not None for s in states)


def node_name_index(pod: Obj) -> list[str]:
    """Index function: the node a pod is bound to (none for unbound pods)."""
    name = _section(pod, "spec").get("nodeName")
    return [name] if isinstance(name, str) and name else []
