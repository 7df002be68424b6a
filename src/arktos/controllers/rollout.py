"""The Deployment rollout math, without I/O, following kube's deployment controller: surge
and unavailability fenceposts, how far to scale the new and old ReplicaSets in one step,
proportional scaling, which old ReplicaSets to delete, revisions and annotations, and the
status with its Available and Progressing conditions.

ReplicaSets are seen as `RS` values. Their pod counts come from the controller's pod view;
the decisions use conservative forms of them (`RS.footprint`, `RS.usable`) so that informer
lag can only slow a rollout down, never break `maxSurge`/`maxUnavailable`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from arktos.client.store import Obj
from arktos.controllers.replicaset_logic import parse_time, rfc3339

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
SKIPPED_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                                 MAX_REPLICAS, ROLLBACK_TO})
"""Deployment annotations not copied onto its ReplicaSets (nor back by `rollout undo`)."""
MAX_REVISION_HISTORY_CHARS = 2000
NO_DEADLINE = 2**31 - 1

# Condition reasons (kube's deploymentutil).
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


# --- inputs --------------------------------------------------------------------------------

def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


@dataclass(frozen=True)
class Params:
    """A Deployment's spec as the rollout math reads it (defaults as the API server's)."""

    replicas: int
    recreate: bool = False
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"
    min_ready_seconds: int = 0
    revision_history_limit: int | None = 10
    progress_deadline: int | None = 600
    paused: bool = False
    generation: int = 1

    @classmethod
    def of(cls, deployment: Obj) -> Params:
        spec = deployment.get("spec") or {}
        strategy = spec.get("strategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        limit, deadline = spec.get("revisionHistoryLimit"), spec.get("progressDeadlineSeconds")
        return cls(replicas=_int(spec.get("replicas"), 1),
                   recreate=strategy.get("type") == "Recreate",
                   max_surge=rolling.get("maxSurge", "25%"),
                   max_unavailable=rolling.get("maxUnavailable", "25%"),
                   min_ready_seconds=_int(spec.get("minReadySeconds")),
                   revision_history_limit=limit if isinstance(limit, int) else None,
                   progress_deadline=deadline if isinstance(deadline, int) else None,
                   paused=bool(spec.get("paused")),
                   generation=_int((deployment.get("metadata") or {}).get("generation"), 1))

    @property
    def has_deadline(self) -> bool:
        return self.progress_deadline is not None and self.progress_deadline != NO_DEADLINE


@dataclass(frozen=True)
class RS:
    """One ReplicaSet of a Deployment: its spec replicas, annotations and pod counts."""

    name: str
    replicas: int
    created: float = 0.0
    revision: int = 0
    desired: int | None = None
    """The `desired-replicas` annotation (the Deployment's replicas when last scaled)."""
    max_replicas: int | None = None
    """The `max-replicas` annotation (replicas + maxSurge when last scaled)."""
    pods: int = 0
    """Active pods (not terminating, not finished)."""
    ready: int = 0
    available: int = 0
    present: int = 0
    """Unfinished pods including terminating ones (Recreate waits for them to go)."""
    synced: bool = True
    """Its controller has observed its current generation."""
    deleting: bool = False

    @property
    def footprint(self) -> int:
        """Pods it has or is about to have: what counts against maxSurge."""
        return max(self.replicas, self.pods)

    @property
    def usable(self) -> int:
        """Available pods it keeps once scaled (its controller deletes unavailable ones
        first): what counts toward minimum availability."""
        return min(self.replicas, self.available)


def oldest_first(rss: Iterable[RS]) -> list[RS]:
    return sorted(rss, key=lambda r: (r.created, r.name))


def active(rss: Iterable[RS]) -> list[RS]:
    return [r for r in rss if r.replicas > 0]


# --- fenceposts ----------------------------------------------------------------------------

def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """An IntOrString against `total`: ints as they are, `N%` of total rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    exact = percent * total
    return -(-exact // 100) if round_up else exact // 100


def fenceposts(p: Params) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as counts: surge rounds up, unavailable down; if both come
    out 0, unavailable is 1 (kube's `ResolveFenceposts`)."""
    surge = scaled_value(p.max_surge, p.replicas, True)
    unavailable = scaled_value(p.max_unavailable, p.replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(p: Params) -> int:
    return 0 if p.recreate else fenceposts(p)[0]


def max_unavailable(p: Params) -> int:
    if p.recreate or p.replicas == 0:
        return 0
    return min(fenceposts(p)[1], p.replicas)


# --- one rollout step ----------------------------------------------------------------------

def new_rs_replicas(p: Params, all_rss: Iterable[RS], new_replicas: int) -> int:
    """How far the new ReplicaSet may grow now (kube's `NewRSNewReplicas`)."""
    if p.recreate:
        return p.replicas
    max_total = p.replicas + max_surge(p)
    current = sum(r.footprint for r in all_rss)
    if current >= max_total:
        return new_replicas
    return new_replicas + min(max_total - current, p.replicas - new_replicas)


def scale_new(p: Params, all_rss: list[RS], new: RS) -> int | None:
    """The new ReplicaSet's next size in a rolling update, or None to leave it."""
    if new.replicas == p.replicas:
        return None
    if new.replicas > p.replicas:
        return p.replicas
    target = new_rs_replicas(p, all_rss, new.replicas)
    return target if target != new.replicas else None


def scale_old(p: Params, olds: list[RS], new: RS) -> dict[str, int]:
    """Old ReplicaSets' next sizes in a rolling update (kube's `reconcileOldReplicaSets`):
    first drop their unavailable pods, then available ones down to the minimum availability."""
    sizes = {r.name: r.replicas for r in olds}
    if sum(sizes.values()) == 0:
        return {}
    min_available = p.replicas - max_unavailable(p)
    new_unavailable = new.replicas - new.usable
    budget = sum(sizes.values()) + new.replicas - min_available - new_unavailable
    for rs in oldest_first(olds):
        if budget <= 0:
            break
        unhealthy = sizes[rs.name] - min(sizes[rs.name], rs.available)
        cut = min(budget, unhealthy)
        sizes[rs.name] -= cut
        budget -= cut
    usable = new.usable + sum(min(sizes[r.name], r.available) for r in olds)
    excess = usable - min_available
    for rs in oldest_first(olds):
        if excess <= 0:
            break
        cut = min(sizes[rs.name], excess)
        sizes[rs.name] -= cut
        excess -= cut
    return {name: size for name, size in sizes.items()
            if size != next(r.replicas for r in olds if r.name == name)}


def recreate_step(p: Params, olds: list[RS], new: RS | None) -> tuple[dict[str, int], bool]:
    """One Recreate step: (scales, may_scale_up_new). Old ReplicaSets go to 0 first; the new
    one is created or scaled up only when no old pod is left."""
    downs = {r.name: 0 for r in active(olds)}
    if downs:
        return downs, False
    if any(r.present > 0 for r in olds):
        return {}, False
    if new is not None and new.replicas != p.replicas:
        return {new.name: p.replicas}, True
    return {}, True


# --- scaling (a replicas change, or a paused deployment) -----------------------------------

def find_active_or_latest(new: RS | None, olds: list[RS]) -> RS | None:
    """The one ReplicaSet to scale when at most one is active (else None)."""
    everything = ([new] if new is not None else []) + olds
    if not everything:
        return None
    live = active(everything)
    if len(live) == 1:
        return live[0]
    if live:
        return None
    return new if new is not None else oldest_first(olds)[-1]


def is_saturated(p: Params, rs: RS | None) -> bool:
    return (rs is not None and rs.replicas == p.replicas and rs.desired == p.replicas
            and rs.available == p.replicas)


def is_scaling_event(p: Params, rss: Iterable[RS]) -> bool:
    """Whether an active ReplicaSet was sized for a different Deployment size."""
    return any(r.desired is not None and r.desired != p.replicas for r in active(rss))


def _fraction(p: Params, rs: RS, status_replicas: int) -> int:
    if p.replicas == 0:
        return -rs.replicas
    before = rs.max_replicas or status_replicas
    if before == 0:
        return 0
    exact = rs.replicas * (p.replicas + max_surge(p)) / before
    return int(math.copysign(math.floor(abs(exact) + 0.5), exact)) - rs.replicas


def _largest_first(rss: list[RS], *, newer_first: bool) -> list[RS]:
    """Largest first; among equals newer first when scaling up, older first when down."""
    ranked = enumerate(oldest_first(rss))
    sign = -1 if newer_first else 1
    return [r for _, r in sorted(ranked, key=lambda t: (-t[1].replicas, sign * t[0]))]


def proportional(p: Params, new: RS | None, olds: list[RS],
                 status_replicas: int) -> dict[str, int]:
    """Sizes of every active ReplicaSet after a Deployment resize mid-rollout (kube's
    `scale`): the added or removed replicas are spread in proportion to their sizes, the
    leftover going to the largest."""
    rss = active(([new] if new is not None else []) + olds)
    allowed = p.replicas + max_surge(p) if p.replicas > 0 else 0
    to_add = allowed - sum(r.replicas for r in rss)
    order = _largest_first(rss, newer_first=to_add > 0)
    sizes = {r.name: r.replicas for r in order}
    added = 0
    for rs in order:
        if to_add == 0 or rs.replicas == 0 or to_add == added:
            continue
        fraction = _fraction(p, rs, status_replicas)
        share = min(fraction, to_add - added) if to_add > 0 else max(fraction, to_add - added)
        sizes[rs.name] += share
        added += share
    if order and to_add != 0:
        sizes[order[0].name] = max(0, sizes[order[0].name] + to_add - added)
    return sizes


def scale_step(p: Params, new: RS | None, olds: list[RS],
               status_replicas: int) -> dict[str, int]:
    """Target sizes when the Deployment is only being resized (or is paused)."""
    single = find_active_or_latest(new, olds)
    if single is not None:
        return {single.name: p.replicas}
    if is_saturated(p, new):
        return {r.name: 0 for r in active(olds)}
    if not p.recreate:
        return proportional(p, new, olds, status_replicas)
    return {}


def to_delete(p: Params, olds: list[RS]) -> list[str]:
    """Old ReplicaSets past `revisionHistoryLimit` that may go (empty, synced), oldest
    revision first."""
    if p.revision_history_limit is None:
        return []
    alive = sorted((r for r in olds if not r.deleting), key=lambda r: (r.revision, r.created))
    excess = len(alive) - p.revision_history_limit
    return [r.name for r in alive[:max(excess, 0)]
            if r.replicas == 0 and r.pods == 0 and r.synced]


# --- revisions and annotations -------------------------------------------------------------

def revision_of(annotations: Mapping[str, str] | None) -> int:
    try:
        return int((annotations or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def replicas_annotations(annotations: Mapping[str, str], p: Params) -> dict[str, str]:
    """`annotations` with desired-replicas and max-replicas for the Deployment's size."""
    return {**annotations, DESIRED_REPLICAS: str(p.replicas),
            MAX_REPLICAS: str(p.replicas + max_surge(p))}


def _history(annotations: Mapping[str, str], old_revision: str) -> str:
    """The revision-history annotation with `old_revision` appended (oldest entries dropped
    to stay within MAX_REVISION_HISTORY_CHARS)."""
    entries = [e for e in annotations.get(REVISION_HISTORY, "").split(",") if e] + [old_revision]
    while len(",".join(entries)) > MAX_REVISION_HISTORY_CHARS and len(entries) > 1:
        entries.pop(0)
    return ",".join(entries)


def new_rs_annotations(deployment_annotations: Mapping[str, str],
                       rs_annotations: Mapping[str, str], revision: int) -> dict[str, str]:
    """A new (or reused) ReplicaSet's annotations: the Deployment's (but the skipped ones), and
    `revision` unless it already has a higher one; a reused one keeps its old revision in the
    revision-history annotation (kube's `SetNewReplicaSetAnnotations`)."""
    out = dict(rs_annotations)
    out.update({k: v for k, v in deployment_annotations.items() if k not in SKIPPED_ANNOTATIONS})
    old = rs_annotations.get(REVISION)
    if revision_of(rs_annotations) < revision:
        out[REVISION] = str(revision)
        if old is not None:
            out[REVISION_HISTORY] = _history(rs_annotations, old)
    return out


# --- status --------------------------------------------------------------------------------

def get_condition(status: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def new_condition(kind: str, status: str, reason: str, message: str,
                  now: float) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {"type": kind, "status": status, "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def set_condition(status: dict[str, Any], cond: dict[str, Any]) -> None:
    """Replace the condition of its type unless status and reason are unchanged; the
    transition time is kept while the status stays (kube's `SetDeploymentCondition`)."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] \
            and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: dict[str, Any], kind: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def calculate_status(p: Params, all_rss: list[RS], new: RS | None,
                     old_status: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Counts from the ReplicaSets' pods plus the Available condition (kube's
    `calculateStatus`); other conditions and collisionCount carried over."""
    available = sum(r.available for r in all_rss)
    status: dict[str, Any] = {
        "observedGeneration": p.generation,
        "replicas": sum(r.pods for r in all_rss),
        "updatedReplicas": new.pods if new is not None else 0,
        "readyReplicas": sum(r.ready for r in all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, sum(r.replicas for r in all_rss) - available),
    }
    if old_status.get("collisionCount") is not None:
        status["collisionCount"] = old_status["collisionCount"]
    if old_status.get("conditions"):
        status["conditions"] = [dict(c) for c in old_status["conditions"]]
    if available >= p.replicas - max_unavailable(p):
        cond = new_condition("Available", "True", MINIMUM_REPLICAS_AVAILABLE,
                             "Deployment has minimum availability.", now)
    else:
        cond = new_condition("Available", "False", MINIMUM_REPLICAS_UNAVAILABLE,
                             "Deployment does not have minimum availability.", now)
    set_condition(status, cond)
    return status


def complete(p: Params, status: Mapping[str, Any]) -> bool:
    """Every replica updated and available, none old, current generation observed."""
    return (status.get("updatedReplicas") == p.replicas and status.get("replicas") == p.replicas
            and status.get("availableReplicas") == p.replicas
            and _int(status.get("observedGeneration")) >= p.generation)


def progressed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether `new` shows progress over `old` (kube's `DeploymentProgressing`)."""
    def n(s: Mapping[str, Any], k: str) -> int:
        return _int(s.get(k))
    return (n(new, "updatedReplicas") > n(old, "updatedReplicas")
            or n(new, "replicas") - n(new, "updatedReplicas")
            < n(old, "replicas") - n(old, "updatedReplicas")
            or n(new, "readyReplicas") > n(old, "readyReplicas")
            or n(new, "availableReplicas") > n(old, "availableReplicas"))


def timed_out(p: Params, status: Mapping[str, Any], now: float) -> bool:
    """Whether the Progressing condition has not been updated for progressDeadlineSeconds."""
    cond = get_condition(status, "Progressing")
    if not p.has_deadline or cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + (p.progress_deadline or 0) < now


def with_progress(p: Params, status: dict[str, Any], old_status: Mapping[str, Any],
                  name: str, new_rs: str | None, now: float) -> dict[str, Any]:
    """`status` with the Progressing condition of a rollout (kube's `syncRolloutStatus`):
    NewReplicaSetAvailable when complete, ReplicaSetUpdated on progress, else
    ProgressDeadlineExceeded once the deadline passed."""
    if not p.has_deadline:
        remove_condition(status, "Progressing")
        return status
    current = get_condition(old_status, "Progressing")
    if status["replicas"] == status["updatedReplicas"] and current is not None \
            and current.get("reason") == NEW_RS_AVAILABLE:
        return status
    what = f'ReplicaSet "{new_rs}"' if new_rs else f'Deployment "{name}"'
    if complete(p, status):
        set_condition(status, new_condition("Progressing", "True", NEW_RS_AVAILABLE,
                                            f"{what} has successfully progressed.", now))
    elif progressed(old_status, status):
        cond = new_condition("Progressing", "True", RS_UPDATED, f"{what} is progressing.", now)
        if current is not None and current.get("status") == "True":
            cond["lastTransitionTime"] = current.get("lastTransitionTime")
        remove_condition(status, "Progressing")
        status.setdefault("conditions", []).append(cond)
    elif timed_out(p, status, now):
        set_condition(status, new_condition("Progressing", "False", TIMED_OUT,
                                            f"{what} has timed out progressing.", now))
    return status


def set_replica_failure(status: dict[str, Any],
                        rs_conditions: Iterable[Iterable[Mapping[str, Any]]]) -> None:
    """Carry the first ReplicaFailure condition of the ReplicaSets (given the new one first)
    over to the Deployment, or drop the Deployment's when none has one."""
    for conditions in rs_conditions:
        for c in conditions:
            if c.get("type") == "ReplicaFailure":
                since = c.get("lastTransitionTime")
                set_condition(status, {"type": "ReplicaFailure", "status": c.get("status"),
                                       "lastUpdateTime": since, "lastTransitionTime": since,
                                       "reason": c.get("reason"), "message": c.get("message")})
                return
    remove_condition(status, "ReplicaFailure")


def requeue_after(p: Params, status: Mapping[str, Any], now: float) -> float | None:
    """When to look again so that a stuck rollout gets its deadline condition in time."""
    cond = get_condition(status, "Progressing")
    if not p.has_deadline or cond is None or cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT) \
            or complete(p, status):
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return max(since + (p.progress_deadline or 0) - now, 0.0) + 1.0


def paused_condition(p: Params, status: Mapping[str, Any], now: float) -> dict[str, Any] | None:
    """The Progressing condition to record when a Deployment was paused or resumed (None:
    nothing to record)."""
    if not p.has_deadline:
        return None
    cond = get_condition(status, "Progressing")
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return None
    was_paused = cond is not None and cond.get("reason") == PAUSED
    if p.paused and not was_paused:
        return new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused", now)
    if not p.paused and was_paused:
        return new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed", now)
    return None
