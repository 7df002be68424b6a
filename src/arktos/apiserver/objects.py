"""Object preparation rules for create, update and delete, independent of storage.

Pure: no I/O here. The `Store` (store.py) calls these and does the reads and writes.
"""

from __future__ import annotations

import copy
from typing import Any

from arktos.api import errors, meta
from arktos.api.errors import Cause
from arktos.api.resources import Obj, ResourceType, Scope

SYSTEM_META = ("uid", "creationTimestamp", "hashKey", "tenant", "namespace", "deletionTimestamp",
               "deletionGracePeriodSeconds", "generation")
_DROPPED_META = ("resourceVersion", "selfLink", "managedFields")


def check_body(rtype: ResourceType, body: Any, *, tenant: str, namespace: str) -> Obj:
    """Reject a body of the wrong kind or scope; fill kind, apiVersion, tenant, namespace."""
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind not in (None, "", rtype.kind):
        raise errors.bad_request(
            f'the kind of the object ({kind}) does not match the resource ({rtype.kind})')
    if api_version not in (None, "", rtype.group_version):
        raise errors.bad_request(f'the API version in the data ({api_version}) does not match '
                                 f'the expected API version ({rtype.group_version})')
    md = body.setdefault("metadata", {})
    if not isinstance(md, dict):
        raise errors.bad_request("metadata must be an object")
    body["kind"], body["apiVersion"] = rtype.kind, rtype.group_version
    _check_scope_field(md, "tenant", tenant if rtype.tenanted else "", rtype.tenanted)
    _check_scope_field(md, "namespace", namespace, rtype.namespaced)
    return body


def _check_scope_field(md: dict[str, Any], field: str, value: str, scoped: bool) -> None:
    given = md.get(field)
    if not scoped:
        md.pop(field, None)
        return
    if given not in (None, "") and given != value:
        raise errors.bad_request(f"the {field} of the provided object does not match the "
                                 f"{field} sent on the request")
    md[field] = value


def validate(rtype: ResourceType, obj: Obj, old: Obj | None) -> None:
    """Run the metadata and kind checks; raise 422 Invalid with every cause."""
    md = obj["metadata"]
    causes = meta.metadata_causes(md, name_check=rtype.name_check)
    if rtype.tenanted:
        causes += [Cause("metadata.tenant", e) for e in meta.tenant_name_errors(md["tenant"])]
    if rtype.namespaced:
        causes += [Cause("metadata.namespace", e) for e in meta.dns_label_errors(md["namespace"])]
    if old is not None:
        causes += meta.immutable_meta_causes(md, old["metadata"])
    causes += rtype.validate(obj, old)
    if causes:
        raise errors.invalid(rtype.kind, str(md.get("name", "")), causes)


def prepare_create(rtype: ResourceType, obj: Obj) -> Obj:
    """Set system fields and defaults on a new object (name must already be chosen)."""
    md = obj["metadata"]
    for f in (*SYSTEM_META, *_DROPPED_META):
        if f not in ("tenant", "namespace"):
            md.pop(f, None)
    md["uid"] = meta.new_uid()
    md["creationTimestamp"] = meta.now_rfc3339()
    md["hashKey"] = meta.hash_key(md["uid"])
    if rtype.spec_fields:
        md["generation"] = 1
    _stamp_owner_hash_keys(md)
    rtype.default(obj)
    validate(rtype, obj, None)
    return obj


def _stamp_owner_hash_keys(md: dict[str, Any]) -> None:
    for ref in md.get("ownerReferences") or []:
        if isinstance(ref, dict) and isinstance(ref.get("uid"), str):
            ref["hashKey"] = meta.hash_key(ref["uid"])


def prepare_update(rtype: ResourceType, new: Obj, old: Obj, subresource: str) -> Obj:
    """Merge a client's replacement with the stored object per the subresource rules.

    Main resource: system metadata kept, status kept (if the kind has a status subresource),
    generation bumped on spec change. `status`: only status taken. `finalize`: only
    spec.finalizers taken."""
    if subresource == "status":
        merged = copy.deepcopy(old)
        merged["status"] = new.get("status", {})
    elif subresource == "finalize":
        merged = copy.deepcopy(old)
        merged.setdefault("spec", {})["finalizers"] = (new.get("spec") or {}).get("finalizers", [])
    else:
        merged = new
        if rtype.has_status:
            if "status" in old:
                merged["status"] = copy.deepcopy(old["status"])
            else:
                merged.pop("status", None)
    md, old_md = merged["metadata"], old["metadata"]
    for f in SYSTEM_META:
        if f in old_md:
            md[f] = old_md[f]
        else:
            md.pop(f, None)
    for f in _DROPPED_META:
        md.pop(f, None)
    _stamp_owner_hash_keys(md)
    if rtype.spec_fields and any(merged.get(f) != old.get(f) for f in rtype.spec_fields):
        md["generation"] = int(old_md.get("generation", 1)) + 1
    rtype.default(merged)
    validate(rtype, merged, old)
    return merged


def strip_version(obj: Obj) -> Obj:
    """A copy without resourceVersion, as kept in storage."""
    out = dict(obj)
    md = dict(out["metadata"])
    md.pop("resourceVersion", None)
    out["metadata"] = md
    return out


def same_content(a: Obj, b: Obj) -> bool:
    """Whether two objects differ only in resourceVersion (an update would be a no-op)."""
    return strip_version(a) == strip_version(b)


def pending_finalizers(rtype: ResourceType, obj: Obj) -> bool:
    """Whether something must still finalize the object before it can go."""
    if obj["metadata"].get("finalizers"):
        return True
    if rtype.kind in ("Namespace", "Tenant"):
        return bool((obj.get("spec") or {}).get("finalizers"))
    return False


def mark_deleting(rtype: ResourceType, obj: Obj, grace: int) -> Obj:
    """A copy with deletionTimestamp set (and Terminating phase for namespaces/tenants)."""
    out = copy.deepcopy(obj)
    md = out["metadata"]
    md["deletionTimestamp"] = meta.now_rfc3339()
    md["deletionGracePeriodSeconds"] = grace
    if rtype.kind in ("Namespace", "Tenant"):
        out.setdefault("status", {})["phase"] = "Terminating"
    return out


def graceful_pod(rtype: ResourceType, obj: Obj, grace: int | None) -> int | None:
    """The grace period a pod deletion waits for its node agent, or None to delete at once.

    A pod bound to a node waits (its agent confirms with grace 0); an unbound pod or grace 0
    goes at once."""
    if rtype.kind != "Pod" or rtype.scope is not Scope.NAMESPACE:
        return None
    spec = obj.get("spec") or {}
    if grace is None:
        grace = int(spec.get("terminationGracePeriodSeconds", 30) or 0)
    if not spec.get("nodeName") or grace <= 0:
        return None
    return grace
