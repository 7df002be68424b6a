"""Strategic merge patch: kubectl-shaped patches, the kind table, directives, unknown kinds."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given

from arktos.api import strategic
from arktos.api.patch import apply_patch, merge_patch
from arktos.api.strategic import MergeBy, strategic_merge_patch
from tests.api.test_patch import JSON_OBJECTS, raises_status

# ------------------------------------------------------------------------ strategic: kubectl

def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "finalizers": ["a", "b"],
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1.24",
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "ports": [{"containerPort": 80, "protocol": "TCP"}],
                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                    {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "1d"]},
                ], "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "a", "operator": "Exists"}]},
            },
        },
        "status": {"replicas": 2, "conditions": [
            {"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}]},
    }


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return containers


def test_kubectl_apply_changed_image() -> None:
    live = _deployment()
    patch = {
        "metadata": {"annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"new": true}'}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"image": "nginx:1.25", "name": "web"}]}}}}
    result = strategic_merge_patch(live, patch, "Deployment")
    expected = _deployment()
    _containers(expected)[0]["image"] = "nginx:1.25"
    expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = \
        '{"new": true}'
    assert result == expected
    assert live == _deployment()


def test_kubectl_apply_removes_env_and_container_and_switches_strategy() -> None:
    patch = {"spec": {
        "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
        "template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "A"}], "name": "web",
                 "env": [{"$patch": "delete", "name": "B"}]},
                {"$patch": "delete", "name": "sidecar"}]}}}}
    result = strategic_merge_patch(_deployment(), patch, "Deployment")
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert [c["name"] for c in _containers(result)] == ["web"]
    assert _containers(result)[0]["env"] == [{"name": "A", "value": "1"}]
    assert _containers(result)[0]["image"] == "nginx:1.24"


def test_kubectl_apply_adds_container_in_set_order() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "init"}, {"name": "web"}, {"name": "sidecar"}],
        "containers": [{"name": "init", "image": "alpine"}]}}}}
    result = strategic_merge_patch(_deployment(), patch, "Deployment")
    assert [c["name"] for c in _containers(result)] == ["init", "web", "sidecar"]


def test_set_element_order_keeps_server_only_items_in_place() -> None:
    live = _deployment()
    _containers(live).insert(1, {"name": "injected", "image": "proxy"})
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}],
        "containers": [{"name": "web", "image": "nginx:2"}]}}}}
    result = strategic_merge_patch(live, patch, "Deployment")
    # As kube-apiserver's mergeSortedSlice: a server-only item goes before a listed item
    # that came after it in the live list.
    assert [c["name"] for c in _containers(result)] == ["injected", "sidecar", "web"]
    patch["spec"]["template"]["spec"]["$setElementOrder/containers"] = [
        {"name": "web"}, {"name": "sidecar"}]
    result = strategic_merge_patch(live, patch, "Deployment")
    assert [c["name"] for c in _containers(result)] == ["web", "injected", "sidecar"]


def test_set_element_order_without_the_list_reorders_live_items() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]}}}}
    result = strategic_merge_patch(_deployment(), patch, "Deployment")
    assert [c["name"] for c in _containers(result)] == ["sidecar", "web"]
    assert "$setElementOrder/containers" not in result["spec"]["template"]["spec"]


def test_kubectl_patch_one_container_image() -> None:
    patch = orjson.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "bb:2"}]}}}})
    result = apply_patch(_deployment(), patch, "application/strategic-merge-patch+json",
                         "Deployment")
    assert [(c["name"], c["image"]) for c in _containers(result)] == [
        ("web", "nginx:1.24"), ("sidecar", "bb:2")]
    assert _containers(result)[1]["args"] == ["sleep", "1d"]


def test_replicaset_and_pod_share_the_pod_spec_rules() -> None:
    rs = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "y"}]}}}}
    assert len(_containers(strategic_merge_patch(rs, patch, "ReplicaSet"))) == 2
    pod = {"spec": {"containers": [{"name": "a", "image": "x"}]}}
    result = strategic_merge_patch(pod, {"spec": {"containers": [{"name": "a", "image": "z"}]}},
                                   "Pod")
    assert result == {"spec": {"containers": [{"name": "a", "image": "z"}]}}


# ---------------------------------------------------------------------- strategic: the table

def _pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": spec}


@pytest.mark.parametrize(("field", "live", "patch", "expected"), [
    ("initContainers", [{"name": "i", "image": "a"}], [{"name": "j", "image": "b"}],
     [{"name": "i", "image": "a"}, {"name": "j", "image": "b"}]),
    ("ephemeralContainers", [{"name": "d", "image": "a"}], [{"name": "d", "image": "b"}],
     [{"name": "d", "image": "b"}]),
    ("volumes", [{"name": "v", "emptyDir": {}}], [{"name": "w", "secret": {"secretName": "s"}}],
     [{"name": "v", "emptyDir": {}}, {"name": "w", "secret": {"secretName": "s"}}]),
    ("imagePullSecrets", [{"name": "r1"}], [{"name": "r2"}], [{"name": "r1"}, {"name": "r2"}]),
    ("hostAliases", [{"ip": "1.1.1.1", "hostnames": ["a"]}],
     [{"ip": "1.1.1.1", "hostnames": ["b"]}], [{"ip": "1.1.1.1", "hostnames": ["b"]}]),
    ("tolerations", [{"key": "a"}], [{"key": "b"}], [{"key": "b"}]),
    ("readinessGates", [{"conditionType": "a"}], [{"conditionType": "b"}],
     [{"conditionType": "b"}]),
])
def test_pod_spec_lists(field: str, live: Any, patch: Any, expected: Any) -> None:
    result = strategic_merge_patch(_pod(**{field: live}), {"spec": {field: patch}}, "Pod")
    assert result["spec"][field] == expected


@pytest.mark.parametrize(("field", "live", "patch", "expected"), [
    ("env", [{"name": "A", "value": "1"}], [{"name": "A", "value": "2"}, {"name": "B"}],
     [{"name": "A", "value": "2"}, {"name": "B"}]),
    ("ports", [{"containerPort": 80, "name": "http"}], [{"containerPort": 80, "name": "web"},
                                                        {"containerPort": 443}],
     [{"containerPort": 80, "name": "web"}, {"containerPort": 443}]),
    ("volumeMounts", [{"name": "a", "mountPath": "/a"}], [{"name": "b", "mountPath": "/a"}],
     [{"name": "b", "mountPath": "/a"}]),
    ("envFrom", [{"configMapRef": {"name": "a"}}], [{"secretRef": {"name": "b"}}],
     [{"secretRef": {"name": "b"}}]),
    ("args", ["a", "b"], ["c"], ["c"]),
])
def test_container_lists(field: str, live: Any, patch: Any, expected: Any) -> None:
    for kind, wrap in (("Pod", lambda s: {"spec": s}),
                       ("Deployment", lambda s: {"spec": {"template": {"spec": s}}})):
        target = wrap({"initContainers": [{"name": "c", field: live}]})
        result = strategic_merge_patch(
            target, wrap({"initContainers": [{"name": "c", field: patch}]}), kind)
        assert result == wrap({"initContainers": [{"name": "c", field: expected}]})


def test_status_conditions_merge_by_type() -> None:
    live = {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "False"}, {"type": "Scheduled", "status": "True"}]}}
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"},
                                       {"type": "Initialized", "status": "True"}]}}
    for kind in ("Pod", "Node", "Deployment", "ReplicaSet", "Namespace"):
        assert strategic_merge_patch(live, patch, kind)["status"]["conditions"] == [
            {"type": "Ready", "status": "True"}, {"type": "Scheduled", "status": "True"},
            {"type": "Initialized", "status": "True"}]


def test_node_addresses_merge_by_type() -> None:
    live = {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"},
                                     {"type": "Hostname", "address": "n1"}]}}
    patch = {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}}
    assert strategic_merge_patch(live, patch, "Node")["status"]["addresses"] == [
        {"type": "InternalIP", "address": "10.0.0.2"}, {"type": "Hostname", "address": "n1"}]


def test_service_ports_merge_by_port() -> None:
    live = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}
    assert strategic_merge_patch(live, patch, "Service")["spec"]["ports"] == [
        {"port": 80, "targetPort": 9090}, {"port": 443}]


def test_endpoints_subsets_are_atomic() -> None:
    live = {"subsets": [{"addresses": [{"ip": "1.1.1.1"}]}]}
    patch = {"subsets": [{"addresses": [{"ip": "2.2.2.2"}], "$patch": "merge"}]}
    assert strategic_merge_patch(live, patch, "Endpoints") == {
        "subsets": [{"addresses": [{"ip": "2.2.2.2"}]}]}


def test_owner_references_merge_by_uid_for_every_table_kind() -> None:
    live = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"},
                                              {"uid": "1", "controller": True}]}}
    for kind in ("ConfigMap", "Pod", "ReplicaSet", "Tenant"):
        assert strategic_merge_patch(live, patch, kind)["metadata"]["ownerReferences"] == [
            {"uid": "1", "name": "a", "controller": True}, {"uid": "2", "name": "b"}]


def test_finalizers_merge_as_a_set() -> None:
    live = {"metadata": {"finalizers": ["a", "b"]}}
    merged = strategic_merge_patch(live, {"metadata": {"finalizers": ["b", "c", "c"]}}, "Pod")
    assert merged["metadata"]["finalizers"] == ["a", "b", "c"]
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zz"],
                          "$setElementOrder/finalizers": ["c", "b"], "finalizers": ["c"]}}
    assert strategic_merge_patch(live, patch, "Pod") == {"metadata": {"finalizers": ["c", "b"]}}
    replaced = {"metadata": {"finalizers": [{"$patch": "replace"}, "x"]}}
    assert strategic_merge_patch(live, replaced, "Pod")["metadata"]["finalizers"] == ["x"]


def test_pod_template_metadata_rules() -> None:
    live = {"spec": {"template": {"metadata": {"finalizers": ["a"]}}}}
    patch = {"spec": {"template": {"metadata": {"finalizers": ["b"]}}}}
    assert strategic_merge_patch(live, patch, "Deployment")["spec"]["template"]["metadata"] \
        == {"finalizers": ["a", "b"]}


def test_table_is_extensible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(strategic.KIND_RULES, "Widget", {"spec.parts": MergeBy("id")})
    live = {"spec": {"parts": [{"id": 1, "n": "a"}]}, "metadata": {"finalizers": ["x"]}}
    patch = {"spec": {"parts": [{"id": 2}]}, "metadata": {"finalizers": ["y"]}}
    assert strategic_merge_patch(live, patch, "Widget") == {
        "spec": {"parts": [{"id": 1, "n": "a"}, {"id": 2}]},
        "metadata": {"finalizers": ["x", "y"]}}


# ------------------------------------------------------------------- strategic: directives

def test_patch_replace_in_a_map() -> None:
    live = {"spec": {"selector": {"a": "1", "b": "2"}, "x": 1}}
    patch = {"spec": {"selector": {"$patch": "replace", "c": "3", "n": None}}}
    assert strategic_merge_patch(live, patch, "Service") == {
        "spec": {"selector": {"c": "3"}, "x": 1}}


def test_patch_delete_in_a_map_leaves_it_empty() -> None:
    live = {"spec": {"selector": {"a": "1"}, "x": 1}}
    assert strategic_merge_patch(live, {"spec": {"selector": {"$patch": "delete"}}},
                                 "Service") == {"spec": {"selector": {}, "x": 1}}


def test_patch_merge_is_the_default() -> None:
    live = {"spec": {"selector": {"a": "1"}}}
    patch = {"spec": {"$patch": "merge", "selector": {"b": "2"}}}
    assert strategic_merge_patch(live, patch, "Service") == {
        "spec": {"selector": {"a": "1", "b": "2"}}}


def test_patch_replace_list_marker() -> None:
    live = _pod(containers=[{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
    patch = {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "3"}]}}
    assert strategic_merge_patch(live, patch, "Pod")["spec"]["containers"] == [
        {"name": "c", "image": "3"}]


def test_patch_replace_on_one_list_item() -> None:
    live = _pod(containers=[{"name": "a", "image": "1", "args": ["x"]}])
    patch = {"spec": {"containers": [{"name": "a", "image": "2", "$patch": "replace"}]}}
    assert strategic_merge_patch(live, patch, "Pod")["spec"]["containers"] == [
        {"name": "a", "image": "2"}]


def test_patch_merge_list_marker_is_a_no_op() -> None:
    live = _pod(containers=[{"name": "a", "image": "1"}])
    patch = {"spec": {"containers": [{"$patch": "merge"}, {"name": "b", "image": "2"}]}}
    assert [c["name"] for c in
            strategic_merge_patch(live, patch, "Pod")["spec"]["containers"]] == ["a", "b"]


def test_nulls_delete_and_unmatched_nulls_are_dropped() -> None:
    live = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    patch = {"metadata": {"labels": {"a": None, "zz": None}, "annotations": {"x": None, "y": "1"}},
             "spec": {"containers": [{"name": "n", "env": [{"name": "E", "value": None}]}]}}
    assert strategic_merge_patch(live, patch, "Pod") == {
        "metadata": {"labels": {"b": "2"}, "annotations": {"y": "1"}},
        "spec": {"containers": [{"name": "n", "env": [{"name": "E"}]}]}}


def test_new_values_are_cleaned_of_directives() -> None:
    patch = {"spec": {"containers": [
        {"name": "a", "$setElementOrder/env": [{"name": "X"}],
         "env": [{"name": "X", "value": "1"}, {"name": "Y", "$patch": "delete"}]}],
        "tolerations": [{"$patch": "replace"}, {"key": "k", "$retainKeys": ["key"]}]}}
    assert strategic_merge_patch({}, patch, "Pod") == {"spec": {
        "containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}],
        "tolerations": [{"key": "k"}]}}


def test_retain_keys_in_list_items() -> None:
    live = _pod(volumes=[{"name": "v", "emptyDir": {}}])
    patch = {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "secret"],
                                   "secret": {"secretName": "s"}}]}}
    assert strategic_merge_patch(live, patch, "Pod")["spec"]["volumes"] == [
        {"name": "v", "secret": {"secretName": "s"}}]


@pytest.mark.parametrize(("patch", "fragment"), [
    ({"spec": {"$patch": "frob"}}, 'unknown directive "$patch: frob"'),
    ({"spec": {"containers": [{"image": "x"}]}}, 'does not contain the merge key "name"'),
    ({"spec": {"containers": [{"$patch": "delete"}]}}, 'does not contain the merge key "name"'),
    ({"spec": {"containers": ["x"]}}, 'merged on "name" must be objects'),
    ({"spec": {"containers": [{"name": "a", "$patch": "frob"}]}}, "unknown directive"),
    ({"spec": {"$retainKeys": "x"}}, "must be a list of strings"),
    ({"spec": {"$retainKeys": ["a"], "b": 1}}, "does not list the patched keys b"),
    ({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "must be a list"),
    ({"metadata": {"$setElementOrder/finalizers": "a"}}, "must be a list"),
])
def test_malformed_strategic_patch(patch: dict[str, Any], fragment: str) -> None:
    message = raises_status(400, strategic_merge_patch, _pod(containers=[{"name": "a"}]), patch, "Pod")
    assert fragment in message


def test_strategic_patch_must_be_an_object() -> None:
    raises_status(400, strategic_merge_patch, {}, [], "Pod")


def test_strategic_patch_shares_nothing_with_inputs() -> None:
    live = _deployment()
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "new", "image": "x", "args": ["a"]}], "tolerations": [{"key": "t"}]}}}}
    before = copy.deepcopy(patch)
    result = strategic_merge_patch(live, patch, "Deployment")
    _containers(result)[2]["args"].append("b")
    _containers(result)[0]["env"].append({"name": "Z"})
    result["spec"]["template"]["spec"]["tolerations"][0]["key"] = "changed"
    assert patch == before and live == _deployment()


# ------------------------------------------------------------------ strategic: unknown kinds

def test_unknown_kind_is_merge_patch_without_directives() -> None:
    live = {"spec": {"replicas": 1, "list": [{"name": "a", "v": 1}]}, "metadata": {"x": 1}}
    patch = {"spec": {"replicas": 3, "list": [{"name": "b"}, {"$patch": "replace"},
                                             {"name": "c", "$patch": "delete"}],
                      "$retainKeys": ["replicas"], "$setElementOrder/list": [{"name": "b"}]},
             "metadata": {"$patch": "delete", "x": None}}
    assert strategic_merge_patch(live, patch, "Scale") == {
        "spec": {"replicas": 3, "list": [{"name": "b"}]}, "metadata": {}}


@given(JSON_OBJECTS, JSON_OBJECTS)
def test_unknown_kind_equals_merge_patch_for_plain_patches(target: dict[str, Any],
                                                           patch: dict[str, Any]) -> None:
    plain = strategic.strip_directives(patch)
    assert strategic_merge_patch(target, plain, "Widget") == merge_patch(target, plain)


@given(JSON_OBJECTS)
def test_strategic_empty_patch_is_identity(doc: dict[str, Any]) -> None:
    for kind in ("Pod", "Deployment", "Widget"):
        assert strategic_merge_patch(doc, {}, kind) == doc
