"""The Pod kind: containers or one VM; its update rules, status checks and table columns.

No I/O here.
"""

from __future__ import annotations

import copy
from typing import Any

from arktos.api.errors import Cause
from arktos.api.kinds._checks import (
    MAX_INT32,
    Fields,
    count,
    dicts,
    dig,
    forbidden,
    invalid,
    ip_errors,
    number,
    section,
    text,
)
from arktos.api.kinds.podspec import check_pod_spec, default_pod_spec
from arktos.api.resources import Column, Obj, ResourceType, Scope

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown", "NoSchedule")
"""Kubernetes' pod phases plus Arktos' `NoSchedule` (a VM powered off)."""
UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`, "
    "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` "
    "(only additions to existing tolerations), `spec.nics` or `spec.virtualMachine` "
    "(except its name)")


def validate_pod(obj: Obj, old: Obj | None) -> list[Cause]:
    """The spec (containers or one VM), the status shape, and on update what may change."""
    causes = check_pod_spec(obj.get("spec"), "spec")
    causes += _status_causes(obj.get("status"))
    if old is not None and isinstance(obj.get("spec"), dict):
        causes += update_causes(obj["spec"], old.get("spec"))
    return causes


def _status_causes(value: Any) -> list[Cause]:
    causes: list[Cause] = []
    status = Fields.of(value, "status", causes)
    if status is None:
        return causes
    status.choice("phase", PHASES)
    for key in ("podIP", "hostIP"):
        status.string(key, check=ip_errors)
    for key in ("reason", "message", "nominatedNodeName", "qosClass", "startTime"):
        status.string(key)
    for key in ("conditions", "containerStatuses", "initContainerStatuses", "nicStatuses"):
        status.objects(key)
    vm = status.sub("virtualMachineStatus")
    if vm is not None:
        vm.boolean("ready")
        vm.integer("restartCount", lo=0)
    return causes


def default_pod(obj: Obj) -> None:
    """Pod spec defaults (the service account is `default` unless named, as kube's
    ServiceAccount admission), and phase Pending for a new pod."""
    spec = obj.get("spec")
    default_pod_spec(spec)
    if isinstance(spec, dict) and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    status = section(obj, "status")
    if status is not None and not status.get("phase"):
        status["phase"] = "Pending"


# --- updates ------------------------------------------------------------------------------

