"""Pods (containers or one VM), pod templates of Deployment/ReplicaSet: checks, defaults,
update rules, columns and field labels."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from tests.api.kind_samples import DELETE, VM_POD, Obj, check, created, found, mutate, rtype, sample

REQ, INV, NSUP = "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported"
FORB, DUP, TYPE = "FieldValueForbidden", "FieldValueDuplicate", "FieldValueTypeInvalid"
NOTFOUND, LONG = "FieldValueNotFound", "FieldValueTooLong"
C0 = "spec.containers[0]"
VM = "spec.virtualMachine"


def pod_column(name: str, pod: Obj) -> Any:
    (col,) = [c for c in rtype("Pod").columns if c.name == name]
    return col.get(pod)


# --- defaults -----------------------------------------------------------------------------

def test_container_pod_defaults() -> None:
    pod = created("Pod")
    spec = pod["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["terminationGracePeriodSeconds"],
            spec["schedulerName"]) == ("Always", "ClusterFirst", 30, "default-scheduler")
    container = spec["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["ports"][0]["protocol"] == "TCP"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert pod["status"] == {"phase": "Pending"}


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/nginx", "Always"), ("localhost:5000/nginx:v2", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_default_image_pull_policy(image: str, policy: str) -> None:
    pod = created("Pod", mutate(sample("Pod"), f"{C0}.image", image))
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_requests_default_to_limits() -> None:
    pod = mutate(sample("Pod"), f"{C0}.resources", {"limits": {"cpu": "2", "memory": "1Gi"},
                                                    "requests": {"cpu": "500m"}})
    requests = created("Pod", pod)["spec"]["containers"][0]["resources"]["requests"]
    assert requests == {"cpu": "500m", "memory": "1Gi"}


def test_vm_pod_defaults() -> None:
    pod = created("Pod", VM_POD)
    vm = pod["spec"]["virtualMachine"]
    assert (vm["powerSpec"], vm["imagePullPolicy"]) == ("Running", "IfNotPresent")
    assert vm["resources"]["requests"] == {"cpu": "1", "memory": "200Mi"}


def test_volume_without_source_is_an_empty_dir() -> None:
    pod = created("Pod", mutate(sample("Pod"), "spec.volumes[0]", {"name": "data"}))
    assert pod["spec"]["volumes"][0] == {"name": "data", "emptyDir": {}}


# --- rules --------------------------------------------------------------------------------

POD_RULES = [
    ("spec.containers", DELETE, "spec.containers", REQ),
    ("spec.containers", [], "spec.containers", REQ),
    ("spec.containers", "nginx", "spec.containers", TYPE),
    ("spec.containers[0]", "nginx", "spec.containers[0]", TYPE),
    ("spec.virtualMachine", VM_POD["spec"]["virtualMachine"], VM, FORB),
    (f"{C0}.name", DELETE, f"{C0}.name", REQ),
    (f"{C0}.name", "App_1", f"{C0}.name", INV),
    (f"{C0}.image", "", f"{C0}.image", REQ),
    (f"{C0}.image", ["nginx"], f"{C0}.image", TYPE),
    ("spec.initContainers", [{"name": "app", "image": "busybox"}],
     "spec.initContainers[0].name", DUP),
    (f"{C0}.ports[0].containerPort", 0, f"{C0}.ports[0].containerPort", INV),
    (f"{C0}.ports[0].containerPort", 65536, f"{C0}.ports[0].containerPort", INV),
    (f"{C0}.ports[0].containerPort", "80", f"{C0}.ports[0].containerPort", TYPE),
    (f"{C0}.ports[0].containerPort", True, f"{C0}.ports[0].containerPort", TYPE),
    (f"{C0}.ports[0].protocol", "HTTP", f"{C0}.ports[0].protocol", NSUP),
    (f"{C0}.ports[0].name", "http--x", f"{C0}.ports[0].name", INV),
    (f"{C0}.ports[1]", {"containerPort": 81, "name": "http"}, f"{C0}.ports[1].name", DUP),
    (f"{C0}.env[0].name", "1BAD", f"{C0}.env[0].name", INV),
    (f"{C0}.env[0].name", DELETE, f"{C0}.env[0].name", REQ),
    (f"{C0}.env[1].valueFrom", {}, f"{C0}.env[1].valueFrom", INV),
    (f"{C0}.env[0].valueFrom", {"fieldRef": {}}, f"{C0}.env[0].valueFrom", INV),
    (f"{C0}.resources.limits.cpu", "lots", f"{C0}.resources.limits[cpu]", INV),
    (f"{C0}.resources.limits.cpu", "-1", f"{C0}.resources.limits[cpu]", INV),
    (f"{C0}.resources.limits.gpu", "1", f"{C0}.resources.limits[gpu]", INV),
    (f"{C0}.resources.requests.cpu", "2", f"{C0}.resources.requests[cpu]", INV),
    (f"{C0}.resources.requests", ["cpu"], f"{C0}.resources.requests", TYPE),
    (f"{C0}.imagePullPolicy", "Sometimes", f"{C0}.imagePullPolicy", NSUP),
    (f"{C0}.volumeMounts[0].name", "missing", f"{C0}.volumeMounts[0].name", NOTFOUND),
    (f"{C0}.volumeMounts[0].mountPath", DELETE, f"{C0}.volumeMounts[0].mountPath", REQ),
    (f"{C0}.volumeMounts[1]", {"name": "data", "mountPath": "/data"},
     f"{C0}.volumeMounts[1].mountPath", DUP),
    ("spec.volumes[1]", {"name": "data", "emptyDir": {}}, "spec.volumes[1].name", DUP),
    ("spec.volumes[0].name", "Data", "spec.volumes[0].name", INV),
    ("spec.volumes[0].hostPath", {"path": "/x"}, "spec.volumes[0].hostPath", FORB),
    ("spec.volumes[0]", {"name": "data", "secret": {}}, "spec.volumes[0].secret.secretName",
     REQ),
    ("spec.restartPolicy", "Sometimes", "spec.restartPolicy", NSUP),
    ("spec.dnsPolicy", "Google", "spec.dnsPolicy", NSUP),
    ("spec.dnsPolicy", "None", "spec.dnsConfig", REQ),
    ("spec.terminationGracePeriodSeconds", -1, "spec.terminationGracePeriodSeconds", INV),
    ("spec.activeDeadlineSeconds", 0, "spec.activeDeadlineSeconds", INV),
    ("spec.nodeName", "Node_1", "spec.nodeName", INV),
    ("spec.serviceAccountName", "Bad Name", "spec.serviceAccountName", INV),
    ("spec.nodeSelector", {"disk": 1}, "spec.nodeSelector[disk]", TYPE),
    ("spec.hostNetwork", "true", "spec.hostNetwork", TYPE),
    ("spec.tolerations", [{"operator": "Equal", "value": "x"}], "spec.tolerations[0].operator",
     INV),
    ("spec.tolerations", [{"key": "k", "operator": "Exists", "value": "x"}],
     "spec.tolerations[0].operator", INV),
    ("spec.tolerations", [{"key": "k", "effect": "Never"}], "spec.tolerations[0].effect", NSUP),
    ("spec.tolerations", [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}],
     "spec.tolerations[0].effect", INV),
    ("spec.nics", [{"name": "eth0", "ipAddress": "300.1.1.1"}], "spec.nics[0].ipAddress", INV),
    ("status.phase", "Exploded", "status.phase", NSUP),
    ("status.podIP", "not-an-ip", "status.podIP", INV),
]


@pytest.mark.parametrize(("path", "value", "field", "reason"), POD_RULES)
def test_pod_rule(path: str, value: Any, field: str, reason: str) -> None:
    causes = check("Pod", mutate(sample("Pod"), path, value))
    assert (field, reason) in found(causes), causes


VM_RULES = [
    ("spec.virtualMachine", [], VM, TYPE),
    (f"{VM}.name", DELETE, f"{VM}.name", REQ),
    (f"{VM}.name", "VM 1", f"{VM}.name", INV),
    (f"{VM}.image", DELETE, f"{VM}.image", REQ),
    (f"{VM}.keyPairName", DELETE, f"{VM}.keyPairName", REQ),
    (f"{VM}.userData", "***", f"{VM}.userData", INV),
    (f"{VM}.userData", base64.b64encode(b"x" * 65536).decode(), f"{VM}.userData", LONG),
    (f"{VM}.powerSpec", "Off", f"{VM}.powerSpec", NSUP),
    (f"{VM}.imagePullPolicy", "Maybe", f"{VM}.imagePullPolicy", NSUP),
    (f"{VM}.resources.limits.memory", "200MB", f"{VM}.resources.limits[memory]", INV),
    (f"{VM}.resources.requests", {"cpu": "2"}, f"{VM}.resources.requests[cpu]", INV),
    (f"{VM}.volumeMounts", [{"name": "disk", "mountPath": "/d"}],
     f"{VM}.volumeMounts[0].name", NOTFOUND),
    ("status.virtualMachineStatus", {"ready": "yes"}, "status.virtualMachineStatus.ready", TYPE),
]


@pytest.mark.parametrize(("path", "value", "field", "reason"), VM_RULES)
def test_vm_rule(path: str, value: Any, field: str, reason: str) -> None:
    causes = check("Pod", mutate(VM_POD, path, value))
    assert (field, reason) in found(causes), causes


def test_vm_variants_are_valid() -> None:
    with_key = mutate(mutate(VM_POD, f"{VM}.keyPairName", DELETE), f"{VM}.publicKey", "ssh-rsa A")
    assert check("Pod", with_key) == []
    extras = mutate(VM_POD, f"{VM}.cloudInitUserDataScript", "#!/bin/sh")
    extras = mutate(extras, f"{VM}.bootVolume", "root")
    extras = mutate(extras, "spec.volumes", [{"name": "disk", "emptyDir": {}}])
    extras = mutate(extras, f"{VM}.volumeMounts", [{"name": "disk", "mountPath": "/d"}])
    assert check("Pod", extras) == []


# --- updates ------------------------------------------------------------------------------

def _update(old: Obj, path: str, value: Any) -> set[tuple[str, str]]:
    return found(check("Pod", mutate(old, path, value), old=old))


def test_pod_update_may_change_images_only() -> None:
    old = created("Pod")
    assert _update(old, f"{C0}.image", "nginx:1.26") == set()
    assert _update(old, f"{C0}.ports[0].containerPort", 81) == {("spec", FORB)}
    assert _update(old, "spec.nodeName", "node-2") == {("spec", FORB)}
    extra = {"name": "side", "image": "busybox", "imagePullPolicy": "Always"}
    assert ("spec.containers", FORB) in _update(old, "spec.containers[1]", extra)


def test_pod_update_forbidden_message() -> None:
    old = created("Pod")
    (cause,) = check("Pod", mutate(old, "spec.hostname", "h"), old=old)
    assert cause.message.startswith("Forbidden: pod updates may not change fields other than "
                                    "`spec.containers[*].image`")


def test_pod_update_active_deadline() -> None:
    old = created("Pod", mutate(sample("Pod"), "spec.activeDeadlineSeconds", 100))
    assert _update(old, "spec.activeDeadlineSeconds", 50) == set()
    assert _update(old, "spec.activeDeadlineSeconds", 200) == {
        ("spec.activeDeadlineSeconds", INV)}
    assert _update(old, "spec.activeDeadlineSeconds", DELETE) == {
        ("spec.activeDeadlineSeconds", INV)}
    assert _update(created("Pod"), "spec.activeDeadlineSeconds", 10) == set()


def test_pod_update_tolerations_only_added() -> None:
    toleration = {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    old = created("Pod", mutate(sample("Pod"), "spec.tolerations", [toleration]))
    added = [{**toleration, "tolerationSeconds": 1}, {"key": "x", "operator": "Exists"}]
    assert _update(old, "spec.tolerations", added) == set()
    assert _update(old, "spec.tolerations", []) == {("spec.tolerations", FORB)}


def test_vm_pod_update_power_and_image() -> None:
    old = created("Pod", VM_POD)
    assert _update(old, f"{VM}.powerSpec", "Shutdown") == set()
    assert _update(old, f"{VM}.image", "cirros-0.5.1") == set()
    assert _update(old, f"{VM}.name", "other") == {("spec", FORB)}
    assert ("spec.containers", REQ) in _update(old, VM, DELETE)


def test_pod_update_nics() -> None:
    nics = [{"name": "eth0", "portId": "p-1"}, {"name": "eth1"}]
    old = created("Pod", mutate(VM_POD, "spec.nics", nics))
    assert _update(old, "spec.nics", nics[:1]) == set()
    assert _update(old, "spec.nics", nics[1:]) == {("spec.nics", FORB)}
    assert _update(old, "spec.nics[0].portId", "p-2") == {("spec.nics", FORB)}


def test_status_update_is_valid() -> None:
    old = created("Pod")
    new = mutate(old, "status", {"phase": "Running", "podIP": "10.88.0.5",
                                 "containerStatuses": [{"name": "app", "ready": True}]})
    assert check("Pod", new, old=old) == []


# --- columns and field labels -------------------------------------------------------------

def _state(**state: Any) -> dict[str, Any]:
    return {"name": "c", "state": state, "restartCount": 2}


@pytest.mark.parametrize(("status", "meta", "expected"), [
    ({"phase": "Running", "containerStatuses": [
        {"ready": True, "state": {"running": {}}, "restartCount": 0}]}, {}, "Running"),
    ({"phase": "Running", "containerStatuses": [
        _state(waiting={"reason": "CrashLoopBackOff"})]}, {}, "CrashLoopBackOff"),
    ({"phase": "Failed", "reason": "Evicted"}, {}, "Evicted"),
    ({"phase": "Failed", "containerStatuses": [_state(terminated={"exitCode": 3})]}, {},
     "ExitCode:3"),
    ({"phase": "Succeeded", "containerStatuses": [
        _state(terminated={"exitCode": 0, "reason": "Completed"})]}, {}, "Completed"),
    ({"phase": "Pending", "initContainerStatuses": [_state(running={})]}, {}, "Init:0/1"),
    ({"phase": "Pending", "initContainerStatuses": [
        _state(waiting={"reason": "ImagePullBackOff"})]}, {}, "Init:ImagePullBackOff"),
    ({"phase": "Running"}, {"deletionTimestamp": "2024-01-01T00:00:00Z"}, "Terminating"),
    ({"phase": "Running", "reason": "NodeLost"}, {"deletionTimestamp": "2024-01-01T00:00:00Z"},
     "Unknown"),
    ({}, {}, "Unknown"),
])
def test_pod_status_column(status: Obj, meta: Obj, expected: str) -> None:
    pod = {"metadata": {"name": "p", **meta}, "spec": {"initContainers": [{"name": "i"}]},
           "status": status}
    assert pod_column("STATUS", pod) == expected


def test_pod_ready_restarts_ip_node() -> None:
    pod = mutate(created("Pod"), "spec.containers[1]", {"name": "b", "image": "b"})
    pod["spec"]["nodeName"] = "node-1"
    pod["status"] = {"podIP": "10.88.0.7", "containerStatuses": [
        {"ready": True, "restartCount": 1}, {"ready": False, "restartCount": 2}]}
    assert pod_column("READY", pod) == "1/2"
    assert pod_column("RESTARTS", pod) == 3
    assert (pod_column("IP", pod), pod_column("NODE", pod)) == ("10.88.0.7", "node-1")
    assert pod_column("IP", created("Pod")) == "<none>"


def test_vm_pod_ready_and_restarts() -> None:
    pod = created("Pod", VM_POD)
    assert pod_column("READY", pod) == "0/1"
    pod["status"]["virtualMachineStatus"] = {"ready": True, "restartCount": 4}
    assert (pod_column("READY", pod), pod_column("RESTARTS", pod)) == ("1/1", 4)


def test_pod_field_labels() -> None:
    pod = created("Pod")
    pod["spec"]["nodeName"] = "node-1"
    pod["status"]["podIP"] = "10.88.0.9"
    labels = {k: get(pod) for k, get in rtype("Pod").field_labels.items()}
    assert labels["spec.nodeName"] == "node-1"
    assert labels["status.phase"] == "Pending"
    assert labels["spec.schedulerName"] == "default-scheduler"
    assert labels["status.podIP"] == "10.88.0.9"


# --- Deployment and ReplicaSet ------------------------------------------------------------

APPS = "apps"
T = "spec.template"


def test_deployment_defaults() -> None:
    deploy = created("Deployment", group=APPS)
    spec = deploy["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    recreate = created("Deployment", mutate(deploy, "spec.strategy", {"type": "Recreate"}),
                       group=APPS)
    assert recreate["spec"]["strategy"] == {"type": "Recreate"}


APPS_RULES = [
    ("spec.selector", DELETE, "spec.selector", REQ),
    ("spec.selector", {}, "spec.selector", INV),
    ("spec.selector.matchLabels.app", "api", f"{T}.metadata.labels", INV),
    ("spec.selector", {"matchExpressions": [{"key": "app", "operator": "NotIn",
                                             "values": ["web"]}]}, f"{T}.metadata.labels", INV),
    ("spec.selector", {"matchExpressions": [{"key": "app", "operator": "Near"}]},
     "spec.selector.matchExpressions[0].operator", NSUP),
    ("spec.replicas", -1, "spec.replicas", INV),
    ("spec.replicas", "3", "spec.replicas", TYPE),
    ("spec.minReadySeconds", -1, "spec.minReadySeconds", INV),
    ("spec.template", DELETE, T, REQ),
    (f"{T}.spec.restartPolicy", "OnFailure", f"{T}.spec.restartPolicy", NSUP),
    (f"{T}.spec.activeDeadlineSeconds", 5, f"{T}.spec.activeDeadlineSeconds", FORB),
    (f"{T}.spec.containers[0].image", DELETE, f"{T}.spec.containers[0].image", REQ),
    (f"{T}.spec", "garbage", f"{T}.spec", TYPE),
]
DEPLOYMENT_RULES = [
    ("spec.strategy", {"type": "Recreate", "rollingUpdate": {}}, "spec.strategy.rollingUpdate",
     FORB),
    ("spec.strategy", {"type": "Blue"}, "spec.strategy.type", NSUP),
    ("spec.strategy.rollingUpdate", {"maxSurge": 0, "maxUnavailable": "0%"},
     "spec.strategy.rollingUpdate.maxUnavailable", INV),
    ("spec.strategy.rollingUpdate", {"maxSurge": "x%"}, "spec.strategy.rollingUpdate.maxSurge",
     INV),
    ("spec.strategy.rollingUpdate", {"maxUnavailable": "150%"},
     "spec.strategy.rollingUpdate.maxUnavailable", INV),
    ("spec.strategy.rollingUpdate", {"maxSurge": -1}, "spec.strategy.rollingUpdate.maxSurge", INV),
    ("spec.revisionHistoryLimit", -1, "spec.revisionHistoryLimit", INV),
    ("spec.progressDeadlineSeconds", 5, "spec.progressDeadlineSeconds", INV),
]


@pytest.mark.parametrize(("kind", "path", "value", "field", "reason"),
                         [("Deployment", *r) for r in APPS_RULES + DEPLOYMENT_RULES]
                         + [("ReplicaSet", *r) for r in APPS_RULES])
def test_apps_rule(kind: str, path: str, value: Any, field: str, reason: str) -> None:
    obj = mutate(sample(kind, APPS), "spec.minReadySeconds", 10)
    causes = check(kind, mutate(obj, path, value), group=APPS)
    assert (field, reason) in found(causes), causes


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_apps_selector_immutable_and_scaling_allowed(kind: str) -> None:
    old = created(kind, group=APPS)
    assert check(kind, mutate(old, "spec.replicas", 7), old=old, group=APPS) == []
    moved = mutate(mutate(old, "spec.selector.matchLabels.tier", "x"),
                   f"{T}.metadata.labels.tier", "x")
    assert found(check(kind, moved, old=old, group=APPS)) == {("spec.selector", INV)}


def test_apps_columns() -> None:
    deploy = created("Deployment", group=APPS)
    deploy["status"] = {"readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 0}
    cols = {c.name: c.get(deploy) for c in rtype("Deployment", APPS).columns}
    assert cols == {"READY": "1/1", "UP-TO-DATE": 1, "AVAILABLE": 0, "CONTAINERS": "app",
                    "IMAGES": "nginx:1.25", "SELECTOR": "app=web"}
    rs = created("ReplicaSet", group=APPS)
    rs["spec"]["selector"]["matchExpressions"] = [
        {"key": "tier", "operator": "In", "values": ["b", "a"]},
        {"key": "legacy", "operator": "DoesNotExist"}]
    rs["status"] = {"replicas": 3, "readyReplicas": 2}
    cols = {c.name: c.get(rs) for c in rtype("ReplicaSet", APPS).columns}
    assert (cols["DESIRED"], cols["CURRENT"], cols["READY"]) == (3, 3, 2)
    assert cols["SELECTOR"] == "app=web,tier in (a,b),!legacy"


def test_vm_replicaset_is_valid() -> None:
    rs = sample("ReplicaSet", APPS)
    rs["spec"]["template"]["spec"] = copy.deepcopy(VM_POD["spec"])
    rs = created("ReplicaSet", rs, group=APPS)
    images = next(c for c in rtype("ReplicaSet", APPS).columns if c.name == "IMAGES").get(rs)
    assert images.startswith("download.cirros-cloud.net/")
