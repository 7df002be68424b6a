"""OpenAPI v2/v3 documents: what kubectl's explain, apply and field-validation detection use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from arktos.api.kinds import REGISTRY
from arktos.api.resources import Registry, ResourceType, Scope
from arktos.apiserver import openapi

V2 = openapi.openapi_v2(REGISTRY)
METHODS = ("get", "put", "post", "patch", "delete")
WRITES = ("post", "put", "patch")
ACTIONS = {"get", "list", "post", "put", "patch", "delete", "deletecollection"}


def _v3(group: str, version: str) -> dict[str, Any]:
    doc: dict[str, Any] | None = openapi.openapi_v3_group(REGISTRY, group, version)
    assert doc is not None
    return doc


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _gvk(rtype: ResourceType) -> dict[str, str]:
    return {"group": rtype.group, "kind": rtype.kind, "version": rtype.version}


@pytest.mark.parametrize(("group", "kind", "name"), [
    ("", "Pod", "io.k8s.api.core.v1.Pod"),
    ("", "Tenant", "io.k8s.api.core.v1.Tenant"),
    ("apps", "Deployment", "io.k8s.api.apps.v1.Deployment"),
    ("rbac.authorization.k8s.io", "Role", "io.k8s.api.rbac.v1.Role"),
    ("coordination.k8s.io", "Lease", "io.k8s.api.coordination.v1.Lease"),
    ("stable.example.com", "CronTab", "com.example.stable.v1.CronTab"),
])
def test_definition_names(group: str, kind: str, name: str) -> None:
    assert openapi.definition_name(group, "v1", kind) == name


def test_v2_document_basics() -> None:
    assert V2["swagger"] == "2.0" and V2["info"]["title"]
    json.dumps(V2)  # plain JSON data
    assert openapi.openapi_v2(REGISTRY) == V2  # deterministic


@pytest.mark.parametrize("rtype", list(REGISTRY), ids=lambda t: t.qualified)
def test_every_kind_and_list_is_defined_with_its_gvk(rtype: ResourceType) -> None:
    for kind in (rtype.kind, rtype.list_kind):
        name = openapi.definition_name(rtype.group, rtype.version, kind)
        schema = V2["definitions"][name]
        assert schema["type"] == "object" and schema["description"]
        assert schema["x-kubernetes-group-version-kind"] == [
            {"group": rtype.group, "kind": kind, "version": rtype.version}]
        props = schema["properties"]
        assert props["apiVersion"]["type"] == props["kind"]["type"] == "string"
        assert props["metadata"]["$ref"].startswith("#/definitions/io.k8s.apimachinery.")
    kind_props = V2["definitions"][openapi.definition_name(
        rtype.group, rtype.version, rtype.kind)]["properties"]
    assert kind_props["metadata"]["$ref"] == "#/definitions/" + openapi.OBJECT_META
    assert ("status" in kind_props) == rtype.has_status
    for field in rtype.spec_fields:
        assert kind_props[field]["type"] == "object" and kind_props[field]["description"]


def test_object_meta_has_arktos_fields() -> None:
    props = V2["definitions"][openapi.OBJECT_META]["properties"]
    assert props["tenant"]["type"] == "string" and props["tenant"]["description"]
    assert props["hashKey"]["type"] == "integer"
    for field in ("name", "namespace", "uid", "resourceVersion", "labels", "annotations",
                  "ownerReferences", "finalizers", "creationTimestamp", "generation"):
        assert props[field]["description"], field


def test_spec_less_kinds_describe_their_top_level_fields() -> None:
    cm = V2["definitions"]["io.k8s.api.core.v1.ConfigMap"]["properties"]
    assert cm["data"]["additionalProperties"] == {"type": "string"}
    role = V2["definitions"]["io.k8s.api.rbac.v1.Role"]["properties"]
    assert role["rules"]["type"] == "array"


def _expected_paths(rtype: ResourceType) -> list[str]:
    root = f"/api/{rtype.version}" if not rtype.group else \
        f"/apis/{rtype.group}/{rtype.version}"
    plural = rtype.plural
    if rtype.scope is Scope.NAMESPACE:
        bases = [f"{root}/namespaces/{{namespace}}/{plural}",
                 f"{root}/tenants/{{tenant}}/namespaces/{{namespace}}/{plural}"]
        lists = [f"{root}/{plural}", f"{root}/tenants/{{tenant}}/{plural}"]
    elif rtype.scope is Scope.TENANT:
        bases, lists = [f"{root}/{plural}", f"{root}/tenants/{{tenant}}/{plural}"], []
    else:
        bases, lists = [f"{root}/{plural}"], []
    named = ({"get", "update", "patch", "delete"} & set(rtype.verbs)) and bases
    return [*bases, *(b + "/{name}" for b in named or ()), *lists]


@pytest.mark.parametrize("rtype", list(REGISTRY), ids=lambda t: t.qualified)
def test_short_and_tenant_full_paths(rtype: ResourceType) -> None:
    for path in _expected_paths(rtype):
        item = V2["paths"][path]
        ops = {m: op for m, op in item.items() if m in METHODS}
        assert ops, path
        for op in ops.values():
            assert op["x-kubernetes-group-version-kind"] == _gvk(rtype)
        declared = {p["name"] for p in item["parameters"] if p["in"] == "path"}
        assert declared == {s.strip("{}") for s in path.split("/") if s.startswith("{")}
    collection = _expected_paths(rtype)[0]
    if "list" in rtype.verbs:
        assert V2["paths"][collection]["get"]["x-kubernetes-action"] == "list"
    if "create" in rtype.verbs:
        assert V2["paths"][collection]["post"]["x-kubernetes-action"] == "post"


def test_pod_paths_and_actions() -> None:
    item = V2["paths"]["/api/v1/tenants/{tenant}/namespaces/{namespace}/pods/{name}"]
    assert {m: item[m]["x-kubernetes-action"] for m in METHODS if m in item} == {
        "get": "get", "put": "put", "patch": "patch", "delete": "delete"}
    collection = V2["paths"]["/api/v1/tenants/{tenant}/namespaces/{namespace}/pods"]
    assert {m: collection[m]["x-kubernetes-action"] for m in METHODS if m in collection} == {
        "get": "list", "post": "post", "delete": "deletecollection"}
    status = V2["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"]
    assert sorted(m for m in status if m in METHODS) == ["get", "patch", "put"]
    all_ns = V2["paths"]["/api/v1/pods"]
    assert [m for m in all_ns if m in METHODS] == ["get"]
    assert "/api/v1/namespaces/{namespace}/pods/{name}/binding" not in V2["paths"]


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [("v2", V2)] + [(f"v3 {g}/{v}", _v3(g, v)) for g, v in REGISTRY.group_versions()]


@pytest.mark.parametrize(("name", "doc"), _documents(), ids=lambda x: x if isinstance(x, str)
                         else "")
def test_every_write_declares_field_validation(name: str, doc: dict[str, Any]) -> None:
    v3 = name.startswith("v3")
    count = 0
    for path, method, op in _operations(doc):
        assert op["x-kubernetes-action"] in ACTIONS
        assert isinstance(op["x-kubernetes-group-version-kind"], dict)  # one object, not a list
        if method not in WRITES:
            continue
        count += 1
        params = {p["name"]: p for p in op["parameters"] if p["in"] == "query"}
        for wanted in ("fieldValidation", "dryRun", "fieldManager"):
            param = params[wanted]
            schema = param["schema"] if v3 else param
            assert schema["type"] == "string" and schema["uniqueItems"] is True, (path, method)
    assert count > 0


def test_patch_consumes_patch_media_types() -> None:
    for path, method, op in _operations(V2):
        if method == "patch":
            assert op["consumes"] == list(openapi.PATCH_TYPES), path
            [body] = [p for p in op["parameters"] if p["in"] == "body"]
            assert body["schema"] == {"$ref": "#/definitions/" + openapi.PATCH}
    for _, method, op in _operations(_v3("", "v1")):
        if method == "patch":
            content = op["requestBody"]["content"]
            assert {"application/json-patch+json", "application/merge-patch+json"} <= set(content)
            # kubectl would derive strategic merge patches from these shallow schemas and warn
            assert "application/strategic-merge-patch+json" not in content


def test_kubectl_field_validation_detection_finds_every_kind_v3() -> None:
    """kubectl's QueryParamVerifierV3: the first PATCH operation whose GVK matches must list
    fieldValidation (paths are a Go map, so every one of them must)."""
    for rtype in REGISTRY:
        doc = _v3(rtype.group, rtype.version)
        method = "patch" if "patch" in rtype.verbs else "post"  # create-only review kinds
        patches = [op for _, m, op in _operations(doc)
                   if m == method and op["x-kubernetes-group-version-kind"] == _gvk(rtype)]
        assert patches, rtype.qualified
        for op in patches:
            assert any(p["name"] == "fieldValidation" and p["in"] == "query"
                       for p in op["parameters"])


def test_operation_ids_are_unique() -> None:
    for _, doc in _documents():
        ids = [op["operationId"] for _, _, op in _operations(doc)]
        assert len(ids) == len(set(ids))
    all_ids = {op["operationId"] for _, _, op in _operations(V2)}
    assert {"listCoreV1NamespacedPod", "createCoreV1NamespacedPod", "readCoreV1NamespacedPod",
            "patchCoreV1NamespacedPodStatus", "listCoreV1PodForAllNamespaces",
            "listCoreV1TenantNamespacedPod", "listCoreV1TenantPodForAllNamespaces",
            "replaceCoreV1NamespaceFinalize", "listAppsV1NamespacedDeployment",
            "listRbacAuthorizationV1TenantClusterRole"} <= all_ids


@pytest.mark.parametrize(("name", "doc"), _documents(), ids=lambda x: x if isinstance(x, str)
                         else "")
def test_every_reference_resolves(name: str, doc: dict[str, Any]) -> None:
    prefix, defs = (("#/definitions/", doc["definitions"]) if name == "v2"
                    else ("#/components/schemas/", doc["components"]["schemas"]))
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        assert ref.startswith(prefix) and ref[len(prefix):] in defs, ref


def test_v3_group_mirrors_v2() -> None:
    doc = _v3("apps", "v1")
    assert doc["openapi"].startswith("3.0")
    schemas = doc["components"]["schemas"]
    assert set(schemas) == {name for name in V2["definitions"]
                            if name.startswith(("io.k8s.api.apps.", "io.k8s.apimachinery."))}
    assert set(doc["paths"]) == {p for p in V2["paths"] if p.startswith("/apis/apps/v1/")}
    meta = schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["metadata"]
    assert meta["allOf"] == [{"$ref": "#/components/schemas/" + openapi.OBJECT_META}]
    assert schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert openapi.openapi_v3_group(REGISTRY, "apps", "v2") is None


def test_v3_root_links_every_group_version_with_a_content_hash() -> None:
    root = openapi.openapi_v3_root(REGISTRY)
    expected = {f"api/{v}" if not g else f"apis/{g}/{v}" for g, v in REGISTRY.group_versions()}
    assert set(root["paths"]) == expected
    for key, entry in root["paths"].items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{key}?hash=")
        assert len(url.split("hash=")[1]) == 128
    assert openapi.openapi_v3_root(REGISTRY) == root


def test_v3_hash_changes_with_the_document() -> None:
    base = [t for t in REGISTRY if t.group == "apps"]
    more = [*base, ResourceType("apps", "v1", "StatefulSet", "statefulsets", Scope.NAMESPACE)]

    def url(types: list[ResourceType]) -> str:
        entry = openapi.openapi_v3_root(Registry(types))["paths"]["apis/apps/v1"]
        return str(entry["serverRelativeURL"])

    assert url(list(base)) == url(base)
    assert url(more) != url(base)
