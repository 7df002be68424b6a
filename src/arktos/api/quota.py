"""Resource quotas and limit ranges: what objects use, whether quotas admit them, and the
LimitRange defaults and bounds of pods. Pure: no I/O, no storage, no clock.

Quota scopes in Arktos (a decision; no new kind)
------------------------------------------------
* Per-namespace quota: any ResourceQuota. It counts objects of its own tenant and namespace.
* Per-tenant quota: a ResourceQuota in the tenant's `kube-system` namespace labelled
  `arktos.io/scope=tenant`. It counts objects in ALL namespaces of its tenant (kube-system
  included). Validation rejects the label anywhere else and any change of it, so a quota never
  switches scope (its `status.used` would be wrong). Being a ResourceQuota, it is listed,
  printed and RBAC-protected like one; tenant admins get it by owning `kube-system`.
* An object must fit every quota that `applies` to it: its namespace's and its tenant's.

How admission uses this module (the API server wires it)
--------------------------------------------------------
1. Pod create: `apply_limit_ranges(pod, ranges_of_the_namespace)` fills defaults; any message
   returned rejects the pod (403, as Kubernetes' LimitRanger).
2. `delta = diff(object_usage(q, new), object_usage(q, old or {}))`, `q` the qualified
   resource (`pods`, `deployments.apps`). Nothing to do when `delta` is empty.
3. For each quota with `applies(quota, q, new)`, serialized per quota (read, check, write
   with the resourceVersion): `check([quota], {quota_key(quota): used}, delta, pod)`; no
   message -> store `status = quota_status(quota, add_usage(used, delta))`.
   `quota_usage(quota, objects)` recomputes `used` from scratch (new quota, repair).

Usage counts as in Kubernetes: `count/<resource>` counts every stored object; `pods`, cpu
and memory ignore pods that are Succeeded, Failed or being deleted. A pod's requests and
limits are the sum over its containers (or its VM), raised to any single init container's;
requests missing for a resource default to its limit.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from arktos.api.quantity import milli_value, parse_quantity

Obj = dict[str, Any]
Usage = dict[str, Decimal]
ZERO = Decimal(0)
ONE = Decimal(1)

TENANT_SCOPE_LABEL = "arktos.io/scope"
TENANT_SCOPE = "tenant"
TENANT_QUOTA_NAMESPACE = "kube-system"
LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger"

COMPUTE = ("cpu", "memory")
POD_COMPUTE_NAMES = frozenset({"cpu", "memory", "requests.cpu", "requests.memory",
                               "limits.cpu", "limits.memory"})
"""Quota names a pod must state per container when a quota limits them."""
LEGACY_COUNTS = ("configmaps", "secrets", "services", "persistentvolumeclaims")
STANDARD_NAMES = frozenset({"pods", *POD_COMPUTE_NAMES, *LEGACY_COUNTS, "requests.storage"})
_COUNT_NAME = re.compile(
    r"^count/[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort")
SCOPE_CONFLICTS = (("Terminating", "NotTerminating"), ("BestEffort", "NotBestEffort"))
_POD_COUNTS = frozenset({"pods", "count/pods"})
SCOPE_NAMES = {"BestEffort": _POD_COUNTS, "NotBestEffort": _POD_COUNTS | POD_COMPUTE_NAMES,
               "Terminating": _POD_COUNTS | POD_COMPUTE_NAMES,
               "NotTerminating": _POD_COUNTS | POD_COMPUTE_NAMES}
"""The quota names each scope may limit."""
LIMIT_TYPES = ("Container", "Pod")
LIMIT_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_BYTES = frozenset({"memory", "storage", "ephemeral-storage"})
_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20),
           ("Ki", 2**10))


# --- names and quantities -----------------------------------------------------------------

def quota_name_errors(name: str) -> list[str]:
    """A quota may limit the standard names and `count/<plural>[.<group>]`."""
    if name in STANDARD_NAMES or _COUNT_NAME.match(name):
        return []
    return ["must be a standard resource for quota"]


def is_count(name: str) -> bool:
    """Whether the quota name counts objects (so its limit must be a whole number)."""
    return name == "pods" or name in LEGACY_COUNTS or name.startswith("count/")


def format_quantity(d: Decimal, resource: str) -> str:
    """A quantity as Kubernetes prints it: cpu `2` or `500m`; bytes (memory, storage) in the
    largest binary unit that is exact (`512Mi`, `1Gi`), else plain bytes; counts and anything
    else whole, or in thousandths (`1500m`)."""
    base = resource.split(".", 1)[1] if resource.startswith(("requests.", "limits.")) else resource
    if d == d.to_integral_value():
        n = int(d)
        for suffix, size in _BINARY if base in _BYTES and n else ():
            if n % size == 0:
                return f"{n // size}{suffix}"
        return str(n)
    if base in _BYTES:
        return str(math.ceil(d))
    return f"{milli_value(d)}m"


def quantities(value: Any) -> Usage:
    """The valid non-negative quantities of a resource map (anything else is skipped)."""
    out: Usage = {}
    for name, raw in value.items() if isinstance(value, dict) else ():
        try:
            amount = parse_quantity(raw)
        except ValueError:
            continue
        if amount >= 0:
            out[str(name)] = amount
    return out


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _add(a: Mapping[str, Decimal], b: Mapping[str, Decimal]) -> Usage:
    return {k: a.get(k, ZERO) + b.get(k, ZERO) for k in {**a, **b}}


def _max(a: Mapping[str, Decimal], b: Mapping[str, Decimal]) -> Usage:
    return {k: max(a.get(k, ZERO), b.get(k, ZERO)) for k in {**a, **b}}


def diff(new: Mapping[str, Decimal], old: Mapping[str, Decimal]) -> Usage:
    """`new - old`, without the resources that did not change."""
    out = {k: new.get(k, ZERO) - old.get(k, ZERO) for k in {**new, **old}}
    return {k: v for k, v in out.items() if v != 0}


def add_usage(used: Mapping[str, Decimal], delta: Mapping[str, Decimal]) -> Usage:
    """`used + delta`, never below zero."""
    return {k: max(ZERO, v) for k, v in _add(used, delta).items()}


# --- usage --------------------------------------------------------------------------------

def _workloads(pod: Any) -> list[Obj]:
    """The pod's containers and its virtual machine (Arktos: a pod has one or the other)."""
    out = _dicts(_dig(pod, "spec", "containers"))
    vm = _dig(pod, "spec", "virtualMachine")
    return [*out, vm] if isinstance(vm, dict) else out


