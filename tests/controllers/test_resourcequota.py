"""The resourcequota controller: its pure decisions, then against a real API server (usage
drops after deletes and terminal pods, per namespace and per tenant)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from arktos.api.kinds import REGISTRY
from arktos.api.quota import counted_resources
from arktos.client.events import EventRecorder
from arktos.client.informer import InformerFactory
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from arktos.client.store import Obj
from arktos.controllers.base import Context
from arktos.controllers.catalog import CONTROLLERS
from arktos.controllers.manager import ControllerManager
from arktos.controllers.quota_usage import (
    desired_status,
    quota_homes,
    quotas_to_sync,
    scope_index,
    served_type,
    status_outdated,
)
from arktos.controllers.resourcequota import RESYNC, ResourceQuotaController
from arktos.controllers.settings import Settings
from tests.controllers.conftest import running
from tests.controllers.test_namespace import make_tenant, role
from tests.waiting import eventually

TENANT_LABEL = {"arktos.io/scope": "tenant"}
ROLES = "roles.rbac.authorization.k8s.io"


def quota(name: str, hard: dict[str, Any], *, namespace: str = "ns", tenant: str = "t",
          scopes: list[str] | None = None, **md: Any) -> Obj:
    spec: Obj = {"hard": hard, **({"scopes": scopes} if scopes else {})}
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": name, "namespace": namespace, "tenant": tenant, **md},
            "spec": spec}


def pod(name: str, *, namespace: str = "ns", tenant: str = "t", cpu: str | None = None,
        phase: str = "Pending", deadline: int | None = None) -> Obj:
    container: Obj = {"name": "c", "image": "busybox"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    spec: Obj = {"containers": [container]}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {"metadata": {"name": name, "namespace": namespace, "tenant": tenant},
            "spec": spec, "status": {"phase": phase}}


def obj(name: str, *, namespace: str = "ns", tenant: str = "t") -> Obj:
    return {"metadata": {"name": name, "namespace": namespace, "tenant": tenant}}


def used(q: Obj, objects: list[tuple[str, Obj]]) -> dict[str, str]:
    return dict(desired_status(q, objects)["used"])


# --- pure -----------------------------------------------------------------------------------

def test_counted_resources_by_quota_name() -> None:
    assert counted_resources(quota("q", {"pods": "1"})) == {"pods"}
    assert counted_resources(quota("q", {"requests.cpu": "1"})) == {"pods"}
    assert counted_resources(quota("q", {"configmaps": "1", "secrets": "2"})) == {
        "configmaps", "secrets"}
    assert counted_resources(quota("q", {"count/deployments.apps": "1",
                                         "count/services": "1"})) == {
        "deployments.apps", "services"}
    assert counted_resources(quota("q", {"requests.storage": "1Gi"})) == {
        "persistentvolumeclaims"}
    assert counted_resources(quota("q", {})) == frozenset()


def test_served_type_only_listable_tenant_resources() -> None:
    rt = served_type("deployments.apps", REGISTRY)
    assert rt is not None and rt.kind == "Deployment"
    assert served_type("deployments", REGISTRY) is None  # qualified names only
    assert served_type("nodes", REGISTRY) is None  # cluster-scoped: no tenant owns them
    assert served_type("subjectaccessreviews.authorization.k8s.io", REGISTRY) is None
    assert served_type("widgets.example.com", REGISTRY) is None


def test_namespace_quota_counts_its_namespace_only() -> None:
    q = quota("q", {"pods": "3", "configmaps": "5", "count/pods": "9"})
    objects = [("pods", pod("a")), ("pods", pod("b")), ("pods", pod("done", phase="Succeeded")),
               ("pods", pod("elsewhere", namespace="other")),
               ("pods", pod("other-tenant", tenant="u")),
               ("configmaps", obj("c")), ("secrets", obj("s"))]
    # a terminal pod still exists (count/pods) but no longer uses `pods`
    assert used(q, objects) == {"pods": "2", "configmaps": "1", "count/pods": "3"}
    assert desired_status(q, objects)["hard"] == {"pods": "3", "configmaps": "5",
                                                  "count/pods": "9"}
    assert scope_index(q) == ("namespace", "t/ns")


def test_compute_usage_is_formatted_as_admission_does() -> None:
    q = quota("q", {"requests.cpu": "2", "limits.cpu": "2"})
    objects = [("pods", pod("a", cpu="500m")), ("pods", pod("b", cpu="1")),
               ("pods", pod("gone", cpu="1", phase="Failed"))]
    assert used(q, objects) == {"requests.cpu": "1500m", "limits.cpu": "1500m"}
    assert used(q, []) == {"requests.cpu": "0", "limits.cpu": "0"}


def test_tenant_quota_counts_every_namespace_of_its_tenant() -> None:
    q = quota("t", {"configmaps": "10"}, namespace="kube-system", labels=TENANT_LABEL)
    objects = [("configmaps", obj("a", namespace="one")), ("configmaps", obj("b", namespace="two")),
               ("configmaps", obj("c", namespace="kube-system")),
               ("configmaps", obj("x", namespace="one", tenant="u"))]
    assert used(q, objects) == {"configmaps": "3"}
    assert scope_index(q) == ("tenant", "t")
    # the label means nothing outside kube-system: a plain namespace quota
    plain = quota("t", {"configmaps": "10"}, namespace="one", labels=TENANT_LABEL)
    assert used(plain, objects) == {"configmaps": "1"}
    assert scope_index(plain) == ("namespace", "t/one")


@pytest.mark.parametrize(("scopes", "expected"), [
    (["Terminating"], "1"), (["NotTerminating"], "2"),
    (["BestEffort"], "1"), (["NotBestEffort"], "2"),
    (["NotTerminating", "BestEffort"], "1"), (["Terminating", "BestEffort"], "0"),
])
def test_scopes_count_only_matching_pods(scopes: list[str], expected: str) -> None:
    q = quota("q", {"pods": "9", "configmaps": "9"}, scopes=scopes)
    objects = [("pods", pod("terminating-burstable", cpu="1", deadline=30)),
               ("pods", pod("besteffort")),
               ("pods", pod("burstable", cpu="1")),
               ("pods", pod("finished-besteffort", phase="Succeeded")),
               ("configmaps", obj("c"))]
    # a scoped quota counts pods only (never the configmap)
    assert used(q, objects) == {"pods": expected, "configmaps": "0"}


def test_quota_homes() -> None:
    assert quota_homes("t", "ns") == ["t/ns", "t/kube-system"]
    assert quota_homes("t", "kube-system") == ["t/kube-system"]
    assert quota_homes("t", "") == ["t/kube-system"]  # a namespace object: tenant quotas only


def test_quotas_to_sync_only_when_counted_usage_moves() -> None:
    pods_q = quota("pods", {"pods": "3"})
    cms_q = quota("cms", {"configmaps": "3"})
    tenant_q = quota("tq", {"count/pods": "9"}, namespace="kube-system", labels=TENANT_LABEL)
    other_ns = quota("other", {"pods": "3"}, namespace="other")
    quotas = [pods_q, cms_q, tenant_q, other_ns]

    def synced(qualified: str, old: Obj | None, new: Obj | None) -> list[str]:
        return [q["metadata"]["name"] for q in quotas_to_sync(qualified, old, new, quotas)]

    running_pod = pod("a", phase="Running")
    assert synced("pods", None, running_pod) == ["pods", "tq"]
    assert synced("pods", running_pod, None) == ["pods", "tq"]
    assert synced("pods", running_pod, running_pod) == []  # resync
    assert synced("pods", pod("a"), running_pod) == []  # phase moves no usage
    # terminal: leaves `pods`, still exists for count/pods
    assert synced("pods", running_pod, pod("a", phase="Succeeded")) == ["pods"]
    assert synced("configmaps", None, obj("c")) == ["cms"]
    assert synced("secrets", None, obj("s")) == []


def test_status_outdated() -> None:
    q = quota("q", {"pods": "3"})
    status = desired_status(q, [("pods", pod("a"))])
    assert status_outdated(q, status)
    assert not status_outdated({**q, "status": status}, status)
    assert status_outdated({**q, "status": {**status, "used": {"pods": "2"}}}, status)
    assert not status_outdated(quota("empty", {}), desired_status(quota("empty", {}), []))


def test_controller_is_registered() -> None:
    assert CONTROLLERS["resourcequota"] is ResourceQuotaController


# --- against the API server -----------------------------------------------------------------

async def used_of(api: ApiClient, tenant: str, namespace: str, name: str) -> dict[str, str]:
    q = await ResourceClient(api, "resourcequotas").get(name, tenant=tenant, namespace=namespace)
    return dict((q.get("status") or {}).get("used") or {})


STABLE = 0.25
"""Seconds a settled quota must stay settled: a retry the work queue still holds (after a
conflict, backoff of milliseconds) has run by then."""


async def settle(manager: ControllerManager, tenant: str, namespace: str, name: str,
                 **expected: str) -> None:
    """Wait until the quota's stored `status.used` is `expected`, the running controller's
    cache holds that very version of the quota, nothing is queued or being retried, and this
    still holds `STABLE` seconds later. Admission also raises `used` on creates, so this proves
    that the controller settled on the value: whatever it does next is only due to the events
    that follow."""
    quotas = ResourceClient(manager.api, "resourcequotas")
    key = f"{tenant}/{namespace}/{name}"

    async def check() -> bool:
        stored = await quotas.get(name, tenant=tenant, namespace=namespace)
        controller = next((c for c in manager.controllers
                           if isinstance(c, ResourceQuotaController)), None)
        if controller is None or (stored.get("status") or {}).get("used") != expected:
            return False
        cached = controller.quotas.store.get(key)
        idle = len(controller.queue) == 0 and controller.queue.failures(key) == 0
        return (idle and cached is not None and
                cached["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"])

    check.__name__ = f"{namespace}/{name} used == {expected}"
    await eventually(check)
    await asyncio.sleep(STABLE)
    await eventually(check)


def body(name: str, **extra: Any) -> Obj:
    return {"metadata": {"name": name}, **extra}


POD_SPEC = {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def forbidden(client: ResourceClient, obj: Obj, tenant: str, namespace: str) -> str:
    with pytest.raises(ApiError) as caught:
        await client.create(obj, tenant=tenant, namespace=namespace)
    assert caught.value.status == 403
    return str(caught.value)


async def test_usage_drops_after_deletes_and_frees_the_quota(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    tenant, ns = unique("rq"), "work"
    await make_tenant(api, tenant, (ns,))
    quotas = ResourceClient(api, "resourcequotas")
    pods, cms = ResourceClient(api, "pods"), ResourceClient(api, "configmaps")
    async with running(api, [ResourceQuotaController]) as manager:
        await quotas.create(quota("q", {"pods": "3", "configmaps": "5"}, namespace=ns,
                                  tenant=tenant))
        # admission never writes the status of a new quota: the controller does
        await settle(manager, tenant, ns, "q", pods="0", configmaps="0")
        for i in range(3):
            await pods.create(body(f"p{i}", **POD_SPEC), tenant=tenant, namespace=ns)
        for i in range(2):
            await cms.create(body(f"c{i}", data={}), tenant=tenant, namespace=ns)
        await settle(manager, tenant, ns, "q", pods="3", configmaps="2")
        assert "exceeded quota: q" in await forbidden(pods, body("p3", **POD_SPEC), tenant, ns)
        for name in ("p0", "p1"):
            await pods.delete(name, tenant=tenant, namespace=ns)
        await cms.delete("c0", tenant=tenant, namespace=ns)
        await settle(manager, tenant, ns, "q", pods="1", configmaps="1")
        await pods.create(body("p3", **POD_SPEC), tenant=tenant, namespace=ns)
        await settle(manager, tenant, ns, "q", pods="2", configmaps="1")
        stored = await quotas.get("q", tenant=tenant, namespace=ns)
        assert stored["status"]["hard"] == {"pods": "3", "configmaps": "5"}


async def test_terminal_pods_stop_counting(api: ApiClient,
                                           unique: Callable[[str], str]) -> None:
    tenant, ns = unique("rqt"), "work"
    await make_tenant(api, tenant, (ns,))
    pods = ResourceClient(api, "pods")
    async with running(api, [ResourceQuotaController]) as manager:
        await ResourceClient(api, "resourcequotas").create(
            quota("q", {"pods": "2", "count/pods": "5"}, namespace=ns, tenant=tenant))
        for name in ("a", "b"):
            await pods.create(body(name, **POD_SPEC), tenant=tenant, namespace=ns)
        await settle(manager, tenant, ns, "q", pods="2", **{"count/pods": "2"})
        done = await pods.get("a", tenant=tenant, namespace=ns)
        await pods.update({**done, "status": {**done.get("status", {}), "phase": "Succeeded"}},
                          subresource="status")
        await settle(manager, tenant, ns, "q", pods="1", **{"count/pods": "2"})


async def test_tenant_quota_counts_across_namespaces_and_drops(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    tenant = unique("rqw")
    await make_tenant(api, tenant, ("kube-system", "one", "two"))
    cms, quotas = ResourceClient(api, "configmaps"), ResourceClient(api, "resourcequotas")
    async with running(api, [ResourceQuotaController]) as manager:
        await quotas.create(quota("wide", {"configmaps": "3"}, namespace="kube-system",
                                  tenant=tenant, labels=TENANT_LABEL))
        await quotas.create(quota("local", {"configmaps": "3"}, namespace="one", tenant=tenant))
        await cms.create(body("a", data={}), tenant=tenant, namespace="one")
        await cms.create(body("b", data={}), tenant=tenant, namespace="two")
        await cms.create(body("c", data={}), tenant=tenant, namespace="two")
        await settle(manager, tenant, "kube-system", "wide", configmaps="3")
        await settle(manager, tenant, "one", "local", configmaps="1")
        assert "exceeded quota: wide" in await forbidden(cms, body("d", data={}), tenant, "one")
        await cms.delete("b", tenant=tenant, namespace="two")
        await settle(manager, tenant, "kube-system", "wide", configmaps="2")
        assert await used_of(api, tenant, "one", "local") == {"configmaps": "1"}
        await cms.create(body("d", data={}), tenant=tenant, namespace="one")
        await settle(manager, tenant, "kube-system", "wide", configmaps="3")
        await settle(manager, tenant, "one", "local", configmaps="2")


def idle_controller(api: ApiClient, **kwargs: Any) -> ResourceQuotaController:
    """A controller whose informers never run: tests fill its stores by hand."""
    ctx = Context(api, InformerFactory(api), EventRecorder(api, "test"), Settings())
    controller = ResourceQuotaController(ctx, **kwargs)
    for informer in [controller.quotas, *controller.counted.values()]:
        informer.synced.set()
    return controller


async def test_resync_requeues_every_quota(api: ApiClient) -> None:
    controller = idle_controller(api, resync_period=42)
    for name in ("a", "b"):
        controller.quotas.store.put(quota(name, {"pods": "1"}))
    assert await controller.reconcile(RESYNC) == 42
    keys = {await controller.queue.get() for _ in range(3)}
    assert keys == {RESYNC, "t/ns/a", "t/ns/b"}


async def test_stale_quota_conflicts_then_converges_without_rewrites(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    tenant, ns = unique("rqc"), "work"
    await make_tenant(api, tenant, (ns,))
    quotas, cms = ResourceClient(api, "resourcequotas"), ResourceClient(api, "configmaps")
    controller = idle_controller(api)
    key = f"{tenant}/{ns}/q"

    async def cache_quota() -> Obj:
        fresh = await quotas.get("q", tenant=tenant, namespace=ns)
        controller.quotas.store.put(fresh)
        return fresh

    await quotas.create(quota("q", {"configmaps": "5"}, namespace=ns, tenant=tenant))
    await cache_quota()  # no status yet; admission will write one: this copy goes stale
    await cms.create(body("c", data={}), tenant=tenant, namespace=ns)
    controller.counted["configmaps"].store.put(await cms.get("c", tenant=tenant, namespace=ns))
    current = await quotas.get("q", tenant=tenant, namespace=ns)
    await quotas.update({**current, "status": {"hard": {"configmaps": "5"},
                                               "used": {"configmaps": "7"}}},
                        subresource="status")
    with pytest.raises(ApiError) as caught:  # the worker retries it through the queue
        await controller.reconcile(key)
    assert caught.value.conflict
    await cache_quota()  # the informer catches up
    assert await controller.reconcile(key) is None
    written = await cache_quota()
    assert written["status"] == {"hard": {"configmaps": "5"}, "used": {"configmaps": "1"}}
    assert await controller.reconcile(key) is None  # nothing changed: nothing written
    again = await quotas.get("q", tenant=tenant, namespace=ns)
    assert again["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]


async def test_other_counted_resources_are_watched_from_the_first_quota_naming_them(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    tenant, ns = unique("rqx"), "work"
    await make_tenant(api, tenant, (ns,))
    roles, name = ResourceClient(api, ROLES), f"count/{ROLES}"
    async with running(api, [ResourceQuotaController]) as manager:
        await ResourceClient(api, "resourcequotas").create(
            quota("q", {name: "5"}, namespace=ns, tenant=tenant))
        await settle(manager, tenant, ns, "q", **{name: "0"})
        for role_name in ("r1", "r2"):
            await roles.create(role(role_name), tenant=tenant, namespace=ns)
        await settle(manager, tenant, ns, "q", **{name: "2"})
        await roles.delete("r1", tenant=tenant, namespace=ns)
        await settle(manager, tenant, ns, "q", **{name: "1"})
