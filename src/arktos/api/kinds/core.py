"""Core (`v1`) kinds: Namespace, Pod, Node, Event, ConfigMap, Secret, ServiceAccount, Endpoints,
Service. Namespace, Node and Event are defined here; the others in `pod`, `config`, `service`.
No I/O here."""

from __future__ import annotations

import ipaddress

from arktos.api.errors import Cause
from arktos.api.kinds import config, service
from arktos.api.kinds._checks import (
    Fields,
    dicts,
    dig,
    duplicate,
    fill,
    finalizer_errors,
    invalid,
    number,
    section,
    text,
    time_errors,
)
from arktos.api.kinds.pod import POD
from arktos.api.kinds.podspec import TAINT_EFFECTS
from arktos.api.meta import dns_label_errors, label_value_errors, qualified_name_errors
from arktos.api.resources import Column, Getter, Obj, ResourceType, Scope

NAMESPACE_PHASES = ("Active", "Terminating")
EVENT_TYPES = ("Normal", "Warning")
ADDRESS_TYPES = ("Hostname", "ExternalIP", "InternalIP", "ExternalDNS", "InternalDNS")
ROLE_LABEL = "node-role.kubernetes.io/"


# --- Namespace ----------------------------------------------------------------------------

def validate_phased(obj: Obj, phases: tuple[str, ...]) -> list[Cause]:
    """`spec.finalizers` names and `status.phase` of a Namespace or Tenant."""
    causes: list[Cause] = []
    spec = Fields.of(obj.get("spec"), "spec", causes)
    if spec is not None:
        spec.strings("finalizers", check=finalizer_errors)
    status = Fields.of(obj.get("status"), "status", causes)
    if status is not None:
        status.choice("phase", phases)
    return causes


def default_phased(obj: Obj, finalizer: str, *, append: bool) -> None:
    """Phase `Active`; `spec.finalizers` defaults to `[finalizer]` (with `append`, `finalizer` is
    also added to a list lacking it). Skipped once the object is being deleted, so finalizing
    (which removes it) is never undone."""
    status = section(obj, "status")
    fill(status, "phase", "Active")
    spec = section(obj, "spec")
    if spec is None or dig(obj, "metadata", "deletionTimestamp"):
        return
    fins = spec.get("finalizers")
    if fins is None:
        spec["finalizers"] = [finalizer]
    elif append and isinstance(fins, list) and finalizer not in fins:
        fins.append(finalizer)


def _validate_namespace(obj: Obj, old: Obj | None) -> list[Cause]:
    return validate_phased(obj, NAMESPACE_PHASES)


def _default_namespace(obj: Obj) -> None:
    default_phased(obj, "kubernetes", append=False)


# --- Node ---------------------------------------------------------------------------------

def _cidr_errors(value: str) -> list[str]:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return ["must be a valid CIDR, e.g. 10.244.0.0/24"]
    return []