def _inits(pod: Any) -> list[Obj]:
    return _dicts(_dig(pod, "spec", "initContainers"))


def workload_resources(workload: Any) -> tuple[Usage, Usage]:
    """(requests, limits) of one container or VM; a request defaults to its limit."""
    requests = quantities(_dig(workload, "resources", "requests"))
    limits = quantities(_dig(workload, "resources", "limits"))
    return {**limits, **requests}, limits


def pod_resources(pod: Any) -> tuple[Usage, Usage]:
    """The pod's effective (requests, limits): its containers' (or VM's) sum, raised to any
    init container's, since init containers run one at a time before the others."""
    requests: Usage = {}
    limits: Usage = {}
    for w in _workloads(pod):
        r, lim = workload_resources(w)
        requests, limits = _add(requests, r), _add(limits, lim)
    for init in _inits(pod):
        r, lim = workload_resources(init)
        requests, limits = _max(requests, r), _max(limits, lim)
    return requests, limits


def _compute_usage(requests: Mapping[str, Decimal], limits: Mapping[str, Decimal]) -> Usage:
    """Quota names for stated requests and limits (`cpu` is `requests.cpu`'s alias)."""
    out: Usage = {}
    for name in COMPUTE:
        if name in requests:
            out[name] = out[f"requests.{name}"] = requests[name]
        if name in limits:
            out[f"limits.{name}"] = limits[name]
    return out


def is_terminal(pod: Any) -> bool:
    """Succeeded, Failed or being deleted: no longer uses `pods`, cpu or memory quota."""
    return (_dig(pod, "status", "phase") in ("Succeeded", "Failed")
            or bool(_dig(pod, "metadata", "deletionTimestamp")))


def pod_usage(pod: Obj) -> Usage:
    """What a pod uses: `count/pods` always; `pods` and its cpu/memory requests and limits
    unless it is terminal."""
    usage: Usage = {"count/pods": ONE}
    if is_terminal(pod):
        return usage
    usage["pods"] = ONE
    return {**usage, **_compute_usage(*pod_resources(pod))}


def object_usage(rtype_qualified: str, obj: Obj) -> Usage:
    """What one stored object of `rtype_qualified` (`pods`, `deployments.apps`) uses."""
    if rtype_qualified == "pods":
        return pod_usage(obj)
    usage: Usage = {f"count/{rtype_qualified}": ONE}
    if rtype_qualified in LEGACY_COUNTS:
        usage[rtype_qualified] = ONE
    if rtype_qualified == "persistentvolumeclaims":
        storage = quantities(_dig(obj, "spec", "resources", "requests")).get("storage")
        if storage is not None:
            usage["requests.storage"] = storage
    return usage


