"""`apps/v1` kinds: Deployment and ReplicaSet. No I/O here.

Both carry a selector (required, immutable, matching the template's labels), replicas
(default 1) and a pod template checked and defaulted like a pod (`restartPolicy: Always` only).
"""

from __future__ import annotations

import re
from typing import Any

from arktos.api.errors import Cause
from arktos.api.kinds._checks import (
    MAX_INT32,
    Fields,
    dicts,
    dig,
    fill,
    forbidden,
    immutable,
    invalid,
    number,
    range_message,
    section,
    texts,
    type_invalid,
)
from arktos.api.kinds._selector import check_selector, is_empty, matches, selector_string
from arktos.api.kinds.podspec import check_pod_spec, default_pod_spec
from arktos.api.resources import Column, Getter, Obj, ResourceType, Scope

STRATEGIES = ("RollingUpdate", "Recreate")
_PERCENT = re.compile(r"^[0-9]+%$")


# --- shared by both kinds -----------------------------------------------------------------

def _check_template(spec: Fields) -> None:
    template = spec.sub("template", needed=True)
    if template is None:
        return
    meta = template.sub("metadata")
    labels = meta.labels("labels") if meta is not None else {}
    selector = spec.obj.get("selector")
    if isinstance(selector, dict) and not is_empty(selector) and not matches(selector, labels):
        spec.add(invalid(f"{template.path}.metadata.labels", labels,
                         "`selector` does not match template `labels`"))
    spec.causes.extend(check_pod_spec(template.obj.get("spec"), template.at("spec"),
                                      template=True))


def _check_replicated(obj: Obj, old: Obj | None, kind: str) -> tuple[list[Cause], Fields | None]:
    """Checks common to Deployment and ReplicaSet; returns the causes and the spec."""
    causes: list[Cause] = []
    spec = Fields.of(obj.get("spec"), "spec", causes, needed=True)
    if spec is None:
        return causes, None
    selector = spec.sub("selector", needed=True)
    if selector is not None:
        check_selector(selector)
        if is_empty(selector.obj):
            spec.add(invalid(selector.path, selector.obj,
                             f"empty selector is invalid for {kind.lower()}"))
    spec.integer("replicas", lo=0, hi=MAX_INT32)
    spec.integer("minReadySeconds", lo=0)
    _check_template(spec)
    old_selector = dig(old, "spec", "selector")
    if old_selector is not None and selector is not None and selector.obj != old_selector:
        causes.append(immutable("spec.selector", selector.obj))
    return causes, spec