def update_causes(new: dict[str, Any], old: Any) -> list[Cause]:
    """Kubernetes' `ValidatePodUpdate` plus Arktos' mutable VM and NICs."""
    if not isinstance(old, dict):
        return []
    causes = []
    for key in ("containers", "initContainers"):
        n, o = new.get(key), old.get(key)
        if isinstance(n, list) and isinstance(o, list) and len(n) != len(o):
            causes.append(forbidden(f"spec.{key}", "pod updates may not add or remove containers"))
    causes += _deadline_causes(new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds"))
    causes += _toleration_causes(new.get("tolerations"), old.get("tolerations"))
    causes += _nic_causes(new.get("nics"), old.get("nics"))
    if not causes and _munged(new, old) != old:
        causes.append(forbidden("spec", UPDATE_FORBIDDEN))
    return causes


def _keep(dst: dict[str, Any], src: dict[str, Any], key: str) -> None:
    """Make `dst[key]` what `src` has (absent if absent)."""
    if key in src:
        dst[key] = src[key]
    else:
        dst.pop(key, None)


def _munged(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """`new` with every mutable field set back to its old value."""
    out = copy.deepcopy(new)
    for key in ("containers", "initContainers"):
        pairs = zip(dicts(out.get(key)), dicts(old.get(key)))
        for mine, theirs in pairs:
            _keep(mine, theirs, "image")
    for key in ("activeDeadlineSeconds", "tolerations", "nics", "workloadInfo"):
        _keep(out, old, key)
    vm, old_vm = out.get("virtualMachine"), old.get("virtualMachine")
    if isinstance(vm, dict) and isinstance(old_vm, dict):
        out["virtualMachine"] = {**old_vm, "name": vm.get("name")} if "name" in vm else old_vm
    return out


def _deadline_causes(new: Any, old: Any) -> list[Cause]:
    path = "spec.activeDeadlineSeconds"
    if new is None:
        return ([invalid(path, None, "must not update from a positive integer to nil value")]
                if old is not None else [])
    if not isinstance(new, int) or isinstance(new, bool) or not 0 <= new <= MAX_INT32:
        return []  # the spec checks report it
    if isinstance(old, int) and new > old:
        return [invalid(path, new, "must be less than or equal to previous value")]
    return []


def _toleration_key(t: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in t.items() if k != "tolerationSeconds"}


def _toleration_causes(new: Any, old: Any) -> list[Cause]:
    """Existing tolerations stay (only their `tolerationSeconds` may change)."""
    kept = [_toleration_key(t) for t in dicts(new)]
    if all(_toleration_key(t) in kept for t in dicts(old)):
        return []
    return [forbidden("spec.tolerations",
                      "existing toleration can not be modified except its tolerationSeconds")]


def _nic_causes(new: Any, old: Any) -> list[Cause]:
    """Arktos: NICs may come and go, but not `eth0`, and a set `portId` never changes."""
    new_nics = {n.get("name"): n for n in dicts(new)}
    causes = []
    for nic in dicts(old):
        name = nic.get("name")
        if name == "eth0" and name not in new_nics:
            causes.append(forbidden("spec.nics", "pod updates may not delete primary nic eth0"))
        elif nic.get("portId") and name in new_nics and new_nics[name].get("portId") != nic.get(
                "portId"):
            causes.append(forbidden("spec.nics", f"pod updates may not modify {name} portId"))
    return causes


# --- table --------------------------------------------------------------------------------

def _is_vm(pod: Obj) -> bool:
    return isinstance(dig(pod, "spec", "virtualMachine"), dict)


def pod_ready(pod: Obj) -> str:
    """`ready/total` containers; a VM pod is `1/1` when its VM reports ready."""
    if _is_vm(pod):
        return "1/1" if dig(pod, "status", "virtualMachineStatus", "ready") is True else "0/1"
    statuses = dicts(dig(pod, "status", "containerStatuses"))
    ready = sum(1 for s in statuses if s.get("ready") is True)
    return f"{ready}/{count(dig(pod, 'spec', 'containers'))}"


def pod_restarts(pod: Obj) -> int:
    """Restarts of all containers, or of the VM."""
    if _is_vm(pod):
        return number(dig(pod, "status", "virtualMachineStatus", "restartCount"))
    return sum(number(s.get("restartCount")) for s in dicts(dig(pod, "status",
                                                                "containerStatuses")))


def _terminated(state: Any, prefix: str = "") -> str:
    reason = dig(state, "terminated", "reason")
    if isinstance(reason, str) and reason:
        return prefix + reason
    signal = number(dig(state, "terminated", "signal"))
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{number(dig(state, 'terminated', 'exitCode'))}"


def _init_status(pod: Obj) -> str | None:
    """kubectl's `Init:...` status while init containers have not all succeeded."""
    total = count(dig(pod, "spec", "initContainers"))
    for i, s in enumerate(dicts(dig(pod, "status", "initContainerStatuses"))):
        state = s.get("state")
        if isinstance(dig(state, "terminated"), dict):
            if number(dig(state, "terminated", "exitCode")) == 0:
                continue
            return _terminated(state, "Init:")
        waiting = dig(state, "waiting", "reason")
        if isinstance(waiting, str) and waiting and waiting != "PodInitializing":
            return f"Init:{waiting}"
        return f"Init:{i}/{total}"
    return None


def pod_status(pod: Obj) -> str:
    """kubectl's STATUS: Terminating, Init:..., a container's reason, status.reason or phase."""
    status_reason = dig(pod, "status", "reason")
    if dig(pod, "metadata", "deletionTimestamp"):
        return "Unknown" if status_reason == "NodeLost" else "Terminating"
    reason = text(dig(pod, "status", "phase"), "Unknown")
    if isinstance(status_reason, str) and status_reason:
        reason = status_reason
    init = _init_status(pod)
    if init is not None:
        return init
    running = False
    for s in reversed(dicts(dig(pod, "status", "containerStatuses"))):
        state = s.get("state")
        waiting = dig(state, "waiting", "reason")
        if isinstance(waiting, str) and waiting:
            reason = waiting
        elif isinstance(dig(state, "terminated"), dict):
            reason = _terminated(state)
        elif s.get("ready") is True and dig(state, "running") is not None:
            running = True
    return "Running" if reason == "Completed" and running else reason


def _field(*keys: str) -> Any:
    return lambda o: text(dig(o, *keys), "")


POD = ResourceType(
    "", "v1", "Pod", "pods", Scope.NAMESPACE, short_names=("po",),
    subresources=frozenset({"status", "binding", "action", "log"}),
    validate=validate_pod, default=default_pod,
    columns=(
        Column("READY", pod_ready, description="Containers (or the VM) ready / total."),
        Column("STATUS", pod_status, description="kubectl's summary of the pod's state."),
        Column("RESTARTS", pod_restarts, type="integer"),
        Column("IP", lambda o: text(dig(o, "status", "podIP")), priority=1),
        Column("NODE", lambda o: text(dig(o, "spec", "nodeName")), priority=1),
    ),
    field_labels={
        "spec.nodeName": _field("spec", "nodeName"),
        "spec.schedulerName": _field("spec", "schedulerName"),
        "spec.restartPolicy": _field("spec", "restartPolicy"),
        "spec.serviceAccountName": _field("spec", "serviceAccountName"),
        "status.phase": _field("status", "phase"),
        "status.podIP": _field("status", "podIP"),
        "status.nominatedNodeName": _field("status", "nominatedNodeName"),
    },
    categories=("all",))


_REFERENCE_FIELDS = {"configmaps": ("configMap", "name", "configMapRef", "configMapKeyRef"),
                     "secrets": ("secret", "secretName", "secretRef", "secretKeyRef")}


def pod_references(pod: Obj, plural: str) -> set[str]:
    """Names of the ConfigMaps or Secrets (`plural`) a pod uses: volumes (also projected),
    env `valueFrom`, `envFrom` and, for secrets, `imagePullSecrets`."""
    volume_key, name_key, from_key, ref_key = _REFERENCE_FIELDS[plural]
    spec = pod.get("spec") or {}
    names: set[str] = set()
    for volume in spec.get("volumes") or ():
        sources = [volume] + list(dig(volume, "projected", "sources") or ())
        for source in sources:
            ref = source.get(volume_key) if isinstance(source, dict) else None
            if isinstance(ref, dict):
                names.add(str(ref.get(name_key) or ref.get("name") or ""))
    for c in list(spec.get("containers") or ()) + list(spec.get("initContainers") or ()):
        for env in c.get("env") or ():
            ref = dig(env, "valueFrom", ref_key)
            if isinstance(ref, dict):
                names.add(str(ref.get("name", "")))
        for env_from in c.get("envFrom") or ():
            ref = env_from.get(from_key) if isinstance(env_from, dict) else None
            if isinstance(ref, dict):
                names.add(str(ref.get("name", "")))
    if plural == "secrets":
        names.update(str(s.get("name", "")) for s in spec.get("imagePullSecrets") or ()
                     if isinstance(s, dict))
    names.discard("")
    return names
