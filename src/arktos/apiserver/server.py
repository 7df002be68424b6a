"""The API server process: HTTP app, non-resource endpoints, bootstrap and housekeeping.

`APIServer.run()` owns every task (watch cache, compactor, HTTP site) in one TaskGroup.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from arktos.api import errors
from arktos.api.kinds import REGISTRY
from arktos.api.kinds.scheduling import builtin_priority_classes
from arktos.api.meta import SYSTEM_NAMESPACES, TENANT_SYSTEM
from arktos.api.rbac_policy import bootstrap_policy
from arktos.api.resources import Registry, Scope
from arktos.apiserver import codec, discovery, openapi, tokenrequest
from arktos.apiserver.admission import PolicyAdmission
from arktos.apiserver.authorizer import RBAC_GROUP, Authorizer
from arktos.apiserver.flowcontrol import FairShare, InflightLimiter
from arktos.apiserver.guard import Guard
from arktos.apiserver.resources import ResourceHandler
from arktos.apiserver.store import Store, Where
from arktos.apiserver.watchcache import WatchCache
from arktos.storage import Storage

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
COMPACT_INTERVAL = 300.0


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a Kubernetes Status."""
    try:
        return await handler(request)
    except errors.StatusError as exc:
        return codec.status_response(exc)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.exception("internal error on %s %s", request.method, request.path)
        return codec.status_response(errors.internal(str(exc)))


POLICY_FIELDS = ("rules", "subjects")
"""What the API server keeps current in its default RBAC objects at every start."""
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"


