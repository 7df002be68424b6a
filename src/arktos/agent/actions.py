"""VM actions (Arktos' Action API, made reliable): the agent of the pod's node carries out
reboot, snapshot and restore, and reports each action's phase Pending -> Running ->
Succeeded | Failed with its times and result.

Reliability: an action is marked Running (with its start time) before the work starts, so an
agent restarted mid-way finds it Running and resumes it (snapshot and restore are redone:
both are idempotent; a reboot whose delay has not yet passed is resumed) or fails it with a
message saying why (a reboot whose reset may already have happened is not repeated). Finished
actions are deleted `action_ttl` seconds after their completion.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

from arktos.agent.node import AgentNode
from arktos.agent.nodestatus import fmt_micro as fmt
from arktos.agent.podstatus import is_vm_pod
from arktos.agent.runtime import Obj, RuntimeFailure, VmRuntime
from arktos.agent.tasks import start_soon
from arktos.api.meta import parse_time
from arktos.client.informer import Handler
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from arktos.client.store import Indexer, key_of, make_key, split_key

log = logging.getLogger(__name__)
DONE = ("Succeeded", "Failed")


def operation(action: Obj) -> tuple[str, Obj]:
    """(`reboot`|`snapshot`|`restore`, its parameters) of an action."""
    spec = action.get("spec") or {}
    for field, op in (("rebootAction", "reboot"), ("snapshotAction", "snapshot"),
                      ("restoreAction", "restore")):
        if isinstance(spec.get(field), dict):
            return op, spec[field]
    return "", {}


def resume_verdict(action: Obj, now: datetime) -> str | None:
    """Why an action found Running (the agent restarted) is failed rather than redone; None
    when it is safe to go on."""
    op, params = operation(action)
    if op != "reboot":
        return None
    started = parse_time((action.get("status") or {}).get("startTime"))
    delay = int(params.get("delayInSeconds") or 0)
    if started is not None and now < started + timedelta(seconds=delay):
        return None
    return ("the node agent restarted while this reboot was running; it is not repeated "
            "because the guest may already have been reset")


def result(op: str, outcome: str | None, error: str) -> Obj:
    """The status fields of a finished action (`outcome`: the snapshot id, if any)."""
    ok = not error
    status: Obj = {"phase": "Succeeded" if ok else "Failed", "complete": True,
                   "error": error, "completionTime": fmt(datetime.now(UTC))}
    if op == "reboot":
        status["rebootStatus"] = {"rebootSuccessful": ok}
    elif op == "snapshot":
        status["snapshotStatus"] = {"snapshotID": outcome or ""}
    elif op == "restore":
        status["restoreStatus"] = {"restoreSuccessful": ok}
    return status


class ActionRunner:
    """Runs the actions of `nodes`' VM pods, as an action informer's store shows them."""

    def __init__(self, api: ApiClient, nodes: dict[str, AgentNode], store: Indexer,
                 pods: Indexer, *, ttl: float, kick_pod: Callable[[str], None]) -> None:
        self.actions = ResourceClient(api, "actions")
        self.nodes = nodes
        self.store = store
        self.pods = pods
        self.ttl = ttl
        self.kick_pod = kick_pod
        self._running: set[str] = set()
        self._tg: asyncio.TaskGroup | None = None

    def handler(self) -> Handler:
        return Handler(on_add=self._changed, on_update=lambda _o, new: self._changed(new))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for action in self.store.objects():
                self._changed(action)
            await asyncio.Event().wait()

    def _changed(self, action: Obj) -> None:
        if self._tg is None or (action.get("spec") or {}).get("nodeName") not in self.nodes:
            return
        key = key_of(action)
        status = action.get("status") or {}
        if status.get("phase") in DONE or status.get("complete") is True:
            self._expire_later(key, status)
        elif key not in self._running:
            self._running.add(key)
            if not start_soon(self._tg, self._carry_out(key)):
                self._running.discard(key)

    def _expire_later(self, key: str, status: Obj) -> None:
        done = parse_time(status.get("completionTime"))
        left = self.ttl if done is None else (
            done + timedelta(seconds=self.ttl) - datetime.now(UTC)).total_seconds()
        asyncio.get_running_loop().call_later(max(0.0, left), self._expire, key)

    def _expire(self, key: str) -> None:
        if self._tg is not None and self.store.get(key) is not None:
            start_soon(self._tg, self._delete(key))

    async def _delete(self, key: str) -> None:
        tenant, namespace, name = split_key(key)
        try:
            await self.actions.delete(name, namespace=namespace, tenant=tenant)
        except ApiError as exc:
            if not exc.not_found:
                log.warning("deleting expired action %s: %s", key, exc)

    async def _carry_out(self, key: str) -> None:
        try:
            action = self.store.get(key)
            if action is not None:
                await self._execute(key, action)
        except ApiError as exc:
            log.warning("action %s: %s", key, exc)
        finally:
            self._running.discard(key)

    async def _execute(self, key: str, action: Obj) -> None:
        op, params = operation(action)
        status = action.get("status") or {}
        if status.get("phase") == "Running":
            verdict = resume_verdict(action, datetime.now(UTC))
            if verdict is not None:
                await self._write(key, result(op, None, verdict))
                return
        else:
            await self._write(key, {"phase": "Running", "startTime": fmt(datetime.now(UTC))})
            status = {"startTime": fmt(datetime.now(UTC))}
        outcome, error = None, ""
        try:
            outcome = await self._do(action, op, params, status)
        except RuntimeFailure as exc:
            error = exc.message
        await self._write(key, result(op, outcome, error))

    async def _do(self, action: Obj, op: str, params: Obj, status: Obj) -> str | None:
        """Carry out `op` on the action's pod; the snapshot id for snapshots."""
        tenant, namespace, _ = split_key(key_of(action))
        pod_name = str((action.get("spec") or {}).get("podName", ""))
        pod = self.pods.get(make_key(tenant, namespace, pod_name))
        node = self.nodes.get(str((pod or {}).get("spec", {}).get("nodeName", "")))
        if pod is None or node is None:
            raise RuntimeFailure("PodNotFound", f"pod {pod_name} is not on this node")
        runtime = node.runtime_for(pod)
        if not is_vm_pod(pod) or runtime is None or not runtime.runs_vms:
            raise RuntimeFailure("NotAVirtualMachine", f"{op} is only supported for VM pods; "
                                 f"pod {pod_name} runs containers")
        vm = cast(VmRuntime, runtime)
        uid = str(pod["metadata"].get("uid", ""))
        try:
            return await self._op(vm, uid, op, params, status)
        finally:
            self.kick_pod(key_of(pod))

    @staticmethod
    async def _op(vm: VmRuntime, uid: str, op: str, params: Obj, status: Obj) -> str | None:
        if op == "reboot":
            started = parse_time(status.get("startTime")) or datetime.now(UTC)
            due = started + timedelta(seconds=int(params.get("delayInSeconds") or 0))
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            await vm.reboot(uid)
            return None
        if op == "snapshot":
            return await vm.snapshot(uid, str(params.get("snapshotName", "")))
        if op == "restore":
            await vm.restore(uid, str(params.get("snapshotID", "")))
            return None
        raise RuntimeFailure("UnknownOperation", f"unknown operation {op!r}")

    async def _write(self, key: str, status: Obj) -> None:
        tenant, namespace, name = split_key(key)
        await self.actions.patch(name, {"status": status}, namespace=namespace, tenant=tenant,
                                 subresource="status")
