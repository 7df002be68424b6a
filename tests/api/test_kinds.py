"""Validation, defaulting, columns and field labels of every kind (pods and apps: see
test_kinds_pod.py), and a fuzz proving no validator, defaulter or getter raises on garbage."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arktos.api.errors import Cause
from arktos.api.kinds import REGISTRY
from tests.api.kind_samples import (
    DELETE,
    SAMPLES,
    VM_POD,
    Obj,
    check,
    created,
    found,
    json_paths,
    mutate,
    rtype,
    sample,
)

RBAC = "rbac.authorization.k8s.io"


def column(kind: str, name: str, obj: Obj, group: str = "") -> Any:
    (col,) = [c for c in rtype(kind, group).columns if c.name == name]
    return col.get(obj)


def test_every_served_kind_has_a_sample() -> None:
    assert {(t.group, t.kind) for t in REGISTRY} == set(SAMPLES)


@pytest.mark.parametrize(("group", "kind"), sorted(SAMPLES))
def test_sample_is_valid(group: str, kind: str) -> None:
    obj = sample(kind, group)
    assert check(kind, obj, group=group) == []
    assert check(kind, copy.deepcopy(obj), old=obj, group=group) == []


# --- defaults -----------------------------------------------------------------------------

def test_namespace_defaults() -> None:
    ns = created("Namespace")
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert ns["status"]["phase"] == "Active"


def test_namespace_finalize_is_not_undone() -> None:
    ns: Obj = {"metadata": {"name": "dev", "deletionTimestamp": "2024-01-01T00:00:00Z"},
          "spec": {"finalizers": []}, "status": {"phase": "Terminating"}}
    assert check("Namespace", ns) == []
    assert ns["spec"]["finalizers"] == []
    assert ns["status"]["phase"] == "Terminating"


def test_tenant_defaults() -> None:
    tenant = created("Tenant", {"metadata": {"name": "acme"},
                                "spec": {"finalizers": ["kubernetes"]}})
    assert tenant["spec"] == {"finalizers": ["kubernetes", "arktos"], "storageClusterId": "0"}
    assert tenant["status"] == {"phase": "Active"}


def test_tenant_finalizer_not_readded_while_terminating() -> None:
    tenant: Obj = {"metadata": {"name": "acme", "deletionTimestamp": "2024-01-01T00:00:00Z"},
              "spec": {"finalizers": [], "storageClusterId": "3"}}
    assert check("Tenant", tenant) == []
    assert tenant["spec"]["finalizers"] == []


def test_event_defaults() -> None:
    event = created("Event")
    assert (event["type"], event["count"]) == ("Normal", 1)


def test_secret_string_data_is_encoded_into_data() -> None:
    secret = created("Secret", {"metadata": {"name": "s"}, "data": {"user": "b2xk"},
                                "stringData": {"user": "bob", "token": "t0k"}})
    assert "stringData" not in secret
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["user"]) == b"bob"
    assert base64.b64decode(secret["data"]["token"]) == b"t0k"


def test_service_defaults() -> None:
    svc = created("Service", {"metadata": {"name": "web"}, "spec": {
        "type": "NodePort", "ports": [{"name": "a", "port": 80},
                                     {"port": 81, "name": "b", "targetPort": "x"}],
        "selector": {"app": "web"}}})
    spec = svc["spec"]
    assert spec["ports"][0] == {"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80}
    assert spec["ports"][1]["targetPort"] == "x"
    assert (spec["sessionAffinity"], spec["externalTrafficPolicy"]) == ("None", "Cluster")
    assert created("Service")["spec"]["type"] == "ClusterIP"


def test_endpoints_and_binding_defaults() -> None:
    assert created("Endpoints")["subsets"][0]["ports"][0]["protocol"] == "TCP"
    binding = created("RoleBinding", group=RBAC)
    assert [s["apiGroup"] for s in binding["subjects"]] == [RBAC, ""]


# --- rules --------------------------------------------------------------------------------

REQ, INV, NSUP = "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported"
FORB, DUP, TYPE = "FieldValueForbidden", "FieldValueDuplicate", "FieldValueTypeInvalid"
LONG = "FieldValueTooLong"

RULES = [
    # (group, kind, path set, value, expected field, expected reason)
    ("", "Namespace", "status.phase", "Gone", "status.phase", NSUP),
    ("", "Namespace", "spec.finalizers", ["not-standard"], "spec.finalizers[0]", INV),
    ("", "Tenant", "spec.storageClusterId", "64", "spec.storageClusterId", INV),
    ("", "Tenant", "spec.storageClusterId", "-1", "spec.storageClusterId", INV),
    ("", "Tenant", "spec.storageClusterId", "one", "spec.storageClusterId", INV),
    ("", "Tenant", "spec.storageClusterId", 5, "spec.storageClusterId", TYPE),
    ("", "Tenant", "status.phase", "Frozen", "status.phase", NSUP),
    ("", "Node", "spec.podCIDR", "10.0.0/33", "spec.podCIDR", INV),
    ("", "Node", "spec.unschedulable", "yes", "spec.unschedulable", TYPE),
    ("", "Node", "spec.taints[0].effect", "Sometimes", "spec.taints[0].effect", NSUP),
    ("", "Node", "spec.taints[1]", {"key": "dedicated", "effect": "NoSchedule"},
     "spec.taints[1]", DUP),
    ("", "Node", "status.capacity.cpu", "lots", "status.capacity[cpu]", INV),
    ("", "Node", "status.addresses[0].address", DELETE, "status.addresses[0].address", REQ),
    ("", "Event", "involvedObject", DELETE, "involvedObject", REQ),
    ("", "Event", "involvedObject.kind", DELETE, "involvedObject.kind", REQ),
    ("", "Event", "involvedObject.name", "", "involvedObject.name", REQ),
    ("", "Event", "involvedObject.namespace", "other", "involvedObject.namespace", INV),
    ("", "Event", "type", "Fatal", "type", NSUP),
    ("", "Event", "count", -1, "count", INV),
    ("", "Event", "lastTimestamp", "yesterday", "lastTimestamp", INV),
    ("", "ConfigMap", "data", {"a b": "x"}, "data[a b]", INV),
    ("", "ConfigMap", "data", {"..x": "x"}, "data[..x]", INV),
    ("", "ConfigMap", "data", {"k": 1}, "data[k]", TYPE),
    ("", "ConfigMap", "binaryData", {"k": "%%%"}, "binaryData[k]", INV),
    ("", "ConfigMap", "binaryData", {"app.conf": "eA=="}, "binaryData[app.conf]", INV),
    ("", "ConfigMap", "data", {"big": "x" * (1024 * 1024 + 1)}, "data", LONG),
    ("", "Secret", "data.password", "not base64!", "data[password]", INV),
    ("", "Secret", "type", "kubernetes.io/tls", "data[tls.crt]", REQ),
    ("", "Secret", "type", "kubernetes.io/service-account-token",
     "metadata.annotations[kubernetes.io/service-account.name]", REQ),
    ("", "ServiceAccount", "secrets", "default-token", "secrets", TYPE),
    ("", "ServiceAccount", "imagePullSecrets", [{}], "imagePullSecrets[0].name", REQ),
    ("", "Endpoints", "subsets[0].addresses[0].ip", DELETE, "subsets[0].addresses[0].ip", REQ),
    ("", "Endpoints", "subsets[0].addresses[0].ip", "10.0.0.256",
     "subsets[0].addresses[0].ip", INV),
    ("", "Endpoints", "subsets[0].ports[0].port", 70000, "subsets[0].ports[0].port", INV),
    ("", "Endpoints", "subsets[0].ports[1]", {"port": 9}, "subsets[0].ports[0].name", REQ),
    ("", "Service", "spec.ports[0].port", 0, "spec.ports[0].port", INV),
    ("", "Service", "spec.ports[0].port", DELETE, "spec.ports[0].port", REQ),
    ("", "Service", "spec.ports[0].protocol", "ICMP", "spec.ports[0].protocol", NSUP),
    ("", "Service", "spec.ports[1]", {"port": 443}, "spec.ports[0].name", REQ),
    ("", "Service", "spec.ports", [{"port": 1, "name": "a"}, {"port": 2, "name": "a"}],
     "spec.ports[1].name", DUP),
    ("", "Service", "spec.ports", [{"port": 1, "name": "a"}, {"port": 1, "name": "b"}],
     "spec.ports[1]", DUP),
    ("", "Service", "spec.ports", [], "spec.ports", REQ),
    ("", "Service", "spec.ports[0].targetPort", 70000, "spec.ports[0].targetPort", INV),
    ("", "Service", "spec.ports[0].targetPort", "8080", "spec.ports[0].targetPort", INV),
    ("", "Service", "spec.ports[0].nodePort", 30080, "spec.ports[0].nodePort", FORB),
    ("", "Service", "spec.type", "Magic", "spec.type", NSUP),
    ("", "Service", "spec.type", "ExternalName", "spec.externalName", REQ),
    ("", "Service", "spec.sessionAffinity", "Sticky", "spec.sessionAffinity", NSUP),
    ("", "Service", "spec.selector", {"app": "no spaces"}, "spec.selector[app]", INV),
    ("", "Service", "spec.clusterIP", "10.0.0.1.1", "spec.clusterIP", INV),
    ("", "Service", "metadata.name", "1web", "metadata.name", INV),
    ("", "Action", "spec.podName", DELETE, "spec.podName", REQ),
    ("", "Action", "spec.rebootAction", DELETE, "spec", REQ),
    ("", "Action", "spec.restoreAction", {"snapshotID": "s1"}, "spec.restoreAction", FORB),
    ("", "Action", "spec.rebootAction.delayInSeconds", -5,
     "spec.rebootAction.delayInSeconds", INV),
    ("", "Action", "status.complete", "yes", "status.complete", TYPE),
    ("coordination.k8s.io", "Lease", "spec.leaseDurationSeconds", 0,
     "spec.leaseDurationSeconds", INV),
    ("coordination.k8s.io", "Lease", "spec.leaseTransitions", -1, "spec.leaseTransitions", INV),
    ("coordination.k8s.io", "Lease", "spec.renewTime", "2024-05-01 10:00", "spec.renewTime", INV),
    ("coordination.k8s.io", "Lease", "spec.holderIdentity", 7, "spec.holderIdentity", TYPE),
    (RBAC, "Role", "rules[0].verbs", [], "rules[0].verbs", REQ),
    (RBAC, "Role", "rules[0].apiGroups", DELETE, "rules[0].apiGroups", REQ),
    (RBAC, "Role", "rules[0].resources", DELETE, "rules[0].resources", REQ),
    (RBAC, "Role", "rules[0].nonResourceURLs", ["/healthz"], "rules[0].nonResourceURLs", INV),
    (RBAC, "ClusterRole", "rules[1].resources", ["pods"], "rules[1].nonResourceURLs", INV),
    (RBAC, "ClusterRole", "aggregationRule", {}, "aggregationRule.clusterRoleSelectors", REQ),
    (RBAC, "ClusterRole", "aggregationRule.clusterRoleSelectors",
     [{"matchExpressions": [{"key": "a", "operator": "In"}]}],
     "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].values", REQ),
    (RBAC, "RoleBinding", "roleRef", DELETE, "roleRef", REQ),
    (RBAC, "RoleBinding", "roleRef.apiGroup", "rbac", "roleRef.apiGroup", NSUP),
    (RBAC, "RoleBinding", "roleRef.kind", "User", "roleRef.kind", NSUP),
    (RBAC, "RoleBinding", "roleRef.name", DELETE, "roleRef.name", REQ),
    (RBAC, "RoleBinding", "subjects[0].kind", "Robot", "subjects[0].kind", NSUP),
    (RBAC, "RoleBinding", "subjects[0].name", DELETE, "subjects[0].name", REQ),
    (RBAC, "RoleBinding", "subjects[1].apiGroup", RBAC, "subjects[1].apiGroup", NSUP),
    (RBAC, "ClusterRoleBinding", "roleRef.kind", "Role", "roleRef.kind", NSUP),
    (RBAC, "ClusterRoleBinding", "subjects[1].namespace", DELETE, "subjects[1].namespace",
     REQ),
]


@pytest.mark.parametrize(("group", "kind", "path", "value", "field", "reason"), RULES)
def test_rule(group: str, kind: str, path: str, value: Any, field: str, reason: str) -> None:
    causes = check(kind, mutate(sample(kind, group), path, value), group=group)
    assert (field, reason) in found(causes), causes


def test_messages_read_like_kubernetes() -> None:
    causes = check("Tenant", mutate(sample("Tenant"), "spec.storageClusterId", "99"))
    assert causes == [Cause("spec.storageClusterId", 'Invalid value: "99": must be integer 0-63')]
    causes = check("Service", mutate(sample("Service"), "spec.ports[0].protocol", "ICMP"))
    assert causes[0].message == ('Unsupported value: "ICMP": supported values: "TCP", "UDP", '
                                 '"SCTP"')


def test_basic_auth_secret_needs_username_or_password() -> None:
    secret = {"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth"}
    assert found(check("Secret", secret)) == {("data[username]", REQ)}
    assert check("Secret", mutate(secret, "stringData", {"password": "pw"})) == []


def test_valid_variants() -> None:
    assert check("Tenant", mutate(sample("Tenant"), "spec.storageClusterId", "63")) == []
    headless = {"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}}}
    assert check("Service", headless) == []
    external = {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName",
                                                       "externalName": "db.example.com"}}
    assert check("Service", external) == []
    secret = {"metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
              "stringData": {"tls.crt": "C", "tls.key": "K"}}
    assert check("Secret", secret) == []
    assert check("Action", {"metadata": {"name": "snapshot-1"}, "spec": {
        "podName": "vm", "snapshotAction": {"snapshotName": "daily 1"}}}) == []


# --- updates ------------------------------------------------------------------------------

UPDATES = [
    ("", "Tenant", "spec.storageClusterId", "2", "spec.storageClusterId", INV),
    ("", "Action", "spec.podName", "other", "spec", FORB),
    ("", "Secret", "type", "example.com/custom", "type", INV),
    ("", "Service", "spec.clusterIP", "10.0.0.2", "spec.clusterIP", INV),
    (RBAC, "RoleBinding", "roleRef.name", "writer", "roleRef", INV),
    (RBAC, "ClusterRoleBinding", "roleRef.name", "view", "roleRef", INV),
]


@pytest.mark.parametrize(("group", "kind", "path", "value", "field", "reason"), UPDATES)
def test_immutable_on_update(group: str, kind: str, path: str, value: Any, field: str,
                             reason: str) -> None:
    old = created(kind, mutate(sample(kind, group), "spec.clusterIP", "10.0.0.1")
                  if kind == "Service" else None, group=group)
    causes = check(kind, mutate(old, path, value), old=old, group=group)
    assert (field, reason) in found(causes), causes


def test_immutable_configmap_and_secret() -> None:
    for kind in ("ConfigMap", "Secret"):
        old = created(kind, mutate(sample(kind), "immutable", True))
        changed = mutate(old, "data", {"other": "eA=="})
        assert found(check(kind, changed, old=old)) == {("data", FORB)}
        thawed = mutate(old, "immutable", False)
        assert found(check(kind, thawed, old=old)) == {("immutable", FORB)}


def test_status_update_of_action_keeps_spec() -> None:
    old = created("Action")
    new = mutate(old, "status", {"complete": True, "error": "", "podName": "vm",
                                 "rebootStatus": {"rebootSuccessful": True}})
    assert check("Action", new, old=old) == []


# --- columns and field labels -------------------------------------------------------------

def test_namespace_tenant_columns() -> None:
    assert column("Namespace", "STATUS", created("Namespace")) == "Active"
    tenant = created("Tenant")
    assert (column("Tenant", "STORAGEID", tenant), column("Tenant", "STATUS", tenant)) == (
        "1", "Active")


@pytest.mark.parametrize(("conditions", "unschedulable", "expected"), [
    ([{"type": "Ready", "status": "True"}], False, "Ready"),
    ([{"type": "Ready", "status": "False"}], False, "NotReady"),
    ([{"type": "Ready", "status": "Unknown"}], True, "Unknown,SchedulingDisabled"),
    ([], False, "Unknown"),
])
def test_node_status_column(conditions: list[Obj], unschedulable: bool, expected: str) -> None:
    node = {"spec": {"unschedulable": unschedulable}, "status": {"conditions": conditions}}
    assert column("Node", "STATUS", node) == expected


def test_node_columns_and_labels() -> None:
    node = created("Node")
    assert column("Node", "ROLES", node) == "master"
    assert column("Node", "ROLES", {"metadata": {"labels": {"a": "b"}}}) == "<none>"
    assert column("Node", "VERSION", node) == "v1.15.0"
    assert column("Node", "INTERNAL-IP", node) == "192.168.0.10"
    assert rtype("Node").field_labels["spec.unschedulable"](node) == "false"


def test_event_columns_and_labels() -> None:
    event = created("Event")
    cols = {c.name: c.get(event) for c in rtype("Event").columns}
    assert cols["TYPE"] == "Normal"
    assert cols["REASON"] == "Scheduled"
    assert cols["OBJECT"] == "pod/web"
    assert cols["MESSAGE"] == "assigned default/web to node-1"
    assert cols["LAST SEEN"] == "2024-05-01T10:00:00Z"
    labels = {k: get(event) for k, get in rtype("Event").field_labels.items()}
    assert labels["involvedObject.kind"] == "Pod"
    assert labels["involvedObject.name"] == "web"
    assert labels["involvedObject.namespace"] == "default"
    assert (labels["reason"], labels["type"], labels["source"]) == (
        "Scheduled", "Normal", "default-scheduler")


def test_config_columns() -> None:
    assert column("ConfigMap", "DATA", created("ConfigMap")) == 2
    secret = created("Secret")
    assert (column("Secret", "TYPE", secret), column("Secret", "DATA", secret)) == ("Opaque", 1)
    assert rtype("Secret").field_labels["type"](secret) == "Opaque"
    assert column("ServiceAccount", "SECRETS", created("ServiceAccount")) == 1


def test_endpoints_column() -> None:
    assert column("Endpoints", "ENDPOINTS", created("Endpoints")) == "10.0.0.5:8080"
    many = {"subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)],
                         "ports": [{"port": 80}]}]}
    assert column("Endpoints", "ENDPOINTS", many) == (
        "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more...")
    assert column("Endpoints", "ENDPOINTS", {"subsets": []}) == "<none>"


def test_service_columns() -> None:
    svc = created("Service", mutate(sample("Service"), "spec.clusterIP", "10.96.0.10"))
    cols = {c.name: c.get(svc) for c in rtype("Service").columns}
    assert cols == {"TYPE": "ClusterIP", "CLUSTER-IP": "10.96.0.10", "EXTERNAL-IP": "<none>",
                    "PORT(S)": "80/TCP", "SELECTOR": "app=web"}
    lb = mutate(svc, "spec.type", "LoadBalancer")
    lb["spec"]["ports"][0]["nodePort"] = 30080
    assert column("Service", "EXTERNAL-IP", lb) == "<pending>"
    assert column("Service", "PORT(S)", lb) == "80:30080/TCP"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.io"}]}}
    assert column("Service", "EXTERNAL-IP", lb) == "1.2.3.4,lb.io"


def test_action_columns_and_labels() -> None:
    assert created("Action")["status"] == {"phase": "Pending"}
    action = mutate(created("Action"), "status", {"complete": True, "error": "boom",
                                                  "phase": "Failed"})
    cols = {c.name: c.get(action) for c in rtype("Action").columns}
    assert cols == {"OPERATION": "reboot", "PODNAME": "vm", "PHASE": "Failed", "COMPLETE": "Yes",
                    "NODE": "node-1", "ERROR": "boom"}
    labels = rtype("Action").field_labels
    assert labels["spec.nodeName"](action) == "node-1"
    assert labels["status.complete"](action) == "true"
    assert rtype("Action").short_names == ("ac",)


def test_lease_and_binding_columns() -> None:
    lease = created("Lease", group="coordination.k8s.io")
    assert column("Lease", "HOLDER", lease, "coordination.k8s.io") == "node-1"
    crb = created("ClusterRoleBinding", group=RBAC)
    assert column("ClusterRoleBinding", "ROLE", crb, RBAC) == "ClusterRole/admin"
    assert column("ClusterRoleBinding", "SERVICEACCOUNTS", crb, RBAC) == "ci/builder"
    assert column("ClusterRoleBinding", "GROUPS", crb, RBAC) == "ops"


# --- garbage never raises -----------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(["", "Always", "None", "eth0", "1Gi", "-1", "Running", "app"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6) | st.sampled_from(["name", "image", "kind", "port"]),
                      inner, max_size=3),
    max_leaves=12)
KINDS = sorted({*SAMPLES, ("", "VMPod")})




def _exercise(group: str, kind: str, obj: Obj, old: Obj | None) -> None:
    """Default, validate (create and update), print and select: nothing may raise."""
    t = rtype("Pod" if kind == "VMPod" else kind, group)
    t.default(obj)
    for causes in (t.validate(obj, None), t.validate(obj, old)):
        assert all(isinstance(c, Cause) for c in causes)
    for col in t.columns:
        col.get(obj)
    for get in t.field_labels.values():
        assert isinstance(get(obj), str)


def _base(group: str, kind: str) -> Obj:
    return copy.deepcopy(VM_POD) if kind == "VMPod" else sample(kind, group)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), which=st.sampled_from(KINDS), garbage=JSON)
def test_garbage_anywhere_never_raises(data: st.DataObject, which: tuple[str, str],
                                       garbage: Any) -> None:
    group, kind = which
    obj = _base(group, kind)
    path = data.draw(st.sampled_from([p for p in json_paths(obj) if p]))
    cur: Any = obj
    for step in path[:-1]:
        cur = cur[step]
    cur[path[-1]] = garbage
    _exercise(group, kind, obj, created("Pod" if kind == "VMPod" else kind,
                                        _base(group, kind), group=group))


@settings(max_examples=200)
@given(which=st.sampled_from(KINDS), top=st.dictionaries(
    st.sampled_from(["spec", "status", "data", "binaryData", "stringData", "subsets", "rules",
                     "subjects", "roleRef", "involvedObject", "type", "secrets", "count"]),
    JSON, max_size=4), old=JSON)
def test_garbage_top_level_never_raises(which: tuple[str, str], top: Obj, old: Any) -> None:
    group, kind = which
    obj = {"metadata": {"name": "x", "namespace": "default"}, **top}
    _exercise(group, kind, obj, {"metadata": {}, "spec": old, "status": old, "roleRef": old})


def test_pod_references_name_what_a_node_may_read() -> None:
    from arktos.api.kinds.pod import pod_references
    pod = {"spec": {
        "volumes": [{"name": "a", "configMap": {"name": "cm1"}},
                    {"name": "b", "secret": {"secretName": "s1"}},
                    {"name": "c", "projected": {"sources": [{"configMap": {"name": "cm2"}},
                                                            {"secret": {"name": "s2"}}]}}],
        "containers": [{"name": "x", "env": [
            {"name": "E", "valueFrom": {"configMapKeyRef": {"name": "cm3", "key": "k"}}},
            {"name": "F", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "k"}}}],
            "envFrom": [{"configMapRef": {"name": "cm4"}}, {"secretRef": {"name": "s4"}}]}],
        "imagePullSecrets": [{"name": "s5"}]}}
    assert pod_references(pod, "configmaps") == {"cm1", "cm2", "cm3", "cm4"}
    assert pod_references(pod, "secrets") == {"s1", "s2", "s3", "s4", "s5"}
