"""What a pod needs next (the kubelet's `computePodActions`), decided from its spec, what the
runtime reports and the back-off state. Pure: no I/O, the caller passes the time.

Init containers run one at a time in order, each to success; then every regular container
runs, and is restarted as `restartPolicy` says (Always, OnFailure, Never) after a growing
back-off (CrashLoopBackOff). A VM pod has one "container", its VM, with the same restart rules;
its `powerSpec` (Running, Paused, Shutdown) is applied on top: a VM powered off on purpose
is not restarted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arktos.agent.backoff import Backoff
from arktos.agent.runtime import ContainerState, Obj, PodRuntimeStatus

PULL = "pull:"
"""Back-off key prefix of image pulls (a failed pull waits like a crash)."""


@dataclass(frozen=True)
class Failure:
    """The last failed start of a container: the runtime's reason and message."""

    reason: str
    message: str


@dataclass
class Plan:
    """What to do now, and what to report meanwhile."""

    sandbox: bool = False
    """Create the sandbox first."""
    start: list[tuple[str, int]] = field(default_factory=list)
    """(container, attempt) to start, in order."""
    power: str | None = None
    """A VM's power to set (`Running`, `Paused`, `Shutdown`)."""
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Container -> (reason, message) while it waits (CrashLoopBackOff, ErrImagePull...)."""
    wake: float | None = None
    """Time at which the pod must be looked at again (a back-off ends)."""
    phase: str = "Pending"


def specs(pod: Obj, key: str) -> list[dict[str, Any]]:
    return [c for c in (pod.get("spec") or {}).get(key) or () if isinstance(c, dict)]


def restart_policy(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("restartPolicy") or "Always")


def should_restart(policy: str, c: ContainerState) -> bool:
    if policy == "Always":
        return True
    return policy == "OnFailure" and (c.exit_code or 0) != 0


def waiting_reason(failure: Failure | None, delay: float, name: str,
                   uid: str) -> tuple[str, str]:
    """(reason, message) of a container held by its back-off: after a failed start, that
    failure (a failed pull shows as ImagePullBackOff); after crashes, CrashLoopBackOff."""
    if failure is None:
        return ("CrashLoopBackOff",
                f"back-off {delay:g}s restarting failed container={name} pod={uid}")
    if failure.reason == "ErrImagePull":
        return "ImagePullBackOff", f"Back-off pulling image: {failure.message}"
    return failure.reason, failure.message


class Planner:
    """Plans one pod at a time against the shared back-off and failure records."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.failures: dict[tuple[str, str], Failure] = {}
        self._dry = False

    def plan(self, pod: Obj, rs: PodRuntimeStatus | None, now: float, *,
             dry: bool = False) -> Plan:
        """What `pod` needs now. Planned starts count against the back-off unless `dry`
        (a dry plan only tells the phase and what waits, e.g. for the status)."""
        self._dry = dry
        plan = Plan(sandbox=rs is None)
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        vm = (pod.get("spec") or {}).get("virtualMachine")
        if isinstance(vm, dict):
            self._plan_vm(plan, uid, vm, pod, rs, now)
            return plan
        if not self._plan_inits(plan, uid, pod, rs, now):
            return plan
        policy = restart_policy(pod)
        states = []
        for spec in specs(pod, "containers"):
            name = str(spec.get("name", ""))
            current = rs.container(name) if rs else None
            self._one(plan, uid, name, current, policy, now)
            states.append(current)
        plan.phase = _phase(states, policy, plan)
        return plan

    def _plan_inits(self, plan: Plan, uid: str, pod: Obj, rs: PodRuntimeStatus | None,
                    now: float) -> bool:
        """Plans the first unfinished init container; True when all have succeeded."""
        policy = "Never" if restart_policy(pod) == "Never" else "OnFailure"
        for spec in specs(pod, "initContainers"):
            name = str(spec.get("name", ""))
            current = rs.container(name) if rs else None
            if current is not None and current.state == "terminated" and not current.exit_code:
                continue
            if (current is not None and current.state == "terminated" and policy == "Never"):
                plan.phase = "Failed"
                return False
            self._one(plan, uid, name, current, policy, now)
            plan.phase = "Pending"
            return False
        return True

    def _one(self, plan: Plan, uid: str, name: str, current: ContainerState | None,
             policy: str, now: float) -> None:
        """Start or restart one container if it needs it and its back-off allows."""
        if current is None:
            self._start(plan, uid, name, 0, now)
        elif current.state == "terminated" and should_restart(policy, current):
            self._start(plan, uid, name, current.restart_count + 1, now, current)

    def _start(self, plan: Plan, uid: str, name: str, attempt: int, now: float,
               ended: ContainerState | None = None) -> None:
        """Plan a start unless a back-off holds it: a restart waits on the container's
        back-off (keyed by its name), any start on its failed pulls (`PULL` + name)."""
        key = name if ended is not None else PULL + name
        until = max(self.backoff.until(uid, key), self.backoff.until(uid, PULL + name))
        if now < until:
            plan.waiting[name] = waiting_reason(self.failures.get((uid, name)),
                                                self.backoff.delay(uid, key), name, uid)
            plan.wake = until if plan.wake is None else min(plan.wake, until)
            return
        if ended is not None and not self._dry:
            ran = 0.0
            if ended.started_at and ended.finished_at:
                ran = (ended.finished_at - ended.started_at).total_seconds()
            self.backoff.next(uid, key, now, ran)
        plan.start.append((name, attempt))

    def _plan_vm(self, plan: Plan, uid: str, vm: dict[str, Any], pod: Obj,
                 rs: PodRuntimeStatus | None, now: float) -> None:
        name = str(vm.get("name", "vm"))
        power = str(vm.get("powerSpec") or "Running")
        current = rs.vm if rs else None
        if current is None:
            if power != "Shutdown":
                self._start(plan, uid, name, 0, now)
            plan.phase = "Running" if power == "Shutdown" and rs is not None else "Pending"
            return
        plan.phase = "Running"
        if current.state != "terminated":
            if current.power_state != power:
                plan.power = power
            return
        if power == "Shutdown":
            return
        if current.power_state == "Shutdown":  # powered off on purpose: power it on again
            plan.power = power
            return
        policy = restart_policy(pod)
        if not should_restart(policy, current):
            plan.phase = "Failed" if current.exit_code else "Succeeded"
            return
        self._one(plan, uid, name, current, policy, now)

    def failed(self, uid: str, name: str, failure: Failure, now: float) -> None:
        """Record a failed start: the next try waits (ImagePullBackOff & co)."""
        self.failures[(uid, name)] = failure
        self.backoff.next(uid, PULL + name, now)

    def started(self, uid: str, name: str) -> None:
        self.failures.pop((uid, name), None)

    def forget(self, uid: str) -> None:
        self.backoff.forget(uid)
        for key in [k for k in self.failures if k[0] == uid]:
            del self.failures[key]


def _phase(states: list[ContainerState | None], policy: str, plan: Plan) -> str:
    """The kubelet's pod phase from its regular containers."""
    if any(s is None or s.state == "waiting" for s in states):
        return "Pending"
    if any(s is not None and s.state == "running" for s in states) or plan.start:
        return "Running"
    terminated = [s for s in states if s is not None]
    if policy == "Always" or (policy == "OnFailure" and any(s.exit_code for s in terminated)):
        return "Running"
    return "Failed" if any(s.exit_code for s in terminated) else "Succeeded"
