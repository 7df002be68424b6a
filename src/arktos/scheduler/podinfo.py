"""What the scheduler needs to know about a pod, parsed once from its JSON (`pod_info`).

Everything here is immutable and hashable except `PodInfo.labels` and `PodInfo.request`, so
filters can cache node masks per distinct `PodInfo.signature`. Malformed parts of a pod are
read the way Kubernetes reads them: an invalid node-selector term matches no node, a pod
affinity term without a valid label selector matches no pod.

Tenant isolation: every pod-affinity term carries the tenant of the pod that states it
(`PodSelector.tenant`) and only ever selects pods of that tenant.

No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from arktos.api.errors import StatusError
from arktos.api.quantity import int_value, milli_value
from arktos.api.quota import pod_resources
from arktos.api.selectors import LabelSelector, label_selector_from_dict
from arktos.scheduler.arrays import FloatArray

__all__ = [
    "CPU", "DEFAULT_MEMORY", "DEFAULT_MILLI_CPU", "EPHEMERAL_STORAGE", "HARD_EFFECTS",
    "HOSTNAME", "MEMORY", "PODS", "RESOURCES", "UNSCHEDULABLE_TAINT", "NodeRequirement",
    "NodeTerm", "PodInfo", "PodSelector", "PodTerm", "Taint", "Toleration", "WeightedNodeTerm",
    "WeightedPodTerm", "parse_int", "pod_info", "tolerated",
]

RESOURCES = ("cpu", "memory", "ephemeral-storage", "pods")
"""Column order of request and allocatable vectors: millicores, bytes, bytes, count."""
CPU, MEMORY, EPHEMERAL_STORAGE, PODS = range(4)
DEFAULT_MILLI_CPU = 100.0
DEFAULT_MEMORY = 200.0 * 1024 * 1024
"""Kubernetes' stand-ins for a missing cpu/memory request, used by scores only."""
HOSTNAME = "kubernetes.io/hostname"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
"""Taint effects a pod must tolerate to be placed; `PreferNoSchedule` only lowers scores."""

NodeOp = Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
_NODE_OPS: tuple[NodeOp, ...] = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_INT = re.compile(r"^[+-]?[0-9]+$")


@dataclass(frozen=True, slots=True)
class Taint:
    """A node taint; `effect` is NoSchedule, PreferNoSchedule or NoExecute."""

    key: str
    value: str
    effect: str


@dataclass(frozen=True, slots=True)
class Toleration:
    """A pod toleration. Empty `key` (with Exists) and empty `effect` match any."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        """Kubernetes' `ToleratesTaint`."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator in ("", "Equal") and self.value == taint.value


def tolerated(tolerations: tuple[Toleration, ...], taint: Taint) -> bool:
    """Whether any of `tolerations` tolerates `taint`."""
    return any(t.tolerates(taint) for t in tolerations)


@dataclass(frozen=True, slots=True)
class NodeRequirement:
    """One node-selector requirement: on a label `key`, or (`field`) on `metadata.name`.
    `values` are integers' text for Gt/Lt (exactly one), empty for (Does Not) Exists."""

    key: str
    op: NodeOp
    values: tuple[str, ...] = ()
    field: bool = False


@dataclass(frozen=True, slots=True)
class NodeTerm:
    """Requirements ANDed. A term without requirements matches no node (as in Kubernetes)."""

    requirements: tuple[NodeRequirement, ...]


@dataclass(frozen=True, slots=True)
class WeightedNodeTerm:
    """A preferred node-affinity term: nodes matching `term` gain `weight` (1..100)."""

    weight: int
    term: NodeTerm


