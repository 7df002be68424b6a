"""Pure translation of a Kubernetes pod into Podman requests: names, labels, volumes, pull
policy and the libpod `SpecGenerator` of one container instance. No I/O.

Kubernetes semantics kept: `command` replaces the image's ENTRYPOINT, `args` its CMD (Podman's
own rule: an explicit entrypoint drops the image CMD); `env` values (`valueFrom` is ignored
for now, and `$(VAR)` references are not expanded); `workingDir`; `resources.limits.cpu`
as a CFS quota, `limits.memory` as a hard limit, `requests.cpu` as CPU shares;
`securityContext.runAsUser`/`runAsGroup`; volume mounts (with `subPath` and `readOnly`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from arktos.agent.runtime import Obj, RuntimeFailure
from arktos.api.quantity import int_value, milli_value, parse_quantity

LABEL_UID = "arktos.io/pod-uid"
LABEL_NAME = "arktos.io/pod-name"
LABEL_NAMESPACE = "arktos.io/pod-namespace"
LABEL_TENANT = "arktos.io/pod-tenant"
LABEL_CONTAINER = "arktos.io/container"
LABEL_ATTEMPT = "arktos.io/attempt"
LABEL_ROOT = "arktos.io/runtime-root"
"""The state dir of the runtime that made it: runtimes over different roots (two agents, or
tests, on one host) never see each other's pods."""

CFS_PERIOD = 100_000
LOCAL_DIRS = ("emptyDir", "configMap", "secret", "downwardAPI", "projected")
"""Volume kinds backed by a directory the runtime makes under the pod's dir."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe(part: str) -> str:
    """`part` usable as one path component or Podman name component."""
    cleaned = _UNSAFE.sub("-", part).lstrip(".-") or "x"
    return cleaned


def uid_of(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("uid", ""))


def pod_dir(root: Path, uid: str) -> Path:
    return root / "pods" / safe(uid)


def log_path(root: Path, uid: str, name: str, attempt: int) -> Path:
    """The k8s-file log of one container instance."""
    return pod_dir(root, uid) / "logs" / f"{safe(name)}_{attempt}.log"


def volume_host_path(root: Path, uid: str, volume: Obj) -> Path:
    """The host directory (or file) a pod volume is: `hostPath` its `path`; `emptyDir`,
    `configMap`, `secret`, `downwardAPI` and `projected` `root/pods/<uid>/volumes/<name>`
    (made by the runtime; the agent writes configMap/secret files there before starting
    containers). Other kinds raise `RuntimeFailure("CreateContainerConfigError", ...)`."""
    host = volume.get("hostPath")
    if isinstance(host, dict):
        return Path(str(host.get("path", "")))
    if any(k in volume for k in LOCAL_DIRS):
        return pod_dir(root, uid) / "volumes" / safe(str(volume.get("name", "")))
    raise RuntimeFailure("CreateContainerConfigError",
                         f"volume {volume.get('name')!r}: unsupported volume kind")


def pod_name(uid: str) -> str:
    """The Podman pod of a Kubernetes pod."""
    return f"arktos-{safe(uid)}"


def container_name(uid: str, name: str, attempt: int) -> str:
    """The Podman container of one instance of a pod's container."""
    return f"{safe(uid)}_{safe(name)}_{attempt}"


def pod_labels(pod: Obj, root: Path) -> dict[str, str]:
    """The labels of everything made for `pod` (the pod, its infra and containers)."""
    md = pod.get("metadata") or {}
    return {LABEL_UID: uid_of(pod), LABEL_NAME: str(md.get("name", "")),
            LABEL_NAMESPACE: str(md.get("namespace", "")),
            LABEL_TENANT: str(md.get("tenant", "")), LABEL_ROOT: str(root)}


