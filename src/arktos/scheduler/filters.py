"""Filters: which nodes can take a pod, as boolean masks over the table's rows.

Every filter is a function `(table, pod) -> mask` of length `table.size`, False on dead rows,
plus a function counting, for rows it rejects, why (Kubernetes' wording where it has one).
`FILTERS` runs in this order; `rejections` counts each rejected node under the first filter
that rejects it, as Kubernetes does (NodeResourcesFit, like Kubernetes, names every resource
the node lacks, so a node may count under several of its reasons):

1. RuntimeReady (Arktos): VM pods need `VmRuntimeReady`, container pods
   `ContainerRuntimeReady`; any toleration `{operator: Exists, effect: NoSchedule}` bypasses.
2. NodeUnschedulable: `spec.unschedulable` nodes, unless the pod tolerates the
   `node.kubernetes.io/unschedulable:NoSchedule` taint.
3. NodeName, 4. TaintToleration (NoSchedule and NoExecute), 5. NodeAffinity (nodeSelector and
   required node affinity), 6. NodeResourcesFit, 7. InterPodAffinity (the pod's required
   affinity and anti-affinity, then existing pods' anti-affinity, all within its tenant).

Filters 1-5 read node state only: `static_mask` ANDs them once per distinct pod signature and
table version. `feasible` adds the two that depend on placed pods.

No I/O here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from arktos.scheduler.arrays import BoolArray, IntArray
from arktos.scheduler.nodes import NodeTable
from arktos.scheduler.podindex import RowCounts
from arktos.scheduler.podinfo import (
    CPU,
    EPHEMERAL_STORAGE,
    HARD_EFFECTS,
    MEMORY,
    PODS,
    UNSCHEDULABLE_TAINT,
    PodInfo,
    Taint,
    tolerated,
)

__all__ = [
    "FILTERS",
    "INSUFFICIENT",
    "REASON_CONTAINER_RUNTIME",
    "REASON_EXISTING_ANTI_AFFINITY",
    "REASON_NODE_AFFINITY",
    "REASON_NODE_NAME",
    "REASON_POD_AFFINITY",
    "REASON_POD_ANTI_AFFINITY",
    "REASON_UNSCHEDULABLE",
    "REASON_VM_RUNTIME",
    "Filter",
    "domain_rows",
    "existing_anti_affinity",
    "feasible",
    "inter_pod_affinity",
    "node_affinity",
    "node_name",
    "node_unschedulable",
    "pod_affinity",
    "pod_anti_affinity",
    "rejections",
    "resources_fit",
    "runtime_ready",
    "static_mask",
    "taint_reason",
    "taint_toleration",
]

REASON_VM_RUNTIME = "VM runtime not ready"
REASON_CONTAINER_RUNTIME = "container runtime not ready"
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_NODE_NAME = "node(s) didn't match the requested node name"
REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_POD_AFFINITY = "node(s) didn't match pod affinity rules"
REASON_POD_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
INSUFFICIENT = {PODS: "Too many pods", CPU: "Insufficient cpu",
                MEMORY: "Insufficient memory", EPHEMERAL_STORAGE: "Insufficient ephemeral-storage"}
"""Reasons of NodeResourcesFit, in the order Kubernetes checks them."""

Mask = Callable[[NodeTable, PodInfo], BoolArray]
Reasons = Callable[[NodeTable, PodInfo, IntArray], Counter[str]]
_UNSCHEDULABLE = Taint(UNSCHEDULABLE_TAINT, "", "NoSchedule")


@dataclass(frozen=True, slots=True)
class Filter:
    """A named filter: `mask` says which rows pass; `reasons` counts why `rejected` rows
    (row numbers, all failing `mask`) do not. `static` filters read node state only."""

    name: str
    mask: Mask
    reasons: Reasons
    static: bool


def _always(reason: str) -> Reasons:
    def reasons(table: NodeTable, pod: PodInfo, rejected: IntArray) -> Counter[str]:
        return Counter({reason: len(rejected)})
    return reasons


# --- node-only filters ---------------------------------------------------------------------

def runtime_ready(table: NodeTable, pod: PodInfo) -> BoolArray:
    """Rows whose runtime for the pod's kind (VM or containers) is ready."""
    if any(t.operator == "Exists" and t.effect == "NoSchedule" for t in pod.tolerations):
        return table.live_rows()
    ready = table.vm_ready if pod.is_vm else table.container_ready
    return ready[: table.size] & table.live[: table.size]


