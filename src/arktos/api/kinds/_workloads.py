"""Checks and defaults of a pod's workloads: containers and Arktos' single virtual machine.

No I/O here. Used through `podspec`.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from arktos.api.kinds._checks import (
    Fields,
    base64_errors,
    dicts,
    dig,
    fill,
    forbidden,
    invalid,
    ip_errors,
    not_found,
    port_name_errors,
    required,
    section,
    too_long,
)
from arktos.api.meta import dns_label_errors

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("TCP", "UDP", "SCTP")
POWER_SPECS = ("Running", "Paused", "Shutdown", "Suspended")
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
MAX_USER_DATA = 65535
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")


def default_pull_policy(image: Any) -> str:
    """`Always` for `:latest` or an untagged image, else `IfNotPresent` (as Kubernetes)."""
    if not isinstance(image, str) or not image:
        return "IfNotPresent"
    name, digest, _ = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ("" if digest else "latest")
    return "Always" if tag == "latest" else "IfNotPresent"


def _resource_name_errors(name: str) -> list[str]:
    if "/" in name or name in STANDARD_RESOURCES or name.startswith("hugepages-"):
        return []
    return ["must be a standard resource for containers"]


def check_resources(res: Fields | None) -> None:
    """`requests`/`limits`: valid non-negative quantities, each request <= its limit."""
    if res is None:
        return
    limits = res.quantities("limits")
    requests = res.quantities("requests")
    for key in ("limits", "requests"):
        names = res.obj.get(key)
        for name in names if isinstance(names, dict) else ():
            for err in _resource_name_errors(str(name)):
                res.add(invalid(f"{res.at(key)}[{name}]", name, err))
    for name, amount in requests.items():
        if name in limits and amount > limits[name]:
            res.add(invalid(f"{res.at('requests')}[{name}]", res.obj["requests"][name],
                            f"must be less than or equal to {name} limit"))


def _check_resize_policy(w: Fields) -> None:
    for p in w.objects("resizePolicy"):
        p.choice("resourceName", ("cpu", "memory"), needed=True)
        p.choice("policy", ("NoRestart", "RestartContainer"), needed=True)


def check_mounts(w: Fields, volumes: set[str]) -> None:
    """`volumeMounts` (and `volumeDevices`) name existing volumes; mount paths are unique."""
    mounts = w.objects("volumeMounts")
    w.unique(mounts, "mountPath")
    for m in mounts:
        _volume_ref(m, volumes)
        m.string("mountPath", needed=True)
        m.string("subPath")
        m.boolean("readOnly")
    for d in w.objects("volumeDevices"):
        _volume_ref(d, volumes)
        d.string("devicePath", needed=True)


def _volume_ref(ref: Fields, volumes: set[str]) -> None:
    name = ref.string("name", needed=True)
    if name is not None and name not in volumes:
        ref.add(not_found(ref.at("name"), name))


def _check_ports(c: Fields) -> None:
    ports = c.objects("ports")
    c.unique(ports, "name")
    for p in ports:
        p.integer("containerPort", needed=True, lo=1, hi=65535)
        p.integer("hostPort", lo=0, hi=65535)
        p.choice("protocol", PROTOCOLS)
        p.string("name", check=port_name_errors)
        p.string("hostIP", check=ip_errors)


def _env_name_errors(name: str) -> list[str]:
    if _ENV_NAME.match(name):
        return []
    return [("a valid environment variable name must consist of alphabetic characters, digits, "
            "'_', '-', or '.', and must not start with a digit")]


def _check_env(c: Fields) -> None:
    for e in c.objects("env"):
        e.string("name", needed=True, check=_env_name_errors)
        value = e.string("value")
        source = e.sub("valueFrom")
        if source is None:
            continue
        if value:
            e.add(invalid(e.at("valueFrom"), "", "may not be specified when `value` is not empty"))
        given = [k for k in _ENV_SOURCES if source.obj.get(k) is not None]
        if len(given) != 1:
            detail = ("may not have more than one field specified at a time" if given else
                      "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` "
                      "or `secretKeyRef`")
            e.add(invalid(e.at("valueFrom"), "", detail))
        for key in given:
            source.sub(key)
    c.objects("envFrom")


def check_container(c: Fields, volumes: set[str]) -> None:
    """Every field check of one (init) container."""
    c.string("name", needed=True, check=dns_label_errors)
    c.string("image", needed=True)
    c.choice("imagePullPolicy", PULL_POLICIES)
    c.strings("command")
    c.strings("args")
    c.string("workingDir")
    _check_ports(c)
    _check_env(c)
    check_resources(c.sub("resources"))
    c.quantities("resourcesAllocated")
    _check_resize_policy(c)
    check_mounts(c, volumes)
    for key in ("livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
                "securityContext"):
        c.sub(key)
    c.choice("terminationMessagePolicy", ("File", "FallbackToLogsOnError"))
    c.string("terminationMessagePath")
    for key in ("stdin", "stdinOnce", "tty"):
        c.boolean(key)


def _check_user_data(vm: Fields) -> None:
    data = vm.string("userData", check=base64_errors)
    if data is None:
        return
    try:
        size = len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return
    if size > MAX_USER_DATA:
        vm.add(too_long(vm.at("userData"), MAX_USER_DATA))


def check_virtual_machine(vm: Fields, volumes: set[str]) -> None:
    """Every field check of `spec.virtualMachine`, as Arktos' `validateVirtualMachine`."""
    vm.string("name", needed=True, check=dns_label_errors)
    vm.string("image", needed=True)
    vm.choice("imagePullPolicy", PULL_POLICIES)
    check_resources(vm.sub("resources"))
    vm.quantities("resourcesAllocated")
    _check_resize_policy(vm)
    key_pair, public_key = vm.string("keyPairName"), vm.string("publicKey")
    if not key_pair and not public_key:
        vm.add(required(vm.at("keyPairName"),
                        "either keyPair or the publicKeystring must be provided"))
    _check_user_data(vm)
    vm.choice("powerSpec", POWER_SPECS)
    vm.choice("shutdownBehavior", ("stop", "terminate"))
    vm.strings("trustedImageCertificate")
    for key in ("bootVolume", "cloudInitUserDataScript"):
        vm.string(key)
    check_mounts(vm, volumes)


