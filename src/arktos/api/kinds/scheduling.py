"""`scheduling.k8s.io/v1` kinds: PriorityClass (cluster-scoped, the system tenant's). No I/O.

A pod's `spec.priority` comes from its `spec.priorityClassName` at admission (see
`resolve_priority`); the scheduler orders its queue by it. As in Kubernetes, names starting
with `system-` are reserved for the built-in classes and user classes are at most one billion.
"""

from __future__ import annotations

from arktos.api.errors import Cause
from arktos.api.kinds._checks import Fields, dig, forbidden, immutable, text
from arktos.api.resources import Column, Obj, ResourceType, Scope

HIGHEST_USER_PRIORITY = 1_000_000_000
SYSTEM_PRIORITY_CLASSES = {"system-cluster-critical": 2_000_000_000,
                           "system-node-critical": 2_000_001_000}
"""The built-in classes (created at start) and their values."""
SYSTEM_PREFIX = "system-"
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")


def _validate(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    fields = Fields.of(obj, "", causes)
    if fields is None:
        return causes
    name = str(dig(obj, "metadata", "name") or "")
    system_value = SYSTEM_PRIORITY_CLASSES.get(name)
    value = fields.integer("value", needed=True, lo=-2**31,
                           hi=system_value or HIGHEST_USER_PRIORITY)
    if name.startswith(SYSTEM_PREFIX) and system_value is None:
        causes.append(forbidden("metadata.name", f'priority class names with the prefix '
                                f'"{SYSTEM_PREFIX}" are reserved for the system'))
    elif system_value is not None and value is not None and value != system_value:
        causes.append(forbidden("value", f"the value of {name} must be {system_value}"))
    fields.boolean("globalDefault")
    fields.string("description")
    fields.choice("preemptionPolicy", PREEMPTION_POLICIES)
    if old is not None:
        for key in ("value", "preemptionPolicy"):
            if obj.get(key) != old.get(key):
                causes.append(immutable(key, obj.get(key)))
    return causes


def _default(obj: Obj) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


PRIORITY_CLASS = ResourceType(
    "scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", Scope.CLUSTER,
    short_names=("pc",), subresources=frozenset(), spec_fields=(),
    validate=_validate, default=_default,
    columns=(Column("VALUE", lambda o: text(o.get("value"), ""), type="integer"),
             Column("GLOBAL-DEFAULT", lambda o: str(o.get("globalDefault") is True).lower(),
                    type="boolean")))

TYPES = [PRIORITY_CLASS]


def builtin_priority_classes() -> list[Obj]:
    """The system classes the API server makes sure exist."""
    return [{"metadata": {"name": name}, "value": value,
             "description": "Used for system critical pods that must not be moved."}
            for name, value in SYSTEM_PRIORITY_CLASSES.items()]


def resolve_priority(spec: Obj, classes: dict[str, Obj]) -> str:
    """Fill a new pod's `spec.priority` (and `priorityClassName` from the global default class,
    if any) from `classes` by name; return why the pod is refused ("" if it is not)."""
    name = spec.get("priorityClassName")
    if name:
        found = classes.get(str(name))
        if found is None:
            return f"no PriorityClass with name {name} was found"
    else:
        defaults = sorted((c for c in classes.values() if c.get("globalDefault") is True),
                          key=lambda c: int(c.get("value") or 0))
        found = defaults[0] if defaults else None
        if found is not None:
            spec["priorityClassName"] = found["metadata"]["name"]
    value = int(found.get("value") or 0) if found is not None else 0
    given = spec.get("priority")
    if given is not None and given != value:
        return (f"the integer value of priority ({given}) must not be provided in pod spec; "
                f"priority admission controller computed {value} from the given PriorityClass "
                "name")
    spec["priority"] = value
    if found is not None and "preemptionPolicy" not in spec:
        spec["preemptionPolicy"] = found.get("preemptionPolicy", "PreemptLowerPriority")
    return ""
