"""The ReplicaSet controller: pure decisions (claims, deletion order, batches, expectations,
status) without a server, then against a real API server in a fresh tenant.

Helpers for workload tests (tenant/namespace setup, a fake node agent marking pods ready)
are here and reused by the Deployment tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from arktos.api.selectors import label_selector_from_dict
from arktos.client.informer import ListerWatcher
from arktos.client.resources import ListResult, ResourceClient
from arktos.client.rest import ApiClient, ApiError, WatchEvent
from arktos.controllers.base import Context
from arktos.controllers.podtemplate import controller_of
from arktos.controllers.replicaset import ReplicaSetController
from arktos.controllers.replicaset_logic import (
    Expectations,
    WriteTracker,
    claim,
    is_available,
    pods_to_delete,
    replicaset_status,
    rfc3339,
    slow_start_batches,
)
from tests.controllers.conftest import running
from tests.waiting import eventually, in_background

Obj = dict[str, Any]


# ============================================================================ pure decisions

def _pod(name: str, *, labels: dict[str, str] | None = None, owner: str = "",
         node: str = "", phase: str = "Pending", ready_at: float | None = None,
         created: float = 1000.0, deleting: bool = False) -> Obj:
    md: Obj = {"name": name, "namespace": "ns", "tenant": "t", "uid": f"uid-{name}",
               "labels": labels or {"app": "x"}, "creationTimestamp": rfc3339(created)}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                  "uid": owner, "controller": True}]
    if deleting:
        md["deletionTimestamp"] = rfc3339(created)
    status: Obj = {"phase": phase}
    if ready_at is not None:
        status["conditions"] = [{"type": "Ready", "status": "True",
                                 "lastTransitionTime": rfc3339(ready_at)}]
    return {"metadata": md, "spec": {"nodeName": node} if node else {}, "status": status}


def test_slow_start_batches_double_until_the_count() -> None:
    assert slow_start_batches(0) == []
    assert slow_start_batches(1) == [1]
    assert slow_start_batches(10) == [1, 2, 4, 3]
    assert sum(slow_start_batches(1000)) == 1000


def test_claim_adopts_matching_orphans_and_releases_strays() -> None:
    selector = label_selector_from_dict({"matchLabels": {"app": "x"}})
    mine = _pod("mine", owner="rs1")
    stray = _pod("stray", owner="rs1", labels={"app": "other"})
    orphan = _pod("orphan")
    dying_orphan = _pod("dying", deleting=True)
    foreign = _pod("foreign", owner="rs2")
    unrelated = _pod("unrelated", labels={"app": "y"})
    found = claim("rs1", selector, [mine, stray, orphan, dying_orphan, foreign, unrelated])
    assert found.owned == [mine]
    assert found.adopt == [orphan]
    assert found.release == [stray]
    deleting = claim("rs1", selector, [mine, stray, orphan], owner_deleting=True)
    assert (deleting.owned, deleting.adopt, deleting.release) == ([mine], [], [])


def test_pods_to_delete_prefers_unscheduled_then_not_ready_then_newest() -> None:
    unscheduled = _pod("unscheduled", node="", phase="Pending")
    pending = _pod("pending", node="n1", phase="Pending")
    not_ready = _pod("not-ready", node="n2", phase="Running")
    old_ready = _pod("old-ready", node="n3", phase="Running", ready_at=100, created=10)
    new_ready = _pod("new-ready", node="n4", phase="Running", ready_at=200, created=20)
    pods = [old_ready, new_ready, not_ready, pending, unscheduled]
    order = [p["metadata"]["name"] for p in pods_to_delete(pods, 5)]
    assert order == ["unscheduled", "pending", "not-ready", "new-ready", "old-ready"]
    assert pods_to_delete(pods, 0) == []


def test_replicaset_status_counts_labels_readiness_and_availability() -> None:
    rs = {"metadata": {"generation": 3},
          "spec": {"minReadySeconds": 10,
                   "template": {"metadata": {"labels": {"app": "x", "tier": "web"}}}}}
    pods = [_pod("a", labels={"app": "x", "tier": "web"}, ready_at=0.0),
            _pod("b", labels={"app": "x"}, ready_at=95.0),
            _pod("c", labels={"app": "x", "tier": "web"})]
    status = replicaset_status(rs, pods, now=100.0)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                      "availableReplicas": 1, "observedGeneration": 3}
    failed = replicaset_status(rs, pods, now=100.0, failure=("FailedCreate", "quota"))
    assert failed["conditions"][0]["reason"] == "FailedCreate"
    assert is_available(pods[1], 10, now=106.0)


def test_expectations_block_until_observed_or_expired() -> None:
    clock = [0.0]
    exp = Expectations(ttl=300, clock=lambda: clock[0])
    assert exp.satisfied("rs")
    exp.expect_creations("rs", 2)
    exp.creation_observed("rs")
    assert not exp.satisfied("rs")
    exp.creation_observed("rs")
    assert exp.satisfied("rs")
    exp.expect_deletions("rs", ["t/ns/a", "t/ns/b"])
    exp.deletion_observed("rs", "t/ns/a")
    assert not exp.satisfied("rs")
    clock[0] = 301
    assert exp.satisfied("rs")


def test_write_tracker_reports_copies_older_than_our_write() -> None:
    clock = [0.0]
    tracker = WriteTracker(ttl=30, clock=lambda: clock[0])
    written = {"metadata": {"tenant": "t", "namespace": "ns", "name": "d",
                            "resourceVersion": "12"}}
    tracker.wrote(written)
    old = {"metadata": {**written["metadata"], "resourceVersion": "11"}}
    assert tracker.stale("t/ns/d", old)
    assert tracker.stale("t/ns/d", None)
    assert not tracker.stale("t/ns/d", written)
    assert not tracker.stale("t/ns/d", old)  # caught up once: forgotten
    tracker.wrote(written)
    clock[0] = 31
    assert not tracker.stale("t/ns/d", None)


# ================================================================== helpers for server tests

@dataclass
class Scope:
    """A fresh tenant with one namespace, and typed clients in it."""

    api: ApiClient
    tenant: str
    namespace: str

    def client(self, resource: str) -> ResourceClient:
        return ResourceClient(self.api, resource)

    async def create(self, resource: str, obj: Obj) -> Obj:
        obj["metadata"].update(tenant=self.tenant, namespace=self.namespace)
        return await self.client(resource).create(obj)

    async def get(self, resource: str, name: str) -> Obj:
        return await self.client(resource).get(name, namespace=self.namespace, tenant=self.tenant)

    async def list(self, resource: str, label_selector: str = "") -> list[Obj]:
        result = await self.client(resource).list(namespace=self.namespace, tenant=self.tenant,
                                                  label_selector=label_selector)
        return sorted(result.items, key=lambda o: o["metadata"]["name"])

    async def patch(self, resource: str, name: str, patch: Obj, **kw: Any) -> Obj:
        return await self.client(resource).patch(name, patch, namespace=self.namespace,
                                                 tenant=self.tenant, **kw)

    async def delete(self, resource: str, name: str) -> None:
        with contextlib.suppress(ApiError):
            await self.client(resource).delete(name, namespace=self.namespace,
                                               tenant=self.tenant)


async def new_scope(api: ApiClient, unique: Callable[[str], str]) -> Scope:
    tenant = unique("t")
    await ResourceClient(api, "tenants").create({"metadata": {"name": tenant}, "spec": {}})
    namespace = "apps"
    await ResourceClient(api, "namespaces").create({"metadata": {"name": namespace}},
                                                   tenant=tenant)
    return Scope(api, tenant, namespace)


@pytest.fixture
async def scope(api: ApiClient, unique: Callable[[str], str]) -> Scope:
    return await new_scope(api, unique)


def template(labels: dict[str, str], image: str = "nginx:1.25") -> Obj:
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": image}]}}


def replicaset(name: str, replicas: int, labels: dict[str, str], **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": template(labels), **spec}}


async def mark_ready(scope: Scope, pod: Obj) -> None:
    """Play the node agent: the pod is Running and Ready (since now)."""
    md = pod["metadata"]
    now = rfc3339(time.time())
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": md["name"], "namespace": md["namespace"], "tenant": md["tenant"]},
        "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now}]}}
    with contextlib.suppress(ApiError):
        await scope.client("pods").update(body, subresource="status")


def ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


@contextlib.asynccontextmanager
async def fake_agent(scope: Scope, *, per_tick: int = 1000, interval: float = 0.05,
                     observe: Callable[[list[Obj]], Awaitable[None]] | None = None,
                     ) -> AsyncIterator[None]:
    """Mark up to `per_tick` pending pods of the scope ready every `interval` seconds,
    calling `observe(pods)` with every listing first (to check invariants)."""
    async def loop() -> None:
        while True:
            pods = await scope.list("pods")
            if observe is not None:
                await observe(pods)
            for pod in [p for p in pods if not ready(p)][:per_tick]:
                await mark_ready(scope, pod)
            await asyncio.sleep(interval)

    async with in_background(loop()):
        yield


def owned_by(pod: Obj, owner: Obj) -> bool:
    ref = controller_of(pod)
    return ref is not None and ref.get("uid") == owner["metadata"]["uid"]


async def count_pods(scope: Scope, owner: Obj) -> int:
    return sum(1 for p in await scope.list("pods") if owned_by(p, owner))


# ============================================================================== server tests

async def test_creates_pods_with_owner_references_in_the_tenant(api: ApiClient,
                                                                 scope: Scope) -> None:
    async with running(api, [ReplicaSetController]):
        rs = await scope.create("replicasets", replicaset("web", 3, {"app": "web"}))

        async def three() -> bool:
            return await count_pods(scope, rs) == 3
        await eventually(three, timeout=5)
        for pod in await scope.list("pods"):
            md = pod["metadata"]
            assert md["tenant"] == scope.tenant and md["name"].startswith("web-")
            assert md["labels"] == {"app": "web"}
            ref = md["ownerReferences"][0]
            assert {k: ref[k] for k in ("apiVersion", "kind", "name", "uid", "controller",
                                        "blockOwnerDeletion")} == {
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}

        async def status() -> bool:
            st = (await scope.get("replicasets", "web")).get("status") or {}
            return st.get("replicas") == 3 and st.get("observedGeneration") == 1
        await eventually(status, timeout=5)

        async def events() -> bool:
            found = await scope.list("events")
            return sum(1 for e in found if e["reason"] == "SuccessfulCreate") == 3
        await eventually(events, timeout=5)


async def test_replaces_deleted_pods_and_scales(api: ApiClient, scope: Scope) -> None:
    async with running(api, [ReplicaSetController]):
        rs = await scope.create("replicasets", replicaset("web", 2, {"app": "web"}))

        def has(n: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return await count_pods(scope, rs) == n
            return check
        await eventually(has(2), timeout=5)
        victim = (await scope.list("pods"))[0]["metadata"]["name"]
        await scope.delete("pods", victim)

        async def replaced() -> bool:
            names = [p["metadata"]["name"] for p in await scope.list("pods")]
            return len(names) == 2 and victim not in names
        await eventually(replaced, timeout=5)
        await scope.patch("replicasets", "web", {"spec": {"replicas": 5}})
        await eventually(has(5), timeout=5)
        pods = await scope.list("pods")
        keep = pods[:2]
        for pod in keep:
            await mark_ready(scope, pod)

        async def two_ready() -> bool:
            st = (await scope.get("replicasets", "web")).get("status") or {}
            return st.get("readyReplicas") == 2 and st.get("availableReplicas") == 2
        await eventually(two_ready, timeout=5)
        await scope.patch("replicasets", "web", {"spec": {"replicas": 2}})
        await eventually(has(2), timeout=5)
        assert {p["metadata"]["name"] for p in await scope.list("pods")} == \
            {p["metadata"]["name"] for p in keep}, "the ready pods are kept"


async def test_adopts_orphans_and_releases_pods_that_stop_matching(api: ApiClient,
                                                                   scope: Scope) -> None:
    orphan = await scope.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "orphan", "labels": {"app": "web"}}, "spec": template({})["spec"]})
    async with running(api, [ReplicaSetController]):
        rs = await scope.create("replicasets", replicaset("web", 2, {"app": "web"}))

        async def adopted() -> bool:
            pods = await scope.list("pods")
            return len(pods) == 2 and all(owned_by(p, rs) for p in pods)
        await eventually(adopted, timeout=5)
        assert orphan["metadata"]["name"] in {p["metadata"]["name"]
                                              for p in await scope.list("pods")}
        await scope.patch("pods", "orphan", {"metadata": {"labels": {"app": "gone"}}})

        async def released() -> bool:
            pod = await scope.get("pods", "orphan")
            return (not pod["metadata"].get("ownerReferences")
                    and await count_pods(scope, rs) == 2)
        await eventually(released, timeout=5)


async def test_other_tenants_pods_are_never_adopted(api: ApiClient, scope: Scope,
                                                    unique: Callable[[str], str]) -> None:
    other = await new_scope(api, unique)
    stranger = await other.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "stranger", "labels": {"app": "web"}}, "spec": template({})["spec"]})
    async with running(api, [ReplicaSetController]):
        rs = await scope.create("replicasets", replicaset("web", 1, {"app": "web"}))

        async def one() -> bool:
            return await count_pods(scope, rs) == 1
        await eventually(one, timeout=5)
        await asyncio.sleep(0.3)
    pod = await other.get("pods", "stranger")
    assert not pod["metadata"].get("ownerReferences")
    assert pod["metadata"]["uid"] == stranger["metadata"]["uid"]


async def test_pods_of_other_tenants_claiming_our_uid_are_ignored(
        api: ApiClient, scope: Scope, unique: Callable[[str], str]) -> None:
    """A pod in another tenant naming our ReplicaSet's uid as its controller is neither
    counted, nor deleted, nor released."""
    other = await new_scope(api, unique)
    async with running(api, [ReplicaSetController]):
        rs = await scope.create("replicasets", replicaset("web", 1, {"app": "web"}))
        ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
               "uid": rs["metadata"]["uid"], "controller": True}
        impostor = await other.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "impostor", "labels": {"app": "web"}, "ownerReferences": [ref]},
            "spec": template({})["spec"]})

        async def one_own_pod() -> bool:
            st = (await scope.get("replicasets", "web")).get("status") or {}
            return await count_pods(scope, rs) == 1 and st.get("replicas") == 1
        await eventually(one_own_pod, timeout=5)
        await scope.patch("replicasets", "web", {"spec": {"replicas": 0}})

        async def none_left() -> bool:
            return await count_pods(scope, rs) == 0
        await eventually(none_left, timeout=5)
        await asyncio.sleep(0.3)
    pod = await other.get("pods", "impostor")
    assert pod["metadata"]["uid"] == impostor["metadata"]["uid"]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]


async def test_min_ready_seconds_delays_availability(api: ApiClient, scope: Scope) -> None:
    async with running(api, [ReplicaSetController]):
        rs = await scope.create("replicasets",
                                replicaset("web", 1, {"app": "web"}, minReadySeconds=2))

        async def created() -> bool:
            return await count_pods(scope, rs) == 1
        await eventually(created, timeout=5)
        await mark_ready(scope, (await scope.list("pods"))[0])

        async def status(ready: int, available: int) -> bool:
            st = (await scope.get("replicasets", "web")).get("status") or {}
            return (st.get("readyReplicas"), st.get("availableReplicas")) == (ready, available)
        await eventually(lambda: status(1, 0), timeout=5)   # timestamps have whole seconds:
        await eventually(lambda: status(1, 1), timeout=5)   # not available for 1 to 2 s


class Lagging:
    """A ListerWatcher whose watch events arrive `latency` seconds late (informer lag)."""

    def __init__(self, inner: ListerWatcher, latency: float) -> None:
        self.inner, self.latency = inner, latency

    async def list(self) -> ListResult:
        return await self.inner.list()

    async def watch(self, resource_version: str,
                    timeout_seconds: int) -> AsyncIterator[WatchEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, WatchEvent | BaseException | None]] = \
            asyncio.Queue()

        async def pump() -> None:
            try:
                async for ev in self.inner.watch(resource_version, timeout_seconds):
                    await queue.put((loop.time(), ev))
                await queue.put((loop.time(), None))
            except ApiError as exc:
                await queue.put((loop.time(), exc))

        task = asyncio.create_task(pump())
        try:
            while True:
                stamp, item = await queue.get()
                await asyncio.sleep(max(0.0, stamp + self.latency - loop.time()))
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            task.cancel()


def lagging_pods(latency: float) -> Callable[[Context], ReplicaSetController]:
    """A ReplicaSetController whose pod informer lags by `latency` seconds."""
    def make(ctx: Context) -> ReplicaSetController:
        controller = ReplicaSetController(ctx)
        informer = controller.pod_informer
        informer.lw = Lagging(informer.lw, latency)
        return controller
    return make


async def test_many_replicas_are_created_exactly_once(api: ApiClient, scope: Scope) -> None:
    """Expectations: even with a lagging pod informer, a burst never creates extra pods."""
    counts: list[int] = []
    async with running(api, [lagging_pods(0.5)]):
        rs = await scope.create("replicasets", replicaset("big", 100, {"app": "big"}))

        async def all_there() -> bool:
            counts.append(await count_pods(scope, rs))
            return counts[-1] >= 100
        await eventually(all_there, timeout=20, interval=0.05)
        await asyncio.sleep(1.0)
        assert await count_pods(scope, rs) == 100
        await scope.patch("replicasets", "big", {"spec": {"replicas": 40}})

        async def scaled_down() -> bool:
            counts.append(await count_pods(scope, rs))
            return counts[-1] <= 40
        await eventually(scaled_down, timeout=20, interval=0.05)
        await asyncio.sleep(1.0)
        assert await count_pods(scope, rs) == 40
    assert max(counts) == 100
