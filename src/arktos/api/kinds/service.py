"""Core networking kinds: Service and Endpoints. No I/O here.

Cluster IPs are not allocated here: `spec.clusterIP` stays as given (empty, `None` or an IP).
"""

from __future__ import annotations

from typing import Any

from arktos.api.errors import Cause
from arktos.api.kinds._checks import (
    Fields,
    dicts,
    dig,
    dns1035_label_errors,
    duplicate,
    fill,
    forbidden,
    immutable,
    invalid,
    ip_errors,
    port_name_errors,
    range_message,
    required,
    text,
    texts,
    type_invalid,
)
from arktos.api.kinds._workloads import PROTOCOLS
from arktos.api.meta import dns_label_errors, dns_subdomain_errors
from arktos.api.resources import Column, Obj, ResourceType, Scope

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
_MAX_SHOWN = 3
"""kubectl shows at most this many endpoints, then `+ N more...`."""


def _cluster_ip_errors(value: str) -> list[str]:
    return [] if value == "None" else ip_errors(value)


def _target_port(p: Fields) -> None:
    """An int 1-65535 or an IANA port name (a named container port)."""
    value, path = p.obj.get("targetPort"), p.at("targetPort")
    if value is None or isinstance(value, bool) or not isinstance(value, (int, str)):
        if value is not None:
            p.add(type_invalid(path, "an integer or a string"))
    elif isinstance(value, int) and not 1 <= value <= 65535:
        p.add(invalid(path, value, range_message(1, 65535)))
    elif isinstance(value, str):
        p.causes.extend(invalid(path, value, e) for e in port_name_errors(value))


def _check_ports(spec: Fields, kind: str | None) -> list[Fields]:
    ports = spec.objects("ports")
    spec.unique(ports, "name")
    seen = set()
    for p in ports:
        p.string("name", needed=len(ports) > 1, check=dns_label_errors)
        port = p.integer("port", needed=True, lo=1, hi=65535)
        protocol = p.choice("protocol", PROTOCOLS) or "TCP"
        _target_port(p)
        if p.integer("nodePort", lo=0, hi=65535) and kind not in _NODE_PORT_TYPES:
            p.add(forbidden(p.at("nodePort"), f"may not be used when `type` is '{kind}'"))
        if port is not None and (port, protocol) in seen:
            p.add(duplicate(p.path, f"{port}/{protocol}"))
        seen.add((port, protocol))
    return ports


def _check_spec(spec: Fields) -> None:
    kind = spec.choice("type", SERVICE_TYPES)
    cluster_ip = spec.string("clusterIP", check=_cluster_ip_errors)
    ports = _check_ports(spec, kind)
    if not ports and not spec.has("ports") and cluster_ip != "None" and kind != "ExternalName":
        spec.add(required(spec.at("ports")))
    if cluster_ip == "None" and kind in _NODE_PORT_TYPES:
        spec.add(invalid(spec.at("clusterIP"), cluster_ip,
                         f"may not be set to 'None' for {kind} services"))
    if kind == "ExternalName":
        spec.string("externalName", needed=True, check=dns_subdomain_errors)
    spec.labels("selector")
    spec.choice("sessionAffinity", ("None", "ClientIP"))
    spec.choice("externalTrafficPolicy", ("Cluster", "Local"))
    spec.strings("externalIPs", check=ip_errors)
    spec.string("loadBalancerIP", check=ip_errors)
    spec.boolean("publishNotReadyAddresses")