class APIServer:
    """One API server over one storage."""

    def __init__(self, storage: Storage, *, host: str = "127.0.0.1", port: int = 6443,
                 registry: Registry = REGISTRY, bookmark_interval: float = 10.0,
                 max_inflight: tuple[int, int] = (400, 200),
                 tls: ssl.SSLContext | None = None, guard: Guard | None = None,
                 fair_shares: tuple[FairShare, FairShare] = (FairShare(), FairShare()),
                 tenant_seats: int = 0) -> None:
        """`max_inflight` is (read-only, mutating) requests in flight; 0 means unlimited.
        `tls` serves HTTPS; `guard` authenticates (without it every caller is the system
        tenant's admin: only for tests of the bare API machinery). `fair_shares` are the
        per-tenant and per-user limits; all tenants but `system` share `tenant_seats` slots
        (0: no cap)."""
        self.storage = storage
        self.host, self.port = host, port
        self.registry = registry
        self.tenant_view = Registry([rt for rt in registry
                                     if rt.scope is not Scope.CLUSTER or rt.kind == "Tenant"])
        """What discovery shows users of tenants other than `system`: no cluster-scoped
        kinds except Tenant (they may read their own)."""
        self.cache = WatchCache(storage, registry)
        self.store = Store(storage, self.cache, registry)
        self.store.admission = PolicyAdmission(self.cache, registry)
        self.authorizer = Authorizer(self.cache, registry) if guard is not None else None
        self.resources = ResourceHandler(self.store, bookmark_interval=bookmark_interval,
                                         authorizer=self.authorizer)
        self.ready = asyncio.Event()
        self._fixed: dict[str, Callable[[web.Request], web.Response]] | None = None
        self._docs: dict[str, bytes] = {}
        self.limiter = InflightLimiter(readonly=max_inflight[0], mutating=max_inflight[1],
                                       tenant=fair_shares[0], user=fair_shares[1],
                                       tenant_seats=tenant_seats)
        self.tls = tls
        self.guard = guard
        self.sa_tokens = tokenrequest.signer_of(guard.authenticators if guard else None)
        if self.sa_tokens is not None:
            tokenrequest.wire_lookups(self.sa_tokens, self.cache, registry)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def app(self) -> web.Application:
        middlewares = [status_errors, self.limiter.middleware]
        if self.guard is not None:
            middlewares.insert(1, self.guard.middleware)
        app = web.Application(middlewares=middlewares, client_max_size=codec.MAX_BODY + 1)
        if self.sa_tokens is not None:
            app[tokenrequest.SIGNER] = self.sa_tokens
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if self._fixed is None:
            self._fixed = self._fixed_routes()  # built once: dispatch is on every request
        fixed = self._fixed.get(path)
        if fixed is not None:
            if request.method != "GET":
                raise errors.method_not_allowed(request.method, path)
            return fixed(request)
        if path.startswith(("/api/", "/apis/")):
            if not self.ready.is_set():
                raise errors.service_unavailable("the API server is starting")
            if path.count("/") <= 3 and request.method == "GET":
                found = self._discovery(path, request)
                if found is not None:
                    return found
            return await self.resources(request)
        if path.startswith("/openapi/v3/"):
            return self._openapi_v3(path[len("/openapi/v3/"):])
        raise errors.path_not_found(path)

    def _fixed_routes(self) -> dict[str, Callable[[web.Request], web.Response]]:
        ok = lambda _r: web.Response(text="ok")
        return {
            "/healthz": ok, "/livez": ok,
            "/readyz": lambda _r: web.Response(text="ok") if self.ready.is_set()
            else web.Response(text="starting", status=503),
            "/version": lambda _r: codec.json_response(discovery.version_info()),
            "/api": lambda r: self._groups(r, core=True),
            "/apis": self._apis,
            "/openapi/v2": lambda _r: self._cached("v2", lambda: openapi.openapi_v2(self.registry)),
            "/openapi/v3": lambda _r: self._cached(
                "v3", lambda: openapi.openapi_v3_root(self.registry)),
        }

    def _apis(self, request: web.Request) -> web.Response:
        return self._groups(request, core=False)

    def _groups(self, request: web.Request, *, core: bool) -> web.Response:
        """`/api` or `/apis`: aggregated discovery when the client asks for it, else legacy."""
        version = discovery.negotiate_aggregated(request.headers.get("Accept", ""))
        if version is None:
            doc = (discovery.api_versions(request.host) if core
                   else discovery.api_group_list(self._view(request)))
            return codec.json_response(doc)
        resp = codec.json_response(discovery.aggregated_discovery(self._view(request), core,
                                                                  version))
        resp.headers["Content-Type"] = discovery.aggregated_content_type(version)
        return resp

    def _view(self, request: web.Request) -> Registry:
        """The kinds discovery shows to the caller."""
        tenant = request.get("tenant", TENANT_SYSTEM)
        return self.registry if tenant == TENANT_SYSTEM else self.tenant_view

    def _discovery(self, path: str, request: web.Request) -> web.Response | None:
        parts = path.strip("/").split("/")
        if parts == ["api", "v1"]:
            doc = discovery.api_resource_list(self._view(request), "", "v1")
        elif parts[0] == "apis" and len(parts) == 2:
            doc = discovery.api_group(self._view(request), parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = discovery.api_resource_list(self._view(request), parts[1], parts[2])
        else:
            return None
        if doc is None:
            raise errors.path_not_found(path)
        return codec.json_response(doc)

    def _cached(self, name: str, build: Callable[[], dict[str, Any] | None]) -> web.Response:
        """A generated document, built once; 404 when `build` finds nothing to serve."""
        body = self._docs.get(name)
        if body is None:
            doc = build()
            if doc is None:
                raise errors.path_not_found("/openapi/" + name)
            body = self._docs[name] = orjson.dumps(doc)
        return codec.raw_response(body)

    def _openapi_v3(self, rest: str) -> web.Response:
        parts = rest.split("/")
        if parts[0] == "api" and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            raise errors.path_not_found("/openapi/v3/" + rest)
        return self._cached(f"v3/{rest}",
                            lambda: openapi.openapi_v3_group(self.registry, group, version))

    async def bootstrap(self) -> None:
        """Make sure the system tenant, its namespaces, the default RBAC policy and the
        built-in PriorityClasses exist (idempotent)."""
        tenants = self.registry.by_kind("", "Tenant")
        namespaces = self.registry.by_kind("", "Namespace")
        assert tenants is not None and namespaces is not None
        await self._ensure(Where(tenants, "", ""), {"metadata": {"name": TENANT_SYSTEM},
                                                     "spec": {"storageClusterId": "0"}})
        for ns in SYSTEM_NAMESPACES:
            await self._ensure(Where(namespaces, TENANT_SYSTEM, ""), {"metadata": {"name": ns}})
        for obj in bootstrap_policy():
            rtype = self.registry.by_kind(RBAC_GROUP, obj["kind"])
            assert rtype is not None
            md = obj["metadata"]
            await self._ensure(Where(rtype, md["tenant"], md.get("namespace", "")), obj,
                               reconcile=POLICY_FIELDS)
        classes = self.registry.by_kind("scheduling.k8s.io", "PriorityClass")
        if classes is not None:
            for obj in builtin_priority_classes():
                await self._ensure(Where(classes, "", ""), obj)

    async def _ensure(self, where: Where, obj: dict[str, Any],
                      reconcile: tuple[str, ...] = ()) -> None:
        """Create `obj` if missing; if it exists, bring its `reconcile` fields back to `obj`'s
        (kube's auto-update of default roles, unless annotated
        `rbac.authorization.kubernetes.io/autoupdate: "false"`)."""
        obj = {**obj, "kind": where.rtype.kind, "apiVersion": where.rtype.group_version}
        if where.rtype.tenanted:
            obj["metadata"]["tenant"] = where.tenant
        try:
            await self.store.create(where, obj)
            return
        except errors.StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise
        wanted = {f: obj[f] for f in reconcile if f in obj}

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            notes = current["metadata"].get("annotations") or {}
            if notes.get(AUTOUPDATE) == "false":
                return current
            return {**current, **wanted}

        if wanted:
            await self.store.guaranteed_update(where, obj["metadata"]["name"], mutate)

    async def _compact_forever(self) -> None:
        """Every interval, forget history older than the revision seen one interval ago."""
        previous = 0
        while True:
            await asyncio.sleep(COMPACT_INTERVAL)
            if previous:
                await self.storage.compact(previous)
            previous = await self.storage.current_revision()

    async def run(self, started: Callable[[], None] = lambda: None) -> None:
        """Serve until cancelled."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False,
                                shutdown_timeout=1.0)
        await runner.setup()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.cache.run())
                await self.cache.ready.wait()
                await self.bootstrap()
                await self.cache.wait_fresh()
                if self.authorizer is not None:
                    tg.create_task(self.authorizer.run())
                site = web.TCPSite(runner, self.host, self.port, reuse_address=True,
                                   ssl_context=self.tls)
                await site.start()
                self.ready.set()
                tg.create_task(self._compact_forever())
                log.info("API server serving on %s", self.url)
                started()
        finally:
            await runner.cleanup()
