"""The Deployment controller against a real API server, with the ReplicaSet controller and a
fake node agent marking pods ready; `kubectl rollout` commands run against the same server."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from arktos.client.rest import ApiClient
from arktos.controllers.deployment import DeploymentController
from arktos.controllers.replicaset import ReplicaSetController
from arktos.controllers.rollout import Params, fenceposts
from tests.apiserver_proc import ApiServerProcess
from tests.controllers.conftest import running
from tests.controllers.test_replicaset import Scope, fake_agent, new_scope, owned_by, ready
from tests.waiting import eventually

Obj = dict[str, Any]
CONTROLLERS = [ReplicaSetController, DeploymentController]
REVISION = "deployment.kubernetes.io/revision"
LABELS = {"app": "web"}


def deployment(name: str, replicas: int, image: str = "nginx:1.25", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": LABELS},
                     "template": {"metadata": {"labels": LABELS},
                                  "spec": {"containers": [{"name": "app", "image": image}]}},
                     **spec}}


@pytest.fixture
async def scope(api: ApiClient, unique: Callable[[str], str]) -> Scope:
    return await new_scope(api, unique)


@pytest.fixture
async def system_scope(api: ApiClient, unique: Callable[[str], str]) -> Scope:
    """A fresh namespace of the system tenant (what kubectl's short paths address)."""
    namespace = unique("ns")
    scope = Scope(api, "system", namespace)
    await scope.client("namespaces").create({"metadata": {"name": namespace}}, tenant="system")
    return scope


async def replicasets(scope: Scope, d: Obj) -> list[Obj]:
    return [rs for rs in await scope.list("replicasets") if owned_by(rs, d)]


async def pods_of(scope: Scope, rs: Obj) -> list[Obj]:
    return [p for p in await scope.list("pods") if owned_by(p, rs)]


def rolled_out(scope: Scope, name: str) -> Callable[[], Awaitable[bool]]:
    """What `kubectl rollout status` waits for, plus Progressing=NewReplicaSetAvailable."""
    async def check() -> bool:
        d = await scope.get("deployments", name)
        st, want = d.get("status") or {}, d["spec"]["replicas"]
        progressing = [c for c in st.get("conditions") or [] if c["type"] == "Progressing"]
        return (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
                and st.get("updatedReplicas") == want and st.get("replicas") == want
                and st.get("availableReplicas") == want
                and bool(progressing) and progressing[0]["reason"] == "NewReplicaSetAvailable")
    return check


async def set_image(scope: Scope, name: str, image: str) -> None:
    await scope.patch("deployments", name, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": image}]}}}}, content_type="application/strategic-merge-patch+json")


async def kubectl(server: ApiServerProcess, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(server.kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


class Invariants:
    """Checks every pod listing the fake agent makes against a rollout's bounds."""

    def __init__(self, replicas: int, surge: int, unavailable: int) -> None:
        self.replicas, self.surge, self.unavailable = replicas, surge, unavailable
        self.checking = False
        self.seen = 0
        self.max_total = 0
        self.min_available = replicas

    async def __call__(self, pods: list[Obj]) -> None:
        if not self.checking:
            return
        self.seen += 1
        total, available = len(pods), sum(1 for p in pods if ready(p))
        self.max_total = max(self.max_total, total)
        self.min_available = min(self.min_available, available)
        assert total <= self.replicas + self.surge, f"{total} pods: surge exceeded"
        assert available >= self.replicas - self.unavailable, f"only {available} available"


# ==================================================================================== tests

async def test_creates_one_replicaset_with_hash_and_revision(api: ApiClient,
                                                             scope: Scope) -> None:
    async with running(api, CONTROLLERS):
        d = await scope.create("deployments", deployment("web", 3))

        async def three_pods() -> bool:
            rss = await replicasets(scope, d)
            return len(rss) == 1 and len(await pods_of(scope, rss[0])) == 3
        await eventually(three_pods, timeout=5)
        [rs] = await replicasets(scope, d)
        h = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{h}"
        assert rs["spec"]["selector"]["matchLabels"] == {**LABELS, "pod-template-hash": h}
        assert rs["spec"]["template"]["metadata"]["labels"] == {**LABELS,
                                                                "pod-template-hash": h}
        assert rs["metadata"]["tenant"] == scope.tenant
        ref = rs["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == \
            ("Deployment", "web", True, True)
        notes = rs["metadata"]["annotations"]
        assert notes[REVISION] == "1"
        assert notes["deployment.kubernetes.io/desired-replicas"] == "3"
        assert notes["deployment.kubernetes.io/max-replicas"] == "4"
        async with fake_agent(scope):
            await eventually(rolled_out(scope, "web"), timeout=5)
        d = await scope.get("deployments", "web")
        assert d["metadata"]["annotations"][REVISION] == "1"
        st = d["status"]
        assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"],
                st["availableReplicas"], st.get("unavailableReplicas")) == (3, 3, 3, 3, 0)
        assert {c["type"]: c["reason"] for c in st["conditions"]} == {
            "Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}
        events = [e for e in await scope.list("events") if e["reason"] == "ScalingReplicaSet"]
        assert events[0]["message"] == f"Scaled up replica set web-{h} to 3"
        assert events[0]["involvedObject"]["kind"] == "Deployment"


async def test_scale_up_and_back_down(api: ApiClient, scope: Scope) -> None:
    async with running(api, CONTROLLERS), fake_agent(scope):
        d = await scope.create("deployments", deployment("web", 3))
        await eventually(rolled_out(scope, "web"), timeout=5)
        for replicas in (5, 3):
            await scope.patch("deployments", "web", {"spec": {"replicas": replicas}})

            async def scaled(n: int = replicas) -> bool:
                rss = await replicasets(scope, d)
                return (len(rss) == 1 and rss[0]["spec"]["replicas"] == n
                        and len(await pods_of(scope, rss[0])) == n)
            await eventually(scaled, timeout=5)
            await eventually(rolled_out(scope, "web"), timeout=5)
        [rs] = await replicasets(scope, d)
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"


@pytest.mark.parametrize(("replicas", "strategy"), [
    (4, {"maxSurge": 1, "maxUnavailable": 1}),
    (5, {}),                                      # 25%/25%: surge 2, unavailable 1
    (3, {"maxSurge": 0, "maxUnavailable": 1}),
    (3, {"maxSurge": "50%", "maxUnavailable": 0}),
])
async def test_rolling_update_stays_within_surge_and_unavailability(
        api: ApiClient, scope: Scope, replicas: int, strategy: Obj) -> None:
    spec = deployment("web", replicas)
    if strategy:
        spec["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": strategy}
    d_params = Params.of({"spec": {"replicas": replicas, "strategy": spec["spec"].get(
        "strategy", {"rollingUpdate": {}})}})
    check = Invariants(replicas, *fenceposts(d_params))
    async with running(api, CONTROLLERS), fake_agent(scope, per_tick=1, interval=0.05,
                                                     observe=check):
        d = await scope.create("deployments", spec)
        await eventually(rolled_out(scope, "web"), timeout=10)
        [old] = await replicasets(scope, d)
        check.checking = True
        await set_image(scope, "web", "nginx:1.26")
        await eventually(rolled_out(scope, "web"), timeout=20)
        check.checking = False
    rss = {rs["metadata"]["name"]: rs for rs in await replicasets(scope, d)}
    new = next(rs for name, rs in rss.items() if name != old["metadata"]["name"])
    assert rss[old["metadata"]["name"]]["spec"]["replicas"] == 0
    assert new["spec"]["replicas"] == replicas
    assert new["metadata"]["annotations"][REVISION] == "2"
    assert rss[old["metadata"]["name"]]["metadata"]["annotations"][REVISION] == "1"
    pods = await scope.list("pods")
    assert len(pods) == replicas and all(owned_by(p, new) for p in pods)
    assert check.seen >= replicas, "the bounds were checked at every step of the rollout"


async def test_recreate_never_runs_old_and_new_pods_together(api: ApiClient,
                                                             scope: Scope) -> None:
    mixed: list[int] = []

    async def observe(pods: list[Obj]) -> None:
        hashes = {p["metadata"]["labels"].get("pod-template-hash") for p in pods}
        if len(hashes) > 1:
            mixed.append(len(pods))

    async with running(api, CONTROLLERS), fake_agent(scope, observe=observe):
        d = await scope.create("deployments", deployment("web", 3,
                                                         strategy={"type": "Recreate"}))
        await eventually(rolled_out(scope, "web"), timeout=5)
        await set_image(scope, "web", "nginx:1.26")
        await eventually(rolled_out(scope, "web"), timeout=10)
    assert not mixed
    sizes = sorted(rs["spec"]["replicas"] for rs in await replicasets(scope, d))
    assert sizes == [0, 3]


async def test_reapplying_an_old_template_reuses_its_replicaset(api: ApiClient,
                                                                scope: Scope) -> None:
    async with running(api, CONTROLLERS), fake_agent(scope):
        d = await scope.create("deployments", deployment("web", 2))
        await eventually(rolled_out(scope, "web"), timeout=5)
        [first] = await replicasets(scope, d)
        await set_image(scope, "web", "nginx:1.26")
        await eventually(rolled_out(scope, "web"), timeout=10)
        current = await scope.get("deployments", "web")
        current["spec"]["template"] = copy.deepcopy(deployment("web", 2)["spec"]["template"])
        await scope.client("deployments").update(current)
        await eventually(rolled_out(scope, "web"), timeout=10)
    rss = {rs["metadata"]["name"]: rs for rs in await replicasets(scope, d)}
    assert len(rss) == 2
    reused = rss[first["metadata"]["name"]]
    assert reused["metadata"]["uid"] == first["metadata"]["uid"]
    assert reused["spec"]["replicas"] == 2
    assert reused["metadata"]["annotations"][REVISION] == "3"
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert (await scope.get("deployments", "web"))["metadata"]["annotations"][REVISION] == "3"


async def test_kubectl_rollout_status_history_and_undo(api: ApiClient, server: ApiServerProcess,
                                                       system_scope: Scope) -> None:
    scope, ns = system_scope, system_scope.namespace
    async with running(api, CONTROLLERS), fake_agent(scope):
        d = await scope.create("deployments", deployment("web", 3))
        code, out = await kubectl(server, "rollout", "status", "deployment/web", "-n", ns,
                                  "--timeout=30s")
        assert code == 0 and "successfully rolled out" in out, out
        await set_image(scope, "web", "nginx:1.26")
        code, out = await kubectl(server, "rollout", "status", "deployment/web", "-n", ns,
                                  "--timeout=30s")
        assert code == 0 and "successfully rolled out" in out, out
        code, out = await kubectl(server, "rollout", "history", "deployment/web", "-n", ns)
        assert code == 0, out
        assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["1", "2"]
        code, out = await kubectl(server, "rollout", "undo", "deployment/web", "-n", ns)
        assert code == 0 and "rolled back" in out, out
        code, out = await kubectl(server, "rollout", "status", "deployment/web", "-n", ns,
                                  "--timeout=30s")
        assert code == 0 and "successfully rolled out" in out, out
    rss = await replicasets(scope, d)
    assert len(rss) == 2, "undo reuses revision 1's replica set"
    live = next(rs for rs in rss if rs["spec"]["replicas"] == 3)
    assert live["metadata"]["annotations"][REVISION] == "3"
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"


async def test_paused_deployment_does_not_roll_out(api: ApiClient, scope: Scope) -> None:
    async with running(api, CONTROLLERS), fake_agent(scope):
        d = await scope.create("deployments", deployment("web", 2))
        await eventually(rolled_out(scope, "web"), timeout=5)
        await scope.patch("deployments", "web", {"spec": {"paused": True}})

        async def paused() -> bool:
            st = (await scope.get("deployments", "web")).get("status") or {}
            return any(c["reason"] == "DeploymentPaused" for c in st.get("conditions") or [])
        await eventually(paused, timeout=5)
        await set_image(scope, "web", "nginx:1.26")
        await scope.patch("deployments", "web", {"spec": {"replicas": 3}})

        async def scaled() -> bool:
            rss = await replicasets(scope, d)
            return len(rss) == 1 and rss[0]["spec"]["replicas"] == 3
        await eventually(scaled, timeout=5)
        await asyncio.sleep(0.3)
        assert len(await replicasets(scope, d)) == 1, "no new replica set while paused"
        await scope.patch("deployments", "web", {"spec": {"paused": False}})
        await eventually(rolled_out(scope, "web"), timeout=10)
    assert len(await replicasets(scope, d)) == 2


async def test_revision_history_limit_prunes_empty_old_replicasets(api: ApiClient,
                                                                   scope: Scope) -> None:
    async with running(api, CONTROLLERS), fake_agent(scope):
        d = await scope.create("deployments", deployment("web", 1, revisionHistoryLimit=1))
        for version in ("1.26", "1.27", "1.28"):
            await eventually(rolled_out(scope, "web"), timeout=10)
            await set_image(scope, "web", f"nginx:{version}")
        await eventually(rolled_out(scope, "web"), timeout=10)

        async def pruned() -> bool:
            return len(await replicasets(scope, d)) == 2
        await eventually(pruned, timeout=5)
    revisions = sorted(rs["metadata"]["annotations"][REVISION]
                       for rs in await replicasets(scope, d))
    assert revisions == ["3", "4"]


async def test_progress_deadline_exceeded(api: ApiClient, server: ApiServerProcess,
                                          system_scope: Scope) -> None:
    scope = system_scope
    async with running(api, CONTROLLERS):   # no agent: pods never become ready
        await scope.create("deployments", deployment("web", 1, progressDeadlineSeconds=1))

        async def timed_out() -> bool:
            st = (await scope.get("deployments", "web")).get("status") or {}
            return any(c["type"] == "Progressing" and c["status"] == "False"
                       and c["reason"] == "ProgressDeadlineExceeded"
                       for c in st.get("conditions") or [])
        await eventually(timed_out, timeout=10)
        code, out = await kubectl(server, "rollout", "status", "deployment/web", "-n",
                                  scope.namespace, "--timeout=10s")
        assert code != 0 and "exceeded its progress deadline" in out, out
    st = (await scope.get("deployments", "web"))["status"]
    available = next(c for c in st["conditions"] if c["type"] == "Available")
    assert (available["status"], available["reason"]) == ("False",
                                                          "MinimumReplicasUnavailable")


async def test_scaling_mid_rollout_is_proportional(api: ApiClient, scope: Scope) -> None:
    async with running(api, CONTROLLERS):
        spec = deployment("web", 10, strategy={"type": "RollingUpdate", "rollingUpdate": {
            "maxSurge": 3, "maxUnavailable": 2}})
        d = await scope.create("deployments", spec)
        async with fake_agent(scope):
            await eventually(rolled_out(scope, "web"), timeout=10)
        await set_image(scope, "web", "nginx:does-not-start")   # the agent is gone: stuck

        async def stuck() -> bool:
            sizes = sorted(rs["spec"]["replicas"] for rs in await replicasets(scope, d))
            return sizes == [5, 8]
        await eventually(stuck, timeout=5)
        await scope.patch("deployments", "web", {"spec": {"replicas": 15}})

        async def spread() -> bool:
            sizes = sorted(rs["spec"]["replicas"] for rs in await replicasets(scope, d))
            return sizes == [7, 11]
        await eventually(spread, timeout=5)


async def test_controller_restart_mid_rollout_converges(api: ApiClient, scope: Scope) -> None:
    check = Invariants(4, 1, 1)
    spec = deployment("web", 4, strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 1, "maxUnavailable": 1}})
    async with fake_agent(scope, per_tick=1, interval=0.1, observe=check):
        async with running(api, CONTROLLERS):
            d = await scope.create("deployments", spec)
            await eventually(rolled_out(scope, "web"), timeout=10)
            check.checking = True
            await set_image(scope, "web", "nginx:1.26")

            async def midway() -> bool:
                rss = await replicasets(scope, d)
                return len(rss) == 2 and all(rs["spec"]["replicas"] > 0 for rs in rss)
            await eventually(midway, timeout=10, interval=0.02)
        await asyncio.sleep(0.3)
        async with running(api, CONTROLLERS):
            await eventually(rolled_out(scope, "web"), timeout=15)
    assert sorted(rs["spec"]["replicas"] for rs in await replicasets(scope, d)) == [0, 4]
    assert len(await scope.list("pods")) == 4


async def test_min_ready_seconds_holds_availability_back(api: ApiClient, scope: Scope) -> None:
    seen: list[tuple[int, int]] = []
    async with running(api, CONTROLLERS), fake_agent(scope):
        await scope.create("deployments", deployment("web", 2, minReadySeconds=2))

        async def done() -> bool:
            st = (await scope.get("deployments", "web")).get("status") or {}
            seen.append((st.get("readyReplicas", 0), st.get("availableReplicas", 0)))
            return await rolled_out(scope, "web")()
        await eventually(done, timeout=10, interval=0.05)
    assert (2, 0) in seen, "ready pods are not available before minReadySeconds"
    assert seen[-1] == (2, 2)
