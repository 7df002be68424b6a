"""Core (`v1`) kinds: Namespace, Pod, Node, Event, ConfigMap, Secret, ServiceAccount, Endpoints,
Service. No I/O here."""

from __future__ import annotations

from arktos.api.errors import Cause
from arktos.api.resources import Obj, ResourceType, Scope


def _pod_causes(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    has_c = bool(spec.get("containers"))
    has_vm = bool(spec.get("virtualMachine"))
    if has_c and has_vm:
        return [Cause("spec", "may have either containers or a virtualMachine, not both",
                      "FieldValueForbidden")]
    if not has_c and not has_vm:
        return [Cause("spec.containers", "Required value", "FieldValueRequired")]
    return []


TYPES = [
    ResourceType("", "v1", "Namespace", "namespaces", Scope.TENANT, short_names=("ns",),
                 subresources=frozenset({"status", "finalize"})),
    ResourceType("", "v1", "Pod", "pods", Scope.NAMESPACE, short_names=("po",),
                 subresources=frozenset({"status", "binding", "action", "log"}),
                 validate=_pod_causes,
                 field_labels={"spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
                               "status.phase": lambda o: (o.get("status") or {}).get("phase", "")},
                 categories=("all",)),
    ResourceType("", "v1", "Node", "nodes", Scope.CLUSTER, short_names=("no",)),
    ResourceType("", "v1", "Event", "events", Scope.NAMESPACE, short_names=("ev",),
                 subresources=frozenset(), spec_fields=()),
    ResourceType("", "v1", "ConfigMap", "configmaps", Scope.NAMESPACE, short_names=("cm",),
                 subresources=frozenset(), spec_fields=()),
    ResourceType("", "v1", "Secret", "secrets", Scope.NAMESPACE, subresources=frozenset(),
                 spec_fields=()),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", Scope.NAMESPACE,
                 short_names=("sa",), subresources=frozenset(), spec_fields=()),
    ResourceType("", "v1", "Endpoints", "endpoints", Scope.NAMESPACE, short_names=("ep",),
                 subresources=frozenset(), spec_fields=()),
    ResourceType("", "v1", "Service", "services", Scope.NAMESPACE, short_names=("svc",),
                 categories=("all",)),
]
