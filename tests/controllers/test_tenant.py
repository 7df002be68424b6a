"""The tenant controller: default objects of every tenant, the system tenant, and deletion of a
tenant with everything in it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from arktos.client.events import EventRecorder
from arktos.client.informer import InformerFactory
from arktos.client.resources import ResourceClient, resource_type
from arktos.client.rest import ApiClient
from arktos.controllers.base import Context, Controller
from arktos.controllers.namespace import NamespaceController
from arktos.controllers.settings import Settings
from arktos.controllers.tenant import TenantController, tenant_key
from arktos.controllers.tenant_defaults import DEFAULT_KINDS, missing_defaults
from tests.controllers.conftest import running
from tests.controllers.test_namespace import configmap, fill, gone, make_tenant, names
from tests.waiting import eventually

ROLES = "clusterroles.rbac.authorization.k8s.io"
BINDINGS = "clusterrolebindings.rbac.authorization.k8s.io"
NAMESPACED = ("configmaps", "pods", "secrets", "roles.rbac.authorization.k8s.io", "events")


# --- pure decisions ---------------------------------------------------------------------------

def test_missing_defaults_of_a_new_tenant() -> None:
    wanted = missing_defaults("acme", lambda resource, name: False)
    assert [(r, o["metadata"]["name"]) for r, o in wanted] == [
        ("namespaces", "default"), ("namespaces", "kube-system"), ("namespaces", "kube-public"),
        (ROLES, "admin-role"), (ROLES, "admin"), (ROLES, "edit"), (ROLES, "view"),
        (BINDINGS, "admin-role-binding")]
    assert all(o["metadata"]["tenant"] == "acme" for _, o in wanted)
    assert all(resource_type(r).kind == o["kind"] for r, o in wanted)
    binding = wanted[-1][1]
    assert binding["subjects"] == [{"kind": "User", "name": "admin",
                                    "apiGroup": "rbac.authorization.k8s.io"}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": "admin-role"}


def test_missing_defaults_skips_existing_objects() -> None:
    present = {("namespaces", "default"), (ROLES, "admin-role")}
    wanted = missing_defaults("acme", lambda r, n: (r, n) in present)
    assert [o["metadata"]["name"] for _, o in wanted] == [
        "kube-system", "kube-public", "admin", "edit", "view", "admin-role-binding"]
    assert missing_defaults("acme", lambda r, n: True) == []
    assert len(DEFAULT_KINDS) == 3


# --- against the API server -------------------------------------------------------------------

async def defaults_of(api: ApiClient, tenant: str) -> tuple[list[str], list[str], list[str]]:
    return (await names(api, "namespaces", tenant), await names(api, ROLES, tenant),
            await names(api, BINDINGS, tenant))


async def wait_for_defaults(api: ApiClient, tenant: str) -> None:
    async def has_defaults() -> bool:
        ns, roles, bindings = await defaults_of(api, tenant)
        return ({"default", "kube-system", "kube-public"} <= set(ns)
                and "admin-role" in roles and "admin-role-binding" in bindings)

    await eventually(has_defaults)


async def test_new_tenant_gets_namespaces_and_admin_role(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    tenant = unique("acme")
    async with running(api, [TenantController]):
        await make_tenant(api, tenant)
        await wait_for_defaults(api, tenant)
        role = await ResourceClient(api, ROLES).get("admin-role", tenant=tenant)
        # Arktos' admin-role also granted nonResourceURLs "*"; non-resource URLs are the
        # system tenant's only here, so the tenant's root role covers its resources.
        assert role["rules"] == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        binding = await ResourceClient(api, BINDINGS).get("admin-role-binding", tenant=tenant)
        assert binding["subjects"][0]["name"] == "admin"
        assert binding["roleRef"]["name"] == "admin-role"
        await ResourceClient(api, ROLES).delete("admin-role", tenant=tenant)

        async def recreated() -> bool:
            return "admin-role" in await names(api, ROLES, tenant)

        await eventually(recreated)
    events = (await ResourceClient(api, "events").list(tenant="system",
                                                       namespace="default")).items
    assert any(e["reason"] == "DefaultsCreated" and e["involvedObject"]["name"] == tenant
               for e in events)


async def test_system_tenant_defaults_are_created_idempotently(api: ApiClient) -> None:
    async with running(api, [TenantController]):
        await wait_for_defaults(api, "system")
    before = await ResourceClient(api, ROLES).get("admin-role", tenant="system")
    system = await ResourceClient(api, "tenants").get("system")
    async with running(api, [TenantController]) as manager:
        await eventually(lambda: _drained(manager.controllers))
        await asyncio.sleep(0.5)
    after = await ResourceClient(api, ROLES).get("admin-role", tenant="system")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    again = await ResourceClient(api, "tenants").get("system")
    assert again["metadata"]["uid"] == system["metadata"]["uid"]
    assert "kube-node-lease" in await names(api, "namespaces", "system")


async def test_missing_system_tenant_is_created_harmlessly(api: ApiClient) -> None:
    """With the system tenant absent from its informer, the controller creates it; the
    server already has it (it cannot be deleted), so this must change nothing."""
    ctx = Context(api, InformerFactory(api), EventRecorder(api, "test"), Settings())
    controller = TenantController(ctx)
    system = await ResourceClient(api, "tenants").get("system")
    assert len(controller.queue) == 1
    assert await controller.reconcile(tenant_key("system")) is None
    again = await ResourceClient(api, "tenants").get("system")
    assert again["metadata"]["resourceVersion"] == system["metadata"]["resourceVersion"]


async def _drained(controllers: list[Controller]) -> bool:
    """The controllers have started and have nothing queued."""
    return bool(controllers) and all(len(c.queue) == 0 for c in controllers)


async def test_deleted_tenant_is_emptied_then_removed(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    doomed, other = unique("doomed"), unique("other")
    async with running(api, [TenantController, NamespaceController]):
        for tenant in (doomed, other):
            await make_tenant(api, tenant)
            await wait_for_defaults(api, tenant)
            await ResourceClient(api, "namespaces").create({"metadata": {"name": "apps"}},
                                                           tenant=tenant)
            await fill(api, tenant, "apps")
            await ResourceClient(api, "configmaps").create(configmap("d"), tenant=tenant,
                                                           namespace="default")
        await ResourceClient(api, ROLES).create(
            {"metadata": {"name": "extra"}, "rules": []}, tenant=doomed)
        await ResourceClient(api, "tenants").delete(doomed)

        async def tenant_gone() -> bool:
            return await gone(api, "tenants", doomed)

        await eventually(tenant_gone, timeout=20)
    for resource in (*NAMESPACED, "namespaces", ROLES, BINDINGS):
        assert await names(api, resource, doomed) == [], resource
    ns, roles, bindings = await defaults_of(api, other)
    assert ns == ["apps", "default", "kube-public", "kube-system"]
    assert roles == ["admin", "admin-role", "edit", "view"]
    assert bindings == ["admin-role-binding"]
    assert await names(api, "configmaps", other, "apps") == ["cm0", "cm1", "cm2"]
    assert await names(api, "pods", other) == ["p"]
    events = (await ResourceClient(api, "events").list(tenant="system",
                                                       namespace="default")).items
    assert any(e["reason"] == "Finalized" and e["involvedObject"]["name"] == doomed
               for e in events)
