"""HTTP handlers for resource paths: dispatch by verb to the `Store`, lists, watches and
subresources. Object rules live in objects.py/store.py; this module only speaks HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from arktos.api import errors
from arktos.api.meta import TENANT_ALL, TENANT_SYSTEM
from arktos.api.patch import apply_patch
from arktos.api.resources import Obj
from arktos.apiserver import codec, objects, subresources
from arktos.apiserver.authorizer import Authorizer
from arktos.apiserver.lists import ListOptions, encode_token, list_page, parse_revision
from arktos.apiserver.request import RequestInfo, parse_request
from arktos.apiserver.store import Store, Where
from arktos.apiserver.table import to_table
from arktos.apiserver.watch import serve_watch
from arktos.apiserver.watchcache import Entry

REVIEW_GROUP = "authorization.k8s.io"


class ResourceHandler:
    """Serves every `/api/...` and `/apis/...` resource request."""

    def __init__(self, store: Store, *, bookmark_interval: float = 10.0,
                 authorizer: Authorizer | None = None) -> None:
        self.store = store
        self.cache = store.cache
        self.bookmark_interval = bookmark_interval
        self.authorizer = authorizer

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        watch = request.query.get("watch", "") in ("1", "true")
        info = parse_request(self.store.registry, request.method, request.path, watch=watch)
        info = info.resolve_tenant(caller_tenant(request))
        if self.authorizer is not None:
            self.authorizer.check(request.get("identity"), info)
        if info.tenant == TENANT_ALL and info.verb not in ("list", "watch"):
            raise errors.bad_request(f'"{TENANT_ALL}" is not a tenant: it can only be used to '
                                     "list or watch across tenants")
        where = Where(info.rtype, info.tenant if info.rtype.tenanted else "", info.namespace)
        if info.subresource:
            return await subresources.handle(self, request, info, where)
        handler = getattr(self, "_" + info.verb)
        response: web.StreamResponse = await handler(request, info, where)
        return response

    # -- reads --------------------------------------------------------------------------------

    async def _get(self, request: web.Request, info: RequestInfo, where: Where) -> web.Response:
        entry = await self.store.get(where, info.name)
        if codec.wants_table(request):
            return self.table([entry], request, {"resourceVersion": str(entry.rev)}, info)
        return codec.raw_response(entry.raw)

    async def _list(self, request: web.Request, info: RequestInfo, where: Where) -> web.Response:
        opts = ListOptions.from_query(request.query)
        if opts.resource_version_match == "Exact" and opts.resource_version:
            opts = _with_continue_at(opts, parse_revision(opts.resource_version))
        elif not opts.continue_token:
            await self.wait_fresh(opts.resource_version)
        cache = self.cache.cache(info.rtype)
        page = await list_page(self.store.storage, cache.items, self.cache.revision, where, opts)
        list_meta: dict[str, Any] = {"resourceVersion": str(page.revision)}
        if page.continue_token:
            list_meta["continue"] = page.continue_token
        if codec.wants_table(request):
            return self.table(page.items, request, list_meta, info)
        rt = info.rtype
        head = {"kind": rt.list_kind, "apiVersion": rt.group_version, "metadata": list_meta}
        prefix = orjson.dumps(head)[:-1]
        body = prefix + b',"items":[' + b",".join(e.raw for e in page.items) + b"]}"
        return codec.raw_response(body)

    async def wait_fresh(self, resource_version: str) -> None:
        """RV "" reads the latest state; "0" any cached state; N a state at least as new."""
        try:
            if resource_version == "":
                await self.cache.wait_fresh()
            elif resource_version != "0":
                await self.cache.wait_for(parse_revision(resource_version))
        except TimeoutError:
            raise errors.StatusError(504, "Timeout", "Too large resource version: the cache "
                                     "did not reach it in time", retry_after=1) from None

    def table(self, entries: list[Entry], request: web.Request, list_meta: dict[str, Any],
              info: RequestInfo) -> web.Response:
        include = request.query.get("includeObject", "Metadata")
        try:
            table = to_table(info.rtype, [e.obj for e in entries], now=datetime.now(UTC),
                             include_object=include, list_meta=list_meta)
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from None
        return codec.json_response(table)

    async def _watch(self, request: web.Request, info: RequestInfo,
                     where: Where) -> web.StreamResponse:
        opts = ListOptions.from_query(request.query)
        if info.name:
            sel = f"metadata.name={info.name}"
            opts = replace(opts, field_selector=",".join(
                s for s in (opts.field_selector, sel) if s))
        return await serve_watch(self, request, info, where, opts)

    # -- writes -------------------------------------------------------------------------------

    async def _create(self, request: web.Request, info: RequestInfo, where: Where) -> web.Response:
        if info.name:
            raise errors.method_not_allowed("POST", f"a named {info.rtype.singular}")
        body = objects.check_body(info.rtype, await codec.read_object(request),
                                  tenant=where.tenant, namespace=where.namespace)
        if info.rtype.group == REVIEW_GROUP:
            return self._review(request, info, where, body)
        self.admit_write(request, info, body)
        obj = await self.store.create(where, body, dry_run=_dry_run(request))
        return codec.json_response(obj, 201)

    def _review(self, request: web.Request, info: RequestInfo, where: Where,
                body: Obj) -> web.Response:
        """Access reviews are answered, not stored; a tenant user asks only in its tenant."""
        identity = request.get("identity")
        if identity is not None and identity.tenant not in (TENANT_SYSTEM, where.tenant):
            raise errors.forbidden(f"{info.rtype.plural} of tenant \"{where.tenant}\" are not "
                                   f"open to users of tenant \"{identity.tenant}\"")
        causes = info.rtype.validate(body, None)
        if causes:
            raise errors.invalid(info.rtype.kind, "", causes)
        status = ({"allowed": True} if self.authorizer is None else
                  self.authorizer.review(identity, body, where.tenant, self.store.registry))
        return codec.json_response({**body, "status": status}, 201)

    async def _update(self, request: web.Request, info: RequestInfo, where: Where) -> web.Response:
        body = self.checked_named_body(info, where, await codec.read_object(request))
        return await self.replace(info, where, body, request)

    def checked_named_body(self, info: RequestInfo, where: Where, raw: Any) -> Obj:
        body = objects.check_body(info.rtype, raw, tenant=where.tenant,
                                  namespace=where.namespace)
        name = body["metadata"].get("name")
        if name not in (None, "", info.name):
            raise errors.bad_request(f"the name of the object ({name}) does not match the name "
                                     f"on the URL ({info.name})")
        body["metadata"]["name"] = info.name
        return body

    async def replace(self, info: RequestInfo, where: Where, body: Obj,
                      request: web.Request) -> web.Response:
        """PUT semantics for the object or its status/finalize subresource."""
        self.admit_write(request, info, body)
        rv = str(body["metadata"].get("resourceVersion") or "") or None
        obj = await self.store.guaranteed_update(
            where, info.name,
            lambda cur: objects.prepare_update(info.rtype, body, cur, info.subresource),
            precondition=rv, dry_run=_dry_run(request))
        return codec.json_response(obj)

    def admit_write(self, request: web.Request, info: RequestInfo, obj: Obj) -> None:
        """Checks of the caller against the object it writes (see `Authorizer.admit_write`)."""
        if self.authorizer is not None:
            self.authorizer.admit_write(request.get("identity"), info, obj)

    async def _patch(self, request: web.Request, info: RequestInfo, where: Where) -> web.Response:
        raw = await codec.read_body(request)
        content_type = codec.media_type(request)

        def mutate(current: Obj) -> Obj:
            patched = apply_patch(current, raw, content_type, info.rtype.kind)
            patched = self.checked_named_body(info, where, patched)
            self.admit_write(request, info, patched)
            want = str(patched["metadata"].get("resourceVersion") or "")
            if want and want != current["metadata"]["resourceVersion"]:
                raise errors.conflict(info.rtype.qualified, info.name, "the object has been "
                                      "modified; please apply your changes to the latest "
                                      "version and try again")
            return objects.prepare_update(info.rtype, patched, current, info.subresource)

        obj = await self.store.guaranteed_update(where, info.name, mutate,
                                                 dry_run=_dry_run(request))
        return codec.json_response(obj)

    async def _delete(self, request: web.Request, info: RequestInfo, where: Where) -> web.Response:
        opts = await _delete_options(request)
        await self.store.admit_delete(where, info.name)
        obj = await self.store.delete(where, info.name, grace=opts.get("gracePeriodSeconds"),
                                      preconditions=opts.get("preconditions"),
                                      propagation=opts.get("propagationPolicy") or "",
                                      dry_run=_dry_run(request))
        return codec.json_response(obj)

    async def _deletecollection(self, request: web.Request, info: RequestInfo,
                                where: Where) -> web.Response:
        opts = await _delete_options(request)
        await self.cache.wait_fresh()
        page = await list_page(self.store.storage, self.cache.cache(info.rtype).items,
                               self.cache.revision, where, ListOptions.from_query(request.query))
        deleted = []
        for entry in page.items:
            md = entry.obj["metadata"]
            one = Where(info.rtype, md.get("tenant", ""), md.get("namespace", ""))
            try:
                await self.store.admit_delete(one, md["name"])
                deleted.append(await self.store.delete(
                    one, md["name"], grace=opts.get("gracePeriodSeconds"),
                    propagation=opts.get("propagationPolicy") or "", dry_run=_dry_run(request)))
            except errors.StatusError as exc:
                if exc.code != 404:
                    raise
        rt = info.rtype
        return codec.json_response({"kind": rt.list_kind, "apiVersion": rt.group_version,
                                    "metadata": {}, "items": deleted})


def caller_tenant(request: web.Request) -> str:
    """The authenticated caller's tenant (the system tenant until authentication exists)."""
    return str(request.get("tenant", TENANT_SYSTEM))


