"""The garbage collector against the API server: background, orphan and foreground
propagation, tenancy of ownerReferences, and convergence after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient
from arktos.client.store import Obj
from arktos.controllers.garbagecollector import GarbageCollector
from tests.controllers.conftest import running
from tests.controllers.test_namespace import gone, make_tenant
from tests.waiting import eventually

NS = "ns"


def owned_by(*owners: Obj, block: bool | None = None) -> list[dict[str, Any]]:
    refs = []
    for owner in owners:
        ref = {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
               "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
        if block is not None:
            ref["blockOwnerDeletion"] = block
        refs.append(ref)
    return refs


class Objects:
    """Objects of one tenant's namespace `ns` through one client."""

    def __init__(self, api: ApiClient, tenant: str, resource: str = "configmaps") -> None:
        self.tenant = tenant
        self.rc = ResourceClient(api, resource)
        self.namespace = NS if self.rc.rtype.namespaced else ""

    async def make(self, name: str, *owners: Obj, block: bool | None = None,
                   **md: Any) -> Obj:
        meta = {"name": name, **md}
        if owners:
            meta["ownerReferences"] = owned_by(*owners, block=block)
        return await self.rc.create({"metadata": meta}, tenant=self.tenant,
                                    namespace=self.namespace)

    async def get(self, name: str) -> Obj:
        return await self.rc.get(name, tenant=self.tenant, namespace=self.namespace)

    async def delete(self, name: str, policy: str = "") -> None:
        await self.rc.delete(name, tenant=self.tenant, namespace=self.namespace,
                             propagation_policy=policy)

    async def unhold(self, name: str) -> None:
        await self.rc.patch(name, {"metadata": {"finalizers": None}}, tenant=self.tenant,
                            namespace=self.namespace)

    async def gone(self, *names: str) -> bool:
        return all([await gone(self.rc.api, self.rc.rtype.qualified, n, tenant=self.tenant,
                               namespace=self.namespace) for n in names])

    async def deleting(self, name: str) -> bool:
        return bool((await self.get(name))["metadata"].get("deletionTimestamp"))


async def tenant_objects(api: ApiClient, name: str) -> Objects:
    await make_tenant(api, name, (NS,))
    return Objects(api, name)


HOLD = "test.arktos.io/hold"


