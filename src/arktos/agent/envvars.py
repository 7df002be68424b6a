"""Container environment from the API: `env[].valueFrom` (configMapKeyRef, secretKeyRef,
fieldRef) and `envFrom` (configMapRef, secretRef) become plain `env` values before a
container starts, so runtimes only ever see `name`/`value` pairs. `$(VAR)` references to
earlier variables are expanded as Kubernetes does.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Awaitable, Callable
from typing import Any

from arktos.agent.podplan import specs
from arktos.agent.runtime import Obj, RuntimeFailure

Fetch = Callable[[str, str], Awaitable[Obj | None]]
"""(resource `configmaps`|`secrets`, name) -> the object in the pod's namespace, or None."""
_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace"),
           "metadata.uid": ("metadata", "uid"), "metadata.tenant": ("metadata", "tenant"),
           "spec.nodeName": ("spec", "nodeName"),
           "spec.serviceAccountName": ("spec", "serviceAccountName"),
           "status.podIP": ("status", "podIP"), "status.hostIP": ("status", "hostIP")}


def needs_api(pod: Obj) -> bool:
    """Whether any container's environment refers to the API."""
    return any(c.get("envFrom") or any("valueFrom" in e for e in c.get("env") or ())
               for c in _containers(pod))


def _containers(pod: Obj) -> list[dict[str, Any]]:
    return specs(pod, "initContainers") + specs(pod, "containers")


def field_value(pod: Obj, path: str) -> str:
    where = _FIELDS.get(path)
    if where is None:
        raise RuntimeFailure("CreateContainerConfigError", f"unsupported fieldRef {path!r}")
    return str((pod.get(where[0]) or {}).get(where[1]) or "")


def _data(kind: str, obj: Obj) -> dict[str, str]:
    data = obj.get("data") or {}
    if kind == "secrets":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
    return {k: str(v) for k, v in data.items()}


async def _keyed(fetch: Fetch, kind: str, ref: Obj) -> str | None:
    obj = await fetch(kind, str(ref.get("name", "")))
    value = None if obj is None else _data(kind, obj).get(str(ref.get("key", "")))
    if value is None and not ref.get("optional"):
        raise RuntimeFailure("CreateContainerConfigError",
                             f"couldn't find key {ref.get('key')} in {kind[:-1]} "
                             f"{ref.get('name')}")
    return value


async def _value_from(pod: Obj, source: Obj, fetch: Fetch) -> str | None:
    if isinstance(source.get("fieldRef"), dict):
        return field_value(pod, str(source["fieldRef"].get("fieldPath", "")))
    if isinstance(source.get("configMapKeyRef"), dict):
        return await _keyed(fetch, "configmaps", source["configMapKeyRef"])
    if isinstance(source.get("secretKeyRef"), dict):
        return await _keyed(fetch, "secrets", source["secretKeyRef"])
    raise RuntimeFailure("CreateContainerConfigError", "unsupported env valueFrom")


async def _from_sources(c: Obj, fetch: Fetch) -> list[tuple[str, str, bool]]:
    out: list[tuple[str, str, bool]] = []
    for source in c.get("envFrom") or ():
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = source.get(key)
            if not isinstance(ref, dict):
                continue
            obj = await fetch(kind, str(ref.get("name", "")))
            if obj is None and not ref.get("optional"):
                raise RuntimeFailure("CreateContainerConfigError",
                                     f'{kind[:-1]} "{ref.get("name")}" not found')
            prefix = str(source.get("prefix") or "")
            out += [(prefix + k, v, False) for k, v in _data(kind, obj or {}).items()]
    return out


def expand(value: str, known: dict[str, str]) -> str:
    """`$(VAR)` -> the earlier variable's value (unknown references stay as written)."""
    return _REF.sub(lambda m: known.get(m.group(1), m.group(0)), value)


async def resolved(pod: Obj, fetch: Fetch) -> Obj:
    """A copy of `pod` whose containers' env is plain values."""
    out = copy.deepcopy(pod)
    for c in _containers(out):
        pairs = await _from_sources(c, fetch)
        for env in c.get("env") or ():
            literal = "valueFrom" not in env
            value = str(env.get("value", "")) if literal else await _value_from(
                out, env["valueFrom"], fetch)
            if value is not None:
                pairs.append((str(env.get("name", "")), value, literal))
        known: dict[str, str] = {}
        for name, value, literal in pairs:  # only literal values are expanded, as in kube
            known[name] = expand(value, known) if literal else value
        c["env"] = [{"name": k, "value": v} for k, v in known.items()]
        c.pop("envFrom", None)
    return out