def pod_request(pod: Obj, root: Path) -> Obj:
    """The libpod `pods/create` body: network and UTS shared through the infra container,
    hostname the pod's (`spec.hostname` or its name)."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    hostname = str(spec.get("hostname") or md.get("name") or "pod")[:63]
    return {"name": pod_name(uid_of(pod)), "labels": pod_labels(pod, root),
            "hostname": hostname}


def container_spec(pod: Obj, name: str) -> Obj:
    """The container `name` of the pod (init containers included)."""
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        if isinstance(c, dict) and c.get("name") == name:
            return c
    raise RuntimeFailure("CreateContainerError", f"pod has no container {name!r}")


def pull_policy(container: Obj) -> str:
    """`imagePullPolicy`, defaulted as Kubernetes does (`Always` for `:latest` or untagged)."""
    policy = container.get("imagePullPolicy")
    if policy in ("Always", "IfNotPresent", "Never"):
        return str(policy)
    image = str(container.get("image") or "")
    name, digest, _ = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ("" if digest else "latest")
    return "Always" if tag == "latest" else "IfNotPresent"


def archive_path(image: str) -> str | None:
    """The tarball of an `oci-archive:/x.tar` or `docker-archive:/x.tar` reference."""
    for scheme in ("oci-archive:", "docker-archive:"):
        if image.startswith(scheme):
            return image[len(scheme):].split(":", 1)[0]
    return None


def is_local(image: str) -> bool:
    """An image of Podman's `localhost/` namespace: built or imported here, never pulled
    (so `Always` uses it as it is)."""
    return image.startswith("localhost/")


def resources(container: Obj) -> Obj:
    """libpod `resource_limits` from `resources` (limits enforced, cpu request as shares)."""
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out: Obj = {}
    try:
        if "memory" in limits:
            out["memory"] = {"limit": int_value(parse_quantity(limits["memory"]))}
        cpu: Obj = {}
        if "cpu" in limits:
            millis = milli_value(parse_quantity(limits["cpu"]))
            cpu.update(quota=max(1000, millis * CFS_PERIOD // 1000), period=CFS_PERIOD)
        if "cpu" in requests:
            cpu["shares"] = max(2, milli_value(parse_quantity(requests["cpu"])) * 1024 // 1000)
    except ValueError as exc:
        raise RuntimeFailure("CreateContainerConfigError", f"bad resources: {exc}") from exc
    if cpu:
        out["cpu"] = cpu
    return out


def mounts(pod: Obj, container: Obj, root: Path) -> list[Obj]:
    """Bind mounts of the container's `volumeMounts` (host paths by `volume_host_path`)."""
    volumes = {str(v.get("name")): v for v in (pod.get("spec") or {}).get("volumes") or ()
               if isinstance(v, dict)}
    out: list[Obj] = []
    for m in container.get("volumeMounts") or ():
        volume = volumes.get(str(m.get("name")))
        if volume is None:
            raise RuntimeFailure("CreateContainerConfigError",
                                 f"volume mount {m.get('name')!r}: no such volume")
        source = volume_host_path(root, uid_of(pod), volume)
        if m.get("subPath"):
            source = source / str(m["subPath"]).lstrip("/")
        options = ["rbind"] + (["ro"] if m.get("readOnly") else [])
        out.append({"destination": str(m.get("mountPath", "")), "source": str(source),
                    "type": "bind", "options": options})
    return out


def _user(container: Obj, pod: Obj) -> str:
    ctx = {**((pod.get("spec") or {}).get("securityContext") or {}),
           **(container.get("securityContext") or {})}
    user = ctx.get("runAsUser")
    if user is None:
        return ""
    group = ctx.get("runAsGroup")
    return f"{int(user)}:{int(group)}" if group is not None else str(int(user))


def create_request(pod: Obj, name: str, attempt: int, *, root: Path, image: str) -> Obj:
    """The libpod `containers/create` body (a `SpecGenerator`) of instance `attempt` of
    container `name`, in the pod's Podman pod, logging to `log_path(...)`; `image` is the
    local image to run (the spec's, or what an archive loaded)."""
    uid = uid_of(pod)
    c = container_spec(pod, name)
    labels = {**pod_labels(pod, root), LABEL_CONTAINER: name, LABEL_ATTEMPT: str(attempt)}
    req: Obj = {
        "name": container_name(uid, name, attempt), "pod": pod_name(uid), "image": image,
        "labels": labels, "terminal": False, "stdin": False,
        "log_configuration": {"driver": "k8s-file",
                              "path": str(log_path(root, uid, name, attempt))},
        "env": {str(e.get("name")): str(e.get("value", "")) for e in c.get("env") or ()
                if isinstance(e, dict) and "valueFrom" not in e},
        "mounts": mounts(pod, c, root),
        "resource_limits": resources(c),
    }
    if c.get("command"):
        req["entrypoint"] = [str(a) for a in c["command"]]
    if c.get("args"):
        req["command"] = [str(a) for a in c["args"]]
    if c.get("workingDir"):
        req["work_dir"] = str(c["workingDir"])
    if user := _user(c, pod):
        req["user"] = user
    return req


def local_dirs(pod: Obj, root: Path) -> list[Path]:
    """The directories the runtime makes for a pod: its logs, its local volumes (and
    `hostPath` volumes of type `DirectoryOrCreate`), and the `subPath`s of emptyDirs."""
    uid, spec = uid_of(pod), pod.get("spec") or {}
    dirs = [pod_dir(root, uid) / "logs"]
    empty = set()
    for v in spec.get("volumes") or ():
        if not isinstance(v, dict):
            continue
        host: Any = v.get("hostPath")
        if isinstance(host, dict) and host.get("type") == "DirectoryOrCreate":
            dirs.append(Path(str(host.get("path"))))
        elif any(k in v for k in LOCAL_DIRS):
            dirs.append(volume_host_path(root, uid, v))
            if "emptyDir" in v:
                empty.add(str(v.get("name")))
    for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        for m in c.get("volumeMounts") or ():
            if m.get("subPath") and str(m.get("name")) in empty:
                dirs.append(pod_dir(root, uid) / "volumes" / safe(str(m["name"]))
                            / str(m["subPath"]).lstrip("/"))
    return dirs
