"""The namespace controller: a deleted namespace is emptied, then finalized and removed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from arktos.api.kinds import REGISTRY
from arktos.api.resources import Scope
from arktos.client.resources import ResourceClient, resource_type
from arktos.client.rest import ApiClient, ApiError
from arktos.client.store import Obj
from arktos.controllers.namespace import NamespaceController
from arktos.controllers.namespace_content import ContentDeleter
from arktos.controllers.namespace_plan import (
    FINALIZER_WAIT,
    MAX_WAIT,
    RETRY_WAIT,
    deletion_order,
    wait_seconds,
)
from tests.controllers.conftest import running
from tests.waiting import eventually

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _obj(**md: object) -> Obj:
    return {"metadata": {"name": "x", **md}}


# --- pure decisions ---------------------------------------------------------------------------

def test_deletion_order_puts_namespaces_first_and_keeps_scope() -> None:
    tenant_kinds = deletion_order(REGISTRY, Scope.TENANT)
    assert tenant_kinds[0].kind == "Namespace"
    assert {t.kind for t in tenant_kinds} == {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    namespaced = deletion_order(REGISTRY, Scope.NAMESPACE)
    assert {"Pod", "ConfigMap", "Role", "Deployment", "Lease"} <= {t.kind for t in namespaced}
    assert all(t.scope is Scope.NAMESPACE for t in namespaced)


def test_wait_seconds_by_what_remains() -> None:
    assert wait_seconds([], NOW) is None
    assert wait_seconds([_obj()], NOW) == RETRY_WAIT
    held = _obj(deletionTimestamp=_stamp(NOW), finalizers=["x/y"])
    assert wait_seconds([held], NOW) == FINALIZER_WAIT
    ns = {**_obj(deletionTimestamp=_stamp(NOW)), "spec": {"finalizers": ["kubernetes"]}}
    assert wait_seconds([ns], NOW) == FINALIZER_WAIT
    pod = _obj(deletionTimestamp=_stamp(NOW - timedelta(seconds=10)),
               deletionGracePeriodSeconds=30)
    assert wait_seconds([pod, _obj()], NOW) == 20
    late = _obj(deletionTimestamp=_stamp(NOW - timedelta(seconds=60)),
                deletionGracePeriodSeconds=30)
    assert wait_seconds([late], NOW) == RETRY_WAIT
    long = _obj(deletionTimestamp=_stamp(NOW), deletionGracePeriodSeconds=3600)
    assert wait_seconds([long], NOW) == MAX_WAIT


# --- against the API server -------------------------------------------------------------------

def configmap(name: str, **md: object) -> Obj:
    return {"metadata": {"name": name, **md}, "data": {"k": "v"}}


def pod(name: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}}


def role(name: str) -> Obj:
    return {"metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}


async def make_tenant(api: ApiClient, name: str, namespaces: tuple[str, ...] = ()) -> None:
    await ResourceClient(api, "tenants").create({"metadata": {"name": name}})
    for ns in namespaces:
        await ResourceClient(api, "namespaces").create({"metadata": {"name": ns}}, tenant=name)


async def names(api: ApiClient, resource: str, tenant: str, namespace: str = "") -> list[str]:
    items = (await ResourceClient(api, resource).list(tenant=tenant, namespace=namespace)).items
    return sorted(o["metadata"]["name"] for o in items)


async def gone(api: ApiClient, resource: str, name: str, *, tenant: str | None = None,
               namespace: str = "") -> bool:
    try:
        await ResourceClient(api, resource).get(name, tenant=tenant, namespace=namespace)
    except ApiError as exc:
        if exc.not_found:
            return True
        raise
    return False


async def fill(api: ApiClient, tenant: str, ns: str) -> None:
    """A few objects of several kinds in one namespace."""
    for i in range(3):
        await ResourceClient(api, "configmaps").create(configmap(f"cm{i}"), tenant=tenant,
                                                       namespace=ns)
    await ResourceClient(api, "pods").create(pod("p"), tenant=tenant, namespace=ns)
    await ResourceClient(api, "secrets").create({"metadata": {"name": "s"}}, tenant=tenant,
                                                namespace=ns)
    await ResourceClient(api, "roles.rbac.authorization.k8s.io").create(
        role("r"), tenant=tenant, namespace=ns)


async def test_deleted_namespace_is_emptied_then_removed(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    tenant = unique("nst")
    await make_tenant(api, tenant, ("doomed", "kept"))
    await fill(api, tenant, "doomed")
    await ResourceClient(api, "configmaps").create(configmap("stays"), tenant=tenant,
                                                   namespace="kept")
    async with running(api, [NamespaceController]):
        await ResourceClient(api, "namespaces").delete("doomed", tenant=tenant)

        async def namespace_gone() -> bool:
            return await gone(api, "namespaces", "doomed", tenant=tenant)

        await eventually(namespace_gone)
    for resource in ("configmaps", "pods", "secrets", "roles.rbac.authorization.k8s.io"):
        assert await names(api, resource, tenant, "doomed") == []
    assert await names(api, "configmaps", tenant, "kept") == ["stays"]
    assert await names(api, "namespaces", tenant) == ["kept"]


async def test_namespace_waits_for_content_held_by_a_finalizer(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    tenant = unique("nsw")
    await make_tenant(api, tenant, ("slow",))
    cms = ResourceClient(api, "configmaps")
    await cms.create(configmap("held", finalizers=["test.arktos.io/hold"]), tenant=tenant,
                     namespace="slow")
    async with running(api, [NamespaceController]):
        await ResourceClient(api, "namespaces").delete("slow", tenant=tenant)

        async def held_is_deleting() -> bool:
            held = await cms.get("held", tenant=tenant, namespace="slow")
            return bool(held["metadata"].get("deletionTimestamp"))

        await eventually(held_is_deleting)
        ns = await ResourceClient(api, "namespaces").get("slow", tenant=tenant)
        assert ns["status"]["phase"] == "Terminating"
        await cms.patch("held", {"metadata": {"finalizers": None}}, tenant=tenant,
                        namespace="slow")

        async def namespace_gone() -> bool:
            return await gone(api, "namespaces", "slow", tenant=tenant)

        await eventually(namespace_gone, timeout=15)


async def test_kinds_without_deletecollection_are_deleted_one_by_one(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    tenant = unique("nso")
    await make_tenant(api, tenant, ("one",))
    await fill(api, tenant, "one")
    plain = resource_type("configmaps")
    no_collection = dataclasses.replace(
        plain, verbs=tuple(v for v in plain.verbs if v != "deletecollection"))
    left = await ContentDeleter(api).delete_all([no_collection], tenant, "one")
    assert left == []
    assert await names(api, "configmaps", tenant, "one") == []
    assert await names(api, "secrets", tenant, "one") == ["s"]