async def test_background_deletion_collects_dependents(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = await tenant_objects(api, unique("gcb"))
    secrets = Objects(api, cms.tenant, "secrets")
    async with running(api, [GarbageCollector]):
        owner = await cms.make("owner")
        await cms.make("d1", owner)
        await cms.make("d2", owner, block=True)
        await secrets.make("d3", owner)
        grand = await cms.make("g", await cms.get("d1"))
        assert grand["metadata"]["ownerReferences"][0]["name"] == "d1"
        await cms.make("unrelated")
        await asyncio.sleep(0.3)
        assert not await cms.gone("d1") and not await secrets.gone("d3")
        await cms.delete("owner")

        async def dependents_gone() -> bool:
            return await cms.gone("d1", "d2", "g") and await secrets.gone("d3")

        await eventually(dependents_gone)
        assert not await cms.gone("unrelated")


async def test_dependent_with_another_owner_stays(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = await tenant_objects(api, unique("gcm"))
    async with running(api, [GarbageCollector]):
        o1, o2 = await cms.make("o1"), await cms.make("o2")
        await cms.make("shared", o1, o2)
        await cms.make("only1", o1)
        await cms.delete("o1")

        async def only1_gone() -> bool:
            return await cms.gone("only1")

        await eventually(only1_gone)
        assert not await cms.gone("shared")
        await cms.delete("o2")

        async def shared_gone() -> bool:
            return await cms.gone("shared")

        await eventually(shared_gone)


async def test_orphan_deletion_keeps_dependents_without_the_reference(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = await tenant_objects(api, unique("gco"))
    async with running(api, [GarbageCollector]):
        owner, other = await cms.make("owner"), await cms.make("other")
        await cms.make("d1", owner)
        await cms.make("d2", owner, other)
        await cms.delete("owner", "Orphan")

        async def owner_gone() -> bool:
            return await cms.gone("owner")

        await eventually(owner_gone)
        assert "ownerReferences" not in (await cms.get("d1"))["metadata"]
        refs = (await cms.get("d2"))["metadata"]["ownerReferences"]
        assert [r["name"] for r in refs] == ["other"]


async def test_orphan_finalizer_set_at_create_acts_like_orphan_policy(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = await tenant_objects(api, unique("gcf"))
    async with running(api, [GarbageCollector]):
        owner = await cms.make("owner", finalizers=["orphan"])
        await cms.make("d", owner)
        await cms.delete("owner")

        async def owner_gone() -> bool:
            return await cms.gone("owner")

        await eventually(owner_gone)
        assert "ownerReferences" not in (await cms.get("d"))["metadata"]


async def test_foreground_owner_waits_for_blocking_dependents(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = await tenant_objects(api, unique("gcg"))
    async with running(api, [GarbageCollector]):
        owner = await cms.make("owner")
        blocking = await cms.make("blocking", owner, block=True, finalizers=[HOLD])
        await cms.make("grandchild", blocking, block=True)
        await cms.make("loose", owner, block=False)
        await cms.delete("owner", "Foreground")

        async def loose_and_grandchild_gone() -> bool:
            return await cms.gone("loose", "grandchild")

        await eventually(loose_and_grandchild_gone)
        assert await cms.deleting("blocking")
        held = await cms.get("owner")
        assert held["metadata"]["finalizers"] == ["foregroundDeletion"]
        await cms.unhold("blocking")

        async def owner_gone() -> bool:
            return await cms.gone("owner", "blocking")

        await eventually(owner_gone)


async def test_foreground_spares_dependent_with_a_standing_owner(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = await tenant_objects(api, unique("gcs"))
    async with running(api, [GarbageCollector]):
        owner, other = await cms.make("owner"), await cms.make("other")
        await cms.make("shared", owner, other, block=True)
        await cms.delete("owner", "Foreground")

        async def owner_gone() -> bool:
            return await cms.gone("owner")

        await eventually(owner_gone)
        refs = (await cms.get("shared"))["metadata"]["ownerReferences"]
        assert [r["name"] for r in refs] == ["other"]


async def test_tenant_and_cluster_scoped_owners(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = await tenant_objects(api, unique("gcc"))
    roles = Objects(api, cms.tenant, "clusterroles.rbac.authorization.k8s.io")
    nodes = ResourceClient(api, "nodes")
    async with running(api, [GarbageCollector]):
        role = await roles.make("owner-role")
        await roles.make("dep-role", role)
        await cms.make("role-dep", role)
        node = await nodes.create({"metadata": {"name": unique("gc-node")}})
        await cms.make("node-dep", node)
        await roles.delete("owner-role")
        await nodes.delete(node["metadata"]["name"])

        async def dependents_gone() -> bool:
            return await roles.gone("dep-role") and await cms.gone("role-dep", "node-dep")

        await eventually(dependents_gone)


async def test_owner_in_another_tenant_is_ignored(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    a = await tenant_objects(api, unique("gca"))
    b = await tenant_objects(api, unique("gcb"))
    async with running(api, [GarbageCollector]):
        for policy in ("", "Orphan", "Foreground"):
            owner = await a.make(f"owner{policy.lower()}")
            await a.make(f"mine{policy.lower()}", owner)
            await b.make(f"theirs{policy.lower()}", owner)
            await b.make(f"owner{policy.lower()}")
            await a.delete(f"owner{policy.lower()}", policy)
        await a.make("marker-owner")
        await a.delete("marker-owner")

        async def a_settled() -> bool:
            return await a.gone("mine", "owner", "ownerorphan", "ownerforeground")

        await eventually(a_settled)
        for policy in ("", "orphan", "foreground"):  # changed: the collector looks again
            await b.rc.patch(f"theirs{policy}", {"metadata": {"labels": {"touched": "1"}}},
                             tenant=b.tenant, namespace=NS)
        await asyncio.sleep(0.5)
        for policy in ("", "orphan", "foreground"):
            theirs = await b.get(f"theirs{policy}")
            assert theirs["metadata"]["ownerReferences"][0]["name"] == f"owner{policy}"
        assert not await a.gone("mineorphan")
        events = (await ResourceClient(api, "events").list(tenant=b.tenant)).items
        assert any(e["reason"] == "OwnerRefInvalid" for e in events)


async def test_restarted_collector_converges(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = await tenant_objects(api, unique("gcr"))
    async with running(api, [GarbageCollector]):
        owner = await cms.make("owner")
        fg_owner = await cms.make("fg-owner")
        orphan_owner = await cms.make("orphan-owner")
    await cms.make("d", owner)
    await cms.make("fg-d", fg_owner, block=True)
    await cms.make("orphan-d", orphan_owner)
    await cms.delete("owner")
    await cms.delete("fg-owner", "Foreground")
    await cms.delete("orphan-owner", "Orphan")
    await asyncio.sleep(0.2)
    assert not await cms.gone("d", "fg-owner", "orphan-owner")
    async with running(api, [GarbageCollector]):

        async def converged() -> bool:
            return await cms.gone("d", "fg-d", "fg-owner", "orphan-owner")

        await eventually(converged)
        assert "ownerReferences" not in (await cms.get("orphan-d"))["metadata"]