def _with_continue_at(opts: ListOptions, rev: int) -> ListOptions:
    return replace(opts, continue_token=opts.continue_token or encode_token(rev, ""))


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    if any(v != "All" for v in values):
        raise errors.bad_request("dryRun must be \"All\"")
    return bool(values)


async def _delete_options(request: web.Request) -> dict[str, Any]:
    """DeleteOptions from the body (if any) with query parameters taking precedence."""
    raw = await codec.read_body(request)
    opts: dict[str, Any] = codec.parse(raw, codec.media_type(request)) if raw.strip() else {}
    if not isinstance(opts, dict):
        raise errors.bad_request("DeleteOptions must be an object")
    for name in ("gracePeriodSeconds", "propagationPolicy"):
        if name in request.query:
            opts[name] = request.query[name]
    grace = opts.get("gracePeriodSeconds")
    if grace is not None:
        try:
            opts["gracePeriodSeconds"] = max(int(grace), 0)
        except (TypeError, ValueError):
            raise errors.bad_request("gracePeriodSeconds must be an integer") from None
    policy = opts.get("propagationPolicy")
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise errors.bad_request(f'propagationPolicy "{policy}" is not one of Orphan, '
                                 "Background, Foreground")
    orphan = opts.get("orphanDependents")
    if orphan is not None and not isinstance(orphan, bool):
        raise errors.bad_request("orphanDependents must be a boolean")
    if orphan is not None and policy is None:
        opts["propagationPolicy"] = "Orphan" if orphan else "Background"
    return opts
