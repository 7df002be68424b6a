"""Pod templates as the workload controllers see them: normalized comparison, the
`pod-template-hash` (kube's short FNV-1a string), owner references and pods made from a
template. No I/O here.

Normalization treats null, `{}` and `[]` as absent, so a template that went through a typed
client (kubectl's `rollout undo` sends `creationTimestamp: null`, `resources: {}`) still equals
the stored one.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from arktos.client.store import Obj

POD_TEMPLATE_HASH = "pod-template-hash"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def normalized(value: Any) -> Any:
    """`value` without null, empty-object and empty-list members (recursively)."""
    if isinstance(value, dict):
        out = {k: normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def without_hash_label(template: Obj | None) -> Obj:
    """A normalized copy of `template` without the `pod-template-hash` label."""
    out: Obj = normalized(copy.deepcopy(template or {}))
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
        if not labels:
            del out["metadata"]["labels"]
        if not out["metadata"]:
            del out["metadata"]
    return out


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    """Whether two pod templates are the same apart from `pod-template-hash` (kube's
    `EqualIgnoreHash`)."""
    return without_hash_label(a) == without_hash_label(b)


def fnv32a(data: bytes, start: int = _FNV32_OFFSET) -> int:
    h = start
    for byte in data:
        h = ((h ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """kube's `rand.SafeEncodeString`: each byte mapped onto consonants and digits."""
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in text.encode())


def template_hash(template: Obj | None, collision_count: int | None = None) -> str:
    """The `pod-template-hash` of a template: FNV-1a 32 of its canonical JSON (plus the
    little-endian collision count when set), printed in decimal and safe-encoded."""
    canonical = orjson.dumps(without_hash_label(template), option=orjson.OPT_SORT_KEYS)
    h = fnv32a(canonical)
    if collision_count is not None:
        h = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(8, "little"), h)
    return safe_encode(str(h))


def with_hash_label(template: Obj, value: str) -> Obj:
    """A deep copy of `template` whose labels carry `pod-template-hash: value`."""
    out = copy.deepcopy(template)
    md = out.setdefault("metadata", {})
    md["labels"] = {**(md.get("labels") or {}), POD_TEMPLATE_HASH: value}
    return out


def selector_with_hash(selector: Obj, value: str) -> Obj:
    """A deep copy of a structured selector that also requires `pod-template-hash: value`."""
    out = copy.deepcopy(selector)
    out["matchLabels"] = {**(out.get("matchLabels") or {}), POD_TEMPLATE_HASH: value}
    return out


# --- owner references ----------------------------------------------------------------------

def controller_ref(owner: Obj, kind: str, api_version: str = "apps/v1") -> dict[str, Any]:
    """The ownerReference a controller of `kind` puts on what it controls."""
    md = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def controller_of(obj: Obj) -> dict[str, Any] | None:
    """The ownerReference with `controller: true`, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def controlled_by(obj: Obj, owner_uid: str) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner_uid


def same_scope(a: Obj, b: Obj) -> bool:
    """Whether two objects live in the same tenant and namespace."""
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    return (ma.get("tenant", ""), ma.get("namespace", "")) == \
        (mb.get("tenant", ""), mb.get("namespace", ""))


def pod_from_template(rs: Obj) -> Obj:
    """A new pod for ReplicaSet `rs`: its template's labels, annotations, finalizers and
    spec, `generateName: <rs>-`, its tenant and namespace, and `rs` as controller."""
    md = rs["metadata"]
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    tmd = template.get("metadata") or {}
    pod_md: dict[str, Any] = {"generateName": f"{md['name']}-", "namespace": md["namespace"],
                              "ownerReferences": [controller_ref(rs, "ReplicaSet")]}
    if md.get("tenant"):
        pod_md["tenant"] = md["tenant"]
    for key in ("labels", "annotations", "finalizers"):
        if tmd.get(key):
            pod_md[key] = tmd[key]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_md,
            "spec": template.get("spec") or {}}
