"""Pod spec checks and defaults, shared by Pod and the pod templates of Deployment/ReplicaSet.

No I/O here.
"""

from __future__ import annotations

from typing import Any

from arktos.api.errors import Cause
from arktos.api.kinds._checks import (
    MAX_INT32,
    Fields,
    dicts,
    fill,
    forbidden,
    invalid,
    ip_errors,
    required,
)
from arktos.api.kinds._workloads import check_workloads, default_workloads
from arktos.api.meta import (
    dns_label_errors,
    dns_subdomain_errors,
    label_value_errors,
    qualified_name_errors,
)

__all__ = ["check_pod_spec", "default_pod_spec"]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_VOLUME_REQUIRED = {"hostPath": "path", "configMap": "name", "secret": "secretName",
                    "persistentVolumeClaim": "claimName", "nfs": "server"}
_BOOLEANS = ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace",
             "automountServiceAccountToken", "enableServiceLinks")


def check_pod_spec(spec_value: Any, path: str, *, template: bool = False) -> list[Cause]:
    """Every problem of a pod spec at `path` (`spec`, or `spec.template.spec` in a template)."""
    causes: list[Cause] = []
    spec = Fields.of(spec_value, path, causes, needed=True)
    if spec is None:
        return causes
    volumes = _check_volumes(spec)
    check_workloads(spec, volumes)
    spec.choice("restartPolicy", ("Always",) if template else RESTART_POLICIES)
    _check_scheduling(spec)
    _check_tolerations(spec)
    _check_dns(spec)
    spec.integer("terminationGracePeriodSeconds", lo=0)
    if template and spec.obj.get("activeDeadlineSeconds") is not None:
        spec.add(forbidden(spec.at("activeDeadlineSeconds"),
                           "activeDeadlineSeconds in a pod template is not supported"))
    else:
        spec.integer("activeDeadlineSeconds", lo=1, hi=MAX_INT32)
    for key in _BOOLEANS:
        spec.boolean(key)
    for key in ("affinity", "securityContext"):
        spec.sub(key)
    for secret in spec.objects("imagePullSecrets"):
        secret.string("name", needed=True)
    _check_nics(spec)
    return causes


def _check_scheduling(spec: Fields) -> None:
    spec.string("nodeName", check=dns_subdomain_errors)
    spec.string("schedulerName")
    spec.string("serviceAccountName", check=dns_subdomain_errors)
    spec.string("serviceAccount", check=dns_subdomain_errors)
    spec.labels("nodeSelector")
    spec.integer("priority")
    spec.string("priorityClassName")
    spec.string("vpc")


def _check_dns(spec: Fields) -> None:
    policy = spec.choice("dnsPolicy", DNS_POLICIES)
    config = spec.sub("dnsConfig")
    if policy == "None" and config is None:
        spec.add(required(spec.at("dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
    if config is not None:
        config.strings("nameservers", check=ip_errors)
        config.strings("searches")
        config.objects("options")
    spec.string("hostname", check=dns_label_errors)
    spec.string("subdomain", check=dns_label_errors)


def _check_volumes(spec: Fields) -> set[str]:
    """Volume names are unique DNS labels with at most one source; returns the names."""
    volumes = spec.objects("volumes")
    names = {n for n in spec.unique(volumes, "name") if isinstance(n, str)}
    for v in volumes:
        v.string("name", needed=True, check=dns_label_errors)
        sources = [k for k, value in v.obj.items() if k != "name" and value is not None]
        if len(sources) > 1:
            v.add(forbidden(v.at(sources[1]), "may not specify more than 1 volume type"))
        for key in sources:
            source = v.sub(key)
            if source is not None and key in _VOLUME_REQUIRED:
                source.string(_VOLUME_REQUIRED[key], needed=True)
    return names


def _check_tolerations(spec: Fields) -> None:
    for t in spec.objects("tolerations"):
        key = t.string("key", check=qualified_name_errors)
        op = t.choice("operator", ("Exists", "Equal"))
        value = t.string("value", check=label_value_errors)
        if not key and op != "Exists":
            t.add(invalid(t.at("operator"), op or "", "operator must be Exists when `key` is "
                          'empty, which means "match all values and all keys"'))
        if op == "Exists" and value:
            t.add(invalid(t.at("operator"), value,
                          "value must be empty when `operator` is 'Exists'"))
        effect = t.choice("effect", TAINT_EFFECTS)
        if t.integer("tolerationSeconds") is not None and effect != "NoExecute":
            t.add(invalid(t.at("effect"), effect or "",
                          "effect must be 'NoExecute' when `tolerationSeconds` is set"))


def _check_nics(spec: Fields) -> None:
    """Arktos' pod-level NICs (shared by the containers or the VM)."""
    nics = spec.objects("nics")
    spec.unique(nics, "name")
    for nic in nics:
        for key in ("name", "subnetName", "portId", "tag"):
            nic.string(key)
        nic.string("ipAddress", check=ip_errors)
        nic.boolean("ipv6Enabled")


def default_pod_spec(spec: Any) -> None:
    """Fill Kubernetes' pod spec defaults in place (ignores anything malformed)."""
    if not isinstance(spec, dict):
        return
    fill(spec, "restartPolicy", "Always")
    fill(spec, "dnsPolicy", "ClusterFirst")
    fill(spec, "terminationGracePeriodSeconds", 30)
    fill(spec, "schedulerName", "default-scheduler")
    default_workloads(spec)
    for volume in dicts(spec.get("volumes")):
        if not any(v is not None for k, v in volume.items() if k != "name"):
            volume["emptyDir"] = {}