def usage_of(objects: Iterable[tuple[str, Obj]]) -> Usage:
    """The summed usage of (qualified resource, object) pairs."""
    total: Usage = {}
    for qualified, obj in objects:
        total = _add(total, object_usage(qualified, obj))
    return total


# --- quotas -------------------------------------------------------------------------------

def _name(obj: Any) -> str:
    name = _dig(obj, "metadata", "name")
    return name if isinstance(name, str) else ""


def quota_key(quota: Obj) -> str:
    """`<namespace>/<name>`: a quota's key in `check`'s `used` (unique within a tenant)."""
    return f"{_dig(quota, 'metadata', 'namespace') or ''}/{_name(quota)}"


def hard_of(quota: Obj) -> Usage:
    """The limits of a quota (`spec.hard`)."""
    return quantities(_dig(quota, "spec", "hard"))


def used_of(quota: Obj) -> Usage:
    """The recorded usage of a quota (`status.used`)."""
    return quantities(_dig(quota, "status", "used"))


def tenant_scoped(quota: Obj) -> bool:
    """Whether the quota is its tenant's (counts all namespaces) rather than a namespace's."""
    labels = _dig(quota, "metadata", "labels")
    return (isinstance(labels, dict) and labels.get(TENANT_SCOPE_LABEL) == TENANT_SCOPE
            and _dig(quota, "metadata", "namespace") == TENANT_QUOTA_NAMESPACE)


def is_best_effort(pod: Any) -> bool:
    """Kubernetes' BestEffort QoS: no container states a cpu or memory request or limit."""
    for w in [*_workloads(pod), *_inits(pod)]:
        requests, limits = workload_resources(w)
        if any(requests.get(n, ZERO) > 0 or limits.get(n, ZERO) > 0 for n in COMPUTE):
            return False
    return True


def _scope_matches(scope: Any, pod: Obj) -> bool:
    positive: bool = scope in ("Terminating", "BestEffort")
    if scope in ("Terminating", "NotTerminating"):
        return (_dig(pod, "spec", "activeDeadlineSeconds") is not None) == positive
    if scope in ("BestEffort", "NotBestEffort"):
        return is_best_effort(pod) == positive
    return False


def applies(quota: Obj, rtype_qualified: str, obj: Obj) -> bool:
    """Whether the quota counts `obj`: same tenant; same namespace unless tenant-scoped; and
    a quota with `spec.scopes` only counts pods in every scope."""
    tenant = _dig(obj, "metadata", "tenant")
    if tenant and _dig(quota, "metadata", "tenant") not in (None, "", tenant):
        return False
    if not tenant_scoped(quota) and (_dig(quota, "metadata", "namespace")
                                     != _dig(obj, "metadata", "namespace")):
        return False
    scopes = _dig(quota, "spec", "scopes")
    if not scopes:
        return True
    return (rtype_qualified == "pods" and isinstance(scopes, list)
            and all(_scope_matches(s, obj) for s in scopes))


def missing_requests(quota: Obj, pod: Obj) -> str | None:
    """Kubernetes' rule: a quota on cpu/memory requests or limits needs every container (or the
    VM) to state them. `failed quota: <name>: must specify limits.cpu,requests.cpu`."""
    required = POD_COMPUTE_NAMES & hard_of(quota).keys()
    missing: set[str] = set()
    for w in [*_workloads(pod), *_inits(pod)] if required else ():
        missing |= required - _compute_usage(*workload_resources(w)).keys()
    if not missing:
        return None
    return f"failed quota: {_name(quota)}: must specify {','.join(sorted(missing))}"


def _pretty(values: Mapping[str, Decimal], names: Iterable[str]) -> str:
    return ",".join(f"{n}={format_quantity(values.get(n, ZERO), n)}" for n in names)


def exceeded(quota: Obj, used: Mapping[str, Decimal], delta: Mapping[str, Decimal]) -> str | None:
    """The message if adding `delta` to `used` passes the quota's `spec.hard`. Only increases
    are checked: a change that lowers or keeps usage is always admitted."""
    hard = hard_of(quota)
    requested = {k: v for k, v in delta.items() if k in hard and v > 0}
    over = sorted(k for k, v in requested.items() if used.get(k, ZERO) + v > hard[k])
    if not over:
        return None
    return (f"exceeded quota: {_name(quota)}, requested: {_pretty(requested, over)}, "
            f"used: {_pretty(used, over)}, limited: {_pretty(hard, over)}")