def _runtime_reasons(table: NodeTable, pod: PodInfo, rejected: IntArray) -> Counter[str]:
    return Counter({REASON_VM_RUNTIME if pod.is_vm else REASON_CONTAINER_RUNTIME: len(rejected)})


def node_unschedulable(table: NodeTable, pod: PodInfo) -> BoolArray:
    """Rows not marked unschedulable, or all if the pod tolerates that."""
    if tolerated(pod.tolerations, _UNSCHEDULABLE):
        return table.live_rows()
    return table.live[: table.size] & ~table.unschedulable[: table.size]


def node_name(table: NodeTable, pod: PodInfo) -> BoolArray:
    """The row of `spec.nodeName`, or all rows if the pod names no node."""
    if not pod.node_name:
        return table.live_rows()
    rows = table.none()
    row = table.row_of(pod.node_name)
    if row is not None:
        rows[row] = True
    return rows


def taint_toleration(table: NodeTable, pod: PodInfo) -> BoolArray:
    """Rows without a NoSchedule/NoExecute taint the pod does not tolerate."""
    rows = table.live_rows()
    for taint, mask in table.taints.taints():
        if taint.effect in HARD_EFFECTS and not tolerated(pod.tolerations, taint):
            rows &= ~mask[: table.size]
    return rows


def taint_reason(taint: Taint) -> str:
    """Kubernetes' reason for an untolerated taint."""
    return f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"


def _taint_reasons(table: NodeTable, pod: PodInfo, rejected: IntArray) -> Counter[str]:
    """Each node under its first untolerated hard taint."""
    out: Counter[str] = Counter()
    for row in rejected.tolist():
        state = table.states[row]
        assert state is not None
        for taint in state.taints:
            if taint.effect in HARD_EFFECTS and not tolerated(pod.tolerations, taint):
                out[taint_reason(taint)] += 1
                break
    return out


def node_affinity(table: NodeTable, pod: PodInfo) -> BoolArray:
    """Rows with every `nodeSelector` label and matching one required affinity term."""
    rows = table.live_rows()
    for key, value in pod.node_selector:
        rows &= table.label_rows(key, (value,))
    if pod.required_terms is not None:
        any_term = table.none()
        for term in pod.required_terms:
            any_term |= table.term_rows(term)
        rows &= any_term
    return rows


# --- filters reading placed pods -----------------------------------------------------------

def resources_fit(table: NodeTable, pod: PodInfo) -> BoolArray:
    """Rows with room for one more pod and for every resource the pod requests (> 0)."""
    free, size, request = table.free, table.size, pod.request
    rows: BoolArray = free[:size, PODS] >= request[PODS]
    for j in (CPU, MEMORY, EPHEMERAL_STORAGE):
        if request[j] > 0:
            rows &= free[:size, j] >= request[j]
    return rows


def _fit_reasons(table: NodeTable, pod: PodInfo, rejected: IntArray) -> Counter[str]:
    out: Counter[str] = Counter()
    for j, reason in INSUFFICIENT.items():
        if j == PODS or pod.request[j] > 0:
            short = int(np.count_nonzero(table.free[rejected, j] < pod.request[j]))
            if short:
                out[reason] = short
    return out


def domain_rows(table: NodeTable, topology_key: str, counts: RowCounts) -> BoolArray:
    """Rows in the `topology_key` domain of any row in `counts` (rows without the label are
    in no domain)."""
    col = table.labels.get(topology_key)
    if col is None or not counts:
        return table.none()
    codes = col.column[np.fromiter(counts, dtype=np.intp, count=len(counts))]
    rows: BoolArray = col.lookup(codes[codes >= 0].tolist())[col.column[: table.size]]
    return rows


