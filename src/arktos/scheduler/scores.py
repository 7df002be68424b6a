"""Scores: how good each candidate node is for a pod, as vectors of 0..100 over given rows.

Every score is a function `(table, pod, rows) -> vector | None` over the candidate `rows`
(row numbers, usually a sample of the feasible ones). None means "the same for every row",
which cannot change the choice, so `total` skips it. Normalized scores are normalized over
`rows`, as Kubernetes normalizes over the nodes it scores.

* LeastAllocated: mean over cpu and memory of the share left free after placing the pod.
* BalancedAllocation: 100 * (1 - std of the cpu and memory shares used after placing it).
  Both use `nonzero_requested`/`score_request` (Kubernetes' 100m / 200Mi for no request).
* NodeAffinity: the summed weights of the preferred terms a node matches, scaled to 100.
* TaintToleration: fewer untolerated PreferNoSchedule taints is better (none: 100).
* SelectorSpread: fewer pods of the same tenant and controller (`owner`) on the node is
  better (node level only; zones are not weighed).
* InterPodAffinity: preferred pod affinity (+weight) and anti-affinity (-weight) per selected
  pod in the node's domain, scaled min..max to 0..100.

No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np

from arktos.scheduler.arrays import FloatArray, IntArray
from arktos.scheduler.nodes import NodeTable
from arktos.scheduler.podinfo import CPU, MEMORY, PodInfo, WeightedPodTerm, tolerated

__all__ = [
    "DEFAULT_WEIGHTS", "Weights", "balanced_allocation", "inter_pod_affinity",
    "least_allocated", "node_affinity", "parse_weights", "selector_spread", "taint_toleration",
    "total",
]

Score = Callable[[NodeTable, PodInfo, IntArray], FloatArray | None]


@dataclass(frozen=True, slots=True)
class Weights:
    """Multipliers of each score in `total` (0 turns a score off). The defaults are
    Kubernetes' default plugin weights; SelectorSpread takes the 2 of PodTopologySpread,
    whose default system spreading replaced it."""

    least_allocated: float = 1.0
    balanced_allocation: float = 1.0
    node_affinity: float = 2.0
    taint_toleration: float = 3.0
    selector_spread: float = 2.0
    inter_pod_affinity: float = 2.0


DEFAULT_WEIGHTS = Weights()


def parse_weights(spec: str) -> Weights:
    """`least_allocated=1,selector_spread=0` over the defaults; ValueError naming what is wrong."""
    known = {f.name for f in fields(Weights)}
    changes: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name not in known:
            raise ValueError(f"not a score weight: {item!r} (known: {', '.join(sorted(known))})")
        try:
            changes[name] = float(value)
        except ValueError:
            raise ValueError(f"the weight of {name} must be a number, not {value!r}") from None
        if changes[name] < 0:
            raise ValueError(f"the weight of {name} must not be negative")
    return replace(DEFAULT_WEIGHTS, **changes)


def _used_shares(table: NodeTable, pod: PodInfo, rows: IntArray) -> tuple[FloatArray, FloatArray]:
    """Per row, the (cpu, memory) share of allocatable used with the pod placed, capped at
    1 (a node with none of a resource counts as full)."""
    shares = []
    for j, extra in ((CPU, pod.score_request[0]), (MEMORY, pod.score_request[1])):
        allocatable = table.allocatable[rows, j]
        used = table.nonzero_requested[rows, j]
        used += extra
        share = np.divide(used, allocatable, out=np.ones(len(rows)), where=allocatable > 0)
        shares.append(np.minimum(share, 1.0, out=share))
    return shares[0], shares[1]


def least_allocated(table: NodeTable, pod: PodInfo, rows: IntArray) -> FloatArray:
    """100 * the mean free share of cpu and memory after placing the pod."""
    return _allocation(table, pod, rows, least=1.0, balanced=0.0)


def balanced_allocation(table: NodeTable, pod: PodInfo, rows: IntArray) -> FloatArray:
    """100 * (1 - the standard deviation of the cpu and memory shares)."""
    return _allocation(table, pod, rows, least=0.0, balanced=1.0)


def _allocation(table: NodeTable, pod: PodInfo, rows: IntArray, *, least: float,
                balanced: float) -> FloatArray:
    """`least * least_allocated + balanced * balanced_allocation`, sharing the work."""
    cpu, memory = _used_shares(table, pod, rows)
    out: FloatArray = np.full(len(rows), 100.0 * (least + balanced))
    if least:
        out -= (50.0 * least) * (cpu + memory)
    if balanced:
        out -= (50.0 * balanced) * np.abs(cpu - memory)
    return out


def _scaled(raw: FloatArray) -> FloatArray | None:
    """`raw * 100 / max(raw)`, None if all zero."""
    top = float(raw.max()) if raw.size else 0.0
    return raw * (100.0 / top) if top > 0 else None


def _preferred_weights(table: NodeTable, pod: PodInfo) -> FloatArray:
    weights = np.zeros(table.size)
    for preferred in pod.preferred_terms:
        weights[table.term_rows(preferred.term)] += preferred.weight
    weights.flags.writeable = False
    return weights


def node_affinity(table: NodeTable, pod: PodInfo, rows: IntArray) -> FloatArray | None:
    """Summed weights of matching preferred node-affinity terms, scaled to 100."""
    if not pod.preferred_terms:
        return None
    weights = table.memo(("preferred", pod.preferred_terms),
                         lambda: _preferred_weights(table, pod))
    return _scaled(weights[rows])


def _soft_taints(table: NodeTable, pod: PodInfo) -> FloatArray | None:
    counts = np.zeros(table.size)
    found = False
    for taint, mask in table.taints.taints():
        if taint.effect == "PreferNoSchedule" and not tolerated(pod.tolerations, taint):
            counts += mask[: table.size]
            found = True
    counts.flags.writeable = False
    return counts if found else None


def taint_toleration(table: NodeTable, pod: PodInfo, rows: IntArray) -> FloatArray | None:
    """100 - 100 * untolerated PreferNoSchedule taints / the most any row has."""
    counts = table.memo(("soft-taints", pod.tolerations), lambda: _soft_taints(table, pod))
    if counts is None:
        return None
    scaled = _scaled(counts[rows])
    return None if scaled is None else 100.0 - scaled


def _gather(counts: dict[int, int], size: int, rows: IntArray) -> FloatArray:
    """The sparse `{row: count}` as a dense vector over `rows`."""
    dense = np.zeros(size)
    dense[np.fromiter(counts, dtype=np.intp, count=len(counts))] = np.fromiter(
        counts.values(), dtype=np.float64, count=len(counts))
    result: FloatArray = dense[rows]
    return result


def selector_spread(table: NodeTable, pod: PodInfo, rows: IntArray) -> FloatArray | None:
    """100 * (most - this node's) / most, counting pods of the pod's tenant and owner."""
    counts = table.pods.spread_counts(pod.tenant, pod.owner) if pod.owner else {}
    if not counts:
        return None
    scaled = _scaled(_gather(counts, table.size, rows))
    return None if scaled is None else 100.0 - scaled


def _term_counts(table: NodeTable, term: WeightedPodTerm, rows: IntArray) -> FloatArray:
    """Per row, the pods `term` selects in the row's domain."""
    col = table.labels.get(term.term.topology_key)
    counts = table.pods.selected(term.term.pods).rows
    if col is None or not counts:
        return np.zeros(len(rows))
    codes = col.column[np.fromiter(counts, dtype=np.intp, count=len(counts))]
    weights = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    per_domain = np.bincount(codes[codes >= 0], weights[codes >= 0],
                             minlength=len(col.values) + 1).astype(np.float64)
    per_domain[-1] = 0.0  # code -1: no domain
    result: FloatArray = per_domain[col.column[rows]]
    return result


def inter_pod_affinity(table: NodeTable, pod: PodInfo, rows: IntArray) -> FloatArray | None:
    """Preferred pod (anti-)affinity, scaled min..max to 0..100."""
    if not pod.preferred_affinity and not pod.preferred_anti_affinity:
        return None
    raw = np.zeros(len(rows))
    for sign, terms in ((1.0, pod.preferred_affinity), (-1.0, pod.preferred_anti_affinity)):
        for term in terms:
            raw += sign * term.weight * _term_counts(table, term, rows)
    low, high = float(raw.min()), float(raw.max())
    if high <= low:
        return None
    result: FloatArray = (raw - low) * (100.0 / (high - low))
    return result


_SCORES: tuple[tuple[str, Score], ...] = (
    ("node_affinity", node_affinity), ("taint_toleration", taint_toleration),
    ("selector_spread", selector_spread), ("inter_pod_affinity", inter_pod_affinity))


def total(table: NodeTable, pod: PodInfo, rows: IntArray, *,
          weights: Weights = DEFAULT_WEIGHTS) -> FloatArray:
    """The weighted sum of every score over `rows`."""
    if weights.least_allocated or weights.balanced_allocation:
        out = _allocation(table, pod, rows, least=weights.least_allocated,
                          balanced=weights.balanced_allocation)
    else:
        out = np.zeros(len(rows))
    for name, score in _SCORES:
        weight: float = getattr(weights, name)
        if weight:
            vector = score(table, pod, rows)
            if vector is not None:
                out += weight * vector
    return out