def check(quotas: Sequence[Obj], used: Mapping[str, Mapping[str, Decimal]],
          delta: Mapping[str, Decimal], pod: Obj | None = None) -> list[str]:
    """Every violation of admitting a change of usage `delta` under `quotas` (those that
    `applies`), worded as Kubernetes: first each `missing_requests` (when `pod` is the pod
    being created), then each `exceeded`. `used` maps `quota_key`s to current usage; a quota
    missing from it uses its `status.used`. Empty: admitted."""
    out = [m for q in quotas if pod is not None and (m := missing_requests(q, pod))]
    for q in quotas:
        current = used.get(quota_key(q))
        message = exceeded(q, used_of(q) if current is None else current, delta)
        if message:
            out.append(message)
    return out


def quota_usage(quota: Obj, objects: Iterable[tuple[str, Obj]]) -> Usage:
    """The quota's usage recomputed from (qualified resource, object) pairs of its tenant:
    the objects it `applies` to, only the resources it limits (zero included)."""
    hard = hard_of(quota)
    total = usage_of((q, o) for q, o in objects if applies(quota, q, o))
    return {k: total.get(k, ZERO) for k in hard}


def quota_status(quota: Obj, used: Mapping[str, Decimal]) -> Obj:
    """The quota's `status`: `hard` copied from `spec.hard`, `used` for each of those."""
    raw = _dig(quota, "spec", "hard")
    hard = hard_of(quota)
    return {"hard": {k: str(raw[k]) for k in hard},
            "used": {k: format_quantity(used.get(k, ZERO), k) for k in hard}}


# --- limit ranges -------------------------------------------------------------------------

def _fill_from(item: Obj, target: str, source: str) -> None:
    src = item.get(source)
    if not isinstance(src, dict) or not src:
        return
    if item.get(target) is None:
        item[target] = {}
    dst = item[target]
    if isinstance(dst, dict):
        for k, v in src.items():
            dst.setdefault(k, copy.deepcopy(v))


def default_limit_range(obj: Any) -> None:
    """Kubernetes' LimitRange defaults, for `Container` items: `default` from `max`,
    `defaultRequest` from `default`, then from `min`."""
    for item in _dicts(_dig(obj, "spec", "limits")):
        if item.get("type") == "Container":
            _fill_from(item, "default", "max")
            _fill_from(item, "defaultRequest", "default")
            _fill_from(item, "defaultRequest", "min")


def _container_defaults(items: list[Obj]) -> tuple[Obj, Obj]:
    """(default requests, default limits) as given; the first LimitRange stating one wins."""
    requests: Obj = {}
    limits: Obj = {}
    for item in items:
        if item.get("type") != "Container":
            continue
        for key, out in (("defaultRequest", requests), ("default", limits)):
            given = item.get(key)
            for name, raw in given.items() if isinstance(given, dict) else ():
                out.setdefault(name, raw)
    return requests, limits


def _resource_maps(workload: Obj) -> Obj | None:
    """`workload.resources` with `requests` and `limits` maps (created if absent); None if
    something else is there."""
    if workload.get("resources") is None:
        workload["resources"] = {}
    res = workload["resources"]
    if not isinstance(res, dict):
        return None
    for key in ("requests", "limits"):
        if res.get(key) is None:
            res[key] = {}
    return res if isinstance(res["requests"], dict) and isinstance(res["limits"], dict) else None


def _merge(workload: Obj, defaults: tuple[Obj, Obj]) -> tuple[list[str], list[str]]:
    """Fill missing requests (first from the workload's own limits, as pod defaulting does)
    and limits; returns the names of the (requests, limits) taken from `defaults`."""
    res = _resource_maps(workload)
    if res is None:
        return [], []
    for name, raw in res["limits"].items():
        res["requests"].setdefault(name, raw)
    taken: tuple[list[str], list[str]] = ([], [])
    for key, default, names in zip(("requests", "limits"), defaults, taken, strict=True):
        for name, raw in default.items():
            if name not in res[key]:
                res[key][name] = copy.deepcopy(raw)
                names.append(name)
    return sorted(taken[0]), sorted(taken[1])


def _annotate(pod: Obj, notes: list[str]) -> None:
    meta = pod.setdefault("metadata", {})
    if notes and isinstance(meta, dict):
        annotations = meta.setdefault("annotations", {})
        if isinstance(annotations, dict):
            annotations[LIMIT_RANGER_ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)