def _default_replicated(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_spec(dig(spec, "template", "spec"))


def _containers(obj: Obj) -> list[dict[str, Any]]:
    return dicts(dig(obj, "spec", "template", "spec", "containers"))


def _wide_columns() -> tuple[Column, ...]:
    """CONTAINERS, IMAGES and SELECTOR (kubectl -o wide)."""
    def images(o: Obj) -> str:
        vm = dig(o, "spec", "template", "spec", "virtualMachine")
        found = texts([c.get("image") for c in _containers(o) + dicts([vm])])
        return ",".join(found) or "<none>"

    def names(o: Obj) -> str:
        vm = dig(o, "spec", "template", "spec", "virtualMachine")
        return ",".join(texts([c.get("name") for c in _containers(o) + dicts([vm])])) or "<none>"

    return (Column("CONTAINERS", names, priority=1), Column("IMAGES", images, priority=1),
            Column("SELECTOR", lambda o: selector_string(dig(o, "spec", "selector")),
                   priority=1))


def _status_int(*keys: str) -> Getter:
    return lambda o: number(dig(o, *keys))


# --- Deployment ---------------------------------------------------------------------------

def _int_or_percent(f: Fields, key: str) -> int | str | None:
    """An IntOrString of a rolling update: a count >= 0 or `N%`."""
    value, path = f.obj.get(key), f.at(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        f.add(type_invalid(path, "an integer or a percentage string"))
    elif isinstance(value, int) and value < 0:
        f.add(invalid(path, value, range_message(0, None)))
    elif isinstance(value, str) and not _PERCENT.match(value):
        f.add(invalid(path, value, "a valid percent string must be a numeric string followed "
                                   "by an ending '%' (e.g. '1%',  or '93%')"))
    else:
        return value
    return None


def _is_zero(value: int | str | None) -> bool:
    return value in (0, "0%")


def _check_strategy(spec: Fields) -> None:
    strategy = spec.sub("strategy")
    if strategy is None:
        return
    kind = strategy.choice("type", STRATEGIES)
    rolling = strategy.sub("rollingUpdate")
    if kind == "Recreate" and rolling is not None:
        strategy.add(forbidden(rolling.path,
                               "may not be specified when strategy `type` is 'Recreate'"))
    if rolling is None:
        return
    surge = _int_or_percent(rolling, "maxSurge")
    unavailable = _int_or_percent(rolling, "maxUnavailable")
    if _is_zero(surge) and _is_zero(unavailable):
        rolling.add(invalid(rolling.at("maxUnavailable"), unavailable,
                            "may not be 0 when `maxSurge` is 0"))
    if isinstance(unavailable, str) and int(unavailable[:-1]) > 100:
        rolling.add(invalid(rolling.at("maxUnavailable"), unavailable,
                            "must not be greater than 100%"))


def _validate_deployment(obj: Obj, old: Obj | None) -> list[Cause]:
    causes, spec = _check_replicated(obj, old, "Deployment")
    if spec is None:
        return causes
    _check_strategy(spec)
    spec.integer("revisionHistoryLimit", lo=0)
    spec.boolean("paused")
    deadline = spec.integer("progressDeadlineSeconds", lo=0)
    min_ready = spec.obj.get("minReadySeconds")
    if deadline is not None and isinstance(min_ready, int) and deadline <= min_ready:
        spec.add(invalid(spec.at("progressDeadlineSeconds"), deadline,
                         "must be greater than minReadySeconds"))
    return causes


def _default_deployment(obj: Obj) -> None:
    """replicas 1, RollingUpdate 25%/25%, revisionHistoryLimit 10, progressDeadlineSeconds 600."""
    _default_replicated(obj)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    strategy = section(spec, "strategy")
    fill(strategy, "type", "RollingUpdate")
    if strategy is not None and strategy.get("type") == "RollingUpdate":
        rolling = section(strategy, "rollingUpdate")
        fill(rolling, "maxSurge", "25%")
        fill(rolling, "maxUnavailable", "25%")
    fill(spec, "revisionHistoryLimit", 10)
    fill(spec, "progressDeadlineSeconds", 600)


def _deployment_ready(o: Obj) -> str:
    return f"{number(dig(o, 'status', 'readyReplicas'))}/{number(dig(o, 'spec', 'replicas'))}"


# --- ReplicaSet ---------------------------------------------------------------------------

def _validate_replicaset(obj: Obj, old: Obj | None) -> list[Cause]:
    return _check_replicated(obj, old, "ReplicaSet")[0]


TYPES = [
    ResourceType("apps", "v1", "Deployment", "deployments", Scope.NAMESPACE,
                 short_names=("deploy",), subresources=frozenset({"status", "scale"}),
                 validate=_validate_deployment, default=_default_deployment,
                 columns=(Column("READY", _deployment_ready),
                          Column("UP-TO-DATE", _status_int("status", "updatedReplicas"),
                                 type="integer"),
                          Column("AVAILABLE", _status_int("status", "availableReplicas"),
                                 type="integer"),
                          *_wide_columns()),
                 categories=("all",)),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", Scope.NAMESPACE,
                 short_names=("rs",), subresources=frozenset({"status", "scale"}),
                 validate=_validate_replicaset, default=_default_replicated,
                 columns=(Column("DESIRED", _status_int("spec", "replicas"), type="integer"),
                          Column("CURRENT", _status_int("status", "replicas"), type="integer"),
                          Column("READY", _status_int("status", "readyReplicas"),
                                 type="integer"),
                          *_wide_columns()),
                 categories=("all",)),
]