def _validate_service(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    name = dig(obj, "metadata", "name")
    if isinstance(name, str) and not dns_subdomain_errors(name):
        causes += [invalid("metadata.name", name, e) for e in dns1035_label_errors(name)]
    spec = Fields.of(obj.get("spec"), "spec", causes, needed=True)
    if spec is not None:
        _check_spec(spec)
    status = Fields.of(obj.get("status"), "status", causes)
    balancer = status.sub("loadBalancer") if status is not None else None
    for ingress in balancer.objects("ingress") if balancer is not None else ():
        ingress.string("ip", check=ip_errors)
        ingress.string("hostname")
    old_ip, new_ip = dig(old, "spec", "clusterIP"), dig(obj, "spec", "clusterIP")
    if old is not None and old_ip and new_ip != old_ip and dig(obj, "spec", "type") != (
            "ExternalName"):
        causes.append(immutable("spec.clusterIP", new_ip))
    return causes


def _default_service(obj: Obj) -> None:
    """Type ClusterIP, sessionAffinity None, protocol TCP, targetPort = port."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    fill(spec, "type", "ClusterIP")
    fill(spec, "sessionAffinity", "None")
    if spec.get("type") in _NODE_PORT_TYPES:
        fill(spec, "externalTrafficPolicy", "Cluster")
    for p in dicts(spec.get("ports")):
        fill(p, "protocol", "TCP")
        if p.get("targetPort") in (None, "", 0) and isinstance(p.get("port"), int):
            p["targetPort"] = p["port"]


def _external_ip(svc: Obj) -> str:
    """kubectl's EXTERNAL-IP: external IPs, load-balancer ingress or the external name."""
    kind = dig(svc, "spec", "type") or "ClusterIP"
    external = texts(dig(svc, "spec", "externalIPs"))
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = texts([i.get("ip") or i.get("hostname")
                         for i in dicts(dig(svc, "status", "loadBalancer", "ingress"))])
        return ",".join(ingress + external) or "<pending>"
    if kind == "ExternalName":
        return text(dig(svc, "spec", "externalName"))
    return "<unknown>"


def _ports(svc: Obj) -> str:
    """`80/TCP,443:30443/TCP`."""
    shown = []
    for p in dicts(dig(svc, "spec", "ports")):
        node_port, protocol = p.get("nodePort"), p.get("protocol") or "TCP"
        shown.append(f"{p.get('port')}:{node_port}/{protocol}" if node_port
                     else f"{p.get('port')}/{protocol}")
    return ",".join(shown) or "<none>"


def _selector(svc: Obj) -> str:
    sel = dig(svc, "spec", "selector")
    return ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>" \
        if isinstance(sel, dict) else "<none>"


# --- Endpoints ----------------------------------------------------------------------------

def _validate_endpoints(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    for subset in Fields(obj, "", causes).objects("subsets"):
        for key in ("addresses", "notReadyAddresses"):
            for address in subset.objects(key):
                address.string("ip", needed=True, check=ip_errors)
                address.string("hostname", check=dns_label_errors)
                address.string("nodeName", check=dns_subdomain_errors)
                address.sub("targetRef")
        ports = subset.objects("ports")
        subset.unique(ports, "name")
        for p in ports:
            p.string("name", needed=len(ports) > 1, check=dns_label_errors)
            p.integer("port", needed=True, lo=1, hi=65535)
            p.choice("protocol", PROTOCOLS)
    return causes


def _default_endpoints(obj: Obj) -> None:
    for subset in dicts(obj.get("subsets")):
        for p in dicts(subset.get("ports")):
            fill(p, "protocol", "TCP")


def endpoints_text(ep: Obj) -> str:
    """kubectl's ENDPOINTS: `10.0.0.1:80,10.0.0.2:80 + 3 more...`."""
    shown: list[str] = []
    total = 0
    for subset in dicts(ep.get("subsets")):
        ips = [a.get("ip") for a in dicts(subset.get("addresses"))]
        ports: list[Any] = [p.get("port") for p in dicts(subset.get("ports"))] or [None]
        for port in ports:
            for ip in ips:
                total += 1
                if len(shown) < _MAX_SHOWN:
                    shown.append(f"{ip}:{port}" if port is not None else str(ip))
    if not shown:
        return "<none>"
    more = f" + {total - len(shown)} more..." if total > len(shown) else ""
    return ",".join(shown) + more


TYPES = [
    ResourceType("", "v1", "Endpoints", "endpoints", Scope.NAMESPACE, short_names=("ep",),
                 subresources=frozenset(), spec_fields=(), validate=_validate_endpoints,
                 default=_default_endpoints, columns=(Column("ENDPOINTS", endpoints_text),)),
    ResourceType("", "v1", "Service", "services", Scope.NAMESPACE, short_names=("svc",),
                 validate=_validate_service, default=_default_service,
                 columns=(Column("TYPE", lambda o: text(dig(o, "spec", "type"), "")),
                          Column("CLUSTER-IP", lambda o: text(dig(o, "spec", "clusterIP"))),
                          Column("EXTERNAL-IP", _external_ip), Column("PORT(S)", _ports),
                          Column("SELECTOR", _selector, priority=1)),
                 categories=("all",)),
]
