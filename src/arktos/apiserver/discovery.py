"""Discovery documents: `/version`, `/api`, `/apis`, `/apis/{g}`, `/api/v1`, `/apis/{g}/{v}`.

Pure builders over a `Registry`: no I/O, deterministic, safe to compute once and cache.
Besides the legacy documents, `aggregated_discovery` builds the `apidiscovery.k8s.io`
`APIGroupDiscoveryList` that kubectl 1.27+ asks for first.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arktos import __version__
from arktos.api.resources import Registry, ResourceType, Scope

KUBE_VERSION = (1, 31)
"""The Kubernetes API level served; kubectl dispatchers pick a client from it."""
GIT_VERSION = f"v{KUBE_VERSION[0]}.{KUBE_VERSION[1]}.0+arktos"
"""`v1.31.0+arktos`: semver with build metadata, parsed by kubectl's `^v(\\d+\\.\\d+\\.\\d+)`."""
BUILD_DATE = "2026-01-01T00:00:00Z"
DISCOVERY_GROUP = "apidiscovery.k8s.io"

Doc = dict[str, Any]


@dataclass(frozen=True)
class Subresource:
    """What a subresource accepts and returns; `None`/`""` fields mean "same as the parent"."""

    verbs: tuple[str, ...]
    kind: str = ""
    group: str | None = None
    version: str | None = None


SUBRESOURCES: Mapping[str, Subresource] = {
    "status": Subresource(("get", "patch", "update")),
    "scale": Subresource(("get", "patch", "update"), "Scale", "autoscaling", "v1"),
    "finalize": Subresource(("update",)),
    "binding": Subresource(("create",), "Binding"),
    "action": Subresource(("create",), "Action"),
    "log": Subresource(("get",)),
    "eviction": Subresource(("create",), "Eviction", "policy", "v1"),
    "exec": Subresource(("create", "get"), "PodExecOptions"),
    "attach": Subresource(("create", "get"), "PodAttachOptions"),
    "portforward": Subresource(("create", "get"), "PodPortForwardOptions"),
    "token": Subresource(("create",), "TokenRequest", "authentication.k8s.io", "v1"),
}
"""Verbs and response kind per subresource name; unknown names default to get/patch/update."""
_DEFAULT_SUBRESOURCE = Subresource(("get", "patch", "update"))


def subresource_gvk(rtype: ResourceType, name: str) -> tuple[str, str, str]:
    """(group, version, kind) that `{resource}/{name}` accepts and returns."""
    sub = SUBRESOURCES.get(name, _DEFAULT_SUBRESOURCE)
    group = rtype.group if sub.group is None else sub.group
    version = rtype.version if sub.version is None else sub.version
    return group, version, sub.kind or rtype.kind


def subresource_verbs(name: str) -> tuple[str, ...]:
    return SUBRESOURCES.get(name, _DEFAULT_SUBRESOURCE).verbs


def version_info() -> Doc:
    """GET /version: a `version.Info`; gitVersion is `v1.31.0+arktos`."""
    return {
        "major": str(KUBE_VERSION[0]),
        "minor": str(KUBE_VERSION[1]),
        "gitVersion": GIT_VERSION,
        "gitCommit": f"arktos-py-{__version__}",
        "gitTreeState": "clean",
        "buildDate": BUILD_DATE,
        "goVersion": f"{platform.python_implementation()} {platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": _platform(),
    }


def _platform() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine or "unknown")
    return f"{platform.system().lower() or 'unknown'}/{arch}"


