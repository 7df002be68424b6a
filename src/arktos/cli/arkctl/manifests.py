"""`-f FILE|DIR|-`: multi-document YAML/JSON manifests, their types and where they go."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from arktos.api.kinds import REGISTRY
from arktos.api.resources import ResourceType
from arktos.cli.arkctl.errors import CliError
from arktos.cli.arkctl.resolve import kind_name

_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Manifest:
    """One object from a file, with its resource type."""

    source: str
    obj: dict[str, Any]
    rtype: ResourceType

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def ref(self) -> str:
        return f"{kind_name(self.rtype)}/{self.name}"


def _files(path: str, recursive: bool) -> Iterator[Path]:
    p = Path(path)
    if p.is_dir():
        found = p.rglob("*") if recursive else p.iterdir()
        yield from sorted(f for f in found if f.is_file() and f.suffix in _SUFFIXES)
    elif p.exists():
        yield p
    else:
        raise CliError(f'the path "{path}" does not exist')


def _documents(text: str, source: str) -> Iterator[dict[str, Any]]:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise CliError(f'error parsing {source}: {exc}') from None
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise CliError(f"error parsing {source}: a document is not an object")
        if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            yield from (item for item in doc["items"] if isinstance(item, dict))
        else:
            yield doc


def type_of(obj: dict[str, Any], source: str) -> ResourceType:
    """The served type of an object by apiVersion and kind."""
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    name = (obj.get("metadata") or {}).get("name", "")
    if not api_version or not kind:
        missing = "apiVersion" if not api_version else "kind"
        raise CliError(f'error validating "{source}": error validating data: {missing} not set')
    group = api_version.rpartition("/")[0]
    rtype = REGISTRY.by_kind(group, kind)
    if rtype is None or rtype.group_version != api_version:
        raise CliError(f'resource mapping not found for name: "{name}" from "{source}": no '
                       f'matches for kind "{kind}" in version "{api_version}"')
    return rtype


def read(paths: list[str], *, recursive: bool = False, verb: str = "apply") -> list[Manifest]:
    """Every object in the files (`-` is stdin, folders give their .yaml/.yml/.json files)."""
    if not paths:
        raise CliError("must specify one of -f and -k")
    out = []
    for path in paths:
        if path == "-":
            sources: list[tuple[str, str]] = [("STDIN", sys.stdin.read())]
        else:
            sources = [(str(f), f.read_text()) for f in _files(path, recursive)]
        for source, text in sources:
            out += [Manifest(source, doc, type_of(doc, source))
                    for doc in _documents(text, source)]
    if not out:
        raise CliError(f"no objects passed to {verb}")
    return out


def place(m: Manifest, *, namespace: str, flag_namespace: str = "",
          flag_tenant: str = "") -> tuple[str | None, str]:
    """(tenant, namespace) of a manifest's object: its own metadata, else the defaults; sets
    metadata.namespace as kubectl does. A namespace or tenant in the file that contradicts
    an explicit flag is an error."""
    md = m.obj.setdefault("metadata", {})
    for key, flag in (("namespace", flag_namespace), ("tenant", flag_tenant)):
        own = md.get(key)
        if own and flag and own != flag and (key == "tenant" or m.rtype.namespaced):
            raise CliError(f'the {key} from the provided object "{own}" does not match the '
                           f'{key} "{flag}". You must pass \'--{key}={own}\' to perform this '
                           "operation.")
    if m.rtype.namespaced:
        md["namespace"] = md.get("namespace") or namespace
    else:
        md.pop("namespace", None)
    return (md.get("tenant") or None if m.rtype.tenanted else None), md.get("namespace", "")
