"""The official `kubernetes` Python client against the server, on both storage backends.

The client is loaded from the server's admin kubeconfig and used as a user would, through the
short (tenant-less) paths; the DynamicClient goes through discovery first.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import NotFoundError

from tests.apiserver_proc import ApiServerProcess


@pytest.fixture
def api(apiserver: ApiServerProcess) -> Iterator[client.ApiClient]:
    api_client = kubernetes.config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    yield api_client
    api_client.close()
    api_client.rest_client.pool_manager.clear()


@pytest.fixture
def v1(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture
def pns(v1: client.CoreV1Api) -> str:
    """A fresh namespace, created through the client."""
    name = f"py-{uuid.uuid4().hex[:8]}"
    created = v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert created.metadata.name == name and created.status.phase == "Active"
    return name


def new_pod(name: str, labels: dict[str, str] | None = None,
            image: str = "busybox:1.36") -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image=image)]))


def new_deployment(name: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    containers = [client.V1Container(name="web", image="nginx:1.25"),
                  client.V1Container(name="sidecar", image="busybox:1.36")]
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=labels),
                                              spec=client.V1PodSpec(containers=containers))))


def status_of(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["code"] == exc.status
    return dict(body)


# -- pods --------------------------------------------------------------------------------------


def test_pod_create_get_list_patch_delete(v1: client.CoreV1Api, pns: str) -> None:
    created = v1.create_namespaced_pod(pns, new_pod("a", {"app": "web"}))
    assert isinstance(created, client.V1Pod)
    assert created.metadata.namespace == pns and created.metadata.uid
    assert int(created.metadata.resource_version) > 0
    assert created.spec.containers[0].image == "busybox:1.36"
    assert created.spec.restart_policy == "Always"  # defaulted by the server
    v1.create_namespaced_pod(pns, new_pod("b", {"app": "db"}))
    got = v1.read_namespaced_pod("a", pns)
    assert got.metadata.uid == created.metadata.uid
    assert got.metadata.resource_version == created.metadata.resource_version
    assert sorted(p.metadata.name for p in v1.list_namespaced_pod(pns).items) == ["a", "b"]
    web = v1.list_namespaced_pod(pns, label_selector="app=web")
    assert [p.metadata.name for p in web.items] == ["a"]
    assert int(web.metadata.resource_version) >= int(created.metadata.resource_version)
    assert [p.metadata.name for p in v1.list_namespaced_pod(
        pns, label_selector="app in (web,db),app!=web").items] == ["b"]
    assert [p.metadata.name for p in v1.list_namespaced_pod(
        pns, field_selector="metadata.name=b").items] == ["b"]
    everywhere = v1.list_pod_for_all_namespaces(label_selector="app=web")
    assert (pns, "a") in {(p.metadata.namespace, p.metadata.name) for p in everywhere.items}

    patched = v1.patch_namespaced_pod("a", pns, {"metadata": {"labels": {"tier": "front"}}})
    assert patched.metadata.labels == {"app": "web", "tier": "front"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

    deleted = v1.delete_namespaced_pod("a", pns)
    assert isinstance(deleted, client.V1Pod) and deleted.metadata.name == "a"
    with pytest.raises(ApiException) as gone:
        v1.read_namespaced_pod("a", pns)
    assert gone.value.status == 404
    assert [p.metadata.name for p in v1.list_namespaced_pod(pns).items] == ["b"]


def test_pod_status_and_replace(v1: client.CoreV1Api, pns: str) -> None:
    created = v1.create_namespaced_pod(pns, new_pod("s"))
    status = v1.read_namespaced_pod_status("s", pns)
    assert isinstance(status, client.V1Pod) and status.status.phase == "Pending"
    status.status.phase = "Running"
    status.status.pod_ip = "10.0.0.7"
    after = v1.replace_namespaced_pod_status("s", pns, status)
    assert after.status.phase == "Running" and after.status.pod_ip == "10.0.0.7"
    assert v1.read_namespaced_pod("s", pns).status.pod_ip == "10.0.0.7"
    # A whole-object replace cannot change the status, and a stale one conflicts.
    current = v1.read_namespaced_pod("s", pns)
    current.metadata.labels = {"x": "1"}
    current.status.phase = "Failed"
    replaced = v1.replace_namespaced_pod("s", pns, current)
    assert replaced.metadata.labels == {"x": "1"} and replaced.status.phase == "Running"
    with pytest.raises(ApiException) as stale:
        v1.replace_namespaced_pod("s", pns, current)
    assert stale.value.status == 409 and status_of(stale.value)["reason"] == "Conflict"
    assert created.metadata.uid == replaced.metadata.uid


def test_dry_run_changes_nothing(v1: client.CoreV1Api, pns: str) -> None:
    dry = v1.create_namespaced_pod(pns, new_pod("dry"), dry_run="All")
    assert dry.metadata.name == "dry" and dry.spec.dns_policy == "ClusterFirst"
    with pytest.raises(ApiException) as missing:
        v1.read_namespaced_pod("dry", pns)
    assert missing.value.status == 404


def test_noop_patch_keeps_resource_version(v1: client.CoreV1Api, pns: str) -> None:
    created = v1.create_namespaced_pod(pns, new_pod("n", {"app": "web"}))
    same = v1.patch_namespaced_pod("n", pns, {"metadata": {"labels": {"app": "web"}}})
    # kube-apiserver answers a write that changes nothing with the stored object, whose
    # resourceVersion is unchanged (clients compare it to detect "no change").
    assert same.metadata.resource_version == created.metadata.resource_version
    dry = v1.patch_namespaced_pod("n", pns, {"metadata": {"labels": {"app": "db"}}},
                                  dry_run="All")
    assert dry.metadata.labels == {"app": "db"}
    assert dry.metadata.resource_version == created.metadata.resource_version
    assert v1.read_namespaced_pod("n", pns).metadata.labels == {"app": "web"}


# -- errors ------------------------------------------------------------------------------------


def test_api_exceptions(v1: client.CoreV1Api, apps: client.AppsV1Api, pns: str) -> None:
    with pytest.raises(ApiException) as missing:
        v1.read_namespaced_pod("nosuch", pns)
    assert missing.value.status == 404
    body = status_of(missing.value)
    assert body["reason"] == "NotFound" and body["message"] == 'pods "nosuch" not found'
    assert body["details"] == {"kind": "pods", "name": "nosuch"}

    v1.create_namespaced_pod(pns, new_pod("dup"))
    with pytest.raises(ApiException) as dup:
        v1.create_namespaced_pod(pns, new_pod("dup"))
    assert dup.value.status == 409 and status_of(dup.value)["reason"] == "AlreadyExists"

    bad = new_pod("bad")
    bad.spec.containers = []
    with pytest.raises(ApiException) as invalid:
        v1.create_namespaced_pod(pns, bad)
    assert invalid.value.status == 422
    body = status_of(invalid.value)
    assert body["reason"] == "Invalid" and body["details"]["kind"] == "Pod"
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.containers"]

    dep = new_deployment("d")
    dep.spec.template.metadata.labels = {"app": "other"}
    with pytest.raises(ApiException) as mismatch:
        apps.create_namespaced_deployment(pns, dep)
    assert mismatch.value.status == 422 and status_of(mismatch.value)["reason"] == "Invalid"

    with pytest.raises(ApiException) as no_ns:
        v1.create_namespaced_pod(f"{pns}-nope", new_pod("x"))
    assert no_ns.value.status == 404 and status_of(no_ns.value)["reason"] == "NotFound"
    assert [p.metadata.name for p in v1.list_namespaced_pod(pns).items] == ["dup"]


def test_invalid_causes_carry_field_and_message_apart(v1: client.CoreV1Api, pns: str) -> None:
    bad = new_pod("Bad_Name")
    bad.spec.containers = []
    with pytest.raises(ApiException) as invalid:
        v1.create_namespaced_pod(pns, bad)
    body = status_of(invalid.value)
    causes = {c["field"]: c["message"] for c in body["details"]["causes"]}
    # As kube-apiserver (field.Error.ErrorBody()): the field is in `field`, the message is
    # "<what>: <detail>" without repeating the field; the summary joins "<field>: <message>".
    assert causes["spec.containers"] == "Required value"
    assert causes["metadata.name"].startswith(
        'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of')
    assert body["message"].startswith('Pod "Bad_Name" is invalid: ')
    assert 'metadata.name: Invalid value: "Bad_Name": ' in body["message"]


# -- namespaces --------------------------------------------------------------------------------


def test_namespaces(v1: client.CoreV1Api, pns: str) -> None:
    names = {n.metadata.name for n in v1.list_namespace().items}
    assert {"default", "kube-system", pns} <= names
    ns = v1.read_namespace(pns)
    assert ns.status.phase == "Active" and ns.spec.finalizers == ["kubernetes"]
    labelled = v1.patch_namespace(pns, {"metadata": {"labels": {"team": "a"}}})
    assert labelled.metadata.labels["team"] == "a"
    assert [n.metadata.name for n in v1.list_namespace(label_selector="team=a").items] == [pns]
    v1.delete_namespace(pns)
    assert v1.read_namespace(pns).status.phase == "Terminating"
    with pytest.raises(ApiException) as refused:
        v1.create_namespaced_pod(pns, new_pod("late"))
    assert refused.value.status == 403 and status_of(refused.value)["reason"] == "Forbidden"


# -- deployments -------------------------------------------------------------------------------


def test_deployment_crud_and_strategic_merge_patch(apps: client.AppsV1Api, pns: str) -> None:
    created = apps.create_namespaced_deployment(pns, new_deployment("web", replicas=2))
    assert isinstance(created, client.V1Deployment) and created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"  # defaulted by the server
    listed = apps.list_namespaced_deployment(pns, label_selector="app=web")
    assert [d.metadata.name for d in listed.items] == ["web"]
    # A strategic merge patch merges containers by name: only `web` changes.
    patched = apps.patch_namespaced_deployment("web", pns, {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    images = [(c.name, c.image) for c in patched.spec.template.spec.containers]
    assert images == [("web", "nginx:1.27"), ("sidecar", "busybox:1.36")]
    assert patched.metadata.generation == 2
    # $patch: delete removes one list element by its merge key.
    patched = apps.patch_namespaced_deployment("web", pns, {"spec": {"template": {"spec": {
        "containers": [{"name": "sidecar", "$patch": "delete"}]}}}})
    assert [c.name for c in patched.spec.template.spec.containers] == ["web"]
    read = apps.read_namespaced_deployment("web", pns)
    assert read.spec.template.spec.containers[0].image == "nginx:1.27"
    assert read.metadata.resource_version == patched.metadata.resource_version

    scale = apps.read_namespaced_deployment_scale("web", pns)
    assert isinstance(scale, client.V1Scale) and scale.spec.replicas == 2
    assert scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", pns, {"spec": {"replicas": 5}})
    assert apps.read_namespaced_deployment("web", pns).spec.replicas == 5
    status = apps.read_namespaced_deployment_status("web", pns)
    assert isinstance(status, client.V1Deployment) and status.metadata.name == "web"

    apps.delete_namespaced_deployment("web", pns)
    assert apps.list_namespaced_deployment(pns).items == []


def test_scale_replace_honours_resource_version(apps: client.AppsV1Api, pns: str) -> None:
    apps.create_namespaced_deployment(pns, new_deployment("web", replicas=2))
    scale = apps.read_namespaced_deployment_scale("web", pns)
    scale.spec.replicas = 3
    assert apps.replace_namespaced_deployment_scale("web", pns, scale).spec.replicas == 3
    scale.spec.replicas = 4  # still carries the old resourceVersion
    with pytest.raises(ApiException) as stale:
        apps.replace_namespaced_deployment_scale("web", pns, scale)
    assert stale.value.status == 409 and status_of(stale.value)["reason"] == "Conflict"
    assert apps.read_namespaced_deployment("web", pns).spec.replicas == 3


# -- watch -------------------------------------------------------------------------------------


def test_watch_from_resource_version(v1: client.CoreV1Api, pns: str) -> None:
    start = v1.list_namespaced_pod(pns).metadata.resource_version
    v1.create_namespaced_pod(pns, new_pod("w"))
    v1.patch_namespaced_pod("w", pns, {"metadata": {"labels": {"seen": "yes"}}})
    v1.delete_namespaced_pod("w", pns)
    events = list(watch.Watch().stream(v1.list_namespaced_pod, pns, resource_version=start,
                                       timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert all(isinstance(e["object"], client.V1Pod) for e in events)
    assert events[1]["object"].metadata.labels == {"seen": "yes"}
    revs = [int(e["object"].metadata.resource_version) for e in events]
    assert revs == sorted(revs) and revs[0] > int(start)


def test_watch_sees_changes_made_meanwhile(v1: client.CoreV1Api, pns: str) -> None:
    v1.create_namespaced_pod(pns, new_pod("old"))
    w = watch.Watch()
    events: list[tuple[str, str, dict[str, str] | None]] = []
    started = threading.Event()

    def consume() -> None:
        for ev in w.stream(v1.list_namespaced_pod, pns, timeout_seconds=10):
            obj = ev["object"]
            events.append((ev["type"], obj.metadata.name, obj.metadata.labels))
            started.set()
            if ev["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    assert started.wait(10), "no initial ADDED event"
    v1.create_namespaced_pod(pns, new_pod("new"))
    v1.patch_namespaced_pod("new", pns, {"metadata": {"labels": {"v": "2"}}})
    v1.delete_namespaced_pod("new", pns)
    thread.join(15)
    assert not thread.is_alive()
    assert events == [("ADDED", "old", None), ("ADDED", "new", None),
                      ("MODIFIED", "new", {"v": "2"}), ("DELETED", "new", {"v": "2"})]


def test_watch_with_label_selector(v1: client.CoreV1Api, pns: str) -> None:
    start = v1.list_namespaced_pod(pns).metadata.resource_version
    v1.create_namespaced_pod(pns, new_pod("in", {"keep": "yes"}))
    v1.create_namespaced_pod(pns, new_pod("out", {"keep": "no"}))
    v1.patch_namespaced_pod("in", pns, {"metadata": {"labels": {"keep": "no"}}})
    events = list(watch.Watch().stream(v1.list_namespaced_pod, pns, resource_version=start,
                                       label_selector="keep=yes", timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "in"), ("DELETED", "in")]


# -- discovery and the DynamicClient -----------------------------------------------------------


@pytest.fixture
def dyn(api: client.ApiClient, tmp_path: Path) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))


def test_version(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert (info.major, info.minor) == ("1", "31")
    assert info.git_version.startswith("v1.31.")


def test_dynamic_client_deployment(dyn: dynamic.DynamicClient, pns: str) -> None:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.namespaced and deployments.name == "deployments"
    assert "scale" in deployments.subresources and "status" in deployments.subresources
    body = client.ApiClient().sanitize_for_serialization(new_deployment("dd"))
    body.update(apiVersion="apps/v1", kind="Deployment")
    created = deployments.create(namespace=pns, body=body)
    assert created.kind == "Deployment" and created.metadata.name == "dd"
    assert created.metadata.tenant == "system"  # Arktos' field reaches dynamic clients
    listed = deployments.get(namespace=pns, label_selector="app=dd")
    assert listed.kind == "DeploymentList" and [i.metadata.name for i in listed.items] == ["dd"]
    merged = deployments.patch(namespace=pns, name="dd", body={"spec": {"replicas": 3}},
                               content_type="application/merge-patch+json")
    assert merged.spec.replicas == 3
    smp = deployments.patch(
        namespace=pns, name="dd",
        body={"spec": {"template": {"spec": {"containers": [{"name": "web",
                                                               "image": "nginx:2"}]}}}},
        content_type="application/strategic-merge-patch+json")
    assert [c.image for c in smp.spec.template.spec.containers] == ["nginx:2", "busybox:1.36"]
    scale = deployments.subresources["scale"].get(namespace=pns, name="dd")
    assert scale.kind == "Scale" and scale.spec.replicas == 3
    got = deployments.get(namespace=pns, name="dd")
    assert got.metadata.generation == 3
    deployments.delete(namespace=pns, name="dd")
    with pytest.raises(NotFoundError):
        deployments.get(namespace=pns, name="dd")


def test_dynamic_client_discovers_arktos_kinds(dyn: dynamic.DynamicClient) -> None:
    tenants = dyn.resources.get(api_version="v1", kind="Tenant")
    assert tenants.name == "tenants" and not tenants.namespaced
    assert "system" in [t.metadata.name for t in tenants.get().items]
    actions = dyn.resources.get(api_version="v1", kind="Action")
    assert actions.namespaced
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    assert not namespaces.namespaced
    leases = dyn.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")
    assert leases.namespaced and leases.group == "coordination.k8s.io"

