"""Discovery documents: shapes kubectl and the kubernetes Python client decode."""

from __future__ import annotations

import re
from typing import Any

import pytest
from kubernetes.client.models import (
    V1APIGroup,
    V1APIGroupList,
    V1APIResourceList,
    V1APIVersions,
    V2APIGroupDiscoveryList,
    VersionInfo,
)

from arktos.api.kinds import REGISTRY
from arktos.api.resources import ResourceType, Scope
from arktos.apiserver import discovery

NAMED_GROUPS = sorted({t.group for t in REGISTRY if t.group})


def _resources(group: str, version: str) -> dict[str, dict[str, Any]]:
    doc = discovery.api_resource_list(REGISTRY, group, version)
    assert doc is not None
    return {r["name"]: r for r in doc["resources"]}


def test_version_info_is_what_kubectl_dispatchers_parse() -> None:
    info = discovery.version_info()
    VersionInfo.from_dict(info)
    match = re.match(r"^v(\d+)\.(\d+)\.(\d+)", info["gitVersion"])
    assert match is not None
    assert (info["major"], info["minor"]) == match.group(1, 2)
    assert (int(info["major"]), int(info["minor"])) == discovery.KUBE_VERSION
    assert 27 <= int(info["minor"]) <= 33  # a kubectl installed on this machine
    assert set(info) == {"major", "minor", "gitVersion", "gitCommit", "gitTreeState",
                         "buildDate", "goVersion", "compiler", "platform"}
    assert "/" in info["platform"]


def test_api_versions() -> None:
    doc = discovery.api_versions("10.0.0.1:6443")
    parsed = V1APIVersions.from_dict(doc)
    assert parsed is not None and parsed.versions == ["v1"]
    assert doc["kind"] == "APIVersions"
    assert doc["serverAddressByClientCIDRs"] == [{"clientCIDR": "0.0.0.0/0",
                                                  "serverAddress": "10.0.0.1:6443"}]


def test_api_group_list_has_every_named_group_and_no_core() -> None:
    doc = discovery.api_group_list(REGISTRY)
    V1APIGroupList.from_dict(doc)
    assert doc["kind"] == "APIGroupList"
    assert sorted(g["name"] for g in doc["groups"]) == NAMED_GROUPS
    for group in doc["groups"]:
        assert group["preferredVersion"] in group["versions"]
        for gv in group["versions"]:
            assert gv["groupVersion"] == f"{group['name']}/{gv['version']}"