def check_workloads(spec: Fields, volumes: set[str]) -> None:
    """Containers or one VM (never both, never neither); container names unique."""
    has_vm = spec.obj.get("virtualMachine") is not None
    if has_vm and spec.has("containers"):
        spec.add(forbidden(spec.at("virtualMachine"),
                           "containers and virtualMachine workloads in same pod"))
    elif not has_vm and not spec.has("containers"):
        spec.add(required(spec.at("containers")))
    containers = spec.objects("containers")
    inits = spec.objects("initContainers")
    spec.unique(containers + inits, "name")
    for c in containers + inits:
        check_container(c, volumes)
    vm = spec.sub("virtualMachine")
    if vm is not None:
        check_virtual_machine(vm, volumes)


def _default_requests(workload: dict[str, Any]) -> None:
    """Requests default to the limits given (Kubernetes' `SetDefaults_Pod`)."""
    limits = dig(workload, "resources", "limits")
    if not isinstance(limits, dict) or not limits:
        return
    requests = section(workload, "resources", "requests")
    if requests is not None:
        for name, amount in limits.items():
            requests.setdefault(name, amount)


def default_workloads(spec: dict[str, Any]) -> None:
    """Pull policies, protocols, termination-message settings, requests; VM power and pull."""
    for c in dicts(spec.get("containers")) + dicts(spec.get("initContainers")):
        fill(c, "imagePullPolicy", default_pull_policy(c.get("image")))
        fill(c, "terminationMessagePath", "/dev/termination-log")
        fill(c, "terminationMessagePolicy", "File")
        for port in dicts(c.get("ports")):
            fill(port, "protocol", "TCP")
        _default_requests(c)
    vm = spec.get("virtualMachine")
    if isinstance(vm, dict):
        fill(vm, "imagePullPolicy", "IfNotPresent")
        fill(vm, "powerSpec", "Running")
        fill(vm, "shutdownBehavior", "stop")
        _default_requests(vm)