@dataclass(frozen=True, slots=True)
class PodSelector:
    """The pods a pod-affinity term looks at: of `tenant` only, in `namespaces` (None: every
    namespace of the tenant), whose labels match `selector` (None: no pod at all)."""

    tenant: str
    namespaces: frozenset[str] | None
    selector: LabelSelector | None

    def matches(self, tenant: str, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether a pod of `tenant`/`namespace` with `labels` is selected."""
        if self.selector is None or tenant != self.tenant:
            return False
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return self.selector.matches(labels)


@dataclass(frozen=True, slots=True)
class PodTerm:
    """A pod (anti-)affinity term: the selected pods, counted per `topology_key` domain
    (nodes sharing that label's value; nodes without the label are in no domain)."""

    pods: PodSelector
    topology_key: str


@dataclass(frozen=True, slots=True)
class WeightedPodTerm:
    """A preferred pod (anti-)affinity term with its weight (1..100)."""

    weight: int
    term: PodTerm


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A pod as the scheduler sees it. `request` is indexed by `RESOURCES` (pods = 1);
    `score_request` is (millicores, bytes) with Kubernetes' defaults for missing requests.
    `required_terms` None means no required node affinity; a tuple (even empty) is ORed.
    `signature` is a hashable summary of everything the node-only filters read: pods with
    equal signatures get the same cached mask. Never mutate `labels` or `request`; PodInfo
    itself is not hashable (its `labels` are a dict)."""

    key: str
    uid: str
    tenant: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    priority: int
    is_vm: bool
    request: FloatArray = field(compare=False, repr=False)
    score_request: tuple[float, float]
    node_name: str
    node_selector: tuple[tuple[str, str], ...]
    required_terms: tuple[NodeTerm, ...] | None
    preferred_terms: tuple[WeightedNodeTerm, ...]
    tolerations: tuple[Toleration, ...]
    affinity: tuple[PodTerm, ...]
    anti_affinity: tuple[PodTerm, ...]
    preferred_affinity: tuple[WeightedPodTerm, ...]
    preferred_anti_affinity: tuple[WeightedPodTerm, ...]
    owner: str
    signature: Hashable = field(compare=False, repr=False)

    @property
    def has_pod_terms(self) -> bool:
        """Whether the pod states any required pod affinity or anti-affinity."""
        return bool(self.affinity or self.anti_affinity)


# --- parsing -----------------------------------------------------------------------------

def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _weight(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _request(pod: dict[str, Any]) -> tuple[FloatArray, tuple[float, float]]:
    requests = pod_resources(pod)[0]
    cpu = float(milli_value(requests["cpu"])) if "cpu" in requests else 0.0
    memory = float(int_value(requests["memory"])) if "memory" in requests else 0.0
    storage = requests.get("ephemeral-storage")
    vector = np.array([cpu, memory, float(int_value(storage)) if storage else 0.0, 1.0])
    return vector, (cpu or DEFAULT_MILLI_CPU, memory or DEFAULT_MEMORY)


def _node_requirement(expr: dict[str, Any], *, is_field: bool) -> NodeRequirement | None:
    """A requirement, or None when Kubernetes would reject it (the term then never matches)."""
    key, op, values = _str(expr.get("key")), expr.get("operator"), _strings(expr.get("values"))
    if not key or op not in _NODE_OPS:
        return None
    if is_field and (key != "metadata.name" or op not in ("In", "NotIn") or len(values) != 1):
        return None
    if op in ("In", "NotIn") and not values:
        return None
    if op in ("Exists", "DoesNotExist") and values:
        return None
    if op in ("Gt", "Lt") and (len(values) != 1 or parse_int(values[0]) is None):
        return None
    return NodeRequirement(key, op, tuple(sorted(set(values))), is_field)


def parse_int(text: str) -> int | None:
    """A decimal integer as Go's `strconv.ParseInt` reads it (64 bits), else None."""
    if not _INT.match(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def _node_term(term: dict[str, Any]) -> NodeTerm | None:
    reqs = [_node_requirement(e, is_field=False) for e in _dicts(term.get("matchExpressions"))]
    reqs += [_node_requirement(e, is_field=True) for e in _dicts(term.get("matchFields"))]
    if not reqs or any(r is None for r in reqs):
        return None
    return NodeTerm(tuple(r for r in reqs if r is not None))


def _node_affinity(spec: Any) -> tuple[tuple[NodeTerm, ...] | None, tuple[WeightedNodeTerm, ...]]:
    affinity = _dig(spec, "affinity", "nodeAffinity")
    required = _dig(affinity, "requiredDuringSchedulingIgnoredDuringExecution")
    terms: tuple[NodeTerm, ...] | None = None
    if isinstance(required, dict):
        parsed = (_node_term(t) for t in _dicts(required.get("nodeSelectorTerms")))
        terms = tuple(t for t in parsed if t is not None)
    preferred: list[WeightedNodeTerm] = []
    for p in _dicts(_dig(affinity, "preferredDuringSchedulingIgnoredDuringExecution")):
        term = _node_term(p.get("preference") or {})
        if term is not None and _weight(p.get("weight")) > 0:
            preferred.append(WeightedNodeTerm(_weight(p.get("weight")), term))
    return terms, tuple(preferred)


def _tolerations(spec: Any) -> tuple[Toleration, ...]:
    return tuple(Toleration(_str(t.get("key")), _str(t.get("operator")) or "Equal",
                            _str(t.get("value")), _str(t.get("effect")))
                 for t in _dicts(_dig(spec, "tolerations")))


def _pod_selector(term: dict[str, Any], tenant: str, namespace: str) -> PodSelector:
    """Namespaces: those listed; else every one for `namespaceSelector: {}`; else the pod's.
    (A non-empty `namespaceSelector` is not supported: it is read as the pod's namespace.)"""
    selector: LabelSelector | None = None
    raw = term.get("labelSelector")
    if isinstance(raw, dict):
        try:
            selector = label_selector_from_dict(raw)
        except StatusError:
            selector = None
    listed = _strings(term.get("namespaces"))
    namespaces: frozenset[str] | None = frozenset(listed or (namespace,))
    if not listed and term.get("namespaceSelector") == {}:
        namespaces = None
    return PodSelector(tenant, namespaces, selector)


def _pod_term(term: dict[str, Any], tenant: str, namespace: str) -> PodTerm | None:
    key = _str(term.get("topologyKey"))
    return PodTerm(_pod_selector(term, tenant, namespace), key) if key else None


def _pod_terms(spec: Any, kind: str, tenant: str, namespace: str
               ) -> tuple[tuple[PodTerm, ...], tuple[WeightedPodTerm, ...]]:
    """(required, preferred) terms of `podAffinity` or `podAntiAffinity`."""
    section = _dig(spec, "affinity", kind)
    parsed = (_pod_term(t, tenant, namespace)
              for t in _dicts(_dig(section, "requiredDuringSchedulingIgnoredDuringExecution")))
    required = tuple(t for t in parsed if t is not None)
    preferred: list[WeightedPodTerm] = []
    for p in _dicts(_dig(section, "preferredDuringSchedulingIgnoredDuringExecution")):
        term = _pod_term(p.get("podAffinityTerm") or {}, tenant, namespace)
        if term is not None and _weight(p.get("weight")) > 0:
            preferred.append(WeightedPodTerm(_weight(p.get("weight")), term))
    return required, tuple(preferred)


def _owner(meta: Any) -> str:
    for ref in _dicts(_dig(meta, "ownerReferences")):
        if ref.get("controller") is True:
            return _str(ref.get("uid"))
    return ""


def pod_info(pod: dict[str, Any]) -> PodInfo:
    """Parse a pod (JSON as stored). Never raises on malformed parts (see module doc)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    tenant, namespace, name = _str(meta.get("tenant")), _str(meta.get("namespace")), \
        _str(meta.get("name"))
    request, score_request = _request(pod)
    required, preferred = _node_affinity(spec)
    affinity, pref_affinity = _pod_terms(spec, "podAffinity", tenant, namespace)
    anti, pref_anti = _pod_terms(spec, "podAntiAffinity", tenant, namespace)
    is_vm = isinstance(spec.get("virtualMachine"), dict)
    node_name = _str(spec.get("nodeName"))
    selector = tuple(sorted(_str_map(spec.get("nodeSelector")).items()))
    tolerations = _tolerations(spec)
    priority = spec.get("priority")
    return PodInfo(
        key=f"{tenant}/{namespace}/{name}", uid=_str(meta.get("uid")), tenant=tenant,
        namespace=namespace, name=name, labels=_str_map(meta.get("labels")),
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
        is_vm=is_vm, request=request, score_request=score_request, node_name=node_name,
        node_selector=selector, required_terms=required, preferred_terms=preferred,
        tolerations=tolerations, affinity=affinity, anti_affinity=anti,
        preferred_affinity=pref_affinity, preferred_anti_affinity=pref_anti,
        owner=_owner(meta),
        signature=(is_vm, node_name, selector, required, tolerations))