def test_api_group() -> None:
    doc = discovery.api_group(REGISTRY, "apps")
    assert doc is not None
    V1APIGroup.from_dict(doc)
    assert doc["kind"] == "APIGroup" and doc["name"] == "apps"
    assert doc["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert discovery.api_group(REGISTRY, "nope.example.com") is None
    assert discovery.api_group(REGISTRY, "") is None


@pytest.mark.parametrize("rtype", list(REGISTRY), ids=lambda t: t.qualified)
def test_every_resource_is_discoverable_with_its_scope(rtype: ResourceType) -> None:
    entry = _resources(rtype.group, rtype.version)[rtype.plural]
    assert entry["kind"] == rtype.kind
    assert entry["singularName"] == rtype.singular
    assert entry["namespaced"] is (rtype.scope is Scope.NAMESPACE)
    assert entry["tenanted"] is (rtype.scope is not Scope.CLUSTER)
    assert entry["verbs"] == list(rtype.verbs)
    assert entry.get("shortNames", []) == list(rtype.short_names)
    assert entry.get("categories", []) == list(rtype.categories)
    for sub in rtype.subresources:
        sub_entry = _resources(rtype.group, rtype.version)[f"{rtype.plural}/{sub}"]
        assert sub_entry["namespaced"] == entry["namespaced"]
        assert sub_entry["tenanted"] == entry["tenanted"]
        assert sub_entry["verbs"]


def test_resource_lists_decode_and_are_sorted() -> None:
    for group, version in REGISTRY.group_versions():
        doc = discovery.api_resource_list(REGISTRY, group, version)
        assert doc is not None
        parsed = V1APIResourceList.from_dict(doc)
        assert parsed is not None
        assert parsed.group_version == (f"{group}/{version}" if group else version)
        names = [r["name"] for r in doc["resources"]]
        assert names == sorted(names)
        assert len(names) == len(set(names))
    assert discovery.api_resource_list(REGISTRY, "", "v2") is None
    assert discovery.api_resource_list(REGISTRY, "apps", "v1beta1") is None


@pytest.mark.parametrize(("name", "verbs", "kind"), [
    ("pods/status", ["get", "patch", "update"], "Pod"),
    ("pods/binding", ["create"], "Binding"),
    ("pods/action", ["create"], "Action"),
    ("pods/log", ["get"], "Pod"),
    ("namespaces/finalize", ["update"], "Namespace"),
    ("tenants/finalize", ["update"], "Tenant"),
])
def test_core_subresource_verbs(name: str, verbs: list[str], kind: str) -> None:
    entry = _resources("", "v1")[name]
    assert (entry["verbs"], entry["kind"], entry["singularName"]) == (verbs, kind, "")
    assert "group" not in entry


def test_scale_subresource_names_its_own_group() -> None:
    entry = _resources("apps", "v1")["deployments/scale"]
    assert entry["verbs"] == ["get", "patch", "update"]
    assert (entry["group"], entry["version"], entry["kind"]) == ("autoscaling", "v1", "Scale")


def test_unknown_subresource_defaults_to_status_like_verbs() -> None:
    rtype = ResourceType("x.io", "v1", "Widget", "widgets", Scope.TENANT,
                         subresources=frozenset({"frobnicate"}))
    assert discovery.subresource_verbs("frobnicate") == ("get", "patch", "update")
    assert discovery.subresource_gvk(rtype, "frobnicate") == ("x.io", "v1", "Widget")


@pytest.mark.parametrize("api_version", ["v2", "v2beta1"])
def test_aggregated_discovery_core(api_version: str) -> None:
    doc = discovery.aggregated_discovery(REGISTRY, True, api_version)
    parsed = V2APIGroupDiscoveryList.from_dict(doc)
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == f"apidiscovery.k8s.io/{api_version}"
    assert parsed is not None and len(parsed.items) == 1
    assert doc["items"][0]["metadata"] == {}
    [v1] = doc["items"][0]["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    core = {t.plural: t for t in REGISTRY if not t.group}
    assert sorted(r["resource"] for r in v1["resources"]) == sorted(core)
    for res in v1["resources"]:
        rtype = core[res["resource"]]
        assert res["responseKind"] == {"group": "", "version": "v1", "kind": rtype.kind}
        assert res["singularResource"] == rtype.singular
        assert "tenanted" not in res  # the upstream shape exactly


def test_aggregated_discovery_scopes_tenant_scoped_kinds_as_cluster() -> None:
    docs = [discovery.aggregated_discovery(REGISTRY, core) for core in (True, False)]
    scopes = {(g["metadata"].get("name", ""), r["resource"]): r["scope"]
              for doc in docs for g in doc["items"] for v in g["versions"]
              for r in v["resources"]}
    assert len(scopes) == len(list(REGISTRY))
    for rtype in REGISTRY:
        expected = "Namespaced" if rtype.scope is Scope.NAMESPACE else "Cluster"
        assert scopes[(rtype.group, rtype.plural)] == expected


def test_aggregated_discovery_groups_and_subresources() -> None:
    doc = discovery.aggregated_discovery(REGISTRY, False)
    V2APIGroupDiscoveryList.from_dict(doc)
    assert sorted(g["metadata"]["name"] for g in doc["items"]) == NAMED_GROUPS
    apps = next(g for g in doc["items"] if g["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["shortNames"] == ["deploy"] and deploy["categories"] == ["all"]
    assert {s["subresource"]: (s["responseKind"]["kind"], s["verbs"])
            for s in deploy["subresources"]} == {
        "scale": ("Scale", ["get", "patch", "update"]),
        "status": ("Deployment", ["get", "patch", "update"])}


V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


@pytest.mark.parametrize(("accept", "expected"), [
    (f"{V2},{V2BETA1},application/json", "v2"),   # kubectl 1.30+
    (f"{V2BETA1},application/json", "v2beta1"),   # kubectl 1.27-1.29
    ("application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList", "v2"),
    ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList", None),
    ("application/json, */*", None),
    ("", None),
])
def test_negotiate_aggregated(accept: str, expected: str | None) -> None:
    assert discovery.negotiate_aggregated(accept) == expected


def test_aggregated_content_type() -> None:
    assert discovery.aggregated_content_type("v2beta1") == V2BETA1