def _validate_node(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = Fields.of(obj.get("spec"), "spec", causes)
    if spec is not None:
        spec.string("podCIDR", check=_cidr_errors)
        spec.strings("podCIDRs", check=_cidr_errors)
        spec.string("providerID")
        spec.boolean("unschedulable")
        _check_taints(spec)
    status = Fields.of(obj.get("status"), "status", causes)
    if status is not None:
        status.quantities("capacity")
        status.quantities("allocatable")
        for address in status.objects("addresses"):
            address.choice("type", ADDRESS_TYPES, needed=True)
            address.string("address", needed=True)
        status.objects("conditions")
        status.sub("nodeInfo")
    return causes


def _check_taints(spec: Fields) -> None:
    seen: set[tuple[str | None, str | None]] = set()
    for taint in spec.objects("taints"):
        key = taint.string("key", needed=True, check=qualified_name_errors)
        taint.string("value", check=label_value_errors)
        effect = taint.choice("effect", TAINT_EFFECTS, needed=True)
        taint.string("timeAdded", check=time_errors)
        if (key, effect) in seen:
            taint.add(duplicate(taint.path, f"{key}:{effect}"))
        seen.add((key, effect))


def node_status(node: Obj) -> str:
    """`Ready`/`NotReady`/`Unknown` from the Ready condition, plus `,SchedulingDisabled`."""
    ready = [c for c in dicts(dig(node, "status", "conditions")) if c.get("type") == "Ready"]
    condition = ready[0].get("status") if ready else None
    state = {"True": "Ready", "False": "NotReady"}.get(str(condition), "Unknown")
    return state + (",SchedulingDisabled" if dig(node, "spec", "unschedulable") is True else "")


def node_roles(node: Obj) -> str:
    """Roles from `node-role.kubernetes.io/<role>` (and `kubernetes.io/role`) labels."""
    labels = dig(node, "metadata", "labels")
    roles = sorted(k[len(ROLE_LABEL):] for k in labels if k.startswith(ROLE_LABEL)) \
        if isinstance(labels, dict) else []
    if isinstance(labels, dict) and isinstance(labels.get("kubernetes.io/role"), str):
        roles.append(labels["kubernetes.io/role"])
    return ",".join(r for r in roles if r) or "<none>"


def node_address(kind: str) -> Column:
    """A wide column with the node's first address of type `kind` (`InternalIP`...)."""
    def get(node: Obj) -> str:
        found = [a.get("address") for a in dicts(dig(node, "status", "addresses"))
                 if a.get("type") == kind]
        return text(found[0] if found else None)
    return Column(kind.replace("IP", "-IP").upper(), get, priority=1)


def _node_info(key: str) -> Column:
    title = {"osImage": "OS-IMAGE", "kernelVersion": "KERNEL-VERSION",
             "containerRuntimeVersion": "CONTAINER-RUNTIME"}[key]
    return Column(title, lambda o: text(dig(o, "status", "nodeInfo", key), "<unknown>"),
                  priority=1)


# --- Event --------------------------------------------------------------------------------

def _validate_event(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    event = Fields(obj, "", causes)
    involved = event.sub("involvedObject", needed=True)
    if involved is not None:
        involved.string("kind", needed=True)
        involved.string("name", needed=True)
        ns = involved.string("namespace")
        own = dig(obj, "metadata", "namespace")
        if ns and isinstance(own, str) and own and ns != own:
            involved.add(invalid(involved.at("namespace"), ns, "does not match event.namespace"))
        for key in ("uid", "apiVersion", "resourceVersion", "fieldPath"):
            involved.string(key)
    for key in ("reason", "message", "action", "reportingComponent", "reportingInstance"):
        event.string(key)
    event.choice("type", EVENT_TYPES)
    event.integer("count", lo=0)
    for key in ("firstTimestamp", "lastTimestamp", "eventTime"):
        event.string(key, check=time_errors)
    source = event.sub("source")
    if source is not None:
        source.string("component")
        source.string("host")
    return causes


def _default_event(obj: Obj) -> None:
    fill(obj, "type", "Normal")
    fill(obj, "count", 1)


def _event_object(ev: Obj) -> str:
    return f"{text(dig(ev, 'involvedObject', 'kind'), '')}".lower() + \
        f"/{text(dig(ev, 'involvedObject', 'name'), '')}"


def _last_seen(ev: Obj) -> str:
    """When the event last happened (an age column): lastTimestamp, eventTime or creation."""
    for value in (ev.get("lastTimestamp"), ev.get("eventTime"),
                  dig(ev, "metadata", "creationTimestamp")):
        if isinstance(value, str) and value:
            return value
    return ""


def _event_source(ev: Obj) -> str:
    parts = [dig(ev, "source", k) for k in ("component", "host")]
    return ", ".join(p for p in parts if isinstance(p, str) and p) or "<none>"


def _getter(*keys: str) -> Column:
    """A column showing the string at `keys` (title: the last key, upper-cased)."""
    return Column(keys[-1].upper(), lambda o: text(dig(o, *keys), ""))


def _label(*keys: str) -> tuple[str, Getter]:
    return ".".join(keys), lambda o: text(dig(o, *keys), "")


TYPES = [
    ResourceType("", "v1", "Namespace", "namespaces", Scope.TENANT, short_names=("ns",),
                 subresources=frozenset({"status", "finalize"}),
                 validate=_validate_namespace, default=_default_namespace,
                 name_check=dns_label_errors,
                 columns=(Column("STATUS", lambda o: text(dig(o, "status", "phase"), "")),),
                 field_labels={"status.phase": lambda o: text(dig(o, "status", "phase"), "")}),
    POD,
    ResourceType("", "v1", "Node", "nodes", Scope.CLUSTER, short_names=("no",),
                 validate=_validate_node,
                 columns=(Column("STATUS", node_status), Column("ROLES", node_roles),
                          Column("VERSION", lambda o: text(
                              dig(o, "status", "nodeInfo", "kubeletVersion"), "")),
                          node_address("InternalIP"), node_address("ExternalIP"),
                          _node_info("osImage"), _node_info("kernelVersion"),
                          _node_info("containerRuntimeVersion")),
                 field_labels={"spec.unschedulable": lambda o: str(
                     dig(o, "spec", "unschedulable") is True).lower()}),
    ResourceType("", "v1", "Event", "events", Scope.NAMESPACE, short_names=("ev",),
                 subresources=frozenset(), spec_fields=(),
                 validate=_validate_event, default=_default_event,
                 columns=(Column("LAST SEEN", _last_seen, type="date"), _getter("type"), _getter("reason"), Column("OBJECT", _event_object),
                          _getter("message"), Column("SOURCE", _event_source, priority=1),
                          Column("COUNT", lambda o: number(o.get("count")), type="integer",
                                 priority=1)),
                 field_labels=dict([
                     _label("involvedObject", "kind"), _label("involvedObject", "name"),
                     _label("involvedObject", "namespace"), _label("involvedObject", "uid"),
                     _label("involvedObject", "apiVersion"),
                     _label("involvedObject", "resourceVersion"),
                     _label("involvedObject", "fieldPath"), _label("reason"), _label("type"),
                     _label("reportingComponent"),
                     ("source", lambda o: text(dig(o, "source", "component"), ""))])),
    *config.TYPES,
    *service.TYPES,
]