def _default_pod(pod: Obj, items: list[Obj]) -> None:
    defaults = _container_defaults(items)
    if not any(defaults):
        return
    notes = []
    labelled = [("container", c) for c in _dicts(_dig(pod, "spec", "containers"))]
    labelled += [("init container", c) for c in _inits(pod)]
    vm = _dig(pod, "spec", "virtualMachine")
    labelled += [("virtual machine", vm)] if isinstance(vm, dict) else []
    for label, w in labelled:
        requests, limits = _merge(w, defaults)
        for names, what in ((requests, "request"), (limits, "limit")):
            if names:
                notes.append(f"{', '.join(names)} {what} for {label} {w.get('name')}")
    _annotate(pod, notes)


def _min_error(kind: str, name: str, enforced: Decimal, requests: Usage,
               limits: Usage) -> str | None:
    head = f"minimum {name} usage per {kind} is {format_quantity(enforced, name)}"
    if name not in requests:
        return f"{head}.  No request is specified"
    if requests[name] < enforced:
        return f"{head}, but request is {format_quantity(requests[name], name)}"
    if name in limits and limits[name] < enforced:
        return f"{head}, but limit is {format_quantity(limits[name], name)}"
    return None


def _max_error(kind: str, name: str, enforced: Decimal, requests: Usage,
               limits: Usage) -> str | None:
    head = f"maximum {name} usage per {kind} is {format_quantity(enforced, name)}"
    if name not in limits:
        return f"{head}.  No limit is specified"
    if limits[name] > enforced:
        return f"{head}, but limit is {format_quantity(limits[name], name)}"
    if name in requests and requests[name] > enforced:
        return f"{head}, but request is {format_quantity(requests[name], name)}"
    return None


def _ratio_error(kind: str, name: str, enforced: Decimal, requests: Usage,
                 limits: Usage) -> str | None:
    head = (f"{name} max limit to request ratio per {kind} is "
            f"{format_quantity(enforced, 'ratio')}")
    if not requests.get(name):
        return f"{head}, but no request is specified or request is 0"
    if not limits.get(name):
        return f"{head}, but no limit is specified or limit is 0"
    ratio = limits[name] / requests[name]
    return f"{head}, but provided ratio is {float(ratio):f}" if ratio > enforced else None


_BOUNDS = (("min", _min_error), ("max", _max_error), ("maxLimitRequestRatio", _ratio_error))


def _item_errors(item: Obj, pod: Obj) -> list[str]:
    """One LimitRange item's bounds on each container/VM (`Container`) or the pod (`Pod`)."""
    kind = item.get("type")
    if kind == "Container":
        targets = [workload_resources(w) for w in [*_workloads(pod), *_inits(pod)]]
    elif kind == "Pod":
        targets = [pod_resources(pod)]
    else:
        return []
    errors = []
    for requests, limits in targets:
        for key, rule in _BOUNDS:
            for name, enforced in sorted(quantities(item.get(key)).items()):
                message = rule(kind, name, enforced, requests, limits)
                if message:
                    errors.append(message)
    return errors


def apply_limit_ranges(pod: Obj, limit_ranges: Sequence[Obj]) -> list[str]:
    """Kubernetes' LimitRanger on a pod being created, in place: missing requests and limits
    of each container, init container and VM are filled from the `Container` items'
    `defaultRequest`/`default` (recorded in the `kubernetes.io/limit-ranger` annotation);
    then every `min`/`max`/`maxLimitRequestRatio` of `Container` items (per container or
    VM) and `Pod` items (the pod's effective total) is enforced. Returns the violations,
    e.g. `maximum cpu usage per Container is 2, but limit is 3`; empty: admitted."""
    ranges = [copy.deepcopy(lr) for lr in limit_ranges]
    for lr in ranges:
        default_limit_range(lr)
    items = [i for lr in ranges for i in _dicts(_dig(lr, "spec", "limits"))]
    _default_pod(pod, items)
    return [message for item in items for message in _item_errors(item, pod)]


def counted_resources(q: Obj) -> frozenset[str]:
    """The qualified resources (`pods`, `deployments.apps`) whose objects can use a name in
    the quota's `spec.hard`: `count/<r>` counts `<r>`; `pods`, cpu and memory count pods;
    `configmaps`, `secrets`, `services`, `persistentvolumeclaims` count themselves;
    `requests.storage` counts persistentvolumeclaims."""
    names = set(hard_of(q))
    out = {n.removeprefix("count/") for n in names if n.startswith("count/")}
    out |= names & set(LEGACY_COUNTS)
    if names & (POD_COMPUTE_NAMES | {"pods"}):
        out.add("pods")
    if "requests.storage" in names:
        out.add("persistentvolumeclaims")
    return frozenset(out)
