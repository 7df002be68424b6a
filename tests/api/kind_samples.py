"""Valid sample objects of every served kind, and helpers to check and mutate them."""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

from arktos.api.errors import Cause
from arktos.api.kinds import REGISTRY
from arktos.api.resources import ResourceType

Obj = dict[str, Any]
DELETE = object()
"""Marker value for `mutate`: remove the field."""

_META = {"name": "sample", "tenant": "acme", "namespace": "default"}
_CONTAINER = {
    "name": "app", "image": "nginx:1.25",
    "ports": [{"containerPort": 80, "name": "http"}],
    "env": [{"name": "MODE", "value": "prod"},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                  "limits": {"cpu": "1", "memory": "128Mi"}},
    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
}
_POD_SPEC = {"containers": [_CONTAINER], "volumes": [{"name": "data", "emptyDir": {}}]}
_TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": _POD_SPEC}
_SELECTOR = {"matchLabels": {"app": "web"}}
_RBAC = "rbac.authorization.k8s.io"

SAMPLES: dict[tuple[str, str], Obj] = {
    ("", "Namespace"): {"metadata": {"name": "dev", "tenant": "acme"}},
    ("", "Tenant"): {"metadata": {"name": "acme"}, "spec": {"storageClusterId": "1"}},
    ("", "Pod"): {"metadata": _META, "spec": _POD_SPEC},
    ("", "Node"): {
        "metadata": {"name": "node-1", "labels": {"node-role.kubernetes.io/master": ""}},
        "spec": {"podCIDR": "10.244.1.0/24",
                 "taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "addresses": [{"type": "InternalIP", "address": "192.168.0.10"}],
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "nodeInfo": {"kubeletVersion": "v1.15.0"}}},
    ("", "Event"): {"metadata": _META,
                    "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
                    "reason": "Scheduled", "message": "assigned default/web to node-1",
                    "source": {"component": "default-scheduler"},
                    "firstTimestamp": "2024-05-01T10:00:00Z",
                    "lastTimestamp": "2024-05-01T10:00:00Z"},
    ("", "ConfigMap"): {"metadata": _META, "data": {"app.conf": "x=1"},
                        "binaryData": {"logo.png": base64.b64encode(b"\x89PNG").decode()}},
    ("", "Secret"): {"metadata": _META, "data": {"password": base64.b64encode(b"pw").decode()}},
    ("", "ServiceAccount"): {"metadata": _META, "secrets": [{"name": "default-token-abcde"}]},
    ("", "Endpoints"): {"metadata": _META, "subsets": [
        {"addresses": [{"ip": "10.0.0.5"}], "ports": [{"port": 8080}]}]},
    ("", "Service"): {"metadata": _META, "spec": {"selector": {"app": "web"},
                                                  "ports": [{"port": 80}]}},
    ("", "Action"): {"metadata": _META, "spec": {"podName": "vm", "nodeName": "node-1",
                                                 "rebootAction": {"delayInSeconds": 0}}},
    ("apps", "Deployment"): {"metadata": _META, "spec": {"selector": _SELECTOR,
                                                         "template": _TEMPLATE}},
    ("apps", "ReplicaSet"): {"metadata": _META, "spec": {"replicas": 3, "selector": _SELECTOR,
                                                         "template": _TEMPLATE}},
    ("coordination.k8s.io", "Lease"): {"metadata": _META, "spec": {
        "holderIdentity": "node-1", "leaseDurationSeconds": 40,
        "acquireTime": "2024-05-01T10:00:00.000000Z", "renewTime": "2024-05-01T10:00:10.123456Z",
        "leaseTransitions": 0}},
    ("scheduling.k8s.io", "PriorityClass"): {
        "metadata": {"name": "high"}, "value": 1000, "globalDefault": False,
        "description": "for important pods", "preemptionPolicy": "Never"},
    (_RBAC, "Role"): {"metadata": _META, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
    (_RBAC, "ClusterRole"): {"metadata": _META, "rules": [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
        {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]},
    (_RBAC, "RoleBinding"): {
        "metadata": _META, "roleRef": {"apiGroup": _RBAC, "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "User", "name": "alice"},
                     {"kind": "ServiceAccount", "name": "default"}]},
    (_RBAC, "ClusterRoleBinding"): {
        "metadata": _META, "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "Group", "name": "ops"},
                     {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}]},
    ("authorization.k8s.io", "SelfSubjectAccessReview"): {"metadata": _META, "spec": {
        "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"}}},
    ("authorization.k8s.io", "SubjectAccessReview"): {"metadata": _META, "spec": {
        "user": "alice", "nonResourceAttributes": {"verb": "get", "path": "/version"}}},
    ("", "ResourceQuota"): {"metadata": _META, "spec": {"hard": {
        "pods": "10", "requests.cpu": "2", "limits.memory": "4Gi",
        "count/deployments.apps": "3"}},
        "status": {"hard": {"pods": "10"}, "used": {"pods": "1"}}},
    ("", "LimitRange"): {"metadata": _META, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2", "memory": "2Gi"}, "min": {"cpu": "50m"},
         "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"},
         "maxLimitRequestRatio": {"cpu": "10"}},
        {"type": "Pod", "max": {"cpu": "4"}}]}},
}

VM_POD: Obj = {"metadata": {**_META, "name": "vm"}, "spec": {"virtualMachine": {
    "name": "vm", "image": "download.cirros-cloud.net/0.3.5/cirros-0.3.5-x86_64-disk.img",
    "keyPairName": "foobar",
    "resources": {"limits": {"cpu": "1", "memory": "200Mi"}},
    "userData": base64.b64encode(b"#cloud-config\n").decode()}}}


def rtype(kind: str, group: str = "") -> ResourceType:
    found = REGISTRY.by_kind(group, kind)
    assert found is not None, kind
    return found


def sample(kind: str, group: str = "") -> Obj:
    """A fresh deep copy of the kind's valid sample."""
    return copy.deepcopy(SAMPLES[(group, kind)])


def check(kind: str, obj: Obj, old: Obj | None = None, group: str = "") -> list[Cause]:
    """Default `obj` in place, then validate it (against `old` on update)."""
    t = rtype(kind, group)
    t.default(obj)
    causes: list[Cause] = t.validate(obj, old)
    return causes


def created(kind: str, obj: Obj | None = None, group: str = "") -> Obj:
    """`obj` (or the sample) defaulted and checked valid, as stored after a create."""
    obj = sample(kind, group) if obj is None else copy.deepcopy(obj)
    causes = check(kind, obj, group=group)
    assert causes == [], causes
    return obj


def found(causes: list[Cause]) -> set[tuple[str, str]]:
    """(field, reason) of each cause."""
    return {(c.field, c.reason) for c in causes}


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [int(i) if i else name for name, i in _STEP.findall(path)]


def mutate(obj: Obj, path: str, value: Any) -> Obj:
    """A deep copy of `obj` with the field at `path` (`spec.ports[0].port`) set or DELETEd."""
    out = copy.deepcopy(obj)
    steps = _steps(path)
    cur: Any = out
    for step in steps[:-1]:
        if isinstance(step, str) and isinstance(cur, dict) and step not in cur:
            cur[step] = {}
        cur = cur[step]
    last = steps[-1]
    if value is DELETE:
        del cur[last]
    elif isinstance(cur, list) and last == len(cur):
        cur.append(copy.deepcopy(value))
    else:
        cur[last] = copy.deepcopy(value)
    return out


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (keys and indexes), the value itself included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += json_paths(v, (*prefix, i))
    return out
