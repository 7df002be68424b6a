"""Informers: list, then watch from the list's resourceVersion, into an indexed store, calling
handlers for every change. Relists on 410 Gone and after repeated watch failures (firing the
adds, updates and deletes it missed); periodic resync re-announces every object as an update.

One shared informer per (resource, scope, selection) and process: `InformerFactory`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from arktos.client.resources import ALL_TENANTS, ListResult, ResourceClient
from arktos.client.rest import ApiClient, ApiError, WatchEvent
from arktos.client.store import Indexer, IndexFunc, Obj, key_of

log = logging.getLogger(__name__)


class ListerWatcher(Protocol):
    """Where an informer's data comes from: one API server, or several merged."""

    async def list(self) -> ListResult: ...

    def watch(self, resource_version: str, timeout_seconds: int) -> AsyncIterator[WatchEvent]:
        ...


@dataclass
class Handler:
    """Callbacks for changes; they run on the loop and must not block (enqueue work)."""

    on_add: Callable[[Obj], None] = lambda obj: None
    on_update: Callable[[Obj, Obj], None] = lambda old, new: None
    on_delete: Callable[[Obj], None] = lambda obj: None


class Informer:
    """Keeps `store` in step with the API server and tells handlers about changes."""

    def __init__(self, lw: ListerWatcher, *, indexers: dict[str, IndexFunc] | None = None,
                 resync_period: float = 0.0, name: str = "") -> None:
        self.lw = lw
        self.store = Indexer(indexers)
        self.resync_period = resync_period
        self.name = name
        self.handlers: list[Handler] = []
        self.synced = asyncio.Event()
        self.resource_version = ""

    def add_handler(self, handler: Handler) -> None:
        """Register callbacks; a late handler first gets an add for every known object."""
        self.handlers.append(handler)
        for obj in self.store.objects():
            handler.on_add(obj)

    async def run(self) -> None:
        """List and watch forever (cancel to stop)."""
        async with asyncio.TaskGroup() as tg:
            if self.resync_period > 0:
                tg.create_task(self._resync_forever())
            tg.create_task(self._list_watch_forever())

    async def _list_watch_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self._relist()
                failures = 0
                await self._watch_until_gone()
            except ApiError as exc:
                failures += 1
                log.warning("informer %s: %s; relisting", self.name, exc)
                await asyncio.sleep(min(30.0, 0.2 * 2**min(failures, 8)))

    async def _relist(self) -> None:
        result = await self.lw.list()
        fresh = {key_of(o): o for o in result.items}
        for key in [k for k in self.store if k not in fresh]:
            old = self.store.remove(key)
            if old is not None:
                self._fire_delete(old)
        for obj in result.items:
            self._apply_put(obj)
        self.resource_version = result.resource_version
        self.synced.set()

    async def _watch_until_gone(self) -> None:
        """Watch, resuming after normal ends and transient errors; returns on 410 Gone."""
        errors = 0
        while True:
            try:
                async for ev in self.lw.watch(self.resource_version, random.randint(240, 480)):
                    self._apply(ev)
                    errors = 0
            except ApiError as exc:
                if exc.status == 410 or errors >= 5:
                    return
                errors += 1
                await asyncio.sleep(0.2 * 2**errors)

    def _apply(self, ev: WatchEvent) -> None:
        if ev.type in ("ADDED", "MODIFIED"):
            self._apply_put(ev.object)
        elif ev.type == "DELETED":
            old = self.store.remove(key_of(ev.object))
            self._fire_delete(old if old is not None else ev.object)
        self.resource_version = ev.resume_version or self.resource_version

    def _apply_put(self, obj: Obj) -> None:
        old = self.store.put(obj)
        for h in self.handlers:
            if old is None:
                h.on_add(obj)
            elif old.get("metadata", {}).get("resourceVersion") != \
                    obj.get("metadata", {}).get("resourceVersion"):
                h.on_update(old, obj)

    def _fire_delete(self, obj: Obj) -> None:
        for h in self.handlers:
            h.on_delete(obj)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            for obj in self.store.objects():
                for h in self.handlers:
                    h.on_update(obj, obj)


@dataclass(frozen=True)
class _Selection:
    resource: str
    tenant: str
    namespace: str
    label_selector: str
    field_selector: str


class InformerFactory:
    """Shared informers of one process; `run()` runs them all (also ones asked for later)."""

    def __init__(self, api: ApiClient, *, resync_period: float = 0.0) -> None:
        self.api = api
        self.resync_period = resync_period
        self._informers: dict[_Selection, Informer] = {}
        self._tg: asyncio.TaskGroup | None = None

    def informer(self, resource: str, *, tenant: str = ALL_TENANTS, namespace: str = "",
                 label_selector: str = "", field_selector: str = "",
                 indexers: dict[str, IndexFunc] | None = None) -> Informer:
        rc = ResourceClient(self.api, resource)
        sel = _Selection(rc.rtype.qualified, tenant if rc.rtype.tenanted else "", namespace,
                         label_selector, field_selector)
        inf = self._informers.get(sel)
        if inf is None:
            lw = rc.lister_watcher(namespace=namespace, tenant=sel.tenant or None,
                                   label_selector=label_selector, field_selector=field_selector)
            inf = Informer(lw, indexers=indexers, resync_period=self.resync_period,
                           name=sel.resource)
            self._informers[sel] = inf
            if self._tg is not None:
                self._tg.create_task(inf.run())
        else:
            for name, fn in (indexers or {}).items():
                inf.store.add_index(name, fn)
        return inf

    async def run(self) -> None:
        """Run every informer until cancelled."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for inf in self._informers.values():
                tg.create_task(inf.run())
            await asyncio.Event().wait()

    async def wait_synced(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            for inf in list(self._informers.values()):
                await inf.synced.wait()
