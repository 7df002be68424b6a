"""The agent's pod planning (pure): init order, restart policies, back-off, phases, VM power."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from arktos.agent.backoff import Backoff
from arktos.agent.podplan import Failure, Planner
from arktos.agent.podstatus import pod_status
from arktos.agent.runtime import ContainerState, Obj, PodRuntimeStatus, VmState

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def pod(policy: str = "Always", inits: int = 0) -> Obj:
    return {"metadata": {"uid": "u", "name": "p"},
            "spec": {"restartPolicy": policy,
                     "initContainers": [{"name": f"i{n}", "image": "b"} for n in range(inits)],
                     "containers": [{"name": "a", "image": "b"}, {"name": "b", "image": "b"}]}}


def c(name: str, state: str, code: int | None = None, attempt: int = 0) -> ContainerState:
    return ContainerState(name, "img", state, started_at=T0, exit_code=code,
                          finished_at=T0 + timedelta(seconds=1) if code is not None else None,
                          restart_count=attempt)


def rs(*containers: ContainerState, vm: VmState | None = None) -> PodRuntimeStatus:
    return PodRuntimeStatus("u", "10.0.0.1", T0, containers=containers, vm=vm)


def test_new_pod_gets_a_sandbox_and_all_containers() -> None:
    plan = Planner(Backoff()).plan(pod(), None, 0)
    assert plan.sandbox and plan.start == [("a", 0), ("b", 0)] and plan.phase == "Pending"


def test_init_containers_run_one_at_a_time_in_order() -> None:
    planner = Planner(Backoff())
    assert planner.plan(pod(inits=2), rs(), 0).start == [("i0", 0)]
    assert planner.plan(pod(inits=2), rs(c("i0", "running")), 0).start == []
    plan = planner.plan(pod(inits=2), rs(c("i0", "terminated", 0)), 0)
    assert plan.start == [("i1", 0)] and plan.phase == "Pending"
    done = rs(c("i0", "terminated", 0), c("i1", "terminated", 0))
    assert planner.plan(pod(inits=2), done, 0).start == [("a", 0), ("b", 0)]


def test_failed_init_container_fails_the_pod_under_never() -> None:
    plan = Planner(Backoff()).plan(pod("Never", inits=1), rs(c("i0", "terminated", 1)), 0)
    assert plan.phase == "Failed" and plan.start == []
    retry = Planner(Backoff()).plan(pod("Always", inits=1), rs(c("i0", "terminated", 1)), 0)
    assert retry.start == [("i0", 1)]


def test_restart_policies_and_phases() -> None:
    ok, bad = c("a", "terminated", 0), c("b", "terminated", 2)
    never = Planner(Backoff()).plan(pod("Never"), rs(ok, c("b", "terminated", 0)), 0)
    assert never.start == [] and never.phase == "Succeeded"
    assert Planner(Backoff()).plan(pod("Never"), rs(ok, bad), 0).phase == "Failed"
    on_failure = Planner(Backoff()).plan(pod("OnFailure"), rs(ok, bad), 0)
    assert on_failure.start == [("b", 1)] and on_failure.phase == "Running"
    always = Planner(Backoff()).plan(pod("Always"), rs(ok, bad), 0)
    assert always.start == [("a", 1), ("b", 1)]


def test_crash_loop_back_off_grows() -> None:
    planner = Planner(Backoff(initial=10, maximum=40))
    one = pod()
    one["spec"]["containers"] = [{"name": "a", "image": "b"}]
    assert planner.plan(one, rs(c("a", "terminated", 1)), 0).start == [("a", 1)]
    waits = []
    now = 0.0
    for attempt in range(1, 5):
        plan = planner.plan(one, rs(c("a", "terminated", 1, attempt)), now + 1)
        assert plan.start == [] and plan.waiting["a"][0] == "CrashLoopBackOff"
        assert plan.wake is not None
        waits.append(plan.wake - now)
        now = plan.wake
        assert planner.plan(one, rs(c("a", "terminated", 1, attempt)), now).start == [
            ("a", attempt + 1)]
    assert waits == [10, 20, 40, 40]


def test_failed_pull_waits_then_retries() -> None:
    planner = Planner(Backoff(initial=5))
    planner.failed("u", "a", Failure("ErrImagePull", "no such image"), 0)
    plan = planner.plan(pod(), rs(), 1)
    assert plan.start == [("b", 0)] and plan.waiting["a"][0] == "ImagePullBackOff"
    assert plan.wake == 5 and planner.plan(pod(), rs(), 5).start == [("a", 0), ("b", 0)]


def test_status_shows_waiting_reason_and_last_state() -> None:
    p = pod()
    prev = c("a", "terminated", 3)
    now = rs(c("a", "terminated", 3, attempt=1), c("b", "running"))
    now = PodRuntimeStatus("u", "10.0.0.1", T0, containers=now.containers, previous=(prev,))
    planner = Planner(Backoff())
    planner.backoff.next("u", "a", 0)
    plan = planner.plan(p, now, 1, dry=True)
    status = pod_status(p, now, plan, host_ip="h", now=T0)
    a = status["containerStatuses"][0]
    assert a["state"]["waiting"]["reason"] == "CrashLoopBackOff" and a["restartCount"] == 1
    assert a["lastState"]["terminated"]["exitCode"] == 3 and not a["ready"]
    assert status["phase"] == "Running"
    assert {x["type"]: x["status"] for x in status["conditions"]}["Ready"] == "False"


def vm_pod(power: str = "Running", policy: str = "Always") -> Obj:
    return {"metadata": {"uid": "u"}, "spec": {"restartPolicy": policy, "virtualMachine": {
        "name": "vm", "image": "tinyvm", "powerSpec": power}}}


def vm(state: str, power: str = "Running", code: int | None = None) -> VmState:
    return VmState("vm", "tinyvm", state, exit_code=code, power_state=power)


def test_vm_power_follows_power_spec() -> None:
    planner = Planner(Backoff())
    assert planner.plan(vm_pod(), None, 0).start == [("vm", 0)]
    assert planner.plan(vm_pod("Shutdown"), None, 0).start == []
    assert planner.plan(vm_pod("Paused"), rs(vm=vm("running")), 0).power == "Paused"
    assert planner.plan(vm_pod("Shutdown"), rs(vm=vm("running")), 0).power == "Shutdown"
    off = rs(vm=vm("terminated", "Shutdown", 0))
    assert planner.plan(vm_pod("Shutdown"), off, 0).power is None
    back = planner.plan(vm_pod("Running"), off, 0)
    assert back.power == "Running" and back.start == [] and back.phase == "Running"


def test_vm_that_stops_by_itself_follows_restart_policy() -> None:
    crashed = rs(vm=vm("terminated", code=1))
    assert Planner(Backoff()).plan(vm_pod(), crashed, 0).start == [("vm", 1)]
    plan = Planner(Backoff()).plan(vm_pod(policy="Never"), crashed, 0)
    assert plan.start == [] and plan.phase == "Failed"
