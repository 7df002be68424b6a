"""Volumes whose content comes from the API (`configMap`, `secret`): the agent writes their
files into the directory the runtime mounts, before the pod's sandbox is made. A missing
ConfigMap or Secret that is not `optional` fails the start with `CreateContainerConfigError`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arktos.agent.runtime import Obj, RuntimeFailure
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError

SOURCES = {"configMap": ("configmaps", "name"), "secret": ("secrets", "secretName")}
"""Volume source -> (resource, the field naming the object)."""


def files_of(kind: str, obj: Obj, source: dict[str, Any]) -> dict[str, bytes]:
    """Relative path -> content of a ConfigMap or Secret volume (`items` pick and rename
    keys; without them every key is a file). Pure."""
    data: dict[str, bytes] = {}
    if kind == "secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    items = source.get("items")
    if not items:
        return data
    return {str(i["path"]): data[str(i["key"])] for i in items
            if isinstance(i, dict) and str(i.get("key")) in data}


def _safe(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()):
        raise RuntimeFailure("CreateContainerConfigError", f"volume path {rel!r} escapes")
    return target


def write_files(root: Path, files: dict[str, bytes], mode: int) -> None:
    """Replace `root`'s content by `files` (atomic per file)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        target = _safe(root, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(content)
        os.chmod(tmp, mode)
        tmp.replace(target)


class VolumeWriter:
    """Fills the configMap and secret volumes of a pod (`prepare` for `PodSyncer`)."""

    def __init__(self, api: ApiClient, host_path: Callable[[str, Obj], Path]) -> None:
        self.clients = {res: ResourceClient(api, res) for res, _ in SOURCES.values()}
        self.host_path = host_path
        """(pod uid, volume) -> the directory the runtime mounts for that volume."""

    async def prepare(self, pod: Obj) -> None:
        md = pod.get("metadata") or {}
        for volume in (pod.get("spec") or {}).get("volumes") or ():
            for kind, (resource, field) in SOURCES.items():
                source = volume.get(kind) if isinstance(volume, dict) else None
                if isinstance(source, dict):
                    await self._fill(md, volume, kind, resource, source, str(source.get(
                        field, "")))

    async def _fill(self, md: Obj, volume: Obj, kind: str, resource: str,
                    source: dict[str, Any], name: str) -> None:
        try:
            obj = await self.clients[resource].get(
                name, namespace=str(md.get("namespace", "")), tenant=md.get("tenant"))
        except ApiError as exc:
            if exc.not_found and source.get("optional"):
                obj = {}
            else:
                raise RuntimeFailure("CreateContainerConfigError",
                                     f'{kind} "{name}" not found' if exc.not_found
                                     else f"reading {kind} {name!r}: {exc}") from exc
        mode = int(source.get("defaultMode") or 0o644)
        write_files(self.host_path(str(md.get("uid", "")), volume),
                    files_of(kind, obj, source), mode)
