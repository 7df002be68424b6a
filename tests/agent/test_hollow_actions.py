"""VM actions carried out by the agent (on hollow nodes, real API server): phases and results,
bad requests failing clearly, resumption after an agent restart, and expiry after the TTL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from arktos.agent.actions import resume_verdict
from arktos.agent.agent import Agent, hollow_nodes
from arktos.agent.hollow import HollowRuntime
from arktos.agent.nodestatus import fmt
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from tests.agent.test_hollow_agent import FAST, container_pod, get_pod, running, vm_pod
from tests.waiting import eventually, in_background

pytestmark = pytest.mark.xdist_group("agent")


async def act(api: ApiClient, pod: str, body: dict[str, Any]) -> str:
    """POST pods/{pod}/action; the name of the Action made."""
    status = await api.request("POST", f"/api/v1/tenants/system/namespaces/default/pods/{pod}"
                               "/action", body={"apiVersion": "v1", "kind": "CustomAction",
                                                **body})
    uid = status["details"]["uid"]
    items = (await ResourceClient(api, "actions").list(namespace="default",
                                                        tenant="system")).items
    return str(next(a for a in items if a["metadata"]["uid"] == uid)["metadata"]["name"])


async def finished(api: ApiClient, name: str, timeout: float = 10) -> dict[str, Any]:
    actions = ResourceClient(api, "actions")

    async def done() -> bool:
        got = await actions.get(name, namespace="default", tenant="system")
        return got.get("status", {}).get("phase") in ("Succeeded", "Failed")
    await eventually(done, timeout=timeout)
    action: dict[str, Any] = await actions.get(name, namespace="default", tenant="system")
    return action


async def test_reboot_snapshot_restore_and_failures(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    prefix = unique("ha") + "-"
    vm, box = unique("vm"), unique("box")
    pods = ResourceClient(api, "pods")
    async with in_background(Agent(api, hollow_nodes(2, prefix, HollowRuntime()),
                                   FAST).run()):
        await pods.create(vm_pod(vm, f"{prefix}0"))
        await pods.create(container_pod(box, f"{prefix}1"))
        await eventually(running(api, vm), timeout=10)
        await eventually(running(api, box), timeout=10)

        before = datetime.now(UTC)
        reboot = await finished(api, await act(api, vm, {
            "operation": "reboot", "rebootParams": {"delayInSeconds": 1}}))
        status = reboot["status"]
        assert status["phase"] == "Succeeded" and status["complete"] is True
        assert status["rebootStatus"] == {"rebootSuccessful": True}
        took = datetime.fromisoformat(status["completionTime"]) - before
        assert took >= timedelta(seconds=0.5), "the reboot delay was not honoured"

        async def restarted() -> bool:
            vms = (await get_pod(api, vm))["status"]["virtualMachineStatus"]
            return bool(vms["restartCount"] == 1)
        await eventually(restarted, timeout=5)

        snap = await finished(api, await act(api, vm, {
            "operation": "snapshot", "snapshotParams": {"snapshotName": "s1"}}))
        assert snap["status"]["snapshotStatus"] == {"snapshotID": "s1"}

        async def listed() -> bool:
            vms = (await get_pod(api, vm))["status"]["virtualMachineStatus"]
            return bool(vms.get("snapshots") == ["s1"])
        await eventually(listed, timeout=5)
        restore = await finished(api, await act(api, vm, {
            "operation": "restore", "restoreParams": {"snapshotID": "s1"}}))
        assert restore["status"]["restoreStatus"] == {"restoreSuccessful": True}

        missing = await finished(api, await act(api, vm, {
            "operation": "restore", "restoreParams": {"snapshotID": "nope"}}))
        assert missing["status"]["phase"] == "Failed"
        assert "nope" in missing["status"]["error"]
        on_box = await finished(api, await act(api, box, {"operation": "reboot"}))
        assert on_box["status"]["phase"] == "Failed"
        assert "only supported for VM pods" in on_box["status"]["error"]


async def test_finished_actions_expire_and_running_ones_resume(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    prefix = unique("hx") + "-"
    vm = unique("vm")
    pods, actions = ResourceClient(api, "pods"), ResourceClient(api, "actions")
    settings = replace(FAST, action_ttl=1.0)
    async with in_background(Agent(api, hollow_nodes(1, prefix, HollowRuntime()),
                                   settings).run()):
        await pods.create(vm_pod(vm, f"{prefix}0"))
        await eventually(running(api, vm), timeout=10)
        done = await finished(api, await act(api, vm, {
            "operation": "snapshot", "snapshotParams": {"snapshotName": "a"}}))

        async def expired() -> bool:
            try:
                await actions.get(done["metadata"]["name"], namespace="default",
                                  tenant="system")
            except ApiError as exc:
                return bool(exc.not_found)
            return False
        await eventually(expired, timeout=10)
    # An action left Running by an agent that died: a snapshot is redone by the next agent.
    name = await act(api, vm, {"operation": "snapshot", "snapshotParams": {"snapshotName": "b"}})
    await actions.patch(name, {"status": {"phase": "Running", "startTime": fmt(
        datetime.now(UTC))}}, namespace="default", tenant="system", subresource="status")
    async with in_background(Agent(api, hollow_nodes(1, prefix, HollowRuntime()),
                                   settings).run()):
        resumed = await finished(api, name)
    assert resumed["status"]["phase"] == "Succeeded"
    assert resumed["status"]["snapshotStatus"] == {"snapshotID": "b"}


def test_interrupted_reboot_is_failed_not_repeated_once_its_delay_passed() -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    action = {"spec": {"rebootAction": {"delayInSeconds": 30}},
              "status": {"phase": "Running", "startTime": fmt(now)}}
    assert resume_verdict(action, now + timedelta(seconds=10)) is None
    verdict = resume_verdict(action, now + timedelta(seconds=31))
    assert verdict is not None and "not repeated" in verdict
    snapshot = {"spec": {"snapshotAction": {"snapshotName": "x"}}, "status": action["status"]}
    assert resume_verdict(snapshot, now + timedelta(days=1)) is None
