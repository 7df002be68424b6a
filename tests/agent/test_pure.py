"""The agent's pure parts: pod status from runtime state, node conditions, the renewal
schedule, and the hollow runtime's re-adoption."""

from __future__ import annotations

from datetime import UTC, datetime

from arktos.agent.backoff import Backoff
from arktos.agent.hollow import HollowRuntime, recover, simulate
from arktos.agent.nodestatus import NodeSpec, Probes, conditions, status_due, status_view
from arktos.agent.podplan import Planner
from arktos.agent.podstatus import Action, decide, grace_seconds, pod_status, status_changed
from arktos.agent.runtime import Obj, PodRuntimeStatus
from arktos.agent.schedule import RenewalSchedule

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def container_pod(uid: str = "u1") -> Obj:
    return {"metadata": {"name": "p", "uid": uid},
            "spec": {"nodeName": "n0", "containers": [{"name": "c", "image": "busybox"}]}}


def vm_pod(uid: str = "u2") -> Obj:
    return {"metadata": {"name": "v", "uid": uid},
            "spec": {"nodeName": "n0", "virtualMachine": {"name": "vm", "image": "tinyvm"}}}


def status_of(pod: Obj, rs: PodRuntimeStatus, *, host_ip: str = "h",
              now: datetime = NOW) -> Obj:
    plan = Planner(Backoff()).plan(pod, rs, 0.0, dry=True)
    return pod_status(pod, rs, plan, host_ip=host_ip, now=now)


def test_running_container_pod_status() -> None:
    pod = container_pod()
    status = status_of(pod, simulate(pod, NOW), host_ip="10.64.0.1")
    assert status["phase"] == "Running" and status["hostIP"] == "10.64.0.1"
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("PodScheduled", "True"), ("Initialized", "True"), ("ContainersReady", "True"),
        ("Ready", "True")]
    [cs] = status["containerStatuses"]
    assert cs["state"] == {"running": {"startedAt": "2024-05-01T12:00:00Z"}}
    assert cs["ready"] and cs["restartCount"] == 0 and cs["containerID"] == "hollow://u1/c"
    assert status["startTime"] == "2024-05-01T12:00:00Z" and status["podIP"].startswith("10.")


def test_running_vm_pod_status() -> None:
    pod = vm_pod()
    status = status_of(pod, simulate(pod, NOW))
    assert [c["type"] for c in status["conditions"]] == [
        "PodScheduled", "VirtualMachineReady", "Ready"]
    vm = status["virtualMachineStatus"]
    assert (vm["state"], vm["powerState"], vm["ready"], vm["restartCount"]) == (
        "Running", "Running", True, 0)
    assert "containerStatuses" not in status


def test_unchanged_status_is_not_written_again() -> None:
    pod = container_pod()
    rs = simulate(pod, NOW)
    pod["status"] = status_of(pod, rs)
    later = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
    again = status_of(pod, rs, now=later)
    assert not status_changed(pod, again)  # transition times kept


def test_decisions() -> None:
    pod = container_pod()
    assert decide(pod) is Action.RUN
    pod["metadata"].update(deletionTimestamp="x", deletionGracePeriodSeconds=7)
    assert decide(pod) is Action.STOP and grace_seconds(pod) == 7
    assert decide({"metadata": {}, "status": {"phase": "Succeeded"}}) is Action.NOTHING


def test_node_conditions_from_probes() -> None:
    both = {c["type"]: c["status"] for c in conditions(Probes(True, True), [], NOW)}
    assert both == {"Ready": "True", "ContainerRuntimeReady": "True", "VmRuntimeReady": "True",
                    "MemoryPressure": "False", "DiskPressure": "False"}
    no_vm = {c["type"]: c["status"] for c in conditions(Probes(True, None), [], NOW)}
    assert no_vm["Ready"] == "True" and no_vm["VmRuntimeReady"] == "False"
    broken = {c["type"]: c["status"] for c in conditions(Probes(False, True), [], NOW)}
    assert broken["Ready"] == "False"


def test_node_condition_transition_times_are_kept() -> None:
    first = conditions(Probes(True, True), [], NOW)
    later = datetime(2024, 5, 1, 13, tzinfo=UTC)
    second = conditions(Probes(True, False), first, later)
    by_type = {c["type"]: c for c in second}
    assert by_type["Ready"]["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert by_type["VmRuntimeReady"]["lastTransitionTime"] == "2024-05-01T13:00:00Z"
    assert by_type["Ready"]["lastHeartbeatTime"] == "2024-05-01T13:00:00Z"


def test_status_update_only_on_change_or_when_due() -> None:
    spec = NodeSpec("n", "10.0.0.1")
    assert status_view(spec, Probes(True, True)) != status_view(spec, Probes(True, False))
    assert status_due(changed=False, last_report=None, now=0, frequency=60)
    assert not status_due(changed=False, last_report=100, now=150, frequency=60)
    assert status_due(changed=False, last_report=100, now=160, frequency=60)
    assert status_due(changed=True, last_report=100, now=101, frequency=60)


def test_renewals_are_spread_over_the_period() -> None:
    sched = RenewalSchedule(period=10.0)
    sched.add_spread([f"n{i}" for i in range(5)], now=100.0)
    assert sched.pop_due(100.0) == ["n0"]
    assert sched.pop_due(104.0) == ["n1", "n2"]
    assert sched.next_due() == 106.0
    sched.push("n0", 110.0)
    sched.remove("n3")
    assert sched.pop_due(110.0) == ["n4", "n0"]
    assert sched.next_due() is None


async def test_hollow_runtime_starts_stops_and_adopts() -> None:
    rt = HollowRuntime()
    pod = container_pod()
    await rt.start_sandbox(pod)
    await rt.start_container(pod, "c", 0)
    rs = await rt.pod_status("u1")
    assert rs is not None and rt.starts == 1 and await rt.list_pods() == [rs]
    pod["status"] = status_of(pod, rs)
    await rt.remove_pod("u1", 0)
    assert await rt.pod_status("u1") is None
    fresh = HollowRuntime()  # the agent restarted: the runtime is empty
    adopted = await fresh.adopt(pod)
    assert adopted is not None and fresh.starts == 0
    assert adopted.ip == rs.ip and adopted.started_at == rs.started_at
    assert not status_changed(pod, status_of(pod, adopted))
    assert await fresh.adopt(container_pod("u9")) is None  # never ran: start it instead


def test_recover_keeps_vm_restart_count() -> None:
    pod = vm_pod()
    pod["status"] = {"phase": "Running", "startTime": "2024-05-01T12:00:00Z",
                     "podIP": "10.1.2.3", "virtualMachineStatus": {"restartCount": 2}}
    rs = recover(pod)
    assert rs.vm is not None and rs.vm.restart_count == 2 and rs.ip == "10.1.2.3"


async def test_start_soon_refuses_quietly_once_the_group_stops() -> None:
    import asyncio
    import gc
    import warnings

    from arktos.agent.tasks import start_soon
    ran: list[int] = []

    async def work() -> None:
        ran.append(1)
    async with asyncio.TaskGroup() as tg:
        assert start_soon(tg, work())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a refused coroutine is closed, never "not awaited"
        assert not start_soon(tg, work())
        gc.collect()
    assert ran == [1]