def api_versions(server_address: str) -> Doc:
    """GET /api: the legacy core group's `APIVersions`."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": server_address}],
    }


def _group_versions(registry: Registry) -> dict[str, list[str]]:
    """Named groups (core excluded) to their versions, preferred (first registered) first."""
    groups: dict[str, list[str]] = {}
    for group, version in registry.group_versions():
        if group:
            groups.setdefault(group, []).append(version)
    return groups


def _group_doc(group: str, versions: list[str]) -> Doc:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> Doc:
    """GET /apis: every named group with its versions and preferred version."""
    groups = [_group_doc(g, vs) for g, vs in _group_versions(registry).items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> Doc | None:
    """GET /apis/{group}; None when the group is not served."""
    versions = _group_versions(registry).get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def _resource_entry(rtype: ResourceType) -> Doc:
    entry: Doc = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "tenanted": rtype.tenanted,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    return entry


def _subresource_entry(rtype: ResourceType, name: str) -> Doc:
    group, version, kind = subresource_gvk(rtype, name)
    entry: Doc = {
        "name": f"{rtype.plural}/{name}",
        "singularName": "",
        "namespaced": rtype.namespaced,
        "tenanted": rtype.tenanted,
        "kind": kind,
        "verbs": list(subresource_verbs(name)),
    }
    if (group, version) != (rtype.group, rtype.version):
        entry["group"], entry["version"] = group, version
    return entry


def api_resource_list(registry: Registry, group: str, version: str) -> Doc | None:
    """GET /api/v1 or /apis/{g}/{v}: an `APIResourceList` (resources and subresources,
    sorted by name, each with Arktos' `tenanted`); None when the group version is not served."""
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources = [_resource_entry(t) for t in types]
    resources += [_subresource_entry(t, s) for t in types for s in t.subresources]
    resources.sort(key=lambda r: str(r["name"]))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _gvk(group: str, version: str, kind: str) -> Doc:
    return {"group": group, "version": version, "kind": kind}


def _discovery_resource(rtype: ResourceType) -> Doc:
    """One `APIResourceDiscovery`; tenant-scoped kinds are `Cluster` (no namespace in paths)."""
    doc: Doc = {
        "resource": rtype.plural,
        "responseKind": _gvk(rtype.group, rtype.version, rtype.kind),
        "scope": "Namespaced" if rtype.scope is Scope.NAMESPACE else "Cluster",
        "singularResource": rtype.singular,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        doc["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        doc["categories"] = list(rtype.categories)
    if rtype.subresources:
        doc["subresources"] = [
            {"subresource": s, "responseKind": _gvk(*subresource_gvk(rtype, s)),
             "verbs": list(subresource_verbs(s))}
            for s in sorted(rtype.subresources)]
    return doc


def _discovery_group(registry: Registry, group: str, versions: list[str]) -> Doc:
    return {
        "metadata": {"name": group} if group else {},
        "versions": [
            {"version": v,
             "resources": sorted((_discovery_resource(t) for t in
                                  registry.in_group_version(group, v)),
                                 key=lambda r: str(r["resource"])),
             "freshness": "Current"}
            for v in versions],
    }


AGGREGATED_VERSIONS = ("v2", "v2beta1")


def negotiate_aggregated(accept: str) -> str | None:
    """The aggregated-discovery version an Accept header asks for, in its order of preference:
    `v2` (kubectl 1.30+), `v2beta1` (kubectl 1.27-1.29), or None for the legacy documents."""
    for media in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in media.split(";")[1:])
        if params.get("g") == DISCOVERY_GROUP and params.get("as") == "APIGroupDiscoveryList" \
                and params.get("v") in AGGREGATED_VERSIONS:
            return params["v"]
    return None


def aggregated_content_type(api_version: str) -> str:
    """The Content-Type clients require to recognize an aggregated discovery response."""
    return f"application/json;g={DISCOVERY_GROUP};v={api_version};as=APIGroupDiscoveryList"


def aggregated_discovery(registry: Registry, core: bool, api_version: str = "v2") -> Doc:
    """`APIGroupDiscoveryList` for GET /api (core=True: the legacy group only) or GET /apis
    (core=False: every named group). `api_version` is `v2` or `v2beta1` (kubectl 1.27/1.28):
    the shapes are identical, only `apiVersion` differs."""
    if core:
        groups = {"": [v for g, v in registry.group_versions() if not g]}
    else:
        groups = _group_versions(registry)
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"{DISCOVERY_GROUP}/{api_version}",
        "metadata": {},
        "items": [_discovery_group(registry, g, vs) for g, vs in groups.items() if vs],
    }
