"""Policy kinds (core `v1`, namespaced): ResourceQuota and LimitRange.

Their enforcement (usage, quota checks, LimitRange defaults and bounds) and the design of
tenant-wide quotas (a ResourceQuota in `kube-system` labelled `arktos.io/scope=tenant`) are in
`arktos.api.quota`. No I/O here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from arktos.api.errors import Cause
from arktos.api.kinds._checks import (
    Fields,
    dig,
    forbidden,
    immutable,
    invalid,
    not_supported,
    text,
)
from arktos.api.quota import (
    LIMIT_RESOURCES,
    LIMIT_TYPES,
    SCOPE_CONFLICTS,
    SCOPE_NAMES,
    SCOPES,
    TENANT_QUOTA_NAMESPACE,
    TENANT_SCOPE,
    TENANT_SCOPE_LABEL,
    ZERO,
    default_limit_range,
    format_quantity,
    is_count,
    quantities,
    quota_name_errors,
)
from arktos.api.resources import Column, Obj, ResourceType, Scope

_SCOPE_PATH = f"metadata.labels[{TENANT_SCOPE_LABEL}]"
_LIMIT_MAPS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")
_ORDER = (
    ("min", "max", "min", "min", "min value {lo} is greater than max value {hi}"),
    ("min", "defaultRequest", "defaultRequest", "defaultRequest",
     "min value {lo} is greater than default request value {hi}"),
    ("defaultRequest", "max", "defaultRequest", "defaultRequest",
     "default request value {lo} is greater than max value {hi}"),
    ("defaultRequest", "default", "defaultRequest", "defaultRequest",
     "default request value {lo} is greater than default limit value {hi}"),
    ("min", "default", "default", "min", "min value {lo} is greater than default value {hi}"),
    ("default", "max", "default", "max", "default value {lo} is greater than max value {hi}"),
)
"""Kubernetes' LimitRange order checks: (lower map, upper map, map of the reported field,
map of the reported value, message), applied when lower > upper."""


# --- ResourceQuota ------------------------------------------------------------------------

def _quota_map(f: Fields, key: str) -> dict[str, Decimal]:
    """`hard`/`used`: quota names to non-negative quantities, whole numbers for counts."""
    values = f.quantities(key)
    raw = f.obj.get(key)
    for name in list(raw) if isinstance(raw, dict) else ():
        path = f"{f.at(key)}[{name}]"
        f.causes.extend(invalid(path, name, e) for e in quota_name_errors(str(name)))
        amount = values.get(name)
        if amount is not None and is_count(name) and amount != amount.to_integral_value():
            f.add(invalid(path, f.obj[key][name], "must be an integer"))
    return values


def _check_scopes(spec: Fields, hard: dict[str, Decimal]) -> None:
    path = spec.at("scopes")
    scopes = spec.strings("scopes")
    for i, scope in enumerate(scopes):
        if scope not in SCOPES:
            spec.add(not_supported(f"{path}[{i}]", scope, SCOPES))
        elif any(name not in SCOPE_NAMES[scope] for name in hard):
            spec.add(invalid(path, scopes, "unsupported scope applied to resource"))
    for pair in SCOPE_CONFLICTS:
        if set(pair) <= set(scopes):
            spec.add(invalid(path, scopes, "conflicting scopes"))
    if spec.obj.get("scopeSelector") is not None:
        spec.add(forbidden(spec.at("scopeSelector"), "not supported; use `scopes`"))


def _scope_label(obj: Any) -> Any:
    labels = dig(obj, "metadata", "labels")
    return labels.get(TENANT_SCOPE_LABEL) if isinstance(labels, dict) else None


def _tenant_label_causes(obj: Obj, old: Obj | None) -> list[Cause]:
    """`arktos.io/scope` is `tenant`, only in `kube-system`, and never changes."""
    value = _scope_label(obj)
    if old is not None and value != _scope_label(old):
        return [immutable(_SCOPE_PATH, value)]
    if value is None:
        return []
    if value != TENANT_SCOPE:
        return [not_supported(_SCOPE_PATH, value, (TENANT_SCOPE,))]
    if dig(obj, "metadata", "namespace") != TENANT_QUOTA_NAMESPACE:
        return [invalid(_SCOPE_PATH, value,
                        f"a tenant-wide quota must be in namespace {TENANT_QUOTA_NAMESPACE}")]
    return []


def _validate_quota(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = Fields.of(obj.get("spec"), "spec", causes)
    if spec is not None:
        _check_scopes(spec, _quota_map(spec, "hard"))
    status = Fields.of(obj.get("status"), "status", causes)
    if status is not None:
        _quota_map(status, "hard")
        _quota_map(status, "used")
    return causes + _tenant_label_causes(obj, old)


def quota_summary(quota: Obj, *, limits: bool) -> str:
    """kubectl's REQUEST (or LIMIT: the `limits.*`) cell: `pods: 1/10, requests.cpu: 500m/2`,
    from `status.hard` (`spec.hard` until the status is written) and `status.used`."""
    hard = quantities(dig(quota, "status", "hard")) or quantities(dig(quota, "spec", "hard"))
    used = quantities(dig(quota, "status", "used"))
    return ", ".join(
        f"{name}: {format_quantity(used.get(name, ZERO), name)}/"
        f"{format_quantity(hard[name], name)}"
        for name in sorted(hard) if name.startswith("limits.") == limits)


# --- LimitRange ---------------------------------------------------------------------------

def _limit_map(item: Fields, key: str) -> dict[str, Decimal]:
    values = item.quantities(key)
    raw = item.obj.get(key)
    for name in raw if isinstance(raw, dict) else ():
        if name not in LIMIT_RESOURCES:
            item.add(invalid(f"{item.at(key)}[{name}]", name,
                             "must be a standard resource for containers"))
    return values


def _order_causes(item: Fields, maps: dict[str, dict[str, Decimal]]) -> None:
    names = sorted({name for values in maps.values() for name in values})
    for name in names:
        for lower, upper, at, shown, message in _ORDER:
            lo, hi = maps[lower].get(name), maps[upper].get(name)
            if lo is not None and hi is not None and lo > hi:
                item.add(invalid(f"{item.at(at)}[{name}]", item.obj[shown][name],
                                 message.format(lo=format_quantity(lo, name),
                                                hi=format_quantity(hi, name))))


def _ratio_causes(item: Fields, maps: dict[str, dict[str, Decimal]]) -> None:
    for name, ratio in sorted(maps["maxLimitRequestRatio"].items()):
        path = f"{item.at('maxLimitRequestRatio')}[{name}]"
        raw = item.obj["maxLimitRequestRatio"][name]
        shown = format_quantity(ratio, "ratio")
        if ratio < 1:
            item.add(invalid(path, raw, f"ratio {shown} is less than 1"))
        lo, hi = maps["min"].get(name), maps["max"].get(name)
        if lo and hi is not None and ratio > hi / lo:
            item.add(invalid(path, raw, f"ratio {shown} is greater than max/min = "
                                        f"{float(hi / lo):f}"))


def _check_limit_item(item: Fields) -> None:
    kind = item.choice("type", LIMIT_TYPES, needed=True)
    maps = {key: _limit_map(item, key) for key in _LIMIT_MAPS}
    if kind == "Pod":
        for key in ("default", "defaultRequest"):
            if item.has(key):
                item.add(forbidden(item.at(key), "may not be specified when `type` is 'Pod'"))
    _order_causes(item, maps)
    _ratio_causes(item, maps)


def _validate_limit_range(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = Fields.of(obj.get("spec"), "spec", causes)
    if spec is not None:
        items = spec.objects("limits")
        spec.unique(items, "type")
        for item in items:
            _check_limit_item(item)
    return causes


TYPES = [
    ResourceType("", "v1", "ResourceQuota", "resourcequotas", Scope.NAMESPACE,
                 short_names=("quota",), validate=_validate_quota,
                 columns=(Column("REQUEST", lambda o: quota_summary(o, limits=False),
                                 description="Used/hard of each non-limits resource."),
                          Column("LIMIT", lambda o: quota_summary(o, limits=True),
                                 description="Used/hard of each limits.* resource."))),
    ResourceType("", "v1", "LimitRange", "limitranges", Scope.NAMESPACE,
                 short_names=("limits",), subresources=frozenset(),
                 validate=_validate_limit_range, default=default_limit_range,
                 columns=(Column("CREATED AT", lambda o: text(
                     dig(o, "metadata", "creationTimestamp"), "")),)),
]