def pod_affinity(table: NodeTable, pod: PodInfo) -> BoolArray:
    """Rows where every required affinity term has a selected pod in the node's domain. If no
    pod matches any term and the pod matches all its own terms (the first of a group), any
    node with every topology key passes."""
    rows = table.live_rows()
    if not pod.affinity:
        return rows
    selected = [table.pods.selected(t.pods) for t in pod.affinity]
    if all(s.total == 0 for s in selected) and all(
            t.pods.matches(pod.tenant, pod.namespace, pod.labels) for t in pod.affinity):
        for term in pod.affinity:
            rows &= table.has_label(term.topology_key)
        return rows
    for term, sel in zip(pod.affinity, selected, strict=True):
        rows &= domain_rows(table, term.topology_key, sel.rows)
    return rows


def pod_anti_affinity(table: NodeTable, pod: PodInfo) -> BoolArray:
    """Rows where no required anti-affinity term has a selected pod in the node's domain."""
    rows = table.live_rows()
    for term in pod.anti_affinity:
        rows &= ~domain_rows(table, term.topology_key, table.pods.selected(term.pods).rows)
    return rows


def existing_anti_affinity(table: NodeTable, pod: PodInfo) -> BoolArray:
    """Rows outside the domain of every placed pod whose anti-affinity selects this pod."""
    rows = table.live_rows()
    for term, counts in table.pods.holders_selecting(pod):
        rows &= ~domain_rows(table, term.topology_key, counts)
    return rows


_POD_CHECKS = ((pod_affinity, REASON_POD_AFFINITY), (pod_anti_affinity, REASON_POD_ANTI_AFFINITY),
               (existing_anti_affinity, REASON_EXISTING_ANTI_AFFINITY))


def inter_pod_affinity(table: NodeTable, pod: PodInfo) -> BoolArray:
    """Rows passing the pod's affinity, its anti-affinity and existing pods' anti-affinity."""
    rows = table.live_rows()
    if pod.has_pod_terms or table.pods.has_holders(pod.tenant):
        for check, _ in _POD_CHECKS:
            rows &= check(table, pod)
    return rows


def _pod_reasons(table: NodeTable, pod: PodInfo, rejected: IntArray) -> Counter[str]:
    out: Counter[str] = Counter()
    left = rejected
    for check, reason in _POD_CHECKS:
        failing = left[~check(table, pod)[left]]
        if len(failing):
            out[reason] = len(failing)
        left = np.setdiff1d(left, failing, assume_unique=True)
    return out


FILTERS = (
    Filter("RuntimeReady", runtime_ready, _runtime_reasons, static=True),
    Filter("NodeUnschedulable", node_unschedulable, _always(REASON_UNSCHEDULABLE), static=True),
    Filter("NodeName", node_name, _always(REASON_NODE_NAME), static=True),
    Filter("TaintToleration", taint_toleration, _taint_reasons, static=True),
    Filter("NodeAffinity", node_affinity, _always(REASON_NODE_AFFINITY), static=True),
    Filter("NodeResourcesFit", resources_fit, _fit_reasons, static=False),
    Filter("InterPodAffinity", inter_pod_affinity, _pod_reasons, static=False),
)
_STATIC = tuple(f.mask for f in FILTERS if f.static)


# --- combined --------------------------------------------------------------------------------

def _static(table: NodeTable, pod: PodInfo) -> BoolArray:
    rows = table.live_rows()
    for mask in _STATIC:
        rows &= mask(table, pod)
    rows.flags.writeable = False
    return rows


def static_mask(table: NodeTable, pod: PodInfo) -> BoolArray:
    """The AND of the node-only filters, cached per pod signature and table version.
    Read-only: copy before changing it."""
    return table.memo(("static", pod.signature), lambda: _static(table, pod))


def feasible(table: NodeTable, pod: PodInfo) -> BoolArray:
    """Rows passing every filter (a fresh mask)."""
    rows = resources_fit(table, pod)
    rows &= static_mask(table, pod)
    if pod.has_pod_terms or table.pods.has_holders(pod.tenant):
        rows &= inter_pod_affinity(table, pod)
    return rows


def rejections(table: NodeTable, pod: PodInfo) -> dict[str, int]:
    """Why nodes reject the pod: nodes per reason, each node under the first filter (in
    `FILTERS` order) that rejects it. Rows that pass every filter are not counted."""
    out: Counter[str] = Counter()
    left = table.live_rows()
    for f in FILTERS:
        passing = f.mask(table, pod)
        rejected = left & ~passing
        if rejected.any():
            out.update(f.reasons(table, pod, np.flatnonzero(rejected)))
        left &= passing
    return dict(out)
