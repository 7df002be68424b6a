"""Subresources: status and finalize (PUT/PATCH of part of an object), pods/binding,
pods/action (Arktos' VM actions become Action objects), deployments|replicasets/scale,
serviceaccounts/token (TokenRequest, in `tokenrequest`)."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from arktos.api import errors, meta
from arktos.api.patch import apply_patch
from arktos.api.resources import Obj
from arktos.apiserver import codec, objects, podlogs, tokenrequest
from arktos.apiserver.request import RequestInfo
from arktos.apiserver.store import Where

if TYPE_CHECKING:
    from arktos.apiserver.resources import ResourceHandler

ACTION_PARAMS = {"reboot": ("rebootParams", "rebootAction"),
                 "snapshot": ("snapshotParams", "snapshotAction"),
                 "restore": ("restoreParams", "restoreAction")}


async def handle(h: ResourceHandler, request: web.Request, info: RequestInfo,
                 where: Where) -> web.StreamResponse:
    sub, verb = info.subresource, info.verb
    if sub in ("status", "finalize") and verb in ("get", "update", "patch"):
        handler = {"get": h._get, "update": h._update, "patch": h._patch}[verb]
        response: web.StreamResponse = await handler(request, info, where)
        return response
    if sub == "binding" and verb == "create":
        return await _bind(h, request, info, where)
    if sub == "action" and verb == "create":
        return await _action(h, request, info, where)
    if sub == "scale" and verb in ("get", "update", "patch"):
        return await _scale(h, request, info, where)
    if sub == "token" and verb == "create":
        return await tokenrequest.create(h, request, info, where)
    if sub == "log":
        return await podlogs.handle(h, request, info, where)
    raise errors.method_not_allowed(request.method, f"{info.rtype.plural}/{sub}")


async def _bind(h: ResourceHandler, request: web.Request, info: RequestInfo,
                where: Where) -> web.Response:
    body = await codec.read_object(request)
    target = body.get("target") if isinstance(body, dict) else None
    node = target.get("name") if isinstance(target, dict) else None
    if not isinstance(node, str) or not node:
        raise errors.invalid("Binding", info.name, [errors.Cause(
            "target.name", "Required value", "FieldValueRequired")])

    def mutate(pod: Obj) -> Obj:
        pod = copy.deepcopy(pod)
        spec = pod.setdefault("spec", {})
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods/binding", info.name, "pod is being deleted")
        if spec.get("nodeName"):
            raise errors.conflict("pods/binding", info.name,
                                  f"pod {info.name} is already assigned to node "
                                  f"\"{spec['nodeName']}\"")
        spec["nodeName"] = node
        conds = [c for c in (pod.setdefault("status", {}).get("conditions") or [])
                 if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True",
                      "lastTransitionTime": meta.now_rfc3339()})
        pod["status"]["conditions"] = conds
        return pod

    await h.store.guaranteed_update(where, info.name, mutate)
    return codec.json_response(codec.success_status(), 201)


async def _action(h: ResourceHandler, request: web.Request, info: RequestInfo,
                  where: Where) -> web.Response:
    """Arktos' CustomAction {operation, <op>Params} → an Action object for the pod's node."""
    body = await codec.read_object(request)
    op = body.get("operation") if isinstance(body, dict) else None
    pod = (await h.store.get(where, info.name)).obj
    if op not in ACTION_PARAMS:
        raise errors.bad_request(f"Unsupported operation '{op}' for Pod '{info.name}'")
    params_field, spec_field = ACTION_PARAMS[str(op)]
    params = body.get(params_field) or {}
    if not isinstance(params, dict):
        raise errors.bad_request(f"{params_field} must be an object")
    action_type = h.store.registry.by_kind("", "Action")
    assert action_type is not None
    action = {"apiVersion": "v1", "kind": "Action",
              "metadata": {"name": action_name(str(op)), "tenant": where.tenant,
                           "namespace": where.namespace},
              "spec": {"nodeName": (pod.get("spec") or {}).get("nodeName", ""),
                       "podName": info.name, spec_field: params}}
    created = await h.store.create(Where(action_type, where.tenant, where.namespace), action)
    shown = {"snapshot": params.get("snapshotName"), "restore": params.get("snapshotID")}
    details = {"name": shown.get(str(op)) or created["metadata"]["name"],
               "uid": created["metadata"]["uid"], "kind": "Action"}
    return codec.json_response(codec.success_status(
        f"Created action '{op}' for Pod '{info.name}'", details, kind="Action"), 201)


def action_name(operation: str) -> str:
    """Arktos names actions `<operation>-<unix seconds>`; a random suffix keeps them unique."""
    return f"{operation}-{int(time.time())}-{meta.generate_name('')}"


def _scale_of(obj: Obj) -> dict[str, Any]:
    md = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "tenant", "uid",
                                            "resourceVersion", "creationTimestamp") if k in md},
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}}


async def _scale(h: ResourceHandler, request: web.Request, info: RequestInfo,
                 where: Where) -> web.Response:
    if info.verb == "get":
        return codec.json_response(_scale_of((await h.store.get(where, info.name)).obj))
    raw = await codec.read_body(request)
    content_type = codec.media_type(request)
    body: Any = None if info.verb == "patch" else codec.parse(raw, content_type)
    md = body.get("metadata") if isinstance(body, dict) else None
    precondition = str(md.get("resourceVersion") or "") or None if isinstance(md, dict) else None

    def mutate(current: Obj) -> Obj:
        scale: Any = (apply_patch(_scale_of(current), raw, content_type, "Scale")
                      if info.verb == "patch" else body)
        replicas = _scale_replicas(scale)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", info.name, [errors.Cause(
                "spec.replicas", "must be a non-negative integer")])
        new = copy.deepcopy(current)
        new.setdefault("spec", {})["replicas"] = replicas
        return objects.prepare_update(info.rtype, new, current, "")

    return codec.json_response(_scale_of(await h.store.guaranteed_update(
        where, info.name, mutate, precondition=precondition)))


def _scale_replicas(scale: Any) -> Any:
    """spec.replicas of a Scale body. autoscaling/v1 drops a zero (`replicas,omitempty`), so
    absent or null means 0; a malformed body gives None."""
    if not isinstance(scale, dict):
        return None
    spec = scale.get("spec")
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        return None
    replicas = spec.get("replicas")
    return 0 if replicas is None else replicas
