"""The shape every controller has: informers feed keys into a work queue; workers call
`reconcile(key)`, which reads informer state and writes through the API (level-triggered).

A reconcile that raises is retried with per-key backoff; returning a number requeues the key
after that many seconds; returning None forgets its failures.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from arktos.client.events import EventRecorder
from arktos.client.informer import Handler, Informer, InformerFactory
from arktos.client.rest import ApiClient, ApiError
from arktos.client.store import Obj, key_of
from arktos.client.workqueue import QueueShutDown, WorkQueue
from arktos.controllers.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What a controller gets: the API, the shared informers, an event recorder, settings."""

    api: ApiClient
    informers: InformerFactory
    recorder: EventRecorder
    settings: Settings


class Controller:
    """Base class: subclasses set `name`, register informers in `__init__` (calling
    `self.watch(informer)` or adding their own handlers) and implement `reconcile`."""

    name = "controller"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queue: WorkQueue[str] = WorkQueue()

    def enqueue(self, obj: Obj) -> None:
        self.queue.add(key_of(obj))

    def watch(self, informer: Informer) -> None:
        """Enqueue the key of every added, changed or deleted object of `informer`."""
        handler = Handler(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                          on_delete=self.enqueue)
        informer.add_handler(handler)

    async def reconcile(self, key: str) -> float | None:
        raise NotImplementedError

    async def run(self) -> None:
        """Process keys with `settings.workers` workers until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(self.ctx.settings.workers):
                    tg.create_task(self._worker())
        finally:
            self.queue.shutdown()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                again = await self.reconcile(key)
            except (ApiError, OSError) as exc:
                self._retry(key, exc)
            except Exception as exc:
                log.exception("%s: reconcile %s crashed", self.name, key)
                self._retry(key, exc)
            else:
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, again)
            finally:
                self.queue.done(key)

    def _retry(self, key: str, exc: BaseException) -> None:
        if self.queue.failures(key) < 15:
            log.info("%s: retrying %s after error: %s", self.name, key, exc)
            self.queue.add_rate_limited(key)
        else:
            log.warning("%s: giving up on %s for now: %s", self.name, key, exc)
            self.queue.forget(key)
            self.queue.add_after(key, self.ctx.settings.resync_period)
