"""OpenAPI documents: Swagger 2.0 (`/openapi/v2`) and OpenAPI 3.0 (`/openapi/v3/...`).

Pure builders over a `Registry`: no I/O, deterministic, safe to compute once and cache.
The schemas are shallow (spec/status are open objects) but carry what kubectl relies on:
`x-kubernetes-group-version-kind` on definitions (a list) and on operations (one object, used
by `kubectl explain` and by apply), and the `fieldValidation` query parameter on every POST,
PUT and PATCH (kubectl then validates server-side instead of against these schemas).
kubectl 1.29+ reads all of this from v3 (JSON); 1.27/1.28 read v2 and only as protobuf,
which is not produced here.

Operations are first described neutrally (`_Op`), then rendered once per dialect.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from arktos.api.resources import Registry, ResourceType, Scope
from arktos.apiserver.discovery import GIT_VERSION, subresource_gvk, subresource_verbs

Doc = dict[str, Any]
GVK = tuple[str, str, str]

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META = META + "ObjectMeta"
LIST_META = META + "ListMeta"
STATUS = META + "Status"
PATCH = META + "Patch"
DELETE_OPTIONS = META + "DeleteOptions"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")
_JSON = "application/json"
_CODES = {"200": "OK", "201": "Created", "202": "Accepted"}
_INFO = {"title": "Arktos", "version": GIT_VERSION}

# ----------------------------------------------------------------------------- naming


def definition_name(group: str, version: str, kind: str) -> str:
    """`io.k8s.api.core.v1.Pod`, `io.k8s.api.rbac.v1.Role`; other groups reverse their domain."""
    if not group:
        return f"io.k8s.api.core.{version}.{kind}"
    if "." not in group or group.endswith(".k8s.io"):
        return f"io.k8s.api.{group.split('.')[0]}.{version}.{kind}"
    return ".".join([*reversed(group.split(".")), version, kind])


def _group_word(group: str) -> str:
    """`Core`, `Apps`, `RbacAuthorization`: the group as written in upstream operation ids."""
    if not group:
        return "Core"
    return "".join(p.capitalize() for p in group.removesuffix(".k8s.io").split("."))


def _root(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


# ----------------------------------------------------------------------------- dialects


@dataclass(frozen=True)
class _Dialect:
    """How a schema reference is written: Swagger 2.0 or OpenAPI 3.0."""

    prefix: str
    wrap_fields: bool

    def ref(self, name: str) -> Doc:
        return {"$ref": self.prefix + name}

    def field(self, name: str, description: str) -> Doc:
        """A described property whose schema is a definition (3.0 needs `allOf` around it)."""
        if self.wrap_fields:
            return {"allOf": [self.ref(name)], "description": description}
        return {"$ref": self.prefix + name, "description": description}


_V2 = _Dialect("#/definitions/", wrap_fields=False)
_V3 = _Dialect("#/components/schemas/", wrap_fields=True)

# ----------------------------------------------------------------------------- schemas

_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_INT64 = {"type": "integer", "format": "int64"}
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_BOOL = {"type": "boolean"}
_OBJ = {"type": "object"}
_OBJS = {"type": "array", "items": _OBJ}
_OWNER_REF = {"type": "object", "properties": {
    "apiVersion": {**_STR, "description": "API version of the owner."},
    "kind": {**_STR, "description": "Kind of the owner."},
    "name": {**_STR, "description": "Name of the owner."},
    "uid": {**_STR, "description": "UID of the owner."},
    "controller": {**_BOOL, "description": "If true, the owner is the managing controller."},
    "blockOwnerDeletion": {**_BOOL, "description": "If true, the owner cannot be deleted in "
                           "the foreground before this object is."}}}
_API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an "
                    "object. Servers should convert recognized schemas to the latest internal "
                    "value, and may reject unrecognized values.")
_KIND_DOC = ("Kind is a string value representing the REST resource this object represents. "
             "Servers may infer this from the endpoint the client submits requests to. "
             "Cannot be updated. In CamelCase.")
_OBJECT_META_FIELDS: tuple[tuple[str, Doc, str], ...] = (
    ("name", _STR, "Unique within a namespace, a tenant or the cluster (by the kind's scope)."),
    ("generateName", _STR, "Prefix of a server-generated unique name, when name is empty."),
    ("namespace", _STR, "The namespace of a namespaced object. Cannot be updated."),
    ("tenant", _STR, "Arktos: the tenant owning the object; empty for cluster-scoped kinds."),
    ("hashKey", _INT64, "Arktos: a hash of the uid partitioning objects among controllers."),
    ("uid", _STR, "Unique in time and space for this object. Populated by the system."),
    ("resourceVersion", _STR, "Opaque version, for concurrency control and watches."),
    ("generation", _INT64, "Sequence number of the desired state. Populated by the system."),
    ("creationTimestamp", _TIME, "Server time when this object was created (RFC 3339)."),
    ("deletionTimestamp", _TIME, "Time after which a gracefully deleted object goes away."),
    ("deletionGracePeriodSeconds", _INT64, "Seconds allowed for graceful termination."),
    ("labels", _STR_MAP, "Map of string keys and values used to organize and select objects."),
    ("annotations", _STR_MAP, "Unstructured key-value map stored with the object."),
    ("ownerReferences", {"type": "array", "items": _OWNER_REF,
                         "x-kubernetes-patch-merge-key": "uid",
                         "x-kubernetes-patch-strategy": "merge"},
     "Objects this object depends on; it is garbage collected when they are all gone."),
    ("finalizers", {"type": "array", "items": _STR, "x-kubernetes-patch-strategy": "merge"},
     "Must be empty before the object is deleted from the registry."),
    ("managedFields", {"type": "array", "items": {"type": "object"}},
     "Which field managers manage which fields."),
    ("selfLink", _STR, "Deprecated; not set by the server."),
)
_LIST_META_FIELDS: tuple[tuple[str, Doc, str], ...] = (
    ("resourceVersion", _STR, "The version of the list, usable to start a watch."),
    ("continue", _STR, "Set when more items are available; pass it to get the next page."),
    ("remainingItemCount", _INT64, "Approximate number of items after this page."),
    ("selfLink", _STR, "Deprecated; not set by the server."),
)


def _props(fields: Iterable[tuple[str, Doc, str]]) -> Doc:
    return {name: {**schema, "description": doc} for name, schema, doc in fields}


def _typed(d: _Dialect, description: str, fields: Doc, gvks: list[GVK],
           meta: str | None = OBJECT_META) -> Doc:
    """An object definition: apiVersion, kind, metadata (of definition `meta`, if any), then
    `fields`; tagged with the kinds it serves."""
    props: Doc = {"apiVersion": {**_STR, "description": _API_VERSION_DOC},
                  "kind": {**_STR, "description": _KIND_DOC}}
    if meta:
        props["metadata"] = d.field(meta, "Standard object's metadata.")
    props.update(fields)
    schema: Doc = {"description": description, "type": "object", "properties": props}
    if gvks:
        schema["x-kubernetes-group-version-kind"] = [
            {"group": g, "kind": k, "version": v} for g, v, k in gvks]
    return schema


_SCOPE_DOC = {Scope.NAMESPACE: "lives in a namespace of a tenant",
              Scope.TENANT: "lives in a tenant, outside namespaces",
              Scope.CLUSTER: "is cluster-scoped: it belongs to no tenant"}
_RBAC = "rbac.authorization.k8s.io"
_TOP_LEVEL: dict[tuple[str, str], tuple[tuple[str, Doc], ...]] = {
    ("", "ConfigMap"): (("data", _STR_MAP), ("binaryData", _STR_MAP), ("immutable", _BOOL)),
    ("", "Secret"): (("data", _STR_MAP), ("stringData", _STR_MAP), ("type", _STR),
                     ("immutable", _BOOL)),
    ("", "ServiceAccount"): (("secrets", _OBJS), ("imagePullSecrets", _OBJS),
                             ("automountServiceAccountToken", _BOOL)),
    ("", "Endpoints"): (("subsets", _OBJS),),
    ("", "Event"): (("involvedObject", _OBJ), ("reason", _STR), ("message", _STR),
                    ("source", _OBJ), ("firstTimestamp", _TIME), ("lastTimestamp", _TIME),
                    ("count", {"type": "integer", "format": "int32"}), ("type", _STR),
                    ("eventTime", _TIME), ("reportingComponent", _STR),
                    ("reportingInstance", _STR)),
    (_RBAC, "Role"): (("rules", _OBJS),),
    (_RBAC, "ClusterRole"): (("rules", _OBJS), ("aggregationRule", _OBJ)),
    (_RBAC, "RoleBinding"): (("roleRef", _OBJ), ("subjects", _OBJS)),
    (_RBAC, "ClusterRoleBinding"): (("roleRef", _OBJ), ("subjects", _OBJS)),
}
"""Top-level fields of upstream kinds that have no spec (shallow, for `kubectl explain`)."""


def _body_fields(rtype: ResourceType) -> Doc:
    """Open (`type: object`) schemas for the kind's spec-like fields and status, plus the
    known top-level fields of spec-less upstream kinds."""
    fields: Doc = {name: {**schema, "description": f"The {rtype.kind}'s {name}."}
                   for name, schema in _TOP_LEVEL.get((rtype.group, rtype.kind), ())}
    for name in rtype.spec_fields:
        what = "desired behavior" if name == "spec" else f"`{name}`"
        fields[name] = {"type": "object", "description": f"Specification of the {what} of the "
                        f"{rtype.kind}. Validated by the server; not detailed here."}
    if rtype.has_status:
        fields["status"] = {"type": "object", "description": f"Most recently observed status of "
                            f"the {rtype.kind}. Populated by the system. Read-only."}
    return fields


def _kind_definitions(d: _Dialect, rtype: ResourceType) -> Doc:
    g, v, kind = rtype.group, rtype.version, rtype.kind
    items = {"type": "array", "items": d.ref(definition_name(g, v, kind)),
             "description": f"List of {rtype.plural}."}
    lst = _typed(d, f"{rtype.list_kind} is a list of {kind} objects.", {"items": items},
                 [(g, v, rtype.list_kind)], LIST_META)
    lst["required"] = ["items"]
    desc = f"{kind} ({rtype.group_version}) {_SCOPE_DOC[rtype.scope]}."
    return {definition_name(g, v, kind): _typed(d, desc, _body_fields(rtype), [(g, v, kind)]),
            definition_name(g, v, rtype.list_kind): lst}


def _meta_definitions(d: _Dialect, gvs: list[tuple[str, str]]) -> Doc:
    """ObjectMeta (with Arktos' tenant and hashKey), ListMeta, Status, Patch, DeleteOptions."""
    status_fields = _props((
        ("status", _STR, "Success or Failure."),
        ("message", _STR, "Human-readable description."),
        ("reason", _STR, "Machine-readable reason."),
        ("code", {"type": "integer", "format": "int32"}, "HTTP status code."),
        ("details", _OBJ, "Extended data associated with the reason.")))
    delete_fields = _props((
        ("gracePeriodSeconds", _INT64, "Seconds before the object should be deleted."),
        ("propagationPolicy", _STR, "Orphan, Background or Foreground."),
        ("orphanDependents", _BOOL, "Deprecated: use propagationPolicy."),
        ("dryRun", {"type": "array", "items": _STR}, "When present, do not persist."),
        ("preconditions", _OBJ, "Must be fulfilled before deletion.")))
    return {
        OBJECT_META: {"description": "Metadata every persisted object has.", "type": "object",
                      "properties": _props(_OBJECT_META_FIELDS)},
        LIST_META: {"description": "Metadata of lists.", "type": "object",
                    "properties": _props(_LIST_META_FIELDS)},
        STATUS: _typed(d, "The result of an operation that returns no object.",
                       status_fields, [("", "v1", "Status")], LIST_META),
        PATCH: {"description": "The body of a PATCH request.", "type": "object"},
        DELETE_OPTIONS: _typed(d, "Options for a delete request.", delete_fields,
                               [(g, v, "DeleteOptions") for g, v in gvs], meta=None),
    }


def _definitions(d: _Dialect, registry: Registry, types: list[ResourceType]) -> Doc:
    defs = _meta_definitions(d, registry.group_versions())
    for rtype in types:
        defs.update(_kind_definitions(d, rtype))
    return dict(sorted(defs.items()))


# ----------------------------------------------------------------------------- operations

_QUERY: dict[str, tuple[str, str]] = {
    "pretty": ("string", "If 'true', the output is pretty printed."),
    "dryRun": ("string", "When present, modifications are not persisted. Valid value: All."),
    "fieldManager": ("string", "Name of the actor making the change, for field management."),
    "fieldValidation": ("string", "Unknown or duplicate fields: Ignore, Warn or Strict."),
    "force": ("boolean", "Force an apply request, taking over conflicting fields."),
    "allowWatchBookmarks": ("boolean", "Ask for BOOKMARK watch events."),
    "continue": ("string", "The continue token of the previous page."),
    "fieldSelector": ("string", "Restrict the list by fields."),
    "labelSelector": ("string", "Restrict the list by labels."),
    "limit": ("integer", "Maximum number of items in a page."),
    "resourceVersion": ("string", "Resource version constraint of the read or watch."),
    "resourceVersionMatch": ("string", "How resourceVersion applies: Exact or NotOlderThan."),
    "sendInitialEvents": ("boolean", "Start a watch with the current objects as ADDED events."),
    "timeoutSeconds": ("integer", "Timeout of the list or watch call."),
    "watch": ("boolean", "Watch for changes instead of listing."),
    "gracePeriodSeconds": ("integer", "Seconds before the object should be deleted."),
    "orphanDependents": ("boolean", "Deprecated: use propagationPolicy."),
    "propagationPolicy": ("string", "Garbage collection: Orphan, Background or Foreground."),
}
_PATH_PARAMS = {"name": "Name of the object.", "namespace": "Namespace of the objects.",
                "tenant": "Arktos: tenant of the objects."}
_WRITE = ("dryRun", "fieldManager", "fieldValidation")
_SELECT = ("continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
           "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds")
_LIST = ("allowWatchBookmarks", *_SELECT, "watch")
_DELETE = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")


@dataclass(frozen=True)
class _Action:
    """One x-kubernetes-action: HTTP method, operation id word, query parameters, body, results."""

    method: str
    word: str
    params: tuple[str, ...]
    body: str = ""
    """The request body: "object", "patch", "delete" (DeleteOptions), or empty for none."""
    responses: tuple[tuple[str, str], ...] = (("200", "object"),)
    """(HTTP code, "object" | "list" | "status")."""


_ACTIONS = {
    "get": _Action("get", "read", ()),
    "list": _Action("get", "list", _LIST, responses=(("200", "list"),)),
    "post": _Action("post", "create", _WRITE, "object",
                    (("200", "object"), ("201", "object"), ("202", "object"))),
    "put": _Action("put", "replace", _WRITE, "object", (("200", "object"), ("201", "object"))),
    "patch": _Action("patch", "patch", (*_WRITE, "force"), "patch",
                     (("200", "object"), ("201", "object"))),
    "delete": _Action("delete", "delete", _DELETE, "delete",
                      (("200", "object"), ("202", "object"))),
    "deletecollection": _Action("delete", "deleteCollection", (*_SELECT, *_DELETE), "delete",
                                (("200", "status"),)),
}
_COLLECTION_ACTIONS = {"list": "list", "create": "post", "deletecollection": "deletecollection"}
_ITEM_ACTIONS = {"get": "get", "update": "put", "patch": "patch", "delete": "delete"}
_SUB_ACTIONS = {"get": "get", "update": "put", "patch": "patch", "create": "post"}


@dataclass(frozen=True)
class _Op:
    """A dialect-neutral operation."""

    action: str
    op_id: str
    gvk: GVK
    tag: str


@dataclass(frozen=True)
class _Form:
    """A URL shape for a resource: what sits between the group root and the plural."""

    prefix: str
    id_prefix: str
    id_suffix: str = ""
    list_only: bool = False


_FORMS = {
    Scope.NAMESPACE: (_Form("/namespaces/{namespace}", "Namespaced"),
                      _Form("/tenants/{tenant}/namespaces/{namespace}", "TenantNamespaced"),
                      _Form("", "", "ForAllNamespaces", list_only=True),
                      _Form("/tenants/{tenant}", "Tenant", "ForAllNamespaces", list_only=True)),
    Scope.TENANT: (_Form("", ""), _Form("/tenants/{tenant}", "Tenant")),
    Scope.CLUSTER: (_Form("", ""),),
}


def _resource_paths(rtype: ResourceType) -> Iterator[tuple[str, list[_Op]]]:
    """(path template, operations) for every URL form of the resource and of those
    subresources that accept and return the resource's own kind (status, finalize)."""
    gvk = (rtype.group, rtype.version, rtype.kind)
    tag = f"{_group_word(rtype.group).lower()}_{rtype.version}"
    base = f"{_group_word(rtype.group)}{rtype.version.capitalize()}"

    def ops(table: dict[str, str], allowed: set[str], form: _Form, what: str) -> list[_Op]:
        ident = f"{base}{form.id_prefix}{what}{form.id_suffix}"
        return [_Op(table[v], _ACTIONS[table[v]].word + ident, gvk, tag)
                for v in table if v in allowed]

    verbs = set(rtype.verbs)
    for form in _FORMS[rtype.scope]:
        collection = f"/{_root(rtype.group, rtype.version)}{form.prefix}/{rtype.plural}"
        if form.list_only:
            yield collection, ops(_COLLECTION_ACTIONS, verbs & {"list"}, form, rtype.kind)
            continue
        yield collection, ops(_COLLECTION_ACTIONS, verbs, form, rtype.kind)
        yield collection + "/{name}", ops(_ITEM_ACTIONS, verbs, form, rtype.kind)
        for sub in sorted(rtype.subresources):
            if subresource_gvk(rtype, sub) == gvk:
                yield (f"{collection}/{{name}}/{sub}", ops(
                    _SUB_ACTIONS, set(subresource_verbs(sub)), form, rtype.kind + sub.capitalize()))


def _path_params(path: str) -> list[str]:
    return [p for p in ("tenant", "namespace", "name") if "{" + p + "}" in path]


# ----------------------------------------------------------------------------- rendering


def _query_param(name: str, v3: bool) -> Doc:
    kind, doc = _QUERY[name]
    if v3:
        return {"name": name, "in": "query", "description": doc,
                "schema": {"type": kind, "uniqueItems": True}}
    return {"uniqueItems": True, "type": kind, "description": doc, "name": name, "in": "query"}


def _path_param(name: str, v3: bool) -> Doc:
    doc = _PATH_PARAMS[name]
    if v3:
        return {"name": name, "in": "path", "required": True, "description": doc,
                "schema": {"type": "string", "uniqueItems": True}}
    return {"uniqueItems": True, "type": "string", "description": doc, "name": name,
            "in": "path", "required": True}


def _targets(gvk: GVK) -> dict[str, str]:
    g, v, kind = gvk
    return {"object": definition_name(g, v, kind), "list": definition_name(g, v, kind + "List"),
            "status": STATUS, "patch": PATCH, "delete": DELETE_OPTIONS}


def _body_types(action: _Action, v3: bool) -> tuple[str, ...]:
    """What the operation consumes. OpenAPI 3 patches leave out strategic merge on purpose:
    when they list it, kubectl 1.27+ computes apply patches from these shallow schemas, fails
    ("unable to find api field") and warns on every apply before using its built-in types."""
    if action.body != "patch":
        return ("*/*",)
    return PATCH_TYPES[:2] if v3 else PATCH_TYPES


def _produces(action: _Action) -> list[str]:
    watch = ["application/json;stream=watch"] if "watch" in action.params else []
    return [_JSON, *watch]


def _render_v2(op: _Op) -> Doc:
    action, targets = _ACTIONS[op.action], _targets(op.gvk)
    params = [_query_param(p, v3=False) for p in action.params]
    doc: Doc = {"operationId": op.op_id, "tags": [op.tag], "parameters": params}
    if action.body:
        params.insert(0, {"name": "body", "in": "body", "required": action.body != "delete",
                          "schema": _V2.ref(targets[action.body])})
        doc["consumes"] = list(_body_types(action, v3=False))
    doc["produces"] = _produces(action)
    doc["schemes"] = ["https", "http"]
    doc["responses"] = {code: {"description": _CODES[code], "schema": _V2.ref(targets[what])}
                        for code, what in action.responses}
    doc["responses"]["401"] = {"description": "Unauthorized"}
    return _with_extensions(doc, op)


def _render_v3(op: _Op) -> Doc:
    action, targets = _ACTIONS[op.action], _targets(op.gvk)
    doc: Doc = {"operationId": op.op_id, "tags": [op.tag],
                "parameters": [_query_param(p, v3=True) for p in action.params]}
    if action.body:
        content = {t: {"schema": _V3.ref(targets[action.body])}
                   for t in _body_types(action, v3=True)}
        doc["requestBody"] = {"content": content, "required": action.body != "delete"}
    doc["responses"] = {
        code: {"description": _CODES[code],
               "content": {t: {"schema": _V3.ref(targets[what])} for t in _produces(action)}}
        for code, what in action.responses}
    doc["responses"]["401"] = {"description": "Unauthorized"}
    return _with_extensions(doc, op)


def _with_extensions(doc: Doc, op: _Op) -> Doc:
    g, v, k = op.gvk
    doc["x-kubernetes-action"] = op.action
    doc["x-kubernetes-group-version-kind"] = {"group": g, "kind": k, "version": v}
    return doc


def _paths(types: Iterable[ResourceType], v3: bool) -> Doc:
    render = _render_v3 if v3 else _render_v2
    paths: Doc = {}
    for rtype in types:
        for path, ops in _resource_paths(rtype):
            if not ops:
                continue
            item: Doc = {_ACTIONS[op.action].method: render(op) for op in ops}
            item["parameters"] = [_path_param(p, v3) for p in _path_params(path)]
            item["parameters"].append(_query_param("pretty", v3))
            paths[path] = item
    return dict(sorted(paths.items()))


# ----------------------------------------------------------------------------- documents


def openapi_v2(registry: Registry) -> Doc:
    """GET /openapi/v2: one Swagger 2.0 document for every served kind."""
    types = list(registry)
    return {"swagger": "2.0", "info": dict(_INFO), "paths": _paths(types, v3=False),
            "definitions": _definitions(_V2, registry, types)}


def openapi_v3_group(registry: Registry, group: str, version: str) -> Doc | None:
    """GET /openapi/v3/api/v1 or /openapi/v3/apis/{g}/{v}: an OpenAPI 3.0 document for one
    group version (its paths and schemas plus the meta schemas); None when not served."""
    types = registry.in_group_version(group, version)
    if not types:
        return None
    return {"openapi": "3.0.0", "info": dict(_INFO), "paths": _paths(types, v3=True),
            "components": {"schemas": _definitions(_V3, registry, types)}}


def _hash(doc: Doc) -> str:
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha512(raw).hexdigest().upper()


def openapi_v3_root(registry: Registry) -> Doc:
    """GET /openapi/v3: `{"paths": {"api/v1": {"serverRelativeURL": ...?hash=...}, ...}}`;
    the hash changes exactly when the group version's document does."""
    paths: Doc = {}
    for group, version in registry.group_versions():
        doc = openapi_v3_group(registry, group, version)
        root = _root(group, version)
        paths[root] = {"serverRelativeURL": f"/openapi/v3/{root}?hash={_hash(doc or {})}"}
    return {"paths": paths}
